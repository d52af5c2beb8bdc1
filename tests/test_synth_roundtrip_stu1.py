"""Round trip under `ig_version=stu1`: `map_sr(write_sr(spec), stu1)` gives back what the spec says, in the
post-ballot structure (NOTES §8.1): image references in `derivedFrom`, tracking ids on the finding-site
BodyStructure, `bodySite` for a bare site, the source SR content item of every Observation UID and the source
image for segmentation of a group. Expectations come from the spec, with the ballot round trip's helpers.
Header attributes the generator does not write (UDI Sequence, Participant Sequence, Source image for
segmentation items) are added to its data set here, and read by both readers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import orjson
import pytest
from fhir.resources import get_fhir_model_class
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from test_synth_roundtrip import (
    IG,
    SEEDS,
    SELECTION_PROFILE,
    SOP_CLASS_SYSTEM,
    SYSTEMS,
    check_common,
    check_device,
    check_selection,
    coding,
    decimal_tuple,
    exact_value,
    expected_items,
    references_in,
    ucum,
)

from sr2fhir_core import IgVersion, MappingOptions, MappingResult, dumps_json, map_sr
from sr2fhir_core.options import Reader
from sr2fhir_core.reading import read_document
from sr2fhir_core.tid1500.model import ImageReferenceKind, ImageReferencePurpose
from sr2fhir_core.tid1500.parse import parse_report
from sr2fhir_synth import build_dataset, random_spec, write_sr
from sr2fhir_synth.spec import (
    FindingSite,
    ImageReference,
    Measurement,
    MeasurementGroup,
    ReferencedInstance,
    ReferenceKind,
    ReportSpec,
)
from sr2fhir_synth.writer import encode_dataset

STU1 = MappingOptions(ig_version=IgVersion.STU1)
SOURCE_SR = IG + "source-sr-content-item"
SOURCE_IMAGE = IG + "source-image-for-segmentation"
SEGMENTATION_KINDS = {
    ReferenceKind.REFERENCED_SEGMENT,
    ReferenceKind.REFERENCED_SEGMENTATION_FRAME,
    ReferenceKind.VOLUME_SURFACE,
}
DCM = SYSTEMS["DCM"]


@dataclass(frozen=True)
class Case:
    seed: int
    spec: ReportSpec
    result: MappingResult
    ballot: MappingResult

    @property
    def by_ref(self) -> dict[str, dict]:
        return {f"{r['resourceType']}/{r['id']}": r for r in self.result.resources}

    def resolve(self, reference: dict) -> dict:
        return self.by_ref[reference["reference"]]


BARE_SITE_SEEDS = (70, 107)
"""Seeds beyond SEEDS whose groups have a finding site with no modifier and no tracking id (rare)."""


def _source_series_variants() -> list[ReportSpec]:
    """The generator names a source series only beside a referenced segment; these specs put one in a
    group with a volume surface, and in a group with no segmentation selection at all."""
    wanted = {
        "surface": lambda kinds: ReferenceKind.VOLUME_SURFACE in kinds,
        "no segmentation": lambda kinds: not kinds & SEGMENTATION_KINDS,
    }
    variants = []
    for seed in SEEDS:
        spec = random_spec(seed)
        series = next(iter(i.series_instance_uid for i in spec.referenced_instances()), None)
        for index, group in enumerate(spec.groups):
            kinds = {r.kind for r in group.image_references}
            matched = [name for name, test in wanted.items() if test(kinds)]
            if series is None or group.source_series_uid is not None or not matched:
                continue
            for name in matched:
                del wanted[name]
            groups = list(spec.groups)
            groups[index] = dataclasses.replace(group, source_series_uid=series)
            variants.append(dataclasses.replace(spec, groups=tuple(groups)))
            break
    assert not wanted, wanted
    return variants


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    specs = [(seed, random_spec(seed)) for seed in (*SEEDS, *BARE_SITE_SEEDS)]
    specs += [(-1, spec) for spec in _source_series_variants()]
    out = []
    for seed, spec in specs:
        data = write_sr(spec)
        out.append(Case(seed, spec, map_sr(data, STU1), map_sr(data)))
    return out


def profile(resource: dict) -> str:
    return resource["meta"]["profile"][0]


def derived_from(case: Case, observation: dict, *profiles: str) -> list[dict]:
    """`derivedFrom` targets with one of the profiles, or the image selections when none is given."""
    targets = [case.resolve(r) for r in observation.get("derivedFrom", [])]
    if profiles:
        return [t for t in targets if profile(t) in profiles]
    return [
        t for t in targets if t["resourceType"] == "ImagingSelection" and profile(t) not in (SOURCE_SR, SOURCE_IMAGE)
    ]


def check_source_item(case: Case, observation: dict, observation_uid: str | None) -> dict | None:
    sources = derived_from(case, observation, SOURCE_SR)
    if observation_uid is None:
        assert sources == []
        return None
    [source] = sources
    spec = case.spec
    assert source["code"]["coding"] == [{"system": DCM, "code": "111040", "display": "Original Source"}]
    assert source["seriesUid"] == spec.instance.series_instance_uid
    assert source["studyUid"] == spec.study.study_instance_uid
    [instance] = source["instance"]
    assert instance["uid"] == spec.instance.sop_instance_uid
    assert instance["sopClass"]["system"] == SOP_CLASS_SYSTEM
    assert instance["sopClass"]["code"] == spec.instance.sop_class.value
    assert instance["subset"] == [observation_uid]
    return source


def needs_structure(site: FindingSite | None, group: MeasurementGroup | None) -> bool:
    tracking = group is not None and bool(group.tracking_identifier or group.tracking_uid)
    return tracking or (site is not None and (site.laterality is not None or site.topographical_modifier is not None))


def check_site(case: Case, observation: dict, site: FindingSite | None, group: MeasurementGroup | None) -> None:
    """STU1: bodySite for a bare site; a BodyStructure for modifiers or (groups) tracking ids."""
    if site is None and not needs_structure(None, group):
        assert "bodySite" not in observation and "bodyStructure" not in observation
        return
    if not needs_structure(site, group):
        assert site is not None  # a missing site with no tracking id returned above
        assert observation["bodySite"] == {"coding": [coding(case.spec, site.site)]}
        assert "bodyStructure" not in observation
        return
    assert "bodySite" not in observation
    body = case.resolve(observation["bodyStructure"])
    assert profile(body) == IG + "dicom-sr-finding-site"
    [structure] = body["includedStructure"]
    if site is not None:
        assert structure["structure"]["coding"] == [coding(case.spec, site.site)]
        if site.laterality is not None:
            assert structure["laterality"]["coding"] == [coding(case.spec, site.laterality)]
        if site.topographical_modifier is not None:
            assert structure["qualifier"] == [{"coding": [coding(case.spec, site.topographical_modifier)]}]
    else:
        assert group is not None  # no site: the structure is there for the group's tracking ids
        assert structure["structure"] == {"text": group.tracking_identifier or group.tracking_uid}
    tracking = {i["type"]["coding"][0]["code"]: i["value"] for i in body.get("identifier", [])}
    expected = {}
    if group is not None and group.tracking_identifier:
        expected["112039"] = group.tracking_identifier
    if group is not None and group.tracking_uid:
        expected["112040"] = f"urn:oid:{group.tracking_uid}"
    assert tracking == expected


def batches(references: list[ImageReference]) -> list[list[ImageReference]]:
    """The items that share one selection (docs/mapping-decisions.md §14): one per profile, 3D regions per frame
    of reference, items without a profile alone; first appearance first."""
    shared: dict[object, list[ImageReference]] = {}
    for index, reference in enumerate(references):
        alone = reference.kind is ReferenceKind.SOURCE_OF_MEASUREMENT
        shared.setdefault(index if alone else (reference.kind, reference.frame_of_reference_uid), []).append(reference)
    return list(shared.values())


def measurement_batches(group: MeasurementGroup, measurement: Measurement) -> list[list[ImageReference]]:
    """A measurement's selections: its own new items by profile, which take the place of the group's of the same
    profile (inherited or named by reference); then the rest of the group's."""
    group_batches = batches(list(group.image_references))
    own = batches(list(measurement.image_references))
    fresh = {b[0].kind for b in own} - {ReferenceKind.SOURCE_OF_MEASUREMENT}
    named = [
        next(b for b in group_batches if any(group.image_references[i] is r for r in b))
        for i in measurement.group_references
    ]
    mine = [b for b in named if b[0].kind not in fresh] + own
    kinds = {b[0].kind for b in mine} - {ReferenceKind.SOURCE_OF_MEASUREMENT}
    result: list[list[ImageReference]] = []
    for batch in [b for b in group_batches if b[0].kind not in kinds] + mine:
        if not any(batch is b for b in result):
            result.append(batch)
    return result


