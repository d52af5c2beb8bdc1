"""The synthetic report's specification: what a TID 1500 Measurement Report says, as plain typed values.

A `ReportSpec` is the *truth* the tests assert against: `writer.write_sr` encodes it as a DICOM SR and the
mapping must give it back. It deliberately does not reuse `sr2fhir_core` types, so that the oracle is not
the code under test. Names follow PS3.16 (TID 1500, 1410, 1411, 1501, 1420, 300, 320, 4019, 1502) and
PS3.3 (SR Document modules).

Rows a VM 1-n template row allows several of (finding sites, procedures reported, observers, algorithm
parameters, image references, segment numbers, concept modifiers, ...) are tuples; `every_row_spec` in
`generate` builds one report that uses every row of those templates.

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
    purpose: Code | None = None
    """Concept name written instead of the kind's: the $ImagePurpose of TID 320 and of TID 1501 rows
    10b-10e (CID 7551, e.g. (121112, DCM, "Source of Measurement") on a SCOORD), for IMAGE_REGION_2D,
    IMAGE_REGION_3D and SOURCE_OF_MEASUREMENT references."""
    select_by_reference: bool = False
    """SCOORD only: its SELECTED FROM IMAGE is a by-reference link (TID 320 row 5, R-SELECTED FROM) to the
    image's entry in the Image Library (needs `ReportSpec.image_library`, a Comprehensive SR and an image
    without frame numbers); without an Image Library the IMAGE is written by value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SpatialItem:
    """A SCOORD or SCOORD3D under a group that is *not* the group's region of interest, e.g. a viewer's
    (122438, DCM, "Reference Points") as HAS CONCEPT MOD or HAS PROPERTIES. SCOORD: `instance` is the
    image it is SELECTED FROM (its own IMAGE child); SCOORD3D: no instance, `frame_of_reference_uid`."""

    concept: Code
    relationship: str
    """Relationship Type (0040,A010) to the group: "HAS PROPERTIES", or "HAS CONCEPT MOD" as some viewers
    write it (the SR IOD does not allow a SCOORD as HAS CONCEPT MOD target)."""
    graphic_type: str
    graphic_data: tuple[float, ...]
    instance: ReferencedInstance | None = None
    frame_of_reference_uid: str | None = None
    observation_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Algorithm:
    """TID 4019 Algorithm Identification."""

    name: str
    version: str
    parameters: tuple[str, ...] = ()
    """Algorithm Parameters (111002), TEXT, VM 1-n."""
    name_code: Code | None = None
    """Row 1b: Algorithm Name (111001) as a CODE as well as the TEXT."""
    manufacturer: str | None = None
    """Row 2b: Algorithm Manufacturer (122405)."""
    family: Code | None = None
    """Row 4: Algorithm Family (111000), e.g. from CID 7162."""


@dataclass(frozen=True, slots=True)
class CodedValue:
    """A CODE content item's concept name and value: a concept modifier ($ModType = $ModValue, $QualModType
    = $QualModValue) or a coded derivation parameter."""

    concept: Code
    value: Code


@dataclass(frozen=True, slots=True)
class TextValue:
    """A TEXT content item's concept name and value."""

    concept: Code
    text: str


@dataclass(frozen=True, slots=True)
class NumValue:
    """A NUM content item's concept name, value (DS, as written) and unit."""

    concept: Code
    value: str
    unit: Code


