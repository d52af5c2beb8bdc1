"""The synthetic report's specification: what a TID 1500 Measurement Report says, as plain typed values.

A `ReportSpec` is the *truth* the tests assert against: `writer.write_sr` encodes it as a DICOM SR and the
mapping must give it back. It deliberately does not reuse `sr2fhir_core` types, so that the oracle is not
the code under test. Names follow PS3.16 (TID 1500, 1410, 1411, 1501, 1420, 300, 320, 4019, 1502) and
PS3.3 (SR Document modules).

Codes are stored in their canonical form (SNOMED CT as SCT); `ReportSpec.legacy_snomed` asks the writer to
encode them as the legacy SNOMED-RT identifiers (SRT) that pre-2019 producers wrote, which the mapping must
read back as the same SCT concepts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Code:
    """A coded concept (PS3.3 Table 8.8-1): Code Value, Coding Scheme Designator, Code Meaning."""

    value: str
    scheme: str
    meaning: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CodingScheme:
    """A Coding Scheme Identification Sequence (0008,0110) item: how the SR names a private scheme."""

    designator: str
    name: str
    url: str | None = None
    uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuer:
    """Issuer of Patient ID (0010,0021) and its qualifiers, or an Issuer of Accession Number item."""

    local_namespace: str | None = None
    universal_id: str | None = None
    universal_id_type: str | None = None
    """"URI" or "ISO" (an OID)."""


# --- Header modules ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientSpec:
    """Patient Module (PS3.3 C.7.1.1)."""

    patient_id: str
    issuer: Issuer | None = None
    name: str = ""
    birth_date: str = ""
    sex: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StudySpec:
    """General Study Module (PS3.3 C.7.2.1)."""

    study_instance_uid: str
    study_date: str
    study_time: str
    study_id: str = ""
    accession_number: str | None = None
    accession_issuer: Issuer | None = None
    description: str | None = None
    referring_physician_name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EquipmentSpec:
    """General Equipment Module (PS3.3 C.7.5.1)."""

    manufacturer: str
    model_name: str | None = None
    device_uid: str | None = None
    serial_number: str | None = None
    software_versions: tuple[str, ...] = ()
    institution_name: str | None = None


class SRStorage(StrEnum):
    """SR SOP classes a TID 1500 report is written in (PS3.4 Table B.5-1)."""

    ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
    """No SCOORD3D and no by-reference relationships."""
    COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
    """By-reference relationships, but no SCOORD3D."""
    COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSpec:
    """SR Document Series, SR Document General and SOP Common values of the report itself."""

    sop_class: SRStorage
    sop_instance_uid: str
    series_instance_uid: str
    series_number: int = 1
    instance_number: int = 1
    series_description: str | None = None
    content_date: str = ""
    content_time: str = ""
    timezone_offset: str | None = None
    """Timezone Offset From UTC (0008,0201), e.g. "+0100"."""
    preliminary_flag: str | None = None
    """PRELIMINARY or FINAL; None leaves Preliminary Flag (0040,A496) out."""
    completion_flag: str = "COMPLETE"
    verification_flag: str = "UNVERIFIED"
    specific_character_set: str | None = None
    """None (default repertoire, ASCII), "ISO_IR 100" (Latin-1) or "ISO_IR 192" (UTF-8)."""


# --- Content ----------------------------------------------------------------------------------------------


class ReferenceKind(StrEnum):
    """What a reference content item points at. The IG names one ImagingSelection profile per kind; the
    last kind (TID 320 "Source of Measurement") is an image reference no IG profile names."""

    IMAGE_REGION_2D = "image-region-2d"
    IMAGE_REGION_3D = "image-region-3d"
    VOLUME_SURFACE = "volume-surface"
    REFERENCED_SEGMENT = "referenced-segment"
    REFERENCED_SEGMENTATION_FRAME = "referenced-segmentation-frame"
    ILLUSTRATION_OF_ROI = "illustration-of-roi"
    VISUAL_EXPLANATION = "visual-explanation"
    REGION_IN_SPACE = "region-in-space"
    REAL_WORLD_VALUE_MAP = "real-world-value-map"
    SOURCE_OF_MEASUREMENT = "source-of-measurement"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferencedInstance:
    """A referenced SOP instance with where it lives; the writer lists it in the evidence sequences."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    frame_numbers: tuple[int, ...] = ()
    """Referenced Frame Number (0008,1160) of this reference (multi-frame images and SEG frames)."""
    segment_numbers: tuple[int, ...] = ()
    """Referenced Segment Number (0062,000B) (SEG references)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageReference:
    """A SCOORD, SCOORD3D, IMAGE or COMPOSITE reference item of a group or a measurement.

    SCOORD: `instance` is the IMAGE it is SELECTED FROM and `graphic_data` pixel coordinates (column, row).
    SCOORD3D: no instance; `graphic_data` (x, y, z) triplets in `frame_of_reference_uid`.
    IMAGE / COMPOSITE: `instance` is the referenced object.
    """

    kind: ReferenceKind
    instance: ReferencedInstance | None = None
    graphic_type: str | None = None
    graphic_data: tuple[float, ...] = ()
    frame_of_reference_uid: str | None = None
    roi_numbers: tuple[str, ...] = ()
    """Region In Space: the ROI numbers in its "Referenced Region of Interest Identifier" TEXT children."""
    observation_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Algorithm:
    """TID 4019 Algorithm Identification."""

    name: str
    version: str
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingSite:
    """Finding Site (SCT 363698007) with its Laterality and Topographical modifier children."""

    site: Code
    laterality: Code | None = None
    topographical_modifier: Code | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """TID 300 Measurement: a NUM item and its own context."""

    concept: Code
    value: str | None
    """Numeric Value (0040,A30A) exactly as written (DS); None writes an empty Measured Value Sequence."""
    unit: Code | None = None
    qualifier: Code | None = None
    """Numeric Value Qualifier (0040,A301), e.g. (114000, DCM, "Not a number"), when `value` is None."""
    derivation: Code | None = None
    method: Code | None = None
    finding_site: FindingSite | None = None
    algorithm: Algorithm | None = None
    image_references: tuple[ImageReference, ...] = ()
    """TID 320 references of this measurement (INFERRED FROM)."""
    group_references: tuple[int, ...] = ()
    """Indices into the group's `image_references` this measurement is INFERRED FROM by reference
    (Referenced Content Item Identifier); only in Comprehensive and Comprehensive 3D SR."""
    observation_uid: str | None = None
    observation_datetime: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitativeEvaluation:
    """A CODE (`value_code`) or TEXT (`value_text`) qualitative evaluation."""

    concept: Code
    value_code: Code | None = None
    value_text: str | None = None
    algorithm: Algorithm | None = None
    observation_uid: str | None = None
    observation_datetime: str | None = None


class GroupTemplate(StrEnum):
    PLANAR_ROI = "1410"
    VOLUMETRIC_ROI = "1411"
    MEASUREMENT_GROUP = "1501"


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasurementGroup:
    """TID 1410 Planar ROI, TID 1411 Volumetric ROI or TID 1501 Measurement and Qualitative Evaluation
    Group: a (125007, DCM, "Measurement Group") CONTAINER."""

    template: GroupTemplate
    tracking_identifier: str | None = None
    tracking_uid: str | None = None
    activity_session: str | None = None
    time_point: str | None = None
    """TID 1502 (C2348792, UMLS, "Time Point") TEXT."""
    finding_category: Code | None = None
    finding: Code | None = None
    finding_site: FindingSite | None = None
    method: Code | None = None
    algorithm: Algorithm | None = None
    image_references: tuple[ImageReference, ...] = ()
    source_series_uid: str | None = None
    """TID 1411 (121232, DCM, "Source series for segmentation")."""
    measurements: tuple[Measurement, ...] = ()
    qualitative_evaluations: tuple[QualitativeEvaluation, ...] = ()
    observation_uid: str | None = None
    observation_datetime: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DerivedMeasurement:
    """TID 1420 under (126011, DCM, "Derived Imaging Measurements"): a NUM computed from the measurement
    groups that are its children."""

    measurement: Measurement
    groups: tuple[MeasurementGroup, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonObserver:
    """TID 1003 Person Observer Identifying Attributes."""

    name: str
    organization: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    """A Participant Sequence (0040,A07A) item (PS3.3 C.17.2, SR Document General): a person (PSN) or a
    device (DEV) that took part in making the document."""

    participation_type: str
    """Participation Type (0040,A080): ENT (data enterer), SRC (source), ATTEST, VRF."""
    observer_type: str
    """Observer Type (0040,A084): PSN or DEV."""
    datetime: str
    """Participation DateTime (0040,A082), DT."""
    person_name: str | None = None
    organization: str | None = None
    device_uid: str | None = None
    manufacturer: str | None = None
    model_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceObserver:
    """TID 1004 Device Observer Identifying Attributes."""

    uid: str
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSpec:
    """One TID 1500 Measurement Report, header and content."""

    patient: PatientSpec
    study: StudySpec
    equipment: EquipmentSpec
    instance: InstanceSpec
    language: Code | None = None
    procedures_reported: tuple[Code, ...] = ()
    person_observers: tuple[PersonObserver, ...] = ()
    device_observers: tuple[DeviceObserver, ...] = ()
    participants: tuple[Participant, ...] = ()
    """Participant Sequence (0040,A07A); empty writes none."""
    image_library: bool = False
    """Write a TID 1600 Image Library listing the referenced images (the mapping ignores it)."""
    measurements_algorithm: Algorithm | None = None
    """TID 4019 directly under Imaging Measurements: the default algorithm of every group below it."""
    groups: tuple[MeasurementGroup, ...] = ()
    derived_measurements: tuple[DerivedMeasurement, ...] = ()
    qualitative_evaluations: tuple[QualitativeEvaluation, ...] = ()
    """Report-level evaluations, in a (C0034375, UMLS, "Qualitative Evaluations") container."""
    coding_schemes: tuple[CodingScheme, ...] = ()
    legacy_snomed: bool = False
    """Encode SNOMED CT codes that have a SNOMED-RT identifier in that legacy form (SRT)."""

    @property
    def all_groups(self) -> tuple[MeasurementGroup, ...]:
        """Groups in the order the mapping reads them: Imaging Measurements first, then derived ones."""
        return self.groups + tuple(g for d in self.derived_measurements for g in d.groups)

    def image_references(self) -> Iterator[ImageReference]:
        """Every reference item in the report, document order (a by-reference link is not a new item)."""
        for group in self.all_groups:
            yield from group.image_references
            for measurement in group.measurements:
                yield from measurement.image_references
        for derived in self.derived_measurements:
            yield from derived.measurement.image_references

    def referenced_instances(self) -> tuple[ReferencedInstance, ...]:
        """Distinct referenced SOP instances (by SOP Instance UID), first appearance first."""
        seen: dict[str, ReferencedInstance] = {}
        for reference in self.image_references():
            if reference.instance is not None:
                seen.setdefault(reference.instance.sop_instance_uid, reference.instance)
        return tuple(seen.values())