def instance_of(reference: ImageReference) -> ReferencedInstance:
    """The instance of a reference in a batch whose first item names one (a batch is one kind)."""
    assert reference.instance is not None
    return reference.instance


def _signature(selection: dict) -> tuple:
    uids = tuple(i["uid"] for i in selection.get("instance", []))
    return profile(selection), uids, selection.get("frameOfReferenceUid")


def check_selections(case: Case, observation: dict, expected: list[list[ImageReference]]) -> list[dict]:
    """Each batch of items is one selection (any order), an instance entry per item."""
    selections = derived_from(case, observation)
    assert len(selections) == len(expected)
    by_signature = {_signature(s): s for s in selections}
    for batch in expected:
        uids = tuple(r.instance.sop_instance_uid for r in batch if r.instance is not None)
        selection = by_signature[SELECTION_PROFILE[batch[0].kind], uids, batch[0].frame_of_reference_uid]
        for index, reference in enumerate(batch):
            view = dict(selection)
            if reference.instance is not None:
                view["instance"] = [selection["instance"][index]]
                # A shared selection names a series (and study) only when its items agree.
                if len({instance_of(r).series_instance_uid for r in batch}) > 1:
                    assert "seriesUid" not in selection
                    view["seriesUid"] = reference.instance.series_instance_uid
                if len({instance_of(r).study_instance_uid for r in batch}) > 1:
                    view["studyUid"] = reference.instance.study_instance_uid
            check_selection(case, view, reference)
    return selections


