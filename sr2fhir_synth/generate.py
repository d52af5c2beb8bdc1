"""`random_spec`: a varied, valid TID 1500 `ReportSpec` from a seed.

Everything derives from `random.Random(seed)` and UIDs from name-based UUIDs of (seed, label), so a seed
gives the same spec on every machine and run. The probabilities are chosen so that a few dozen seeds cover
every feature the mapping must handle (see `tests/test_synth_generator.py::test_seeds_cover_every_feature`).

`random_spec(seed, features=...)` adds opt-in `Feature`s on top (issue 16: content a mapping loses, and
reports without TID 1500's mandatory root rows). Each feature draws from its own generator after the report
is made, so a seed gives the same report with the feature's additions and nothing else changed; without
features the output is what it always was.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from enum import StrEnum
from typing import TypeVar

from . import catalog
from .spec import (
    Algorithm,
    Code,
    CodingScheme,
    DerivedMeasurement,
    DeviceObserver,
    EquipmentSpec,
    FindingSite,
    GroupTemplate,
    ImageReference,
    InstanceSpec,
    Issuer,
    Measurement,
    MeasurementGroup,
    Participant,
    PatientSpec,
    PersonObserver,
    QualitativeEvaluation,
    ReferencedInstance,
    ReferenceKind,
    ReportSpec,
    SpatialItem,
    SRStorage,
    StudySpec,
    UniqueDeviceIdentifier,
)
from .writer import count_content_items, count_group_items

_T = TypeVar("_T")
_UID_NAMESPACE = uuid.UUID("0b6e5a3c-57f1-5d0e-8c8e-2f6f3f9d4a21")


def uid_for(*labels: object) -> str:
    """A DICOM UID from a name: "2.25." and the decimal of a version 5 UUID (PS3.5 B.2), at most 44 chars."""
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, '/'.join(map(str, labels))).int}"


CHARACTER_SETS: tuple[str | None, ...] = (None, "ISO_IR 100", "ISO_IR 192")
TIMEZONE_OFFSETS = ("+0000", "+0100", "-0500", "+0530", "+0900")
ALGORITHMS = (
    ("LesionSeg", ("1.0.0", "2.3.1")),
    ("pylidc", ("0.2.0",)),
    ("RadiomicsExtractor", ("3.0.1", "3.1.0")),
    ("SUVPeak", ("0.9",)),
)
MANUFACTURERS = (
    ("Synthetic Imaging Co.", "SynthWorkstation"),
    ("sr2fhir", "synth"),
    ("Example Vendor", None),
)

_REPORT_STORAGE_WEIGHTS = (
    (SRStorage.COMPREHENSIVE_3D_SR, 5),
    (SRStorage.COMPREHENSIVE_SR, 3),
    (SRStorage.ENHANCED_SR, 2),
)

_PRIMARY_REFERENCES: dict[GroupTemplate, tuple[ReferenceKind, ...]] = {
    GroupTemplate.PLANAR_ROI: (
        ReferenceKind.IMAGE_REGION_2D,
        ReferenceKind.IMAGE_REGION_3D,
        ReferenceKind.REFERENCED_SEGMENTATION_FRAME,
        ReferenceKind.REGION_IN_SPACE,
    ),
    GroupTemplate.VOLUMETRIC_ROI: (
        ReferenceKind.IMAGE_REGION_2D,
        ReferenceKind.IMAGE_REGION_3D,
        ReferenceKind.REFERENCED_SEGMENT,
        ReferenceKind.VOLUME_SURFACE,
        ReferenceKind.REGION_IN_SPACE,
    ),
    GroupTemplate.MEASUREMENT_GROUP: (),
}
"""TID 1410 names one ROI (a region, a segmentation frame or a region in space); TID 1411 a set of regions,
a segment, a volume surface or a region in space; TID 1501 none. 3D regions in both (IG notes §3.7)."""
_OPTIONAL_REFERENCES = (
    ReferenceKind.REAL_WORLD_VALUE_MAP,
    ReferenceKind.ILLUSTRATION_OF_ROI,
    ReferenceKind.VISUAL_EXPLANATION,
)
_THREE_D = frozenset({ReferenceKind.IMAGE_REGION_3D, ReferenceKind.VOLUME_SURFACE})
_OBJECT_CLASSES: dict[ReferenceKind, str] = {
    ReferenceKind.REFERENCED_SEGMENT: catalog.SEGMENTATION,
    ReferenceKind.REFERENCED_SEGMENTATION_FRAME: catalog.SEGMENTATION,
    ReferenceKind.REGION_IN_SPACE: catalog.RT_STRUCTURE_SET,
    ReferenceKind.REAL_WORLD_VALUE_MAP: catalog.REAL_WORLD_VALUE_MAPPING,
    ReferenceKind.ILLUSTRATION_OF_ROI: catalog.SECONDARY_CAPTURE,
    ReferenceKind.VISUAL_EXPLANATION: catalog.MULTIFRAME_TRUE_COLOR_SC,
}
"""SOP class of the object each IMAGE / COMPOSITE reference kind points at (one object per report)."""


class Feature(StrEnum):
    """Opt-in cases of `random_spec(features=...)`. The first six add content a faithful mapping must
    keep; the `OMIT_*` ones leave out a row TID 1500 requires, so that non-conformance warnings can be
    tested (they win over `DEVICE_OBSERVERS`)."""

    FINDING_SITES = "finding-sites"
    """Several Finding Sites per group (always in the first group) and per measurement, each with its own
    Laterality / Topographical modifier children; sometimes the same site with two lateralities."""
    DEVICE_OBSERVERS = "device-observers"
    """One or two TID 1004 device observers (replacing the report's) with every row filled (roles,
    manufacturer class UIDs and UDI containers once or twice), after the report's person observers (TID
    1003); a report without one gets a person observer 60% of the time."""
    SEGMENT_NUMBERS = "segment-numbers"
    """Referenced Segment items name 2-3 segments (Referenced Segment Number VM > 1) most of the time;
    Referenced Segmentation Frame items always name frames and sometimes two segments."""
    OTHER_SPATIAL_ITEMS = "other-spatial-items"
    """(122438, DCM, "Reference Points") SCOORD (POINT / MULTIPOINT, own SELECTED FROM IMAGE) or SCOORD3D
    under groups (always the first) as HAS PROPERTIES or, as some viewers write it although the SR IOD's
    relationship constraints (PS3.3 Table A.35.3-2) do not allow a SCOORD there, HAS CONCEPT MOD: spatial
    items that are not the group's ROI."""
    FLOAT32_COORDINATES = "float32-coordinates"
    """Every Graphic Data value is a short decimal float32 cannot hold (e.g. 83.58): the spec keeps the
    decimal; a reader writing the float32's double expansion (83.58000183105469) differs from it."""
    MISSPELLED_UNITS = "misspelled-units"
    """Hounsfield units written as hnsf'U under UCUM (adds an HU measurement if the report has none)."""
    OMIT_LANGUAGE = "omit-language"
    """No (121049, DCM, "Language of Content Item and Descendants") row."""
    OMIT_OBSERVER_CONTEXT = "omit-observer-context"
    """No observer context (TID 1001 / 1002): no person and no device observer."""
    OMIT_PROCEDURE_REPORTED = "omit-procedure-reported"
    """No (121058, DCM, "Procedure reported") row."""


