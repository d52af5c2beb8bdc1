"""The generator's opt-in fidelity cases (issue 16) and `every_row_spec`, read back with pydicom alone (not
with sr2fhir_core): each case must be encoded as PS3.16 lays it out, so that a mapping test that fails on
them points at the mapping, not at the generator."""

from __future__ import annotations

import dataclasses
import io
import struct
import warnings
from collections import Counter
from collections.abc import Iterator

import pydicom
import pytest
from pydicom.dataset import Dataset

from sr2fhir_synth import (
    ENCODINGS,
    FIDELITY_FEATURES,
    ROOT_OMISSIONS,
    Feature,
    catalog,
    count_content_items,
    every_row_spec,
    random_spec,
    write_sr,
)
from sr2fhir_synth.spec import (
    Code,
    FindingSite,
    GroupTemplate,
    ImageReference,
    Measurement,
    MeasurementGroup,
    ReferenceKind,
    ReportSpec,
    SpatialItem,
)

SEEDS = range(40)
SCT_OF_SRT = {srt: sct for sct, srt in catalog.SNOMED_RT.items()}

# --- Reading the content tree back -------------------------------------------------------------------------


def read(spec: ReportSpec) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a value pydicom cannot encode
        data = write_sr(spec)
    return pydicom.dcmread(io.BytesIO(data))


def key(code_item: Dataset) -> tuple[str, str]:
    """(value, scheme) of a code sequence item, SNOMED-RT read back as SNOMED CT."""
    value = code_item.get("CodeValue") or code_item.get("LongCodeValue") or code_item.get("URNCodeValue")
    if code_item.CodingSchemeDesignator == "SRT":
        return SCT_OF_SRT[value], "SCT"
    return value, code_item.CodingSchemeDesignator


def code_key(code: Code) -> tuple[str, str]:
    return code.value, code.scheme


def name(item: Dataset) -> tuple[str, str] | None:
    return key(item.ConceptNameCodeSequence[0]) if "ConceptNameCodeSequence" in item else None


def value(item: Dataset) -> tuple[str, str]:
    return key(item.ConceptCodeSequence[0])


def children(item: Dataset) -> list[Dataset]:
    return list(item.get("ContentSequence", []))


def walk(item: Dataset) -> Iterator[Dataset]:
    """Content items below `item` in document order (depth first), by-reference items included."""
    for child in children(item):
        yield child
        yield from walk(child)


def named(items: list[Dataset], code: Code) -> list[Dataset]:
    return [i for i in items if name(i) == code_key(code)]


def one(items: list[Dataset], code: Code) -> Dataset:
    [item] = named(items, code)
    return item


def resolve(ds: Dataset, item: Dataset) -> Dataset:
    """The target of a by-reference item (Referenced Content Item Identifier: the root is 1)."""
    identifiers = list(item.ReferencedContentItemIdentifier)
    assert identifiers[0] == 1
    target = ds
    for index in identifiers[1:]:
        target = target.ContentSequence[index - 1]
    return target


def ints(element_value: object) -> list[int]:
    """A US / IS value of VM 1 or 1-n as a list."""
    if isinstance(element_value, int):
        return [element_value]
    return [int(v) for v in element_value]  # type: ignore[attr-defined]


def measurement_items(group: Dataset) -> list[Dataset]:
    """A group's measurements: its NUM children by CONTAINS (not TID 1502's HAS OBS CONTEXT NUMs)."""
    return [c for c in children(group) if c.ValueType == "NUM" and c.RelationshipType == "CONTAINS"]


def group_items(ds: Dataset) -> list[Dataset]:
    """Measurement Group containers in document order: Imaging Measurements, then under derived NUMs."""
    return named(list(walk(ds)), catalog.MEASUREMENT_GROUP)


def float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def spec_with(feature: Feature, seeds: range = SEEDS) -> list[tuple[int, ReportSpec]]:
    return [(seed, random_spec(seed, features=[feature])) for seed in seeds]


# --- Defaults and the feature switch -----------------------------------------------------------------------