def check_group_selections(case: Case, observation: dict, group: MeasurementGroup, selections: list[dict]) -> None:
    """The group's selections carry its site and source item; segmentations also its source image."""
    site = {"reference": observation["bodyStructure"]} if "bodyStructure" in observation else None
    if site is None and "bodySite" in observation:
        site = {"concept": observation["bodySite"]}
    source = [r for r in observation.get("derivedFrom", []) if profile(case.resolve(r)) == SOURCE_SR]
    images = [
        s for s in case.result.resources if s["resourceType"] == "ImagingSelection" and profile(s) == SOURCE_IMAGE
    ]
    firsts = [b[0] for b in batches(list(group.image_references))]
    segmentations = [s for s, r in zip(selections, firsts, strict=True) if r.kind in SEGMENTATION_KINDS]
    group_images = []
    for selection, reference in zip(selections, firsts, strict=True):
        assert selection.get("bodySite") == site
        focus = selection.get("focus", [])
        own_images = [case.resolve(f) for f in focus if profile(case.resolve(f)) == SOURCE_IMAGE]
        if reference.kind in SEGMENTATION_KINDS and group.source_series_uid:
            [image] = own_images
            group_images.append(image)
        else:
            assert own_images == []
        assert [f for f in focus if profile(case.resolve(f)) == SOURCE_SR] == source
    if group.source_series_uid is None:
        return
    in_derived_from = derived_from(case, observation, SOURCE_IMAGE)
    # Named from the segmentations' focus; the group holds it itself only when there is none.
    assert len(in_derived_from) == (0 if segmentations else 1)
    [image] = {i["id"]: i for i in group_images + in_derived_from}.values()
    assert image in images
    assert image["code"]["coding"] == [{"system": DCM, "code": "121233", "display": "Source image for segmentation"}]
    assert image["seriesUid"] == group.source_series_uid
    expected = {
        i.sop_instance_uid for i in case.spec.referenced_instances() if i.series_instance_uid == group.source_series_uid
    }
    assert {i["uid"] for i in image.get("instance", [])} == expected
    assert image.get("bodySite") == site