FIDELITY_FEATURES = frozenset(
    {
        Feature.FINDING_SITES,
        Feature.DEVICE_OBSERVERS,
        Feature.SEGMENT_NUMBERS,
        Feature.OTHER_SPATIAL_ITEMS,
        Feature.FLOAT32_COORDINATES,
        Feature.MISSPELLED_UNITS,
    }
)
"""The content features (issue 16)."""
ROOT_OMISSIONS = frozenset({Feature.OMIT_LANGUAGE, Feature.OMIT_OBSERVER_CONTEXT, Feature.OMIT_PROCEDURE_REPORTED})
"""The features that leave out TID 1500's mandatory root rows."""


def random_spec(
    seed: int,
    target_items: int | None = None,
    *,
    patient: PatientSpec | None = None,
    study: StudySpec | None = None,
    participants: bool = False,
    features: Iterable[Feature | str] = (),
) -> ReportSpec:
    """A random valid report. With `target_items`, one whose content-item count (`count_content_items`)
    equals it (for any target from about 10 up; tiny targets give the smallest report this can make).
    `patient` and `study` let several reports share a patient and a study. `participants` adds a
    Participant Sequence (a person and a device); it draws from its own generator, so the rest of the report
    is the same as without it. `features` adds opt-in `Feature`s (e.g. `FIDELITY_FEATURES`), each from its
    own generator too; features that add items make a sized report larger than `target_items`."""
    spec = _Generator(seed, patient, study).report(target_items)
    if participants:
        spec = dataclasses.replace(spec, participants=_participants(seed, spec))
    wanted = {Feature(f) for f in features}
    for feature, apply in _FEATURES.items():  # in this order: spatial items before float32 coordinates
        if feature in wanted:
            spec = apply(spec, random.Random(f"{feature.value}-{seed}"), seed)
    return spec


def _participants(seed: int, spec: ReportSpec) -> tuple[Participant, ...]:
    """A data enterer (PSN) and a source device (DEV) other than the General Equipment."""
    rng = random.Random(f"participants-{seed}")
    charset = spec.instance.specific_character_set
    when = spec.instance.content_date + spec.instance.content_time
    observers = {o.name for o in spec.person_observers}
    person = Participant(
        participation_type="ENT",
        observer_type="PSN",
        datetime=when,
        # not a Person Observer: that one would be the same Practitioner (docs/mapping-decisions.md §14)
        person_name=rng.choice([n for n in catalog.PERSON_NAMES[charset] if n not in observers]),
        organization=rng.choice(catalog.ORGANIZATIONS[charset]) if rng.random() < 0.5 else None,
    )
    device = Participant(
        participation_type="SRC",
        observer_type="DEV",
        datetime=when,
        device_uid=uid_for(seed, "participant-device"),
        manufacturer="Synthetic Modality Co",
        model_name=rng.choice(("SynthScan 1", "SynthScan 2")),
    )
    return (person, device)


