"""`every_row_spec`: one report that writes every row of the templates a TID 1500 report is made of."""

from __future__ import annotations

import dataclasses
import random

from . import catalog
from .generate import _declared_schemes, device_observer, float32_decimal, random_spec, uid_for
from .spec import (
    Algorithm,
    Code,
    CodedValue,
    DerivedMeasurement,
    DeviceObserver,
    FindingSite,
    GroupTemplate,
    ImageReference,
    Measurement,
    MeasurementGroup,
    NumValue,
    PersonObserver,
    QualitativeEvaluation,
    ReferencedInstance,
    ReferenceKind,
    ReportSpec,
    SpatialItem,
    SRStorage,
    TextValue,
    TimePointContext,
    UniqueDeviceIdentifier,
)

_SOURCE_OF_MEASUREMENT = catalog.IMAGE_PURPOSES[0]


def _kind(meaning: str) -> catalog.MeasurementKind:
    return next(k for k in catalog.MEASUREMENT_KINDS if k.concept.meaning == meaning)


def every_row_spec(seed: int = 0) -> ReportSpec:
    """One Comprehensive 3D SR report with every row of TID 1500, 1204, 1001-1004, 4019, 1410, 1411, 1501,
    1419, 300 / 301, 320, 1502 and 1420 and of the Qualitative Evaluations container, every row of VM 1-n
    written at least twice. The seed changes the header (from `random_spec(seed)`), the UIDs and the values,
    not the structure. Graphic data are two-place decimals float32 cannot hold (as with
    `Feature.FLOAT32_COORDINATES`); one NUM per group spells [hnsf'U] as hnsf'U.

    Rows and how often they are written ("n per X" is per item of that kind; "x n" in the whole report):

    - TID 1500: root CONTAINER; Language of Content Item and Descendants (TID 1204 row 1) x 1 with its
      Country of Language (row 2); observer context (TID 1001 row 1, TID 1002) x 4: two persons then two
      devices, each starting with its Observer Type; Procedure reported x 2; Image Library (TID 1600) x 1,
      listing the 6 referenced images; Imaging Measurements x 1 with TID 4019 (row 6b) and groups: TID 1410
      x 2, TID 1411 x 2, TID 1501 x 2 (rows 7-9); Derived Imaging Measurements x 1 with TID 4019 (row 10b)
      and TID 1420 NUMs x 2 (row 11); Qualitative Evaluations x 1 with TID 4019 (row 12b), CODE x 2 (row 13)
      with 2 concept modifiers each (row 13b), TEXT x 2 (row 14).
    - TID 1003, 2 persons: Person Observer Name, Login Name, Organization Name, Role in the Organization,
      Role in this Procedure and its Identifier within Person Observer's Role child: 1 per person.
    - TID 1004, 2 devices: Device Observer UID, Name, Manufacturer, Model Name, Serial Number, Physical
      Location During Observation, Station AE Title: 1 per device; Device Role in Procedure, Device Observer
      Manufacturer Class UID, Unique Device Identifiers CONTAINER (with its Unique Device Identifier and
      Device Description): 2 per device.
    - TID 4019 blocks x 29 (the three containers, the 10 groups, the first measurement of each group, the 2
      derived NUMs, the first CODE and first TEXT evaluation of group 1 and of the Qualitative Evaluations
      container): Algorithm Name as TEXT and as CODE (row 1b, scheme 99SYNALG, declared), Version,
      Manufacturer, Family: 1 per block; Algorithm Parameters: 2 per block.
    - Groups x 10 (6 under Imaging Measurements; 4 under the derived NUMs): Tracking Identifier, Tracking
      Unique Identifier, Activity Session, Finding category, Finding, Measurement Method, Real World Value
      Map, Observation UID and DateTime: 1 per group; Geometric purpose of region: 1 per TID 1410 / 1411
      group (x 8); TID 1502: Subject Time Point Identifier, Protocol Time Point Identifier, Time Point, Time
      Point Order, Longitudinal Temporal Offset from Event with its Event Type: 1 per group, Time Point
      Type: 2 per group; Finding Site: 2 per group, each with its own Laterality and Topographical
      modifier; TID 4019: 1 per group; Illustration of ROI: 1 per TID 1410 / 1501 group, 2 per TID 1411
      group; Visual Explanation: 2 per group (frame numbers 2, 5 and 9); measurements: 3 per group; CODE
      evaluations: 2 per group, each with 2 modifiers; TEXT evaluations: 2 per group. Not template rows:
      2 (122438, DCM, "Reference Points") SCOORDs per group, a POINT and a MULTIPOINT, each HAS PROPERTIES
      and with its own SELECTED FROM IMAGE (HAS CONCEPT MOD, which the SR IOD does not allow for a SCOORD,
      is left to `Feature.OTHER_SPATIAL_ITEMS`: this report is meant to conform).
    - Region of interest, one kind per group (the rows are exclusive): TID 1410: SCOORD Image Region with
      SELECTED FROM a frame of a multi-frame image (group 1), SCOORD3D Image Region (group 2), Referenced
      Segmentation Frame with frames 11, 12 and segments 1, 3 and its Source image for segmentation (derived
      group 1), Region In Space with ROI identifiers 3 and 7 (derived group 2). TID 1411: SCOORD Image Region
      x 2 (group 3), Referenced Segment with segments 2, 5 and Source image for segmentation x 2 (group 4),
      Volume Surface x 2 with Source series for segmentation (derived group 3), Region In Space (derived
      group 4). TID 1501 (groups 5 and 6, each): IMAGE (row 10b) x 2, SCOORD (rows 10c/10d) x 2, one
      SELECTED FROM by value and one by reference to its Image Library entry, SCOORD3D (row 10e) x 2; the
      SCOORD / SCOORD3D with $ImagePurpose (121112, DCM, "Source of Measurement").
    - Measurements x 30 (TID 1419 in 1410 / 1411 groups, TID 300 / 301 in 1501 groups), every one with:
      Measurement Method, Derivation, $ModType concept modifiers x 2 (a Laterality, a Topographical
      modifier), Finding Site x 2 each with Laterality and Topographical modifier, Tracking Identifier and
      Tracking Unique Identifier (TID 4108 on the NUM). Measurement 1 of each group: a value in mm,
      INFERRED FROM derivation parameters NUM x 2, CODE x 2, TEXT x 2, an Equation TEXT (CID 228),
      Equivalent Meaning of Concept Name as TEXT and as CODE, Real World Value Map (INFERRED FROM
      COMPOSITE), TID 4019, Observation UID and DateTime. Measurement 2: no value, a Numeric Value
      Qualifier. Measurement 3: a value in [hnsf'U] written hnsf'U, R-INFERRED FROM NUM derivation
      parameters x 2 (measurements 1 and 2), Equivalent Meaning TEXT; in the 1501 groups also TID 320:
      IMAGE x 2 (one of a prior study), R-INFERRED FROM IMAGE x 2 (the group's row 10b IMAGEs), SCOORD with
      SELECTED FROM x 1, SCOORD with R-SELECTED FROM (an Image Library entry) x 1, SCOORD3D x 2.
    - TID 1420, 2 NUMs: TID 4019 1 per NUM; R-INFERRED FROM groups 2 per NUM (by reference: the first NUM
      the two TID 1410 groups under Imaging Measurements, the second the two TID 1411 groups); besides, 2
      groups of the same template as children of each NUM (by value, CONTAINS, as `random_spec` writes).

    Not written: rows that only include templates outside this set (TID 310 Measurement Properties, TID
    315 Equation, TID 1000 Quotation, TID 321 and TID 1501's WAVEFORM / TCOORD rows, TID 1005 Procedure
    Context, TID 1006 Subject Context, TID 1015 of TID 1002).
    """
    return _EveryRow(seed).report()