# --- Tests --------------------------------------------------------------------------------------------------


def test_rows_are_the_ballot_rows(cases: list[Case]) -> None:
    for case in cases:
        assert case.result.mapped, case.seed
        assert case.result.rows == case.ballot.rows, case.seed
        assert case.result.record.measurements == case.ballot.record.measurements


def test_groups(cases: list[Case]) -> None:
    checked = 0
    for case in cases:
        spec = case.spec
        rows = case.result.rows["measurements"] + case.result.rows["qualitative_evaluations"]
        for item in expected_items(spec).groups:
            group = item.group
            members = [r for r in rows if r["group_index"] == item.index]
            [observation_id] = {r["group_observation_id"] for r in members}
            observation = case.by_ref[f"Observation/{observation_id}"]
            assert profile(observation) == IG + "imaging-measurement-group"
            assert observation["category"][0]["coding"][0]["code"] == "125007"
            assert "focus" not in observation
            if group.finding_category is not None:
                assert observation["code"]["coding"] == [coding(spec, group.finding_category)]
            if group.finding is not None:
                assert observation["valueCodeableConcept"]["coding"] == [coding(spec, group.finding)]
            if group.method is not None:
                assert observation["method"]["coding"] == [coding(spec, group.method)]
            check_common(case, observation, group.observation_uid, group.observation_datetime)
            check_device(case, observation, item.algorithm)
            check_site(case, observation, group.finding_site, group)
            selections = check_selections(case, observation, batches(list(group.image_references)))
            check_source_item(case, observation, group.observation_uid)
            check_group_selections(case, observation, group, selections)
            assert observation["hasMember"] == [{"reference": f"Observation/{r['observation_id']}"} for r in members]
            checked += 1
    assert checked > 50


def test_measurements(cases: list[Case]) -> None:
    for case in cases:
        spec = case.spec
        expected = expected_items(spec).measurements
        for row, item in zip(case.result.rows["measurements"], expected, strict=True):
            m, group = item.measurement, item.group
            observation = case.by_ref[f"Observation/{row['observation_id']}"]
            assert profile(observation) == IG + (
                "derived-imaging-measurement" if item.derived else "imaging-measurement"
            )
            assert "focus" not in observation
            assert observation["code"]["coding"] == [coding(spec, m.concept)]
            if m.value is not None:
                assert decimal_tuple(str(exact_value(observation))) == decimal_tuple(m.value)
                assert m.unit is not None  # a NUM with a value has units
                assert observation["valueQuantity"]["code"] == ucum(m.unit)
            else:
                assert "valueQuantity" not in observation and "dataAbsentReason" in observation
            if m.derivation is not None:
                assert observation["component"][0]["valueCodeableConcept"]["coding"] == [coding(spec, m.derivation)]
            if item.method is not None:
                assert observation["method"]["coding"] == [coding(spec, item.method)]
            check_common(case, observation, m.observation_uid, m.observation_datetime)
            check_device(case, observation, item.algorithm, equipment_only=item.derived)
            check_source_item(case, observation, m.observation_uid)
            if item.derived:
                assert "category" in observation  # derived keeps its (optional) category
                assert "bodyStructure" not in observation and "bodySite" not in observation
                derived = next(d for d in spec.derived_measurements if d.measurement is m)
                groups = derived_from(case, observation, IG + "imaging-measurement-group")
                assert len(groups) == len(derived.groups)
                sources = derived_from(case, observation, SOURCE_SR)
                assert len(observation["derivedFrom"]) == len(groups) + len(sources)
            else:
                assert "category" not in observation  # STU1 removed the fixed "Measurement Group" category
                assert group is not None  # only derived measurements have no group
                own_site = m.finding_site is not None and m.finding_site != group.finding_site
                check_site(case, observation, item.site, None if own_site else group)
                check_selections(case, observation, measurement_batches(group, m))