def test_features_are_opt_in_and_validated() -> None:
    assert random_spec(3, features=()) == random_spec(3)
    assert random_spec(3, features=["omit-language"]) == random_spec(3, features=[Feature.OMIT_LANGUAGE])
    assert set(Feature) == FIDELITY_FEATURES | ROOT_OMISSIONS
    with pytest.raises(ValueError):
        random_spec(3, features=["no-such-feature"])
    assert random_spec(5, features=FIDELITY_FEATURES) == random_spec(5, features=FIDELITY_FEATURES)


def test_features_leave_the_rest_of_the_report_alone() -> None:
    for seed in range(15):
        base = random_spec(seed)
        omitted = random_spec(seed, features=ROOT_OMISSIONS)
        assert omitted == dataclasses.replace(
            base, language=None, person_observers=(), device_observers=(), procedures_reported=()
        )
        devices = random_spec(seed, features=[Feature.DEVICE_OBSERVERS])
        assert dataclasses.replace(devices, device_observers=(), person_observers=base.person_observers) == (
            dataclasses.replace(base, device_observers=())
        )
        sites = random_spec(seed, features=[Feature.FINDING_SITES])
        assert len(sites.all_groups) == len(base.all_groups)
        for new, old in zip(sites.all_groups, base.all_groups, strict=True):
            assert new.finding_sites[: len(old.finding_sites)] == old.finding_sites
            assert dataclasses.replace(new, finding_sites=old.finding_sites, measurements=old.measurements) == old
            for m_new, m_old in zip(new.measurements, old.measurements, strict=True):
                assert m_new.finding_sites[: len(m_old.finding_sites)] == m_old.finding_sites
                assert dataclasses.replace(m_new, finding_sites=m_old.finding_sites) == m_old


def test_finding_site_property_is_the_first_site() -> None:
    first = FindingSite(site=catalog.FINDING_SITES[0], laterality=catalog.RIGHT)
    second = FindingSite(site=catalog.FINDING_SITES[0], laterality=catalog.LEFT)
    group = MeasurementGroup(template=GroupTemplate.MEASUREMENT_GROUP, finding_sites=(first, second))
    assert group.finding_site == first
    assert MeasurementGroup(template=GroupTemplate.MEASUREMENT_GROUP).finding_site is None
    measurement = Measurement(concept=catalog.MEASUREMENT_KINDS[0].concept, value="1", unit=catalog.MM3)
    assert measurement.finding_site is None


# --- 1. Several finding sites, each with its own modifiers --------------------------------------------------


def assert_sites(item: Dataset, sites: tuple[FindingSite, ...]) -> None:
    """The item's Finding Site children are `sites`, in order, each with its own modifier children."""
    written = named(children(item), catalog.FINDING_SITE)
    assert [value(w) for w in written] == [code_key(s.site) for s in sites]
    for w, site in zip(written, sites, strict=True):
        assert w.RelationshipType == "HAS CONCEPT MOD"
        modifiers = {name(c): (c.RelationshipType, value(c)) for c in children(w)}
        expected = {}
        if site.laterality is not None:
            expected[code_key(catalog.LATERALITY)] = ("HAS CONCEPT MOD", code_key(site.laterality))
        if site.topographical_modifier is not None:
            expected[code_key(catalog.TOPOGRAPHICAL_MODIFIER)] = (
                "HAS CONCEPT MOD",
                code_key(site.topographical_modifier),
            )
        assert modifiers == expected
        assert len(children(w)) == len(expected)


def test_several_finding_sites_per_group_and_measurement() -> None:
    several_groups = several_measurements = distinct_modifiers = 0
    for _, spec in spec_with(Feature.FINDING_SITES, seeds=range(20)):
        ds = read(spec)
        written_groups = group_items(ds)
        assert len(written_groups) == len(spec.all_groups)
        assert len(spec.groups[0].finding_sites) >= 2
        for item, group in zip(written_groups, spec.all_groups, strict=True):
            assert_sites(item, group.finding_sites)
            several_groups += len(group.finding_sites) > 1
            distinct_modifiers += len({(s.laterality, s.topographical_modifier) for s in group.finding_sites}) > 1
            for num, measurement in zip(measurement_items(item), group.measurements, strict=True):
                assert_sites(num, measurement.finding_sites)
                several_measurements += len(measurement.finding_sites) > 1
    assert several_groups > 10
    assert several_measurements > 5
    assert distinct_modifiers > 5


