"""Mapping facts of the IG: profile URLs, fixed categories and codes, with the exact displays the profiles'
patterns require, and per IG version (`IgFacts`) where the two structures differ. Builders look these up;
none of them spells a code itself, and none of them asks which version it writes."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from ..codes import DICOM_DCM, IG_IDENTIFIER_TYPE, UMLS, V2_0203
from ..options import IgVersion
from ..tid1500.model import ImageReferenceKind

IG_PROFILE_BASE = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"


def _profile(profile_id: str) -> str:
    return IG_PROFILE_BASE + profile_id


MEASUREMENT_GROUP = _profile("imaging-measurement-group")
MEASUREMENT = _profile("imaging-measurement")
QUALITATIVE_EVALUATION = _profile("imaging-qualitative-evaluation")
DERIVED_MEASUREMENT = _profile("derived-imaging-measurement")
FINDING_SITE = _profile("dicom-sr-finding-site")
TRACKING_IDENTIFIERS = _profile("dicom-sr-tracking-identifiers")
GENERAL_EQUIPMENT = _profile("dicom-general-equipment")
ALGORITHM_IDENTIFICATION = _profile("algorithm-identification")
IMAGING_SELECTION_BASE = _profile("observation-imaging-selection")
PARTICIPANT_DEVICE = _profile("dicom-participant-device")
PARTICIPANT_PERSON = _profile("dicom-participant-person")
SOURCE_IMAGE_FOR_SEGMENTATION = _profile("source-image-for-segmentation")
SOURCE_SR_CONTENT_ITEM = _profile("source-sr-content-item")


def _coding(system: str, code: str, display: str) -> MappingProxyType:
    return MappingProxyType({"system": system, "code": code, "display": display})


CATEGORY_MEASUREMENT_GROUP = _coding(DICOM_DCM, "125007", "Measurement Group")
CATEGORY_QUALITATIVE_EVALUATIONS = _coding(UMLS, "C0034375", "Qualitative Evaluations")
CATEGORY_DERIVED_MEASUREMENTS = _coding(DICOM_DCM, "126011", "Derived Imaging Measurements")
IDENTIFIER_TYPE_OBSERVATION_UID = _coding(IG_IDENTIFIER_TYPE, "observation-uid", "Observation UID")
IDENTIFIER_TYPE_TRACKING_IDENTIFIER = _coding(DICOM_DCM, "112039", "Tracking Identifier")
IDENTIFIER_TYPE_TRACKING_UID = _coding(DICOM_DCM, "112040", "Tracking Unique Identifier")
IDENTIFIER_TYPE_STUDY_INSTANCE_UID = _coding(DICOM_DCM, "110180", "Study Instance UID")
IDENTIFIER_TYPE_ACCESSION = _coding(V2_0203, "ACSN", "Accession ID")
IDENTIFIER_TYPE_MEDICAL_RECORD = _coding(V2_0203, "MR", "Medical Record Number")
IDENTIFIER_TYPE_UDI = _coding(V2_0203, "UDI", "Universal Device Identifier")
CODE_SOURCE_IMAGE_FOR_SEGMENTATION = _coding(DICOM_DCM, "121233", "Source image for segmentation")
CODE_ORIGINAL_SOURCE = _coding(DICOM_DCM, "111040", "Original Source")
DEVICE_PROPERTY_ALGORITHM_PARAMETERS = _coding(DICOM_DCM, "111002", "Algorithm Parameters")

DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
DATA_ABSENT_REASON_DISPLAYS: MappingProxyType = MappingProxyType(
    {
        "unknown": "Unknown",
        "error": "Error",
        "not-a-number": "Not a Number (NaN)",
        "negative-infinity": "Negative Infinity (NINF)",
        "positive-infinity": "Positive Infinity (PINF)",
        "not-performed": "Not Performed",
    }
)

SOP_CLASS_SYSTEM_IG = "https://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5"
SOP_CLASS_SYSTEM_RFC3986 = "urn:ietf:rfc:3986"


@dataclass(frozen=True, slots=True)
class SelectionProfile:
    """One ImagingSelection profile: its URL and the `code` coding its pattern fixes (None: from the SR)."""

    url: str
    code: MappingProxyType | None


SELECTION_PROFILES: MappingProxyType = MappingProxyType(
    {
        ImageReferenceKind.IMAGE_REGION_2D: SelectionProfile(
            _profile("image-region-2d"), _coding(DICOM_DCM, "111030", "Image Region")
        ),
        ImageReferenceKind.IMAGE_REGION_3D: SelectionProfile(
            _profile("image-region-3d"), _coding(DICOM_DCM, "111030", "Image Region")
        ),
        ImageReferenceKind.REFERENCED_SEGMENT: SelectionProfile(
            _profile("referenced-segment"), _coding(DICOM_DCM, "121191", "Referenced Segment")
        ),
        ImageReferenceKind.REFERENCED_SEGMENTATION_FRAME: SelectionProfile(
            _profile("referenced-segmentation-frame"),
            _coding(DICOM_DCM, "121214", "Referenced Segmentation Frame"),
        ),
        ImageReferenceKind.REGION_IN_SPACE: SelectionProfile(
            _profile("region-in-space"), _coding(DICOM_DCM, "130488", "Region In Space")
        ),
        ImageReferenceKind.VOLUME_SURFACE: SelectionProfile(
            _profile("volume-surface"), _coding(DICOM_DCM, "121231", "Volume Surface")
        ),
        ImageReferenceKind.REAL_WORLD_VALUE_MAP: SelectionProfile(
            _profile("real-world-value-map"),
            _coding(DICOM_DCM, "126100", "Real World Value Map used for measurement"),
        ),
        ImageReferenceKind.ILLUSTRATION_OF_ROI: SelectionProfile(
            _profile("illustration-of-roi"), _coding(DICOM_DCM, "121200", "Illustration of ROI")
        ),
        ImageReferenceKind.VISUAL_EXPLANATION: SelectionProfile(
            _profile("visual-explanation"), _coding(DICOM_DCM, "130401", "Visual Explanation")
        ),
        ImageReferenceKind.OTHER: SelectionProfile(IMAGING_SELECTION_BASE, None),
    }
)

REGION_TYPES_2D: MappingProxyType = MappingProxyType(
    {
        "POINT": "point",
        "POLYLINE": "polyline",
        "CIRCLE": "circle",
        "ELLIPSE": "ellipse",
        "MULTIPOINT": "point",
    }
)
"""DICOM SCOORD Graphic Type → R5 imageRegion2D.regionType; MULTIPOINT is split into points."""


SEGMENTATION_SELECTIONS = frozenset(
    {
        ImageReferenceKind.REFERENCED_SEGMENT,
        ImageReferenceKind.REFERENCED_SEGMENTATION_FRAME,
        ImageReferenceKind.VOLUME_SURFACE,
    }
)
"""Selections whose `focus` names the source-image-for-segmentation selection (STU1, FHIR-47949)."""


@dataclass(frozen=True, slots=True)
class IgFacts:
    """Where the ballot and the post-ballot (STU1) structure differ (NOTES §8.1); resolved once per report."""

    version: IgVersion
    image_references: str
    """Observation element holding the ImagingSelections: `focus` (ballot) or `derivedFrom` (STU1)."""
    measurement_category: MappingProxyType | None
    """The ballot fixes "Measurement Group" on measurements; STU1 removed it."""
    tracking_body_structure: bool
    """Ballot: tracking ids on their own BodyStructure in `focus`; STU1: identifiers of the finding site."""
    body_site_without_modifiers: bool
    """STU1: a finding site without laterality or topographical modifier is `bodySite` (FHIR-47941)."""
    evaluation_site: bool
    """Qualitative evaluations of a group carry its finding site: ballot yes; STU1 no (NOTES §5.10, the
    post-ballot examples)."""
    source_sr_content_item: bool
    """STU1: an Observation UID gives a source-sr-content-item selection in `derivedFrom` (FHIR-47946)."""
    source_image_for_segmentation: bool
    """STU1: "Source image/series for segmentation" give their own selection (FHIR-47949)."""
    selection_body_site: bool
    """STU1: `ImagingSelection.bodySite` = the finding site of the observation it belongs to (FHIR-47943)."""
    one_selection_per_profile: bool
    """STU1: the `derivedFrom` slices per ImagingSelection profile are 0..1 ("only one per observation",
    NOTES §3.7), so the reference items of one profile that an observation brings share one selection."""
    participants: bool
    """STU1: Participant Sequence entries become ParticipantDevice / ParticipantPractitioner (FHIR-47653)."""


IG_FACTS: MappingProxyType = MappingProxyType(
    {
        IgVersion.BALLOT: IgFacts(
            version=IgVersion.BALLOT,
            image_references="focus",
            measurement_category=CATEGORY_MEASUREMENT_GROUP,
            tracking_body_structure=True,
            body_site_without_modifiers=False,
            evaluation_site=True,
            source_sr_content_item=False,
            source_image_for_segmentation=False,
            selection_body_site=False,
            one_selection_per_profile=False,
            participants=False,
        ),
        IgVersion.STU1: IgFacts(
            version=IgVersion.STU1,
            image_references="derivedFrom",
            measurement_category=None,
            tracking_body_structure=False,
            body_site_without_modifiers=True,
            evaluation_site=False,
            source_sr_content_item=True,
            source_image_for_segmentation=True,
            selection_body_site=True,
            one_selection_per_profile=True,
            participants=True,
        ),
    }
)