def test_qualitative_evaluations(cases: list[Case]) -> None:
    for case in cases:
        spec = case.spec
        expected = expected_items(spec).evaluations
        for row, item in zip(case.result.rows["qualitative_evaluations"], expected, strict=True):
            e, group = item.evaluation, item.group
            observation = case.by_ref[f"Observation/{row['observation_id']}"]
            assert profile(observation) == IG + "imaging-qualitative-evaluation"
            assert observation["code"]["coding"] == [coding(spec, e.concept)]
            value = observation["valueCodeableConcept"]
            assert value == ({"coding": [coding(spec, e.value_code)]} if e.value_code else {"text": e.value_text})
            check_common(case, observation, e.observation_uid, e.observation_datetime)
            check_device(case, observation, item.algorithm)
            check_source_item(case, observation, e.observation_uid)
            check_selections(case, observation, batches(list(group.image_references)) if group else [])
            assert "bodyStructure" not in observation and "bodySite" not in observation


def test_every_resource_validates_and_every_reference_resolves(cases: list[Case]) -> None:
    for case in cases:
        by_ref = case.by_ref
        assert len(by_ref) == len(case.result.resources)
        for resource in case.result.resources:
            get_fhir_model_class(resource["resourceType"]).model_validate(orjson.loads(dumps_json(resource)))
            for reference in references_in(resource):
                assert reference in by_ref, (case.seed, resource["resourceType"], reference)
            for key in ("focus", "hasMember", "derivedFrom", "performer", "basedOn", "partOf"):
                targets = [r["reference"] for r in resource.get(key, [])]
                assert len(targets) == len(set(targets)), (case.seed, resource["id"], key)
            assert profile(resource) != IG + "dicom-sr-tracking-identifiers"


def test_features_stu1_changes_are_exercised(cases: list[Case]) -> None:
    """The seeds reach every STU1 branch: bare sites, modifiers, tracking ids without a site, Observation
    UIDs on every kind, source series with and without a segmentation selection."""
    found = set()
    for case in cases:
        for resource in case.result.resources:
            kind = profile(resource).removeprefix(IG)
            if resource["resourceType"] == "Observation":
                if "bodySite" in resource:
                    found.add(f"bodySite:{kind}")
                if derived_from(case, resource, SOURCE_SR):
                    found.add(f"source-sr:{kind}")
                if derived_from(case, resource, SOURCE_IMAGE):
                    found.add("source-image:in-group")
            if kind == "dicom-sr-finding-site" and "coding" not in resource["includedStructure"][0]["structure"]:
                found.add("tracking-without-site")
            if resource["resourceType"] == "ImagingSelection" and any(
                profile(case.resolve(f)) == SOURCE_IMAGE for f in resource.get("focus", [])
            ):
                found.add(f"source-image:{kind}")
    assert found >= {
        "bodySite:imaging-measurement-group",
        "bodySite:imaging-measurement",
        "source-sr:imaging-measurement-group",
        "source-sr:imaging-measurement",
        "source-sr:imaging-qualitative-evaluation",
        "source-sr:derived-imaging-measurement",
        "source-image:referenced-segment",
        "source-image:volume-surface",
        "source-image:in-group",
        "tracking-without-site",
    }, found


def test_same_spec_gives_identical_output(cases: list[Case]) -> None:
    for case in cases[:8]:
        again = map_sr(write_sr(case.spec), STU1)
        assert dumps_json(again.resources) == dumps_json(case.result.resources)


# --- Header attributes and items the generator does not write ----------------------------------------------