# --- 2. TID 1004 device observers ---------------------------------------------------------------------------


def observer_blocks(ds: Dataset) -> list[list[Dataset]]:
    """The root's observer context, split at each (121005, DCM, "Observer Type")."""
    blocks: list[list[Dataset]] = []
    for item in children(ds):
        if name(item) == code_key(catalog.OBSERVER_TYPE):
            blocks.append([item])
        elif item.RelationshipType == "HAS OBS CONTEXT" and blocks:
            blocks[-1].append(item)
    return blocks


def test_device_observers_write_every_tid_1004_row() -> None:
    two_devices = two_roles = 0
    for _, spec in spec_with(Feature.DEVICE_OBSERVERS, seeds=range(15)):
        blocks = observer_blocks(read(spec))
        persons = [b for b in blocks if value(b[0]) == code_key(catalog.OBSERVER_PERSON)]
        devices = [b for b in blocks if value(b[0]) == code_key(catalog.OBSERVER_DEVICE)]
        assert [one(b, catalog.PERSON_OBSERVER_NAME).PersonName for b in persons] == [
            p.name for p in spec.person_observers
        ]
        assert len(devices) == len(spec.device_observers) >= 1
        two_devices += len(devices) > 1
        for block, device in zip(devices, spec.device_observers, strict=True):
            assert all(i.RelationshipType == "HAS OBS CONTEXT" for i in block)
            assert device.uid == one(block, catalog.DEVICE_OBSERVER_UID).UID
            texts = {
                catalog.DEVICE_OBSERVER_NAME: device.name,
                catalog.DEVICE_OBSERVER_MANUFACTURER: device.manufacturer,
                catalog.DEVICE_OBSERVER_MODEL_NAME: device.model_name,
                catalog.DEVICE_OBSERVER_SERIAL_NUMBER: device.serial_number,
                catalog.DEVICE_OBSERVER_PHYSICAL_LOCATION: device.physical_location,
                catalog.STATION_AE_TITLE: device.station_ae_title,
            }
            for concept, text in texts.items():
                assert text is not None
                assert one(block, concept).TextValue == text
            roles = named(block, catalog.DEVICE_ROLE_IN_PROCEDURE)
            assert [value(r) for r in roles] == [code_key(r) for r in device.roles]
            two_roles += len(roles) > 1
            classes = named(block, catalog.DEVICE_OBSERVER_MANUFACTURER_CLASS_UID)
            assert [c.UID for c in classes] == list(device.manufacturer_class_uids)
            udis = named(block, catalog.UNIQUE_DEVICE_IDENTIFIERS)
            assert len(udis) == len(device.udis) >= 1
            for container, udi in zip(udis, device.udis, strict=True):
                assert container.ValueType == "CONTAINER"
                assert one(children(container), catalog.UNIQUE_DEVICE_IDENTIFIER).TextValue == udi.udi
                assert one(children(container), catalog.DEVICE_DESCRIPTION).TextValue == udi.description
        # the device blocks follow the person blocks, nothing else interleaved
        assert blocks == persons + devices
    assert two_devices and two_roles


# --- 3. Segment and frame numbers ---------------------------------------------------------------------------


def spec_references(spec: ReportSpec) -> Iterator[ImageReference]:
    """Reference items in document order (group references, then each measurement's)."""
    for group in spec.all_groups:
        yield from group.image_references
        for measurement in group.measurements:
            yield from measurement.image_references


def test_segment_references_carry_segment_and_frame_numbers() -> None:
    segment_vm = frame_segment_vm = frames = 0
    for _, spec in spec_with(Feature.SEGMENT_NUMBERS, seeds=range(80)):
        kinds = (ReferenceKind.REFERENCED_SEGMENT, ReferenceKind.REFERENCED_SEGMENTATION_FRAME)
        expected = [r for r in spec_references(spec) if r.kind in kinds]
        if not expected:
            continue
        ds = read(spec)
        concepts = {code_key(catalog.REFERENCE_ITEMS[k][1]) for k in kinds}
        written = [i for i in walk(ds) if name(i) in concepts]
        assert len(written) == len(expected)
        for item, reference in zip(written, expected, strict=True):
            assert item.ValueType == "IMAGE"
            assert reference.instance is not None
            [sop] = item.ReferencedSOPSequence
            assert sop.ReferencedSOPClassUID == catalog.SEGMENTATION
            assert ints(sop.ReferencedSegmentNumber) == list(reference.instance.segment_numbers)
            if reference.kind is ReferenceKind.REFERENCED_SEGMENT:
                segment_vm += len(reference.instance.segment_numbers) > 1
            else:
                assert ints(sop.ReferencedFrameNumber) == list(reference.instance.frame_numbers)
                assert reference.instance.frame_numbers
                frames += len(reference.instance.frame_numbers) > 1
                frame_segment_vm += len(reference.instance.segment_numbers) > 1
    assert segment_vm and frame_segment_vm and frames


