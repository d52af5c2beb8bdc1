"""TID 1500 "Measurement Report" as typed values: what the report says, independent of how it was encoded.

Built from the content tree by `tid1500.parse`; read by the FHIR builders and the row builder, which never
see the content tree. Treat them as immutable; only the small values used as keys (`Algorithm`,
`FindingSite`, observers) are frozen, because a frozen dataclass's `__init__` costs several times more and a
radiomics report builds thousands of measurements.
Names follow PS3.16 (TID 1500, 1410, 1411, 1501, 1420, 300, 4019, 1502).
Inherited context is resolved here, once: a measurement's `method`, `finding_sites` and `algorithm` are its
own or its group's, so that every consumer sees the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from ..content import Code
from ..document import SRDocument
from ..errors import MappingWarning
from ..numbers import measured_value


@dataclass(frozen=True, slots=True, kw_only=True)
class Algorithm:
    """TID 4019 Algorithm Identification."""

    name: str
    version: str | None = None
    family: Code | None = None
    parameters: tuple[str, ...] = ()
    manufacturer: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingSite:
    """Finding Site (SCT 363698007) with its Laterality and Topographical modifier, if any."""

    site: Code
    laterality: Code | None = None
    topographical_modifier: Code | None = None


@dataclass(slots=True, kw_only=True)
class ReferencedInstance:
    """A referenced SOP instance, with study and series looked up from the evidence sequences."""

    sop_class_uid: str
    sop_instance_uid: str
    series_instance_uid: str | None = None
    study_instance_uid: str | None = None
    frame_numbers: tuple[int, ...] = ()
    segment_numbers: tuple[int, ...] = ()


class ImageReferenceKind(StrEnum):
    """What a reference content item points at; one ImagingSelection profile each (NOTES §3.7)."""

    IMAGE_REGION_2D = "image-region-2d"
    IMAGE_REGION_3D = "image-region-3d"
    REFERENCED_SEGMENT = "referenced-segment"
    REFERENCED_SEGMENTATION_FRAME = "referenced-segmentation-frame"
    REGION_IN_SPACE = "region-in-space"
    VOLUME_SURFACE = "volume-surface"
    REAL_WORLD_VALUE_MAP = "real-world-value-map"
    ILLUSTRATION_OF_ROI = "illustration-of-roi"
    VISUAL_EXPLANATION = "visual-explanation"
    OTHER = "other"
    """An image reference no IG profile names (e.g. TID 320 "Source of Measurement", TID 1501 "Source")."""


SEGMENT_REFERENCE_KINDS = frozenset(
    {ImageReferenceKind.REFERENCED_SEGMENT, ImageReferenceKind.REFERENCED_SEGMENTATION_FRAME}
)
"""References whose `instance.subset` is Referenced Segment Numbers (0062,000B), as the IG maps both."""


class ImageReferencePurpose(StrEnum):
    """What an image reference of kind OTHER is for, when its concept name says so (PS3.16)."""

    SOURCE_IMAGE_FOR_SEGMENTATION = "source-image-for-segmentation"
    """(121233, DCM, "Source image for segmentation") of TID 1411: an image the group's segmentation was made
    from. STU1 gathers them into the group's source-image-for-segmentation selection."""


@dataclass(slots=True, kw_only=True)
class ImageReference:
    """An image region, segment, region in space, value map or image that a group or measurement uses."""

    kind: ImageReferenceKind
    position: tuple[int, ...]
    concept: Code | None
    instances: tuple[ReferencedInstance, ...] = ()
    graphic_type: str | None = None
    graphic_data: tuple[float, ...] = ()
    frame_of_reference_uid: str | None = None
    subset: tuple[str, ...] = ()
    """Region In Space: the ROI numbers named by its descriptor item."""
    purpose: ImageReferencePurpose | None = None


@dataclass(frozen=True, slots=True)
class ConceptModifier:
    """A HAS CONCEPT MOD CODE under a measurement that TID 300 leaves open ($ModType = $ModValue), e.g. a
    radiomics feature's "Image transformation" or a "Preprocessing operation"."""

    concept: Code
    value: Code


@dataclass(slots=True, kw_only=True)
class DerivationParameter:
    """An INFERRED FROM NUM under a measurement: a value it was derived from (e.g. a filter's sigma)."""

    concept: Code
    numeric_value: str | None
    unit: Code | None
    position: tuple[int, ...] = ()
    by_reference: bool = False
    """Named by reference (R-INFERRED FROM): the NUM at `position` is another item of the report, usually a
    measurement of the same group with an Observation of its own."""
    number: Decimal | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.number = measured_value(self.numeric_value)