UDI = "(01)00844588003288(17)141120(10)7654321D(21)10987654d329"


def _with_header(spec: ReportSpec, *, participant_matches_equipment: bool = False) -> bytes:
    """The spec's data set plus a UDI Sequence, a Participant Sequence (a person and a device) and, in the
    first group, a "Source image for segmentation" IMAGE item."""
    ds = build_dataset(spec)
    udi = Dataset()
    udi.UniqueDeviceIdentifier = UDI
    ds.UDISequence = Sequence([udi])
    person = Dataset()
    person.ParticipationType = "ENT"
    person.ObserverType = "PSN"
    person.PersonName = "Participant^Pat"
    person.ParticipationDateTime = "20240102030405"
    device = Dataset()
    device.ParticipationType = "SRC"
    device.ObserverType = "DEV"
    device.ParticipationDateTime = "20240102030405"
    if participant_matches_equipment:
        device.DeviceUID = spec.equipment.device_uid or "1.2.3"
        device.Manufacturer = spec.equipment.manufacturer
        device.ManufacturerModelName = spec.equipment.model_name or ""
    else:
        device.DeviceUID = "1.2.826.0.1.3680043.8.498.99"
        device.Manufacturer = "Participant Maker"
        device.ManufacturerModelName = "Participant Model"
    ds.ParticipantSequence = Sequence([person, device])
    group = _first_group(ds)
    if group is not None:
        image = Dataset()
        image.RelationshipType = "CONTAINS"
        image.ValueType = "IMAGE"
        concept = Dataset()
        concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = (
            "121233",
            "DCM",
            "Source image for segmentation",
        )
        image.ConceptNameCodeSequence = Sequence([concept])
        referenced = Dataset()
        referenced.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        referenced.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.8.498.77"
        image.ReferencedSOPSequence = Sequence([referenced])
        group.ContentSequence.append(image)
    return encode_dataset(ds)


def _first_group(ds: Dataset) -> Dataset | None:
    for container in ds.ContentSequence:
        if container.ConceptNameCodeSequence[0].CodeValue == "126010":
            for item in getattr(container, "ContentSequence", []):
                if item.ConceptNameCodeSequence[0].CodeValue == "125007":
                    return item
    return None


@pytest.mark.parametrize("reader", [Reader.AUTO, Reader.PYDICOM])
def test_udi_participants_and_source_images(reader: Reader) -> None:
    spec = next(s for s in map(random_spec, SEEDS) if s.groups and s.equipment.device_uid)
    data = _with_header(spec)
    result = map_sr(data, MappingOptions(ig_version=IgVersion.STU1, reader=reader))
    assert result.mapped, result.record
    by_ref = {f"{r['resourceType']}/{r['id']}": r for r in result.resources}
    [equipment] = [r for r in result.resources if profile(r) == IG + "dicom-general-equipment"]
    assert equipment["udiCarrier"] == [
        {"deviceIdentifier": "00844588003288", "issuer": "http://hl7.org/fhir/NamingSystem/gs1-di", "carrierHRF": UDI}
    ]
    [participant] = [r for r in result.resources if profile(r) == IG + "dicom-participant-device"]
    assert participant["identifier"][0]["value"] == "urn:oid:1.2.826.0.1.3680043.8.498.99"
    assert (participant["manufacturer"], participant["displayName"]) == ("Participant Maker", "Participant Model")
    [person] = [r for r in result.resources if profile(r) == IG + "dicom-participant-person"]
    assert person["name"] == [{"family": "Participant", "given": ["Pat"]}]
    observations = [r for r in result.resources if r["resourceType"] == "Observation"]
    for observation in observations:
        assert {"reference": f"Practitioner/{person['id']}"} in observation["performer"]
        device = by_ref[observation["device"]["reference"]]
        if profile(observation) == IG + "derived-imaging-measurement":
            assert profile(device) != IG + "dicom-participant-device"  # not allowed by its profile
        elif profile(device) != IG + "algorithm-identification":
            assert device is participant  # the participant device overrides the equipment (Document IE map)
        else:
            assert by_ref[device["parent"]["reference"]] is equipment  # STU1: parent only GeneralEquipment
    [image] = [r for r in result.resources if profile(r) == SOURCE_IMAGE]
    assert "1.2.826.0.1.3680043.8.498.77" in [i["uid"] for i in image["instance"]]
    # Under the ballot the same item is a base-profile selection and participants are not mapped.
    ballot = map_sr(data, MappingOptions(reader=reader))
    assert not any(profile(r) in (SOURCE_IMAGE, IG + "dicom-participant-device") for r in ballot.resources)
    assert any(profile(r) == IG + "observation-imaging-selection" for r in ballot.resources)