# --- 4. Spatial items that are not the ROI -------------------------------------------------------------------


def test_reference_points_are_spatial_items_beside_the_roi() -> None:
    relationships: Counter[str] = Counter()
    graphic_types: Counter[str] = Counter()
    for _, spec in spec_with(Feature.OTHER_SPATIAL_ITEMS, seeds=range(25)):
        assert spec.groups[0].other_spatial_items
        for item, group in zip(group_items(read(spec)), spec.all_groups, strict=True):
            written = named(children(item), catalog.REFERENCE_POINTS)
            assert len(written) == len(group.other_spatial_items)
            for w, spatial in zip(written, group.other_spatial_items, strict=True):
                assert w.RelationshipType == spatial.relationship
                assert w.RelationshipType in ("HAS CONCEPT MOD", "HAS PROPERTIES")
                assert w.GraphicType == spatial.graphic_type in ("POINT", "MULTIPOINT")
                assert list(w.GraphicData) == [float32(v) for v in spatial.graphic_data]
                if spatial.instance is None:
                    assert w.ValueType == "SCOORD3D"
                    assert w.ReferencedFrameOfReferenceUID == spatial.frame_of_reference_uid
                    assert not children(w)
                else:
                    assert w.ValueType == "SCOORD"
                    [image] = children(w)
                    assert (image.RelationshipType, image.ValueType) == ("SELECTED FROM", "IMAGE")
                    assert image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == spatial.instance.sop_instance_uid
                relationships[w.RelationshipType] += 1
                graphic_types[w.GraphicType] += 1
            # the group's ROI is still there and is not a Reference Points item
            roi = [
                c for c in children(item) if c.ValueType in ("SCOORD", "SCOORD3D") and c.RelationshipType == "CONTAINS"
            ]
            assert len(roi) == sum(1 for r in group.image_references if r.graphic_data)
    assert set(relationships) == {"HAS CONCEPT MOD", "HAS PROPERTIES"}
    assert set(graphic_types) == {"POINT", "MULTIPOINT"}


# --- 5. float32 graphic data -------------------------------------------------------------------------------


def spec_graphics(spec: ReportSpec) -> Iterator[ImageReference | SpatialItem]:
    """SCOORD / SCOORD3D items in document order."""
    for group in spec.all_groups:
        yield from (r for r in group.image_references if r.graphic_data)
        yield from group.other_spatial_items
        for measurement in group.measurements:
            yield from (r for r in measurement.image_references if r.graphic_data)


def assert_float32_decimals(ds: Dataset, spec: ReportSpec) -> int:
    expected = list(spec_graphics(spec))
    written = [i for i in walk(ds) if i.get("ValueType") in ("SCOORD", "SCOORD3D")]
    assert len(written) == len(expected)
    for item, graphic in zip(written, expected, strict=True):
        values = [float(v) for v in item.GraphicData]
        assert len(values) == len(graphic.graphic_data)
        for read_back, decimal in zip(values, graphic.graphic_data, strict=True):
            assert len(repr(decimal).split(".")[1]) <= 2  # the producer's short decimal, e.g. 83.58
            assert read_back == float32(decimal)  # FL holds the float32 nearest to it ...
            assert read_back != decimal  # ... which is not the decimal: 83.58000183105469
            assert round(read_back, 2) == decimal
    return len(written)