class _Generator:
    def __init__(self, seed: int, patient: PatientSpec | None, study: StudySpec | None) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self._labels = 0
        rng = self.rng
        self.storage = _weighted(rng, _REPORT_STORAGE_WEIGHTS)
        self.charset = rng.choice(CHARACTER_SETS)
        if patient is not None and not _is_ascii(patient):
            self.charset = "ISO_IR 192"  # a shared patient's name must fit this report's character set
        self.allow_3d = self.storage is SRStorage.COMPREHENSIVE_3D_SR
        self.allow_by_reference = self.storage is not SRStorage.ENHANCED_SR
        self.patient = patient or self._patient()
        self.study = study or self._study()
        self.day = date.fromisoformat(_iso(self.study.study_date)) + timedelta(days=rng.randint(0, 3))
        self.timezone = rng.choice(TIMEZONE_OFFSETS) if rng.random() < 0.5 else None
        self._objects: dict[str, ReferencedInstance] = {}
        self._frame_of_reference: str | None = None
        self._source_series = self._source_images()
        self._lesions = 0

    # --- helpers ------------------------------------------------------------------------------------------

    def uid(self, kind: str) -> str:
        self._labels += 1
        return uid_for(self.seed, kind, self._labels)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def text(self) -> str:
        return self.rng.choice(catalog.TEXTS[self.charset])

    def datetime(self) -> str:
        """An Observation DateTime (DT) on the content day, sometimes with a fraction and an offset."""
        rng = self.rng
        value = f"{self.day:%Y%m%d}{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
        if self.chance(0.3):
            value += "." + str(rng.randint(0, 999999)).zfill(6)[: rng.randint(1, 6)]
        if self.chance(0.4):
            value += rng.choice(TIMEZONE_OFFSETS)
        return value

    def observation_uid(self, probability: float = 0.5) -> str | None:
        return self.uid("observation") if self.chance(probability) else None

    def observation_datetime(self, probability: float = 0.3) -> str | None:
        return self.datetime() if self.chance(probability) else None

    def decimal_string(self, low: float, high: float) -> str:
        """A DS value (at most 16 characters) in one of the forms producers write."""
        rng = self.rng
        value = rng.uniform(low, high)
        style = rng.randrange(6)
        if style == 0:
            return str(round(value))
        if style == 1:
            return f"{value:.{rng.randint(1, 4)}f}"  # keeps trailing zeros, e.g. "12.50"
        if style == 2:
            return f"{value:.3E}"
        if style == 3:
            return f"{'+' if value >= 0 else ''}{value:.2f}"
        if style == 4:
            return f"{value:.10g}"[:16].rstrip(".")
        return f"{value:.2f}0"

    # --- header -----------------------------------------------------------------------------------------

    def _patient(self) -> PatientSpec:
        rng = self.rng
        issuer = None
        if self.chance(0.7):
            if self.chance(0.5):
                issuer = Issuer(
                    local_namespace="SYNTH-MRN",
                    universal_id="https://synthetic.example.org/mrn",
                    universal_id_type="URI",
                )
            else:
                issuer = Issuer(
                    local_namespace="SYNTH HOSPITAL",
                    universal_id=uid_for("issuer", "mrn"),
                    universal_id_type="ISO",
                )
        birth = date(1930, 1, 1) + timedelta(days=rng.randrange(365 * 70))
        return PatientSpec(
            patient_id=f"SYN{rng.randrange(10**6):06d}",
            issuer=issuer,
            name=rng.choice(catalog.PERSON_NAMES[self.charset]),
            birth_date=f"{birth:%Y%m%d}",
            sex=rng.choice("MFO"),
        )

    def _study(self) -> StudySpec:
        rng = self.rng
        day = date(2005, 1, 1) + timedelta(days=rng.randrange(7000))
        accession_issuer = None
        if self.chance(0.5):
            accession_issuer = Issuer(
                local_namespace="SYNTH RIS",
                universal_id="https://synthetic.example.org/accession",
                universal_id_type="URI",
            )
        return StudySpec(
            study_instance_uid=self.uid("study"),
            study_date=f"{day:%Y%m%d}",
            study_time=f"{rng.randint(7, 19):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}",
            study_id=str(rng.randint(1, 9999)),
            accession_number=f"A{rng.randrange(10**7):07d}" if self.chance(0.85) else None,
            accession_issuer=accession_issuer,
            description=rng.choice(("CT CHEST", "PET-CT WHOLE BODY", "MR BRAIN")) if self.chance(0.5) else None,
            referring_physician_name=rng.choice(catalog.PERSON_NAMES[None]) if self.chance(0.4) else "",
        )

    def _equipment(self) -> EquipmentSpec:
        rng = self.rng
        manufacturer, model = rng.choice(MANUFACTURERS)
        versions = rng.choice(((), ("1.4.2",), ("2.0", "build 117")))
        return EquipmentSpec(
            manufacturer=manufacturer,
            model_name=model,
            device_uid=self.uid("device") if self.chance(0.6) else None,
            serial_number=f"SN{rng.randrange(10**5):05d}" if self.chance(0.5) else None,
            software_versions=versions,
            institution_name=rng.choice(catalog.ORGANIZATIONS[self.charset]) if self.chance(0.5) else None,
        )

    def _instance(self) -> InstanceSpec:
        rng = self.rng
        return InstanceSpec(
            sop_class=self.storage,
            sop_instance_uid=self.uid("sr-instance"),
            series_instance_uid=self.uid("sr-series"),
            series_number=rng.randint(1, 999),
            instance_number=rng.randint(1, 9),
            series_description="Measurement Report" if self.chance(0.5) else None,
            content_date=f"{self.day:%Y%m%d}",
            content_time=f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}",
            timezone_offset=self.timezone,
            preliminary_flag=_weighted(rng, ((None, 4), ("FINAL", 4), ("PRELIMINARY", 2))),
            completion_flag=rng.choice(("COMPLETE", "PARTIAL")),
            specific_character_set=self.charset,
        )

    # --- referenced objects -------------------------------------------------------------------------------

    def _source_images(self) -> tuple[ReferencedInstance, ...]:
        """The image series regions are drawn on; sometimes of a prior study (Pertinent Other Evidence)."""
        rng = self.rng
        sop_class = rng.choice(catalog.SOURCE_IMAGE_CLASSES)
        study_uid = self.study.study_instance_uid if self.chance(0.85) else self.uid("prior-study")
        series_uid = self.uid("image-series")
        count = 1 if sop_class in catalog.MULTIFRAME_IMAGE_CLASSES else rng.randint(1, 6)
        return tuple(
            ReferencedInstance(
                sop_class_uid=sop_class,
                sop_instance_uid=self.uid("image"),
                series_instance_uid=series_uid,
                study_instance_uid=study_uid,
            )
            for _ in range(count)
        )

    def source_image(self) -> ReferencedInstance:
        image = self.rng.choice(self._source_series)
        if image.sop_class_uid in catalog.MULTIFRAME_IMAGE_CLASSES:
            return dataclasses.replace(image, frame_numbers=(self.rng.randint(1, 120),))
        return image

    def referenced_object(self, sop_class: str) -> ReferencedInstance:
        """One SEG, RWVM, RTSTRUCT, ... per report, each in its own series of the report's study."""
        if sop_class not in self._objects:
            self._objects[sop_class] = ReferencedInstance(
                sop_class_uid=sop_class,
                sop_instance_uid=self.uid("object"),
                series_instance_uid=self.uid("object-series"),
                study_instance_uid=self.study.study_instance_uid,
            )
        return self._objects[sop_class]

    def frame_of_reference(self) -> str:
        """One patient coordinate system per report, that of the source images."""
        if self._frame_of_reference is None:
            self._frame_of_reference = self.uid("frame-of-reference")
        return self._frame_of_reference

    def graphic_2d(self, graphic_type: str) -> tuple[float, ...]:
        """Pixel (column, row) pairs in quarter pixels, exact in the FL (float32) of Graphic Data."""
        rng = self.rng

        def point() -> tuple[float, float]:
            return rng.randint(0, 2047) / 4, rng.randint(0, 2047) / 4

        if graphic_type == "POINT":
            return point()
        if graphic_type == "MULTIPOINT":
            return tuple(v for _ in range(rng.randint(2, 5)) for v in point())
        if graphic_type == "POLYLINE":
            points = [point() for _ in range(rng.randint(3, 7))]
            return tuple(v for p in [*points, points[0]] for v in p)  # closed: last point is the first
        (cx, cy), r = point(), rng.randint(4, 200) / 4
        if graphic_type == "CIRCLE":
            return (cx, cy, cx + r, cy)
        return (cx - r, cy, cx + r, cy, cx, cy - r / 2, cx, cy + r / 2)  # ELLIPSE: major then minor axis

    def graphic_3d(self, graphic_type: str) -> tuple[float, ...]:
        """Patient (x, y, z) coordinates in half millimetres."""
        rng = self.rng

        def point() -> tuple[float, float, float]:
            return rng.randint(-600, 600) / 2, rng.randint(-600, 600) / 2, rng.randint(-1200, 400) / 2

        counts = {
            "POINT": 1,
            "MULTIPOINT": rng.randint(2, 4),
            "POLYLINE": rng.randint(2, 5),
            "ELLIPSE": 4,  # major axis end points, then minor axis end points
            "ELLIPSOID": 6,  # three axes
        }
        if graphic_type == "POLYGON":
            points = [point() for _ in range(rng.randint(3, 6))]
            return tuple(v for p in [*points, points[0]] for v in p)
        return tuple(v for _ in range(counts[graphic_type]) for v in point())

    def reference(self, kind: ReferenceKind) -> ImageReference:
        rng = self.rng
        observation_uid = self.observation_uid(0.3)
        if kind is ReferenceKind.IMAGE_REGION_2D:
            graphic_type = rng.choice(catalog.GRAPHIC_TYPES_2D)
            return ImageReference(
                kind=kind,
                instance=self.source_image(),
                graphic_type=graphic_type,
                graphic_data=self.graphic_2d(graphic_type),
                observation_uid=observation_uid,
            )
        if kind in _THREE_D:
            graphic_type = (
                rng.choice(("ELLIPSOID", "POLYGON"))
                if kind is ReferenceKind.VOLUME_SURFACE
                else rng.choice(catalog.GRAPHIC_TYPES_3D)
            )
            return ImageReference(
                kind=kind,
                graphic_type=graphic_type,
                graphic_data=self.graphic_3d(graphic_type),
                frame_of_reference_uid=self.frame_of_reference(),
                observation_uid=observation_uid,
            )
        if kind is ReferenceKind.SOURCE_OF_MEASUREMENT:
            return ImageReference(kind=kind, instance=self.source_image(), observation_uid=observation_uid)
        instance = self.referenced_object(_OBJECT_CLASSES[kind])
        roi_numbers: tuple[str, ...] = ()
        if kind is ReferenceKind.REFERENCED_SEGMENT:
            instance = dataclasses.replace(instance, segment_numbers=(rng.randint(1, 12),))
        elif kind is ReferenceKind.REFERENCED_SEGMENTATION_FRAME:
            frames = (rng.randint(1, 300),) if self.chance(0.7) else ()
            instance = dataclasses.replace(instance, frame_numbers=frames, segment_numbers=(rng.randint(1, 12),))
        elif kind is ReferenceKind.VISUAL_EXPLANATION and self.chance(0.5):
            instance = dataclasses.replace(instance, frame_numbers=tuple(sorted(rng.sample(range(1, 40), 2))))
        elif kind is ReferenceKind.REGION_IN_SPACE:
            roi_numbers = tuple(str(n) for n in sorted(rng.sample(range(1, 30), rng.randint(1, 2))))
        return ImageReference(kind=kind, instance=instance, roi_numbers=roi_numbers, observation_uid=observation_uid)

    # --- content ----------------------------------------------------------------------------------------

    def code(self, codes: tuple[Code, ...]) -> Code:
        return self.rng.choice(codes)

    def algorithm(self, probability: float) -> Algorithm | None:
        if not self.chance(probability):
            return None
        name, versions = self.rng.choice(ALGORITHMS)
        parameters = ("threshold=0.5",) if self.chance(0.3) else ()
        return Algorithm(name=name, version=self.rng.choice(versions), parameters=parameters)

    def finding_site(self, probability: float) -> FindingSite | None:
        if not self.chance(probability):
            return None
        return FindingSite(
            site=self.code(catalog.FINDING_SITES),
            laterality=self.code(catalog.LATERALITIES) if self.chance(0.5) else None,
            topographical_modifier=self.code(catalog.TOPOGRAPHICAL_MODIFIERS) if self.chance(0.3) else None,
        )

    def measurement(self, references: int, kinds: tuple[catalog.MeasurementKind, ...]) -> Measurement:
        rng = self.rng
        kind = rng.choice(kinds)
        value: str | None = self.decimal_string(kind.low, kind.high)
        unit: Code | None = rng.choice(kind.units)
        qualifier = None
        roll = rng.random()
        if roll < 0.07:
            value, unit, qualifier = None, None, self.code(catalog.NUMERIC_VALUE_QUALIFIERS)
        elif roll < 0.11:
            value, unit = None, None  # Measured Value Sequence empty and no qualifier
        own_references: list[ImageReference] = []
        if self.chance(0.2):
            choices = [ReferenceKind.IMAGE_REGION_2D, ReferenceKind.SOURCE_OF_MEASUREMENT]
            if self.allow_3d:
                choices.append(ReferenceKind.IMAGE_REGION_3D)
            own_references.append(self.reference(rng.choice(choices)))
        group_references: tuple[int, ...] = ()
        if references and self.allow_by_reference and self.chance(0.3):
            group_references = (rng.randrange(references),)
        return Measurement(
            concept=kind.concept,
            value=value,
            unit=unit,
            qualifier=qualifier,
            derivation=self.code(catalog.DERIVATIONS) if self.chance(0.25) else None,
            method=self.code(catalog.MEASUREMENT_METHODS) if self.chance(0.15) else None,
            finding_sites=_optional(self.finding_site(0.15)),
            algorithm=self.algorithm(0.2),
            image_references=tuple(own_references),
            group_references=group_references,
            observation_uid=self.observation_uid(),
            observation_datetime=self.observation_datetime(),
        )

    def bare_measurement(self) -> Measurement:
        """A NUM with a value and no children: exactly one content item (fills sized reports)."""
        kind = self.rng.choice(catalog.MEASUREMENT_KINDS)
        return Measurement(
            concept=kind.concept,
            value=self.decimal_string(kind.low, kind.high),
            unit=self.rng.choice(kind.units),
        )

    def evaluation(self, algorithm_probability: float = 0.1) -> QualitativeEvaluation:
        rng = self.rng
        # Drawn before the value, in this order, so that a seed keeps giving the same report.
        algorithm = self.algorithm(algorithm_probability)
        observation_uid = self.observation_uid(0.4)
        observation_datetime = self.observation_datetime(0.2)
        if self.chance(0.6):
            concept, values = rng.choice(catalog.CODE_EVALUATIONS)
            value_code, value_text = rng.choice(values), None
        else:
            concept, value_code, value_text = self.code(catalog.TEXT_EVALUATIONS), None, self.text()
        return QualitativeEvaluation(
            concept=concept,
            value_code=value_code,
            value_text=value_text,
            algorithm=algorithm,
            observation_uid=observation_uid,
            observation_datetime=observation_datetime,
        )

    def group(self, max_measurements: int = 5) -> MeasurementGroup:
        rng = self.rng
        template = rng.choice(tuple(GroupTemplate))
        references: list[ImageReference] = []
        primary = [k for k in _PRIMARY_REFERENCES[template] if self.allow_3d or k not in _THREE_D]
        source_series = None
        if primary:
            kind = rng.choice(primary)
            repeat = (
                rng.randint(2, 3)
                if template is GroupTemplate.VOLUMETRIC_ROI and kind is ReferenceKind.IMAGE_REGION_2D
                else 1
            )
            references += [self.reference(kind) for _ in range(repeat)]
            if kind is ReferenceKind.REFERENCED_SEGMENT:
                source_series = self._source_series[0].series_instance_uid
        references += [self.reference(k) for k in _OPTIONAL_REFERENCES if self.chance(0.2)]
        self._lesions += 1
        word = rng.choice(catalog.LESION_WORDS[self.charset])
        return MeasurementGroup(
            template=template,
            tracking_identifier=f"{word} {self._lesions}" if self.chance(0.85) else None,
            tracking_uid=self.uid("tracking") if self.chance(0.8) else None,
            activity_session="1" if self.chance(0.15) else None,
            time_point=rng.choice(("baseline", "follow-up 1")) if self.chance(0.2) else None,
            finding_category=self.code(catalog.FINDING_CATEGORIES) if self.chance(0.7) else None,
            finding=self.code(catalog.FINDINGS) if self.chance(0.8) else None,
            finding_sites=_optional(self.finding_site(0.75)),
            method=self.code(catalog.MEASUREMENT_METHODS) if self.chance(0.4) else None,
            algorithm=self.algorithm(0.4),
            image_references=tuple(references),
            source_series_uid=source_series,
            measurements=tuple(
                self.measurement(len(references), catalog.MEASUREMENT_KINDS)
                for _ in range(rng.randint(1, max_measurements))
            ),
            qualitative_evaluations=tuple(self.evaluation() for _ in range(rng.randint(0, 3))),
            observation_uid=self.observation_uid(0.6),
            observation_datetime=self.observation_datetime(0.3),
        )

    def derived(self) -> DerivedMeasurement:
        measurement = self.measurement(0, catalog.DERIVED_MEASUREMENT_KINDS)
        measurement = dataclasses.replace(
            measurement, finding_sites=(), method=None, image_references=(), algorithm=self.algorithm(0.5)
        )
        return DerivedMeasurement(
            measurement=measurement,
            groups=tuple(self.group(max_measurements=3) for _ in range(self.rng.randint(1, 2))),
        )

    # --- the report ------------------------------------------------------------------------------------

    def report(self, target_items: int | None) -> ReportSpec:
        rng = self.rng
        small = target_items is not None and target_items < 60
        persons: tuple[PersonObserver, ...] = ()
        if not small and self.chance(0.75):
            names = rng.sample(catalog.PERSON_NAMES[self.charset], 2 if self.chance(0.2) else 1)
            persons = tuple(
                PersonObserver(
                    name=name,
                    organization=rng.choice(catalog.ORGANIZATIONS[self.charset]) if self.chance(0.4) else None,
                )
                for name in names
            )
        devices: tuple[DeviceObserver, ...] = ()
        if not small and self.chance(0.2):
            devices = (DeviceObserver(uid=self.uid("device-observer"), name="SynthCAD" if self.chance(0.5) else None),)
        spec = ReportSpec(
            patient=self.patient,
            study=self.study,
            equipment=self._equipment(),
            instance=self._instance(),
            language=self.code(catalog.LANGUAGES) if self.chance(0.6) else None,
            procedures_reported=(self.code(catalog.PROCEDURES),) if not small and self.chance(0.6) else (),
            person_observers=persons,
            device_observers=devices,
            image_library=target_items is None and self.chance(0.3),
            measurements_algorithm=self.algorithm(0.2),
            derived_measurements=(
                tuple(self.derived() for _ in range(rng.randint(1, 2))) if not small and self.chance(0.3) else ()
            ),
            qualitative_evaluations=(
                tuple(self.evaluation(0.3) for _ in range(rng.randint(1, 3))) if not small and self.chance(0.4) else ()
            ),
            legacy_snomed=self.chance(0.25),
        )
        if target_items is None:
            groups = tuple(self.group() for _ in range(rng.randint(1, 4)))
        else:
            groups = self._sized_groups(spec, target_items)
        spec = dataclasses.replace(spec, groups=groups)
        return dataclasses.replace(spec, coding_schemes=_declared_schemes(spec))

    def _sized_groups(self, spec: ReportSpec, target: int) -> tuple[MeasurementGroup, ...]:
        """Groups that bring the report to `target` content items: random groups while they fit, then
        bare NUMs (one item each) in the last group to land exactly."""
        placeholder = dataclasses.replace(spec, groups=(MeasurementGroup(template=GroupTemplate.MEASUREMENT_GROUP),))
        remaining = target - count_content_items(placeholder)  # the empty group counts as the first group
        max_measurements = max(5, min(200, target // 40))
        groups: list[MeasurementGroup] = []
        while remaining > 0:
            group = self.group(max_measurements)
            size = count_group_items(group)
            budget = remaining + (1 if not groups else 0)  # the first group replaces the placeholder
            while size > budget and group.measurements:
                group = dataclasses.replace(group, measurements=group.measurements[:-1])
                size = count_group_items(group)
            if size > budget or not group.measurements:
                break
            groups.append(group)
            remaining = budget - size
        if not groups:
            groups.append(MeasurementGroup(template=GroupTemplate.MEASUREMENT_GROUP))
            remaining = max(1, target - count_content_items(dataclasses.replace(spec, groups=tuple(groups))))
        if remaining > 0:
            last = groups[-1]
            fillers = tuple(self.bare_measurement() for _ in range(remaining))
            groups[-1] = dataclasses.replace(last, measurements=last.measurements + fillers)
        return tuple(groups)


# --- Opt-in features -----------------------------------------------------------------------------------------


def _map_groups(spec: ReportSpec, change: Callable[[MeasurementGroup], MeasurementGroup]) -> ReportSpec:
    """The report with every group changed, in document order (under Imaging Measurements first, then
    under derived measurements)."""
    groups = tuple(change(g) for g in spec.groups)
    derived = tuple(
        dataclasses.replace(d, groups=tuple(change(g) for g in d.groups)) for d in spec.derived_measurements
    )
    return dataclasses.replace(spec, groups=groups, derived_measurements=derived)


def _map_references(spec: ReportSpec, change: Callable[[ImageReference], ImageReference]) -> ReportSpec:
    """The report with every reference item (of groups, their measurements and derived NUMs) changed."""

    def measurement(m: Measurement) -> Measurement:
        return dataclasses.replace(m, image_references=tuple(change(r) for r in m.image_references))

    def group(g: MeasurementGroup) -> MeasurementGroup:
        return dataclasses.replace(
            g,
            image_references=tuple(change(r) for r in g.image_references),
            measurements=tuple(measurement(m) for m in g.measurements),
        )

    spec = _map_groups(spec, group)
    derived = tuple(dataclasses.replace(d, measurement=measurement(d.measurement)) for d in spec.derived_measurements)
    return dataclasses.replace(spec, derived_measurements=derived)


def _extra_site(rng: random.Random, first: FindingSite | None) -> FindingSite:
    """Another finding site; sometimes the first one's site with the other laterality (left and right lung)."""
    if first is not None and rng.random() < 0.3:
        laterality = catalog.LEFT if first.laterality == catalog.RIGHT else catalog.RIGHT
        return FindingSite(site=first.site, laterality=laterality)
    sites = [c for c in catalog.FINDING_SITES if first is None or c != first.site]
    return FindingSite(
        site=rng.choice(sites),
        laterality=rng.choice(catalog.LATERALITIES) if rng.random() < 0.7 else None,
        topographical_modifier=rng.choice(catalog.TOPOGRAPHICAL_MODIFIERS) if rng.random() < 0.5 else None,
    )


def _several_sites(rng: random.Random, sites: tuple[FindingSite, ...], count: int) -> tuple[FindingSite, ...]:
    first = sites[0] if sites else FindingSite(site=rng.choice(catalog.FINDING_SITES), laterality=catalog.LEFT)
    out = [first, *sites[1:]]
    while len(out) < count:
        out.append(_extra_site(rng, first))
    return tuple(out)


def _feature_finding_sites(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    index = 0

    def group(g: MeasurementGroup) -> MeasurementGroup:
        nonlocal index
        index += 1
        sites = g.finding_sites
        if index == 1 or rng.random() < 0.6:
            sites = _several_sites(rng, sites, rng.randint(2, 3))
        measurements = tuple(
            dataclasses.replace(m, finding_sites=_several_sites(rng, m.finding_sites, 2)) if rng.random() < 0.3 else m
            for m in g.measurements
        )
        return dataclasses.replace(g, finding_sites=sites, measurements=measurements)

    return _map_groups(spec, group)


def device_observer(rng: random.Random, uid: str, number: int) -> DeviceObserver:
    """A TID 1004 device observer with every row filled (VM 1-n rows once or twice)."""
    roles = rng.sample(catalog.DEVICE_ROLES, rng.randint(1, 2))
    return DeviceObserver(
        uid=uid,
        name=f"SynthCAD-{number}",
        manufacturer=rng.choice(("Synthetic Imaging Co.", "Example AI Inc.")),
        model_name=rng.choice(("LesionFinder", "NoduleNet")),
        serial_number=f"DEV{rng.randrange(10**6):06d}",
        physical_location=rng.choice(("Reading room 2", "Data center B")),
        roles=tuple(roles),
        station_ae_title=f"SYNTHCAD{number}",
        manufacturer_class_uids=tuple(uid_for(uid, "class", n) for n in range(rng.randint(1, 2))),
        udis=tuple(
            UniqueDeviceIdentifier(udi=f"(01)0088458800{rng.randrange(10**4):04d}(21)SN{n}", description=f"Module {n}")
            for n in range(rng.randint(1, 2))
        ),
    )


def _feature_device_observers(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    devices = tuple(
        device_observer(rng, uid_for(seed, "feature-device-observer", n), n + 1) for n in range(rng.randint(1, 2))
    )
    persons = spec.person_observers
    if not persons and rng.random() < 0.6:
        name = rng.choice(catalog.PERSON_NAMES[spec.instance.specific_character_set])
        persons = (PersonObserver(name=name),)
    return dataclasses.replace(spec, person_observers=persons, device_observers=devices)


def _feature_segment_numbers(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    def change(reference: ImageReference) -> ImageReference:
        instance = reference.instance
        if instance is None:
            return reference
        if reference.kind is ReferenceKind.REFERENCED_SEGMENT and rng.random() < 0.75:
            segments = tuple(sorted(rng.sample(range(1, 13), rng.randint(2, 3))))
            instance = dataclasses.replace(instance, segment_numbers=segments)
        elif reference.kind is ReferenceKind.REFERENCED_SEGMENTATION_FRAME:
            frames = tuple(sorted(rng.sample(range(1, 301), rng.randint(1, 3))))
            segments = tuple(sorted(rng.sample(range(1, 13), 2 if rng.random() < 0.5 else 1)))
            instance = dataclasses.replace(instance, frame_numbers=frames, segment_numbers=segments)
        return dataclasses.replace(reference, instance=instance)

    return _map_references(spec, change)


def _feature_other_spatial_items(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    images = [i for i in spec.referenced_instances() if i.sop_class_uid in catalog.SOURCE_IMAGE_CLASSES]
    frames = [r.frame_of_reference_uid for r in spec.image_references() if r.frame_of_reference_uid]
    allow_3d = spec.instance.sop_class is SRStorage.COMPREHENSIVE_3D_SR
    index = 0

    def image() -> ReferencedInstance:
        if images:
            return rng.choice(images)
        images.append(
            ReferencedInstance(
                sop_class_uid=catalog.CT_IMAGE,
                sop_instance_uid=uid_for(seed, "reference-points-image"),
                series_instance_uid=uid_for(seed, "reference-points-series"),
                study_instance_uid=spec.study.study_instance_uid,
            )
        )
        return images[0]

    def points(count: int) -> tuple[float, ...]:
        return tuple(rng.randint(0, 2047) / 4 for _ in range(2 * count))

    def group(g: MeasurementGroup) -> MeasurementGroup:
        nonlocal index
        index += 1
        if index > 1 and rng.random() >= 0.5:
            return g
        relationship = rng.choice(("HAS CONCEPT MOD", "HAS PROPERTIES"))
        uid = uid_for(seed, "reference-points", index) if rng.random() < 0.3 else None
        if allow_3d and index > 1 and rng.random() < 0.3:
            item = SpatialItem(
                concept=catalog.REFERENCE_POINTS,
                relationship=relationship,
                graphic_type="POINT",
                graphic_data=(rng.randint(-600, 600) / 2, rng.randint(-600, 600) / 2, rng.randint(-1200, 400) / 2),
                frame_of_reference_uid=frames[0] if frames else uid_for(seed, "frame-of-reference"),
                observation_uid=uid,
            )
        else:
            count = rng.choice((1, rng.randint(2, 4)))
            item = SpatialItem(
                concept=catalog.REFERENCE_POINTS,
                relationship=relationship,
                graphic_type="POINT" if count == 1 else "MULTIPOINT",
                graphic_data=points(count),
                instance=image(),
                observation_uid=uid,
            )
        return dataclasses.replace(g, other_spatial_items=(*g.other_spatial_items, item))

    return _map_groups(spec, group)


def float32_decimal(hundredths: int) -> float:
    """The double nearest to `hundredths` / 100, a decimal with at most two places."""
    return hundredths / 100


def _inexact(rng: random.Random, data: tuple[float, ...], axes: int) -> tuple[float, ...]:
    """`data` ((x, y) or (x, y, z) tuples) moved by a few hundredths per axis, so that every value is a
    decimal of at most two places with no exact binary form (not a multiple of 1/4), hence none in float32.
    A translation keeps every graphic type valid: closed polylines stay closed, ellipse axes perpendicular
    (ellipse ends in eighths round to hundredths symmetrically, half to even)."""
    hundredths = [round(v * 100) for v in data]
    shifts = []
    for axis in range(axes):
        on_axis = hundredths[axis::axes]
        candidates = [j for j in range(1, 100) if all((h + j) % 25 for h in on_axis)]
        shifts.append(rng.choice(candidates))
    return tuple(float32_decimal(h + shifts[i % axes]) for i, h in enumerate(hundredths))


def _feature_float32(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    def change(reference: ImageReference) -> ImageReference:
        if not reference.graphic_data:
            return reference
        axes = 3 if reference.frame_of_reference_uid is not None else 2
        return dataclasses.replace(reference, graphic_data=_inexact(rng, reference.graphic_data, axes))

    def group(g: MeasurementGroup) -> MeasurementGroup:
        items = tuple(
            dataclasses.replace(s, graphic_data=_inexact(rng, s.graphic_data, 2 if s.instance else 3))
            for s in g.other_spatial_items
        )
        return dataclasses.replace(g, other_spatial_items=items)

    return _map_groups(_map_references(spec, change), group)


def _feature_misspelled_units(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    misspelled = catalog.UNIT_MISSPELLINGS

    def measurement(m: Measurement) -> Measurement:
        if m.unit is not None and m.unit.value in misspelled:
            return dataclasses.replace(m, unit_spelling=misspelled[m.unit.value])
        return m

    def group(g: MeasurementGroup) -> MeasurementGroup:
        return dataclasses.replace(g, measurements=tuple(measurement(m) for m in g.measurements))

    spec = _map_groups(spec, group)
    spec = dataclasses.replace(
        spec,
        derived_measurements=tuple(
            dataclasses.replace(d, measurement=measurement(d.measurement)) for d in spec.derived_measurements
        ),
    )
    if not any(m.unit_spelling for g in spec.all_groups for m in g.measurements) and spec.groups:
        attenuation = next(k for k in catalog.MEASUREMENT_KINDS if k.units == (catalog.HU,))
        added = Measurement(
            concept=attenuation.concept,
            value=f"{rng.uniform(-100.0, 300.0):.1f}",
            unit=catalog.HU,
            unit_spelling=misspelled[catalog.HU.value],
        )
        first = spec.groups[0]
        first = dataclasses.replace(first, measurements=(*first.measurements, added))
        spec = dataclasses.replace(spec, groups=(first, *spec.groups[1:]))
    return spec


def _feature_omit_language(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    return dataclasses.replace(spec, language=None, language_country=None)


def _feature_omit_observer_context(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    return dataclasses.replace(spec, person_observers=(), device_observers=())


def _feature_omit_procedure_reported(spec: ReportSpec, rng: random.Random, seed: int) -> ReportSpec:
    return dataclasses.replace(spec, procedures_reported=())


_FEATURES: dict[Feature, Callable[[ReportSpec, random.Random, int], ReportSpec]] = {
    Feature.FINDING_SITES: _feature_finding_sites,
    Feature.DEVICE_OBSERVERS: _feature_device_observers,
    Feature.SEGMENT_NUMBERS: _feature_segment_numbers,
    Feature.OTHER_SPATIAL_ITEMS: _feature_other_spatial_items,
    Feature.FLOAT32_COORDINATES: _feature_float32,
    Feature.MISSPELLED_UNITS: _feature_misspelled_units,
    Feature.OMIT_LANGUAGE: _feature_omit_language,
    Feature.OMIT_OBSERVER_CONTEXT: _feature_omit_observer_context,
    Feature.OMIT_PROCEDURE_REPORTED: _feature_omit_procedure_reported,
}
"""Feature → how it changes a report, in the order they are applied."""


def _optional(value: _T | None) -> tuple[_T, ...]:
    return () if value is None else (value,)


def _weighted(rng: random.Random, choices: tuple[tuple[_T, int], ...]) -> _T:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _iso(da: str) -> str:
    return f"{da[:4]}-{da[4:6]}-{da[6:]}"


def _is_ascii(patient: PatientSpec) -> bool:
    issuer = patient.issuer or Issuer()
    return all(v is None or v.isascii() for v in (patient.name, issuer.local_namespace, issuer.universal_id))


def _declared_schemes(spec: ReportSpec) -> tuple[CodingScheme, ...]:
    """The private schemes the report uses, declared in its Coding Scheme Identification Sequence."""
    used = {
        e.value_code.scheme
        for group in spec.all_groups
        for e in group.qualitative_evaluations
        if e.value_code is not None
    } | {e.value_code.scheme for e in spec.qualitative_evaluations if e.value_code is not None}
    return tuple(s for s in (catalog.SYNTHETIC_SCORES, catalog.SYNTHETIC_GRADES) if s.designator in used)