@dataclass(slots=True, kw_only=True)
class Measurement:
    """TID 300 Measurement (a NUM), with its own context and what it inherits from its group."""

    position: tuple[int, ...]
    concept: Code
    numeric_value: str | None
    """Exactly as written in the SR; None when the SR has no value (see `value_absent_reason`)."""
    float_value: float | None
    unit: Code | None
    qualifier: Code | None
    observation_uid: str | None
    observation_datetime: str | None
    derivation: Code | None = None
    method: Code | None = None
    finding_sites: tuple[FindingSite, ...] = ()
    """Its own Finding Sites (TID 300 allows 1-n), else its group's; in document order."""
    algorithm: Algorithm | None = None
    own_algorithm: bool = False
    """Whether `algorithm` is the measurement's own TID 4019 (rather than inherited)."""
    image_references: tuple[ImageReference, ...] = ()
    """The measurement's own references (TID 320 INFERRED FROM); the group's are in its group."""
    concept_modifiers: tuple[ConceptModifier, ...] = ()
    derivation_parameters: tuple[DerivationParameter, ...] = ()
    number: Decimal | None = field(init=False, default=None)
    """`numeric_value` as the number FHIR and the tables both take (`numbers.measured_value`), or None."""

    def __post_init__(self) -> None:
        self.number = measured_value(self.numeric_value)

    @property
    def finding_site(self) -> FindingSite | None:
        """The first finding site in document order (the tables' scalar site columns)."""
        return self.finding_sites[0] if self.finding_sites else None

    @property
    def value(self) -> float | None:
        """The value as a float for tables; None when the FHIR value is absent too."""
        return None if self.number is None else float(self.number)


@dataclass(slots=True, kw_only=True)
class QualitativeEvaluation:
    """A CODE or TEXT qualitative evaluation, under a group or the report's container."""

    position: tuple[int, ...]
    concept: Code
    value_code: Code | None
    value_text: str | None
    observation_uid: str | None
    observation_datetime: str | None
    algorithm: Algorithm | None = None
    own_algorithm: bool = False
    concept_modifiers: tuple[ConceptModifier, ...] = ()
    """$QualModType = $QualModValue (HAS CONCEPT MOD CODE under the evaluation, 1-n)."""


@dataclass(slots=True, kw_only=True)
class MeasurementGroup:
    """TID 1410 (planar ROI), 1411 (volumetric ROI) or 1501 (measurement and qualitative evaluation group)."""

    position: tuple[int, ...]
    template_id: str | None
    observation_uid: str | None
    observation_datetime: str | None
    tracking_identifier: str | None = None
    tracking_uid: str | None = None
    activity_session: str | None = None
    time_point: str | None = None
    finding_category: Code | None = None
    finding: Code | None = None
    finding_sites: tuple[FindingSite, ...] = ()
    """Finding Sites (TID 1410/1411/1501 allow 1-n), in document order."""
    method: Code | None = None
    algorithm: Algorithm | None = None
    own_algorithm: bool = False
    image_references: tuple[ImageReference, ...] = ()
    source_series_uid: str | None = None
    measurements: tuple[Measurement, ...] = ()
    qualitative_evaluations: tuple[QualitativeEvaluation, ...] = ()
    index: int = 0
    """1-based position among the report's groups, in document order (derived-measurement groups last)."""
    other_spatial_items: tuple[ImageReference, ...] = ()
    """Spatial items under the group that are not its region (a viewer's "Reference Points" (122438), ...):
    each keeps its own concept, never promoted to the group's ROI."""

    @property
    def finding_site(self) -> FindingSite | None:
        """The first finding site in document order (the tables' scalar site columns)."""
        return self.finding_sites[0] if self.finding_sites else None


@dataclass(slots=True, kw_only=True)
class DerivedMeasurement:
    """TID 1420 under "Derived Imaging Measurements": a measurement computed from several groups."""

    measurement: Measurement
    groups: tuple[MeasurementGroup, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PersonObserver:
    """TID 1003 Person Observer Identifying Attributes."""

    name: str
    organization: str | None = None
    role: Code | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceObserver:
    """TID 1004 Device Observer Identifying Attributes."""

    uid: str | None = None
    name: str | None = None
    manufacturer: str | None = None
    model_name: str | None = None
    serial_number: str | None = None
    physical_location: str | None = None
    position: tuple[int, ...] = ()
    """Its Observer Type item's position (the first of its rows)."""


@dataclass(frozen=True, slots=True)
class UnmappedItem:
    """A content item that reaches neither FHIR nor the tables: its position and concept name's key."""

    position: tuple[int, ...]
    concept: tuple[str, str] | None
    relationship: str | None = None
    value_type: str | None = None


@dataclass(slots=True, kw_only=True)
class MeasurementReport:
    """One TID 1500 document."""

    document: SRDocument
    """Header values (patient, study, equipment, evidence). Consumers read its header fields only."""
    language: Code | None = None
    procedures_reported: tuple[Code, ...] = ()
    person_observers: tuple[PersonObserver, ...] = ()
    device_observers: tuple[DeviceObserver, ...] = ()
    groups: tuple[MeasurementGroup, ...] = ()
    derived_measurements: tuple[DerivedMeasurement, ...] = ()
    qualitative_evaluations: tuple[QualitativeEvaluation, ...] = ()
    """Report-level evaluations from the "Qualitative Evaluations" container (no group)."""
    warnings: tuple[MappingWarning, ...] = ()
    content_items: int = 0
    """Content items in the tree (by-reference items included)."""
    unmapped: tuple[UnmappedItem, ...] = ()
    """Content items that no output carries (`tid1500.parse` accounts for every item), in document order."""

    @property
    def all_groups(self) -> tuple[MeasurementGroup, ...]:
        """Every group once, in document order of first appearance: a derived measurement's groups are its own,
        or (by reference) groups of the Imaging Measurements container."""
        seen = {id(g) for g in self.groups}
        extra = []
        for derived in self.derived_measurements:
            for group in derived.groups:
                if id(group) not in seen:
                    seen.add(id(group))
                    extra.append(group)
        return self.groups + tuple(extra)