def test_float32_coordinates_are_decimals_float32_cannot_hold() -> None:
    total = 0
    for _, spec in spec_with(Feature.FLOAT32_COORDINATES, seeds=range(20)):
        total += assert_float32_decimals(read(spec), spec)
    assert total > 40
    # combined with other spatial items, these are float32-inexact decimals too
    for seed in range(5):
        spec = random_spec(seed, features=[Feature.OTHER_SPATIAL_ITEMS, Feature.FLOAT32_COORDINATES])
        assert_float32_decimals(read(spec), spec)


def test_default_coordinates_stay_exact_in_float32() -> None:
    for seed in range(10):
        spec = random_spec(seed)
        for graphic in spec_graphics(spec):
            assert all(float32(v) == v for v in graphic.graphic_data)


# --- 6. Units ------------------------------------------------------------------------------------------------


def test_hounsfield_units_can_be_written_misspelled() -> None:
    for _, spec in spec_with(Feature.MISSPELLED_UNITS, seeds=range(15)):
        hounsfield = [m for g in spec.all_groups for m in g.measurements if m.unit == catalog.HU]
        assert hounsfield and all(m.unit_spelling == "hnsf'U" for m in hounsfield)
        units = [
            key(n.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0])
            for n in walk(read(spec))
            if n.get("ValueType") == "NUM" and n.get("MeasuredValueSequence")
        ]
        assert ("[hnsf'U]", "UCUM") not in units
        assert units.count(("hnsf'U", "UCUM")) == len(hounsfield)
    spelled = [m for s in (random_spec(s) for s in range(30)) for g in s.all_groups for m in g.measurements]
    assert not any(m.unit_spelling for m in spelled)


# --- 7. Root rows omitted ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature", "concepts"),
    [
        (Feature.OMIT_LANGUAGE, [catalog.LANGUAGE_OF_CONTENT]),
        (
            Feature.OMIT_OBSERVER_CONTEXT,
            [catalog.OBSERVER_TYPE, catalog.PERSON_OBSERVER_NAME, catalog.DEVICE_OBSERVER_UID],
        ),
        (Feature.OMIT_PROCEDURE_REPORTED, [catalog.PROCEDURE_REPORTED]),
    ],
)
def test_mandatory_root_rows_can_be_left_out(feature: Feature, concepts: list[Code]) -> None:
    present = 0
    for seed in range(12):
        base = read(random_spec(seed, features=[Feature.DEVICE_OBSERVERS]))
        ds = read(random_spec(seed, features=[Feature.DEVICE_OBSERVERS, feature]))
        root = {name(i) for i in children(ds)}
        assert not root & {code_key(c) for c in concepts}
        assert code_key(catalog.IMAGING_MEASUREMENTS) in root
        present += bool({name(i) for i in children(base)} & {code_key(c) for c in concepts})
        if feature is Feature.OMIT_OBSERVER_CONTEXT:
            assert not [i for i in children(ds) if i.RelationshipType == "HAS OBS CONTEXT"]
    assert present > 3


def test_all_root_rows_can_be_left_out_at_once() -> None:
    ds = read(random_spec(4, features=ROOT_OMISSIONS | FIDELITY_FEATURES))
    assert [i.RelationshipType for i in children(ds)] == ["CONTAINS"] * len(children(ds))


# --- 8. Every row at once ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_row() -> tuple[ReportSpec, Dataset]:
    spec = every_row_spec()
    return spec, read(spec)


VM_N_REFERENCES = (
    ReferenceKind.IMAGE_REGION_2D,  # TID 1411 row 5
    ReferenceKind.VOLUME_SURFACE,  # TID 1411 row 10
    ReferenceKind.ILLUSTRATION_OF_ROI,  # TID 1411 row 13
    ReferenceKind.VISUAL_EXPLANATION,  # TID 1411 row 13b, TID 1501 row 9d
    ReferenceKind.SOURCE_OF_MEASUREMENT,  # TID 1501 row 10b, TID 320 row 1 (TID 301 row 13, 1-n)
)
"""Reference rows of VM 1-n (the ROI rows of TID 1410 and Referenced Segment are VM 1)."""


def counts(ds: Dataset) -> Counter[tuple[str, str] | None]:
    return Counter(name(i) for i in walk(ds))