@pytest.mark.parametrize("reader", [Reader.AUTO, Reader.PYDICOM])
def test_parser_names_the_source_image_for_segmentation(reader: Reader) -> None:
    """The TID 1500 model, not the FHIR layer, says which image reference is a "Source image for segmentation"
    (121233, TID 1411): exactly the IMAGE item added to the first group, whatever other kind-OTHER references the
    report has; and a report without such an item has none."""
    spec = next(s for s in map(random_spec, SEEDS) if s.groups and s.equipment.device_uid)
    purpose = ImageReferencePurpose.SOURCE_IMAGE_FOR_SEGMENTATION
    report = parse_report(read_document(_with_header(spec), reader))
    marked = [r for g in report.all_groups for r in g.image_references if r.purpose is not None]
    assert [(r.purpose, r.kind, r.position[:-1]) for r in marked] == [
        (purpose, ImageReferenceKind.OTHER, report.groups[0].position)
    ]
    assert [i.sop_instance_uid for i in marked[0].instances] == ["1.2.826.0.1.3680043.8.498.77"]
    plain = parse_report(read_document(write_sr(spec), reader))
    references = [
        r
        for g in plain.all_groups
        for r in (*g.image_references, *(r for m in g.measurements for r in m.image_references))
    ]
    assert references and all(r.purpose is None for r in references)


def test_participant_that_is_the_equipment_adds_no_device() -> None:
    spec = next(s for s in map(random_spec, SEEDS) if s.groups and s.equipment.device_uid)
    result = map_sr(_with_header(spec, participant_matches_equipment=True), STU1)
    assert not [r for r in result.resources if profile(r) == IG + "dicom-participant-device"]
    [equipment] = [r for r in result.resources if profile(r) == IG + "dicom-general-equipment"]
    devices = {r["device"]["reference"] for r in result.resources if r["resourceType"] == "Observation"}
    assert f"Device/{equipment['id']}" in devices


@pytest.mark.parametrize("reader", [Reader.AUTO, Reader.PYDICOM])
def test_generated_participants_round_trip(reader: Reader) -> None:
    """random_spec(participants=True) adds a Participant Sequence and changes nothing else of the report; under
    STU1 its person and device become dicom-participant-person and dicom-participant-device."""
    for seed in range(0, 40, 8):
        spec = random_spec(seed, participants=True)
        assert dataclasses.replace(spec, participants=()) == random_spec(seed)
        person, device = spec.participants
        result = map_sr(write_sr(spec), MappingOptions(ig_version=IgVersion.STU1, reader=reader))
        assert result.mapped, result.record
        [participant] = [r for r in result.resources if profile(r) == IG + "dicom-participant-device"]
        assert participant["identifier"][0]["value"] == f"urn:oid:{device.device_uid}"
        assert (participant["manufacturer"], participant["displayName"]) == (device.manufacturer, device.model_name)
        [practitioner] = [r for r in result.resources if profile(r) == IG + "dicom-participant-person"]
        assert practitioner["name"][0]["family"] in (person.person_name or "")
        for observation in (r for r in result.resources if r["resourceType"] == "Observation"):
            assert {"reference": f"Practitioner/{practitioner['id']}"} in observation["performer"]