class _EveryRow:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(f"every-row-{seed}")
        self.base = random_spec(seed)
        self.study_uid = self.base.study.study_instance_uid
        self._labels = 0
        self.frame_of_reference = self.uid("frame-of-reference")
        series = self.uid("image-series")
        self.images = tuple(self.instance(catalog.CT_IMAGE, series) for _ in range(4))
        self.multiframe = self.instance(catalog.ENHANCED_CT_IMAGE, self.uid("enhanced-series"))
        self.prior = self.instance(catalog.MR_IMAGE, self.uid("prior-series"), self.uid("prior-study"))
        self.objects = {
            kind: self.instance(sop_class, self.uid("object-series"))
            for kind, sop_class in (
                (ReferenceKind.REFERENCED_SEGMENT, catalog.SEGMENTATION),
                (ReferenceKind.REGION_IN_SPACE, catalog.RT_STRUCTURE_SET),
                (ReferenceKind.REAL_WORLD_VALUE_MAP, catalog.REAL_WORLD_VALUE_MAPPING),
                (ReferenceKind.ILLUSTRATION_OF_ROI, catalog.SECONDARY_CAPTURE),
                (ReferenceKind.VISUAL_EXPLANATION, catalog.MULTIFRAME_TRUE_COLOR_SC),
            )
        }
        self.groups_made = 0

    # --- values -----------------------------------------------------------------------------------------

    def uid(self, label: str) -> str:
        self._labels += 1
        return uid_for(self.seed, "every-row", label, self._labels)

    def instance(self, sop_class: str, series: str, study: str | None = None) -> ReferencedInstance:
        return ReferencedInstance(
            sop_class_uid=sop_class,
            sop_instance_uid=self.uid("instance"),
            series_instance_uid=series,
            study_instance_uid=study or self.study_uid,
        )

    def decimal(self, low: int, high: int) -> float:
        """A two-place decimal in [low, high) that float32 cannot hold (not a multiple of 1/4)."""
        while True:
            hundredths = self.rng.randrange(low * 100, high * 100)
            if hundredths % 25:
                return float32_decimal(hundredths)

    def points_2d(self, count: int) -> tuple[float, ...]:
        return tuple(self.decimal(0, 511) for _ in range(2 * count))

    def points_3d(self, count: int) -> tuple[float, ...]:
        return tuple(
            v for _ in range(count) for v in (self.decimal(-300, 300), self.decimal(-300, 300), self.decimal(-600, 200))
        )

    def image(self) -> ReferencedInstance:
        return self.rng.choice(self.images)

    def algorithm(self, name: str) -> Algorithm:
        return Algorithm(
            name=name,
            version=f"{self.rng.randint(1, 4)}.{self.rng.randint(0, 9)}.0",
            parameters=(f"threshold={self.rng.randint(1, 9) / 10}", f"kernel={self.rng.choice(('B30f', 'B70f'))}"),
            name_code=Code(name.upper(), catalog.SYNTHETIC_ALGORITHMS.designator, name),
            manufacturer="Synthetic Imaging Co.",
            family=self.rng.choice(catalog.ALGORITHM_FAMILIES),
        )

    def sites(self) -> tuple[FindingSite, ...]:
        first, second = self.rng.sample(catalog.FINDING_SITES, 2)
        return (
            FindingSite(
                site=first, laterality=catalog.RIGHT, topographical_modifier=catalog.TOPOGRAPHICAL_MODIFIERS[0]
            ),
            FindingSite(
                site=second, laterality=catalog.LEFT, topographical_modifier=catalog.TOPOGRAPHICAL_MODIFIERS[2]
            ),
        )

    def modifiers(self) -> tuple[CodedValue, ...]:
        """Two concept modifiers of different types: a laterality and a topographical modifier."""
        laterality, *topographical = catalog.MEASUREMENT_MODIFIERS
        return (CodedValue(*laterality), CodedValue(*self.rng.choice(topographical)))

    def evaluations(self, algorithm: bool) -> tuple[QualitativeEvaluation, ...]:
        out = []
        for n, (concept, values) in enumerate(self.rng.sample(catalog.CODE_EVALUATIONS, 2)):
            out.append(
                QualitativeEvaluation(
                    concept=concept,
                    value_code=self.rng.choice(values),
                    modifiers=self.modifiers(),
                    algorithm=self.algorithm("Grader") if algorithm and n == 0 else None,
                    observation_uid=self.uid("observation"),
                )
            )
        for n, concept in enumerate(catalog.TEXT_EVALUATIONS):
            out.append(
                QualitativeEvaluation(
                    concept=concept,
                    value_text=self.rng.choice(catalog.TEXTS[None]),
                    algorithm=self.algorithm("Reporter") if algorithm and n == 0 else None,
                    observation_datetime=f"{self.base.instance.content_date}1200{n:02d}",
                )
            )
        return tuple(out)

    # --- references ----------------------------------------------------------------------------------------

    def region_2d(self, graphic_type: str = "POLYLINE", purpose: Code | None = None) -> ImageReference:
        if graphic_type == "POLYLINE":
            data = self.points_2d(4)
            data = data + data[:2]  # closed
        elif graphic_type == "CIRCLE":
            data = self.points_2d(2)
        else:
            data = self.points_2d(1)
        return ImageReference(
            kind=ReferenceKind.IMAGE_REGION_2D,
            instance=self.image(),
            graphic_type=graphic_type,
            graphic_data=data,
            purpose=purpose,
            observation_uid=self.uid("observation"),
        )

    def region_3d(
        self, kind: ReferenceKind = ReferenceKind.IMAGE_REGION_3D, purpose: Code | None = None
    ) -> ImageReference:
        graphic_type, count = ("POLYGON", 4) if kind is ReferenceKind.VOLUME_SURFACE else ("POINT", 1)
        data = self.points_3d(count)
        if graphic_type == "POLYGON":
            data = data + data[:3]
        return ImageReference(
            kind=kind,
            graphic_type=graphic_type,
            graphic_data=data,
            frame_of_reference_uid=self.frame_of_reference,
            purpose=purpose,
        )

    def object_reference(
        self, kind: ReferenceKind, frame_numbers: tuple[int, ...] = (), segment_numbers: tuple[int, ...] = ()
    ) -> ImageReference:
        key = ReferenceKind.REFERENCED_SEGMENT if kind is ReferenceKind.REFERENCED_SEGMENTATION_FRAME else kind
        instance = dataclasses.replace(self.objects[key], frame_numbers=frame_numbers, segment_numbers=segment_numbers)
        roi_numbers = ("3", "7") if kind is ReferenceKind.REGION_IN_SPACE else ()
        return ImageReference(kind=kind, instance=instance, roi_numbers=roi_numbers)

    def optional_references(self, template: GroupTemplate) -> list[ImageReference]:
        illustrations = 2 if template is GroupTemplate.VOLUMETRIC_ROI else 1
        return [
            *(self.object_reference(ReferenceKind.ILLUSTRATION_OF_ROI) for _ in range(illustrations)),
            self.object_reference(ReferenceKind.VISUAL_EXPLANATION, frame_numbers=(2, 5)),
            self.object_reference(ReferenceKind.VISUAL_EXPLANATION, frame_numbers=(9,)),
            self.object_reference(ReferenceKind.REAL_WORLD_VALUE_MAP),
        ]

    def reference_points(self) -> tuple[SpatialItem, ...]:
        return (
            SpatialItem(
                concept=catalog.REFERENCE_POINTS,
                relationship="HAS PROPERTIES",
                graphic_type="POINT",
                graphic_data=self.points_2d(1),
                instance=self.image(),
            ),
            SpatialItem(
                concept=catalog.REFERENCE_POINTS,
                relationship="HAS PROPERTIES",
                graphic_type="MULTIPOINT",
                graphic_data=self.points_2d(3),
                instance=self.image(),
                observation_uid=self.uid("observation"),
            ),
        )

    # --- measurements ------------------------------------------------------------------------------------

    def measurements(self, template: GroupTemplate, references: int) -> tuple[Measurement, ...]:
        rng = self.rng
        diameter, area, short_axis, long_axis, attenuation = (
            _kind(meaning) for meaning in ("Diameter", "Area", "Short Axis", "Long Axis", "Attenuation Coefficient")
        )
        shared = Measurement(  # the context rows every measurement of the group has
            concept=diameter.concept,
            value=None,
            derivation=rng.choice(catalog.DERIVATIONS),
            method=rng.choice(catalog.MEASUREMENT_METHODS),
            finding_sites=self.sites(),
            modifiers=self.modifiers(),
        )
        first = dataclasses.replace(
            shared,
            value=f"{rng.uniform(5, 60):.1f}",
            unit=catalog.MM,
            derivation_parameters=(
                NumValue(area.concept, f"{rng.uniform(20, 900):.1f}", catalog.MM2),
                NumValue(short_axis.concept, f"{rng.uniform(2, 30):.1f}", catalog.MM),
                CodedValue(catalog.GEOMETRIC_PURPOSE, catalog.DERIVATION_PARAMETER_CODES[0]),
                CodedValue(catalog.MEASUREMENT_METHOD, catalog.DERIVATION_PARAMETER_CODES[1]),
                TextValue(catalog.ALGORITHM_PARAMETERS, "slice thickness 1.0 mm"),
                TextValue(catalog.ALGORITHM_PARAMETERS, "reconstruction kernel B30f"),
            ),
            equation=TextValue(catalog.EQUATION, "D = max(|p_i - p_j|)"),
            equivalent_meaning="Long axis diameter of the lesion",
            equivalent_meaning_code=long_axis.concept,
            image_references=(self.object_reference(ReferenceKind.REAL_WORLD_VALUE_MAP),),
            algorithm=self.algorithm("Caliper"),
            tracking_identifier=f"Measurement {self.groups_made}.1",
            tracking_uid=self.uid("tracking"),
            observation_uid=self.uid("observation"),
            observation_datetime=f"{self.base.instance.content_date}101500.25+0100",
        )
        second = dataclasses.replace(
            shared,
            concept=attenuation.concept,
            value=None,
            unit=None,
            qualifier=catalog.NUMERIC_VALUE_QUALIFIERS[2],
            tracking_identifier=f"Measurement {self.groups_made}.2",
            tracking_uid=self.uid("tracking"),
        )
        own: tuple[ImageReference, ...] = ()
        by_reference: tuple[int, ...] = ()
        if template is GroupTemplate.MEASUREMENT_GROUP:
            own = (
                ImageReference(kind=ReferenceKind.SOURCE_OF_MEASUREMENT, instance=self.image()),
                ImageReference(kind=ReferenceKind.SOURCE_OF_MEASUREMENT, instance=self.prior),
                self.region_2d("POINT", _SOURCE_OF_MEASUREMENT),
                dataclasses.replace(self.region_2d("CIRCLE", _SOURCE_OF_MEASUREMENT), select_by_reference=True),
                self.region_3d(purpose=_SOURCE_OF_MEASUREMENT),
                self.region_3d(purpose=_SOURCE_OF_MEASUREMENT),
            )
            by_reference = tuple(range(min(references, 2)))  # the group's row 10b IMAGEs: R-INFERRED FROM
        third = dataclasses.replace(
            shared,
            concept=attenuation.concept,
            value=f"{rng.uniform(-50, 200):.1f}",
            unit=catalog.HU,
            unit_spelling=catalog.UNIT_MISSPELLINGS[catalog.HU.value],
            derivation_parameter_references=(0, 1),
            image_references=own,
            group_references=by_reference,
            equivalent_meaning="Mean attenuation of the lesion",
            tracking_identifier=f"Measurement {self.groups_made}.3",
            tracking_uid=self.uid("tracking"),
            observation_uid=self.uid("observation"),
        )
        return (first, second, third)

    # --- groups ---------------------------------------------------------------------------------------------

    def group(
        self,
        template: GroupTemplate,
        roi: list[ImageReference],
        source_images: tuple[ReferencedInstance, ...] = (),
        source_series: str | None = None,
    ) -> MeasurementGroup:
        rng = self.rng
        self.groups_made += 1
        number = self.groups_made
        references = roi + self.optional_references(template)
        return MeasurementGroup(
            template=template,
            tracking_identifier=f"Lesion {number}",
            tracking_uid=self.uid("tracking"),
            activity_session=str(number),
            time_point="follow-up 1",
            time_point_context=TimePointContext(
                subject_time_point_identifier=f"TP-{number}",
                protocol_time_point_identifier="WEEK-8",
                types=tuple(rng.sample(catalog.TIME_POINT_TYPES, 2)),
                order=2,
                offset_days="56",
                offset_event=rng.choice(catalog.TEMPORAL_EVENT_TYPES),
            ),
            finding_category=rng.choice(catalog.FINDING_CATEGORIES),
            finding=rng.choice(catalog.FINDINGS),
            geometric_purpose=(
                rng.choice(catalog.GEOMETRIC_PURPOSES) if template is not GroupTemplate.MEASUREMENT_GROUP else None
            ),
            finding_sites=self.sites(),
            method=rng.choice(catalog.MEASUREMENT_METHODS),
            algorithm=self.algorithm("LesionSeg"),
            image_references=tuple(references),
            source_images=source_images,
            source_series_uid=source_series,
            other_spatial_items=self.reference_points(),
            measurements=self.measurements(template, len(roi)),
            qualitative_evaluations=self.evaluations(algorithm=number == 1),
            observation_uid=self.uid("observation"),
            observation_datetime=f"{self.base.instance.content_date}101010",
        )

    def groups(self) -> tuple[MeasurementGroup, ...]:
        planar, volumetric, general = (
            GroupTemplate.PLANAR_ROI,
            GroupTemplate.VOLUMETRIC_ROI,
            GroupTemplate.MEASUREMENT_GROUP,
        )
        segment = self.object_reference(ReferenceKind.REFERENCED_SEGMENT, segment_numbers=(2, 5))
        multiframe_region = dataclasses.replace(
            self.region_2d("POLYLINE"), instance=dataclasses.replace(self.multiframe, frame_numbers=(17,))
        )
        return (
            self.group(planar, [multiframe_region]),
            self.group(planar, [self.region_3d()]),
            self.group(volumetric, [self.region_2d("POLYLINE"), self.region_2d("CIRCLE")]),
            self.group(volumetric, [segment], source_images=self.images[:2]),
            self.group(general, self.purpose_references()),
            self.group(general, self.purpose_references()),
        )

    def purpose_references(self) -> list[ImageReference]:
        """TID 1501 rows 10b, 10c (+ 10d), 10e, twice each, with $ImagePurpose "Source of Measurement"."""
        return [
            ImageReference(kind=ReferenceKind.SOURCE_OF_MEASUREMENT, instance=self.images[0]),
            ImageReference(kind=ReferenceKind.SOURCE_OF_MEASUREMENT, instance=self.images[1]),
            self.region_2d("POLYLINE", _SOURCE_OF_MEASUREMENT),
            dataclasses.replace(self.region_2d("POINT", _SOURCE_OF_MEASUREMENT), select_by_reference=True),
            self.region_3d(purpose=_SOURCE_OF_MEASUREMENT),
            self.region_3d(purpose=_SOURCE_OF_MEASUREMENT),
        ]

    def derived(self) -> tuple[DerivedMeasurement, ...]:
        planar, volumetric = GroupTemplate.PLANAR_ROI, GroupTemplate.VOLUMETRIC_ROI
        frame = self.object_reference(
            ReferenceKind.REFERENCED_SEGMENTATION_FRAME, frame_numbers=(11, 12), segment_numbers=(1, 3)
        )
        space = self.object_reference(ReferenceKind.REGION_IN_SPACE)
        surfaces = [self.region_3d(ReferenceKind.VOLUME_SURFACE), self.region_3d(ReferenceKind.VOLUME_SURFACE)]
        kinds = catalog.DERIVED_MEASUREMENT_KINDS
        out = []
        for n, (kind, children, references) in enumerate(
            (
                (
                    kinds[0],
                    [self.group(planar, [frame], source_images=self.images[2:3]), self.group(planar, [space])],
                    (0, 1),
                ),
                (
                    kinds[2],
                    [
                        self.group(volumetric, surfaces, source_series=self.images[0].series_instance_uid),
                        self.group(volumetric, [self.object_reference(ReferenceKind.REGION_IN_SPACE)]),
                    ],
                    (2, 3),
                ),
            )
        ):
            measurement = Measurement(
                concept=kind.concept,
                value=f"{self.rng.uniform(kind.low, kind.high):.2f}",
                unit=kind.units[0],
                algorithm=self.algorithm(f"Aggregator{n + 1}"),
                observation_uid=self.uid("observation"),
            )
            out.append(DerivedMeasurement(measurement=measurement, groups=tuple(children), group_references=references))
        return tuple(out)

    def device(self, n: int) -> DeviceObserver:
        """A device observer with two of each VM 1-n row of TID 1004."""
        return dataclasses.replace(
            device_observer(self.rng, self.uid("device-observer"), n + 1),
            roles=catalog.DEVICE_ROLES[n : n + 2],
            manufacturer_class_uids=(self.uid("class"), self.uid("class")),
            udis=tuple(
                UniqueDeviceIdentifier(udi=f"(01)00884588{n}{m:05d}(21)SN{m}", description=f"Module {m}")
                for m in range(2)
            ),
        )

    def persons(self) -> tuple[PersonObserver, ...]:
        names = catalog.PERSON_NAMES[None]
        return tuple(
            PersonObserver(
                name=names[n],
                login_name=f"reader{n + 1}",
                organization=catalog.ORGANIZATIONS[None][0],
                role_in_organization=catalog.ORGANIZATION_ROLES[n],
                role_in_procedure=catalog.PROCEDURE_ROLES[n],
                identifier_within_role=f"R{n + 1}",
            )
            for n in range(2)
        )

    def report(self) -> ReportSpec:
        base = self.base
        groups = self.groups()
        derived = self.derived()
        spec = ReportSpec(
            patient=base.patient,
            study=base.study,
            equipment=base.equipment,
            instance=dataclasses.replace(
                base.instance,
                sop_class=SRStorage.COMPREHENSIVE_3D_SR,
                sop_instance_uid=self.uid("sr-instance"),
                preliminary_flag="FINAL",
            ),
            language=catalog.LANGUAGES[0],
            language_country=catalog.COUNTRIES[0],
            procedures_reported=catalog.PROCEDURES,
            person_observers=self.persons(),
            device_observers=tuple(self.device(n) for n in range(2)),
            image_library=True,
            measurements_algorithm=self.algorithm("Pipeline"),
            groups=groups,
            derived_measurements=derived,
            derived_measurements_algorithm=self.algorithm("Aggregator"),
            qualitative_evaluations=self.evaluations(algorithm=True),
            qualitative_evaluations_algorithm=self.algorithm("Impression"),
        )
        return dataclasses.replace(spec, coding_schemes=(*_declared_schemes(spec), catalog.SYNTHETIC_ALGORITHMS))