def test_every_row_spec_is_deterministic_and_valid_in_every_encoding() -> None:
    assert every_row_spec() == every_row_spec(0)
    assert every_row_spec(1) != every_row_spec(0)
    assert count_content_items(every_row_spec(1)) == count_content_items(every_row_spec(0))  # same rows
    spec = every_row_spec(2)
    for encoding in ENCODINGS:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = pydicom.dcmread(io.BytesIO(write_sr(spec, encoding)))
        assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
        assert sum(1 for _ in walk(ds)) + 1 == count_content_items(spec)


def test_every_row_spec_writes_every_vm_n_row_at_least_twice(every_row: tuple[ReportSpec, Dataset]) -> None:
    _, ds = every_row
    found = counts(ds)
    twice = [
        catalog.OBSERVER_TYPE,
        catalog.PROCEDURE_REPORTED,
        catalog.MEASUREMENT_GROUP,
        catalog.FINDING_SITE,
        catalog.LATERALITY,
        catalog.TOPOGRAPHICAL_MODIFIER,
        catalog.ALGORITHM_PARAMETERS,
        catalog.DEVICE_ROLE_IN_PROCEDURE,
        catalog.DEVICE_OBSERVER_MANUFACTURER_CLASS_UID,
        catalog.UNIQUE_DEVICE_IDENTIFIERS,
        catalog.TIME_POINT_TYPE,
        catalog.SOURCE_IMAGE_FOR_SEGMENTATION,
        catalog.REFERENCE_POINTS,
        catalog.IMAGE_PURPOSES[0],  # TID 1501 rows 10b-10e and TID 320, all 1-n
        *(catalog.REFERENCE_ITEMS[k][1] for k in VM_N_REFERENCES),
        *(concept for concept, _ in catalog.CODE_EVALUATIONS if code_key(concept) in found),
        *catalog.TEXT_EVALUATIONS,
    ]
    for concept in twice:
        assert found[code_key(concept)] >= 2, concept
    for kind in ReferenceKind:  # and each kind of reference at least once
        assert found[code_key(catalog.REFERENCE_ITEMS[kind][1])] >= 1, kind
    once = [
        catalog.LANGUAGE_OF_CONTENT,
        catalog.COUNTRY_OF_LANGUAGE,
        catalog.IMAGE_LIBRARY,
        catalog.IMAGING_MEASUREMENTS,
        catalog.DERIVED_IMAGING_MEASUREMENTS,
        catalog.QUALITATIVE_EVALUATIONS,
    ]
    assert all(found[code_key(c)] == 1 for c in once)
    every = [  # rows of VM 1 the report writes (at least once)
        catalog.PERSON_OBSERVER_NAME,
        catalog.PERSON_OBSERVER_LOGIN_NAME,
        catalog.PERSON_OBSERVER_ORGANIZATION,
        catalog.PERSON_OBSERVER_ROLE_IN_ORGANIZATION,
        catalog.PERSON_OBSERVER_ROLE_IN_PROCEDURE,
        catalog.IDENTIFIER_WITHIN_PERSON_OBSERVER_ROLE,
        catalog.DEVICE_OBSERVER_UID,
        catalog.DEVICE_OBSERVER_NAME,
        catalog.DEVICE_OBSERVER_MANUFACTURER,
        catalog.DEVICE_OBSERVER_MODEL_NAME,
        catalog.DEVICE_OBSERVER_SERIAL_NUMBER,
        catalog.DEVICE_OBSERVER_PHYSICAL_LOCATION,
        catalog.STATION_AE_TITLE,
        catalog.UNIQUE_DEVICE_IDENTIFIER,
        catalog.DEVICE_DESCRIPTION,
        catalog.ALGORITHM_NAME,
        catalog.ALGORITHM_VERSION,
        catalog.ALGORITHM_MANUFACTURER,
        catalog.ALGORITHM_FAMILY,
        catalog.TRACKING_IDENTIFIER,
        catalog.TRACKING_UID,
        catalog.ACTIVITY_SESSION,
        catalog.SUBJECT_TIME_POINT_IDENTIFIER,
        catalog.PROTOCOL_TIME_POINT_IDENTIFIER,
        catalog.TIME_POINT,
        catalog.TIME_POINT_ORDER,
        catalog.TEMPORAL_OFFSET_FROM_EVENT,
        catalog.TEMPORAL_EVENT_TYPE,
        catalog.FINDING_CATEGORY,
        catalog.FINDING,
        catalog.GEOMETRIC_PURPOSE,
        catalog.MEASUREMENT_METHOD,
        catalog.DERIVATION,
        catalog.REFERENCED_ROI_IDENTIFIER,
        catalog.EQUIVALENT_MEANING,
        catalog.EQUATION,
    ]
    assert [c for c in every if found[code_key(c)] < 2] == []  # a row per group / measurement: at least 2
    assert found[code_key(catalog.SOURCE_SERIES_FOR_SEGMENTATION)] == 1  # VM 1, exclusive of source images