DerivationParameter = NumValue | CodedValue | TextValue
"""TID 1419 rows 13, 14b, 14c (TID 301 row 9): an INFERRED FROM NUM, CODE or TEXT $DerivationParameter."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingSite:
    """Finding Site (SCT 363698007) with its Laterality and Topographical modifier children (its own
    HAS CONCEPT MOD items: each finding site of a group or measurement carries its own)."""

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
    finding_sites: tuple[FindingSite, ...] = ()
    """Finding Site rows (TID 1419 row 9, TID 301 row 5; VM 1-n), each with its own modifiers."""
    algorithm: Algorithm | None = None
    image_references: tuple[ImageReference, ...] = ()
    """TID 320 references of this measurement (INFERRED FROM)."""
    group_references: tuple[int, ...] = ()
    """Indices into the group's `image_references` this measurement is INFERRED FROM by reference
    (Referenced Content Item Identifier); only in Comprehensive and Comprehensive 3D SR."""
    observation_uid: str | None = None
    observation_datetime: str | None = None
    unit_spelling: str | None = None
    """Code Value the writer writes for `unit` instead of the canonical one, e.g. "hnsf'U" (a DICOM-era
    UCUM misspelling, `catalog.UNIT_MISSPELLINGS`) for [hnsf'U]; the truth stays `unit`."""
    modifiers: tuple[CodedValue, ...] = ()
    """$ModType = $ModValue concept modifiers (TID 1419 row 6, TID 301 row 2; HAS CONCEPT MOD, VM 1-n)."""
    derivation_parameters: tuple[DerivationParameter, ...] = ()
    """INFERRED FROM NUM / CODE / TEXT derivation parameters by value (TID 1419 rows 13, 14b, 14c)."""
    derivation_parameter_references: tuple[int, ...] = ()
    """Indices into the group's `measurements` (earlier ones) this measurement is INFERRED FROM by
    reference: NUM derivation parameters (TID 1419 row 14, R-INFERRED FROM; XOR row 13 NUMs)."""
    equation: TextValue | None = None
    """TID 1419 row 16 / TID 301 row 12: an INFERRED FROM TEXT from CID 228 (e.g. (121420, DCM,
    "Equation"))."""
    equivalent_meaning: str | None = None
    """Equivalent Meaning of Concept Name (121050), TEXT (TID 1419 row 18, TID 301 row 16)."""
    equivalent_meaning_code: Code | None = None
    """Equivalent Meaning of Concept Name (121050) as a CODE (TID 301 row 16b)."""
    tracking_identifier: str | None = None
    """TID 4108 on the measurement itself (TID 301 row 17), HAS OBS CONTEXT."""
    tracking_uid: str | None = None

    @property
    def finding_site(self) -> FindingSite | None:
        """The first finding site, or None (the single site older callers read)."""
        return self.finding_sites[0] if self.finding_sites else None


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitativeEvaluation:
    """A CODE (`value_code`) or TEXT (`value_text`) qualitative evaluation."""

    concept: Code
    value_code: Code | None = None
    value_text: str | None = None
    algorithm: Algorithm | None = None
    observation_uid: str | None = None
    observation_datetime: str | None = None
    modifiers: tuple[CodedValue, ...] = ()
    """CODE evaluations only: $QualModType = $QualModValue modifiers (HAS CONCEPT MOD children, VM 1-n;
    TID 1410 / 1411 row 16b, TID 1501 row 11b, TID 1500 row 13b), e.g. from CID 210 / CID 211."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimePointContext:
    """TID 1502 rows besides the (C2348792, UMLS, "Time Point") TEXT (`MeasurementGroup.time_point`,
    without which none of these is written)."""

    subject_time_point_identifier: str | None = None
    """(126070, DCM, "Subject Time Point Identifier") TEXT."""
    protocol_time_point_identifier: str | None = None
    """(126071, DCM, "Protocol Time Point Identifier") TEXT."""
    types: tuple[Code, ...] = ()
    """(126072, DCM, "Time Point Type") CODE, VM 1-n, CID 6146."""
    order: int | None = None
    """(126073, DCM, "Time Point Order") NUM in (1, UCUM, "no units")."""
    offset_days: str | None = None
    """(128740, DCM, "Longitudinal Temporal Offset from Event") NUM in days (DS as written)."""
    offset_event: Code | None = None
    """Its (128741, DCM, "Longitudinal Temporal Event Type") child, CID 280; needed with `offset_days`."""


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
    time_point_context: TimePointContext | None = None
    """The other TID 1502 rows, written only with `time_point`."""
    finding_category: Code | None = None
    finding: Code | None = None
    geometric_purpose: Code | None = None
    """(130400, DCM, "Geometric purpose of region") CODE, CONTAINS (TID 1410 / 1411), CID 219."""
    finding_sites: tuple[FindingSite, ...] = ()
    """Finding Site rows (TID 1419 row 2, TID 1501 row 6; VM 1-n), each with its own modifiers."""
    method: Code | None = None
    algorithm: Algorithm | None = None
    image_references: tuple[ImageReference, ...] = ()
    source_images: tuple[ReferencedInstance, ...] = ()
    """TID 1410 / 1411 (121233, DCM, "Source image for segmentation") IMAGE items (VM 1-n in 1411)."""
    source_series_uid: str | None = None
    """TID 1411 (121232, DCM, "Source series for segmentation")."""
    other_spatial_items: tuple[SpatialItem, ...] = ()
    """SCOORD / SCOORD3D items under the group that are not its ROI (e.g. Reference Points)."""
    measurements: tuple[Measurement, ...] = ()
    qualitative_evaluations: tuple[QualitativeEvaluation, ...] = ()
    observation_uid: str | None = None
    observation_datetime: str | None = None

    @property
    def finding_site(self) -> FindingSite | None:
        """The first finding site, or None (the single site older callers read)."""
        return self.finding_sites[0] if self.finding_sites else None


@dataclass(frozen=True, slots=True, kw_only=True)
class DerivedMeasurement:
    """TID 1420 under (126011, DCM, "Derived Imaging Measurements"): a NUM computed from the measurement
    groups that are its children."""

    measurement: Measurement
    groups: tuple[MeasurementGroup, ...] = ()
    """Groups written as children of the NUM (by value, as CONTAINS items)."""
    group_references: tuple[int, ...] = ()
    """Indices into `ReportSpec.groups` (under Imaging Measurements) the NUM is INFERRED FROM by reference
    (TID 1420 rows 2 / 3, R-INFERRED FROM TID 1410 XOR TID 1411 groups); Comprehensive SR only."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonObserver:
    """TID 1003 Person Observer Identifying Attributes."""

    name: str
    organization: str | None = None
    login_name: str | None = None
    """Row 1a: (128774, DCM, "Person Observer's Login Name")."""
    role_in_organization: Code | None = None
    """Row 3: (121010, DCM, "Person Observer's Role in the Organization"), CID 7452."""
    role_in_procedure: Code | None = None
    """Row 4: (121011, DCM, "Person Observer's Role in this Procedure"), CID 7453."""
    identifier_within_role: str | None = None
    """Row 5: (128775, DCM, "Identifier within Person Observer's Role"), a HAS CONCEPT MOD child of row 4
    (written only with `role_in_procedure`)."""


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
class UniqueDeviceIdentifier:
    """One (121000, DCM, "Unique Device Identifiers") CONTAINER of TID 1004 (rows 10-12)."""

    udi: str
    """(74711-3, LN, "Unique Device Identifier") TEXT."""
    description: str | None = None
    """(120999, DCM, "Device Description") TEXT."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceObserver:
    """TID 1004 Device Observer Identifying Attributes, written after (121005, DCM, "Observer Type") =
    (121007, DCM, "Device") (TID 1002)."""

    uid: str
    """Row 1: (121012, DCM, "Device Observer UID")."""
    name: str | None = None
    """Row 2: (121013, DCM, "Device Observer Name")."""
    manufacturer: str | None = None
    """Row 3: (121014, DCM, "Device Observer Manufacturer")."""
    model_name: str | None = None
    """Row 4: (121015, DCM, "Device Observer Model Name")."""
    serial_number: str | None = None
    """Row 5: (121016, DCM, "Device Observer Serial Number")."""
    physical_location: str | None = None
    """Row 6: (121017, DCM, "Device Observer Physical Location During Observation")."""
    roles: tuple[Code, ...] = ()
    """Row 7: (113876, DCM, "Device Role in Procedure") CODE, VM 1-n, CID 7445."""
    station_ae_title: str | None = None
    """Row 8: (110119, DCM, "Station AE Title")."""
    manufacturer_class_uids: tuple[str, ...] = ()
    """Row 9: (121061, DCM, "Device Observer Manufacturer Class UID") UIDREF, VM 1-n."""
    udis: tuple[UniqueDeviceIdentifier, ...] = ()
    """Rows 10-12: Unique Device Identifiers containers, VM 1-n."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSpec:
    """One TID 1500 Measurement Report, header and content."""

    patient: PatientSpec
    study: StudySpec
    equipment: EquipmentSpec
    instance: InstanceSpec
    language: Code | None = None
    """TID 1204 Language of Content Item and Descendants (121049); None leaves the row out."""
    language_country: Code | None = None
    """TID 1204 row 2: (121046, DCM, "Country of Language"), a child of the language item (CID 5001)."""
    procedures_reported: tuple[Code, ...] = ()
    """(121058, DCM, "Procedure reported"), VM 1-n; empty leaves the row out."""
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
    derived_measurements_algorithm: Algorithm | None = None
    """TID 1500 row 10b: TID 4019 directly under Derived Imaging Measurements (written with at least one
    derived measurement)."""
    qualitative_evaluations: tuple[QualitativeEvaluation, ...] = ()
    """Report-level evaluations, in a (C0034375, UMLS, "Qualitative Evaluations") container."""
    qualitative_evaluations_algorithm: Algorithm | None = None
    """TID 1500 row 12b: TID 4019 directly under Qualitative Evaluations (written with at least one
    evaluation)."""
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
        """Distinct referenced SOP instances (by SOP Instance UID), first appearance first: those of the
        reference items, then source images for segmentation and the images of other spatial items."""
        seen: dict[str, ReferencedInstance] = {}
        for reference in self.image_references():
            if reference.instance is not None:
                seen.setdefault(reference.instance.sop_instance_uid, reference.instance)
        for group in self.all_groups:
            for instance in group.source_images:
                seen.setdefault(instance.sop_instance_uid, instance)
            for item in group.other_spatial_items:
                if item.instance is not None:
                    seen.setdefault(item.instance.sop_instance_uid, item.instance)
        return tuple(seen.values())