def test_every_row_groups_repeat_their_vm_n_rows(every_row: tuple[ReportSpec, Dataset]) -> None:
    spec, ds = every_row
    templates = Counter(g.template for g in spec.groups)
    assert set(templates.values()) == {2} and len(templates) == 3
    assert {g.template for d in spec.derived_measurements for g in d.groups} == {
        GroupTemplate.PLANAR_ROI,
        GroupTemplate.VOLUMETRIC_ROI,
    }
    for item, group in zip(group_items(ds), spec.all_groups, strict=True):
        assert item.ContentTemplateSequence[0].TemplateIdentifier == group.template.value
        mine = children(item)
        assert len(named(mine, catalog.FINDING_SITE)) == 2
        assert_sites(item, group.finding_sites)
        assert len(named(mine, catalog.TIME_POINT_TYPE)) == 2
        assert len(named(mine, catalog.REFERENCE_ITEMS[ReferenceKind.VISUAL_EXPLANATION][1])) == 2
        nums = measurement_items(item)
        assert len(nums) == 3
        for num, measurement in zip(nums, group.measurements, strict=True):
            assert_sites(num, measurement.finding_sites)
            modifiers = modifiers_of(num)  # $ModType rows, besides the finding sites' own modifiers
            assert [(m.ValueType, value(m)) for m in modifiers] == [
                ("CODE", code_key(m.value)) for m in measurement.modifiers
            ]
            assert len(modifiers) == 2
        first = children(nums[0])
        inferred = [c for c in first if c.RelationshipType == "INFERRED FROM"]
        assert Counter(c.ValueType for c in inferred if "ValueType" in c) >= Counter(
            {"NUM": 2, "CODE": 2, "TEXT": 3, "COMPOSITE": 1}
        )
        by_reference = [c for c in children(nums[2]) if "ReferencedContentItemIdentifier" in c]
        targets = [resolve(ds, c) for c in by_reference]
        assert [t.ValueType for t in targets[:2]] == ["NUM", "NUM"]  # R-INFERRED FROM NUM parameters
        assert targets[0] is nums[0] and targets[1] is nums[1]
        assert nums[2].MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "hnsf'U"
        assert not nums[1].MeasuredValueSequence and "NumericValueQualifierCodeSequence" in nums[1]
        not_evaluations = {code_key(c) for c in (catalog.FINDING, catalog.FINDING_CATEGORY, catalog.GEOMETRIC_PURPOSE)}
        evaluations = [
            c
            for c in mine
            if c.RelationshipType == "CONTAINS" and c.ValueType in ("CODE", "TEXT") and name(c) not in not_evaluations
        ]
        assert Counter(e.ValueType for e in evaluations) == Counter({"CODE": 2, "TEXT": 2})
        for evaluation in (e for e in evaluations if e.ValueType == "CODE"):
            assert len(modifiers_of(evaluation)) == 2


def modifiers_of(item: Dataset) -> list[Dataset]:
    """$ModType / $QualModType concept modifiers (a Laterality, a Topographical modifier) of an item."""
    kinds = {code_key(catalog.LATERALITY), code_key(catalog.TOPOGRAPHICAL_MODIFIER)}
    return [c for c in children(item) if c.RelationshipType == "HAS CONCEPT MOD" and name(c) in kinds]


def test_every_row_references(every_row: tuple[ReportSpec, Dataset]) -> None:
    spec, ds = every_row
    items = list(walk(ds))
    segment = one(items, catalog.REFERENCE_ITEMS[ReferenceKind.REFERENCED_SEGMENT][1])
    assert ints(segment.ReferencedSOPSequence[0].ReferencedSegmentNumber) == [2, 5]
    frame = one(items, catalog.REFERENCE_ITEMS[ReferenceKind.REFERENCED_SEGMENTATION_FRAME][1])
    assert ints(frame.ReferencedSOPSequence[0].ReferencedSegmentNumber) == [1, 3]
    assert ints(frame.ReferencedSOPSequence[0].ReferencedFrameNumber) == [11, 12]
    # R-SELECTED FROM: a SCOORD whose image is a by-reference link to an Image Library entry
    library = one(children(ds), catalog.IMAGE_LIBRARY)
    entries = [id(e) for e in walk(library) if e.get("ValueType") == "IMAGE"]
    selected_by_reference = [
        c
        for i in items
        if i.get("ValueType") == "SCOORD"
        for c in children(i)
        if "ReferencedContentItemIdentifier" in c
    ]
    assert len(selected_by_reference) >= 2
    assert all(c.RelationshipType == "SELECTED FROM" and id(resolve(ds, c)) in entries for c in selected_by_reference)
    # TID 1420: R-INFERRED FROM the TID 1410 (first NUM) and TID 1411 (second NUM) groups
    derived = one(children(ds), catalog.DERIVED_IMAGING_MEASUREMENTS)
    nums = [c for c in children(derived) if c.ValueType == "NUM"]
    assert len(nums) == 2
    for num, template in zip(nums, ("1410", "1411"), strict=True):
        targets = [resolve(ds, c) for c in children(num) if "ReferencedContentItemIdentifier" in c]
        assert len(targets) == 2
        assert all(name(t) == code_key(catalog.MEASUREMENT_GROUP) for t in targets)
        assert {t.ContentTemplateSequence[0].TemplateIdentifier for t in targets} == {template}
        inline = named(children(num), catalog.MEASUREMENT_GROUP)
        assert {g.ContentTemplateSequence[0].TemplateIdentifier for g in inline} == {template}
    # TID 4019 under each of the three containers (rows 6b, 10b, 12b)
    for container in (
        catalog.IMAGING_MEASUREMENTS,
        catalog.DERIVED_IMAGING_MEASUREMENTS,
        catalog.QUALITATIVE_EVALUATIONS,
    ):
        mine = children(one(children(ds), container))
        assert len(named(mine, catalog.ALGORITHM_PARAMETERS)) == 2
        assert len(named(mine, catalog.ALGORITHM_NAME)) == 2  # TEXT and CODE
    # every referenced instance is in the evidence, without frame or segment subsets
    listed = {
        sop.ReferencedSOPInstanceUID
        for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence")
        for study in ds.get(keyword, [])
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }
    assert listed == {i.sop_instance_uid for i in spec.referenced_instances()}
    assert "PertinentOtherEvidenceSequence" in ds
    assert_float32_decimals(ds, spec)


def test_every_row_observer_context(every_row: tuple[ReportSpec, Dataset]) -> None:
    spec, ds = every_row
    blocks = observer_blocks(ds)
    assert [value(b[0]) for b in blocks] == [code_key(catalog.OBSERVER_PERSON)] * 2 + [
        code_key(catalog.OBSERVER_DEVICE)
    ] * 2
    for block, person in zip(blocks[:2], spec.person_observers, strict=True):
        role = one(block, catalog.PERSON_OBSERVER_ROLE_IN_PROCEDURE)
        assert role.RelationshipType == "HAS OBS CONTEXT"
        [identifier] = children(role)
        assert (identifier.RelationshipType, name(identifier)) == (
            "HAS CONCEPT MOD",
            code_key(catalog.IDENTIFIER_WITHIN_PERSON_OBSERVER_ROLE),
        )
        assert identifier.TextValue == person.identifier_within_role
    for block in blocks[2:]:
        assert len(named(block, catalog.DEVICE_ROLE_IN_PROCEDURE)) == 2
        assert len(named(block, catalog.UNIQUE_DEVICE_IDENTIFIERS)) == 2
    language = one(children(ds), catalog.LANGUAGE_OF_CONTENT)
    [country] = children(language)
    assert value(country) == code_key(catalog.COUNTRIES[0])
