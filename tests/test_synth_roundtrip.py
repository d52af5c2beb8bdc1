"""Round trip: `map_sr(write_sr(spec))` gives back what the spec says, in the rows and in FHIR.

The spec (sr2fhir_synth) is the truth; every expectation below is computed from it with this module's own
small tables (code systems from the IG notes §6.2, profile ids from §3.7), never by calling the core's
helpers. Specs come from `random_spec` over SEEDS, mapped once per session.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, DecimalTuple
from typing import Protocol

import orjson
import pytest
from fhir.resources import get_fhir_model_class

from sr2fhir_core import MappingResult, dumps_json, map_sr
from sr2fhir_synth import ENCODINGS, Encoding, count_content_items, random_spec, write_sr
from sr2fhir_synth import catalog as synth_catalog
from sr2fhir_synth.spec import (
    Algorithm,
    Code,
    FindingSite,
    GroupTemplate,
    ImageReference,
    Measurement,
    MeasurementGroup,
    QualitativeEvaluation,
    ReferenceKind,
    ReportSpec,
    SRStorage,
)

SEEDS = range(40)

SYSTEMS = {
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "SCT": "http://snomed.info/sct",
    "UCUM": "http://unitsofmeasure.org",
    "UMLS": "http://terminology.hl7.org/CodeSystem/umls",
    "NCIt": "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
    "RADLEX": "http://radlex.org",
    "RFC5646": "urn:ietf:bcp:47",
}
"""Coding Scheme Designator → FHIR system (IG notes §6.2); private schemes come from the SR's own
Coding Scheme Identification Sequence."""

UCUM_CORRECTIONS = {"{SUVbw}g/ml": "g/ml{SUVbw}"}
"""The catalog's units that are not valid UCUM → the code the mapping writes (docs/units.md): SUV units as
PS3.16 CID 85 wrote them before the annotation moved to the end, and as producers still write them."""


def ucum(unit: Code | None) -> str | None:
    return UCUM_CORRECTIONS.get(unit.value, unit.value) if unit is not None else None


IG = "http://hl7.org/fhir/uv/dicom-sr/StructureDefinition/"
SOP_CLASS_SYSTEM = "https://dicom.nema.org/medical/dicom/current/output/chtml/part04/sect_B.5"
OBSERVATION_UID_TYPE = "observation-uid"
DATA_ABSENT = {
    "114000": "not-a-number",
    "114001": "negative-infinity",
    "114006": "error",
    "114007": "not-performed",
}
"""CID 42 qualifier → data-absent-reason, the project's recorded decision (docs/mapping-decisions.md)."""
SELECTION_PROFILE = {kind: IG + kind.value for kind in ReferenceKind} | {
    ReferenceKind.SOURCE_OF_MEASUREMENT: IG + "observation-imaging-selection"
}
REGION_TYPE = {"POINT": "point", "POLYLINE": "polyline", "CIRCLE": "circle", "ELLIPSE": "ellipse"}


# --- Session fixtures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    seed: int
    spec: ReportSpec
    data: bytes
    result: MappingResult

    @property
    def by_ref(self) -> dict[str, dict]:
        return {f"{r['resourceType']}/{r['id']}": r for r in self.result.resources}

    def resolve(self, reference: dict) -> dict:
        return self.by_ref[reference["reference"]]


class MappedCase(Protocol):
    """What the shared checks below need of a case (the STU1 round trip passes its own cases)."""

    @property
    def spec(self) -> ReportSpec: ...

    def resolve(self, reference: dict) -> dict: ...


@pytest.fixture(scope="session")
def cases() -> list[Case]:
    out = []
    for seed in SEEDS:
        spec = random_spec(seed)
        data = write_sr(spec)
        out.append(Case(seed, spec, data, map_sr(data)))
    return out


# --- Expected values from the spec --------------------------------------------------------------------------


def system(spec: ReportSpec, scheme: str) -> str:
    declared = {s.designator: s.url or f"urn:oid:{s.uid}" for s in spec.coding_schemes}
    return declared.get(scheme) or SYSTEMS[scheme]


def coding(spec: ReportSpec, code: Code) -> dict:
    return {"system": system(spec, code.scheme), "code": code.value, "display": code.meaning}


def offset(value: str | None) -> str:
    return f"{value[:3]}:{value[3:]}" if value else "+00:00"


def instant(spec: ReportSpec, dt: str | None) -> str:
    """FHIR instant of a DT value (to the second, optional fraction and offset), else of the Content
    Date/Time; without its own offset, the report's Timezone Offset From UTC or +00:00 applies."""
    if dt is None:
        dt = spec.instance.content_date + spec.instance.content_time
    own = dt[-5:] if dt[-5] in "+-" else None
    dt = dt[:-5] if own else dt
    text = f"{dt[:4]}-{dt[4:6]}-{dt[6:8]}T{dt[8:10]}:{dt[10:12]}:{dt[12:14]}{dt[14:]}"
    return text + offset(own or spec.instance.timezone_offset)


def decimal_tuple(text: str) -> DecimalTuple:
    return Decimal(text.strip()).as_tuple()


@dataclass(frozen=True)
class ExpectedMeasurement:
    measurement: Measurement
    group: MeasurementGroup | None
    algorithm: Algorithm | None
    group_index: int | None
    derived: bool

    @property
    def site(self) -> FindingSite | None:
        return self.measurement.finding_site or (self.group.finding_site if self.group else None)

    @property
    def method(self) -> Code | None:
        return self.measurement.method or (self.group.method if self.group else None)

    @property
    def references(self) -> list[ImageReference]:
        """The group's references, then the measurement's own; by-reference links add nothing new."""
        group_refs = list(self.group.image_references) if self.group else []
        return group_refs + list(self.measurement.image_references)


@dataclass(frozen=True)
class ExpectedEvaluation:
    evaluation: QualitativeEvaluation
    group: MeasurementGroup | None
    algorithm: Algorithm | None
    group_index: int | None


@dataclass(frozen=True)
class ExpectedGroup:
    group: MeasurementGroup
    algorithm: Algorithm | None
    index: int


@dataclass(frozen=True)
class Expected:
    measurements: list[ExpectedMeasurement]
    evaluations: list[ExpectedEvaluation]
    groups: list[ExpectedGroup]


def expected_items(spec: ReportSpec) -> Expected:
    """Groups, measurements and evaluations in document order, with the context each inherits: method
    and site from its group; the algorithm from the nearest enclosing TID 4019 (item, group, container or
    the derived NUM a group sits under), never from a sibling container."""
    expected = Expected([], [], [])

    def add_group(group: MeasurementGroup, inherited: Algorithm | None) -> None:
        index = len(expected.groups) + 1
        algorithm = group.algorithm or inherited
        expected.groups.append(ExpectedGroup(group, algorithm, index))
        for m in group.measurements:
            expected.measurements.append(ExpectedMeasurement(m, group, m.algorithm or algorithm, index, False))
        for e in group.qualitative_evaluations:
            expected.evaluations.append(ExpectedEvaluation(e, group, e.algorithm or algorithm, index))

    for group in spec.groups:
        add_group(group, spec.measurements_algorithm)
    for derived in spec.derived_measurements:
        m = derived.measurement
        expected.measurements.append(ExpectedMeasurement(m, None, m.algorithm, None, True))
        for group in derived.groups:
            add_group(group, m.algorithm)
    expected.evaluations.extend(ExpectedEvaluation(e, None, e.algorithm, None) for e in spec.qualitative_evaluations)
    return expected


# --- Helpers over FHIR output ----------------------------------------------------------------------------


def references_in(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                yield item
            else:
                yield from references_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from references_in(item)


def selections_of(case: Case, observation: dict) -> list[dict]:
    """ImagingSelections an Observation points at (ballot: focus; STU1: derivedFrom), in order."""
    refs = observation.get("focus", []) + observation.get("derivedFrom", [])
    return [case.resolve(r) for r in refs if r["reference"].startswith("ImagingSelection/")]


def identifiers_of(case: Case, observation: dict) -> dict[str, str]:
    """Tracking identifier (112039) and UID (112040) on any BodyStructure the Observation points at."""
    found = {}
    for r in observation.get("focus", []) + ([observation["bodyStructure"]] if "bodyStructure" in observation else []):
        if r["reference"].startswith("BodyStructure/"):
            for identifier in case.resolve(r).get("identifier", []):
                found[identifier["type"]["coding"][0]["code"]] = identifier["value"]
    return found


def exact_value(observation: dict) -> Decimal:
    """valueQuantity.value as its JSON text says it, digit for digit."""
    return json.loads(dumps_json(observation), parse_float=Decimal)["valueQuantity"]["value"]


# --- Checks -------------------------------------------------------------------------------------------------


def check_common(case: MappedCase, observation: dict, observation_uid: str | None, dt: str | None) -> None:
    spec = case.spec
    assert observation["status"] == ("preliminary" if spec.instance.preliminary_flag == "PRELIMINARY" else "final")
    patient = case.resolve(observation["subject"])
    assert patient["identifier"][0]["value"] == spec.patient.patient_id
    study = case.resolve(observation["partOf"][0])
    assert study["identifier"][0]["value"] == f"urn:oid:{spec.study.study_instance_uid}"
    if spec.study.accession_number:
        order = case.resolve(observation["basedOn"][0])
        assert order["identifier"][0]["value"] == spec.study.accession_number
    else:
        assert "basedOn" not in observation
    assert observation["issued"] == instant(spec, dt)
    study_start = spec.study.study_date + spec.study.study_time
    assert observation["effectiveDateTime"] == instant(spec, dt or study_start)
    if observation_uid is None:
        assert "identifier" not in observation
    else:
        [identifier] = observation["identifier"]
        assert identifier["type"]["coding"][0]["code"] == OBSERVATION_UID_TYPE
        assert identifier["value"] == f"urn:oid:{observation_uid}"
    performers = [case.resolve(p)["name"][0] for p in observation.get("performer", [])]
    expected_families = [p.name.split("=")[0].split("^")[0] for p in spec.person_observers]
    assert [name.get("family") for name in performers] == expected_families


def check_device(
    case: MappedCase, observation: dict, algorithm: Algorithm | None, *, equipment_only: bool = False
) -> None:
    """The algorithm's Device, else the report's first TID 1004 device observer, else the equipment
    (`equipment_only`: STU1's derived measurements, whose profile names no participant device)."""
    device = case.resolve(observation["device"])
    equipment = case.spec.equipment
    observers = case.spec.device_observers
    if algorithm is None and observers and not equipment_only:
        observer = observers[0]
        assert device["meta"]["profile"][0] in (IG + "dicom-general-equipment", IG + "dicom-participant-device")
        assert device["identifier"][0]["value"] == f"urn:oid:{observer.uid}"
        if observer.name:
            assert device["displayName"] == observer.name
            assert device["name"] == [{"value": observer.name, "type": "user-friendly-name"}]
    elif algorithm is None:
        assert device["meta"]["profile"] == [IG + "dicom-general-equipment"]
        assert device["manufacturer"] == equipment.manufacturer
        assert device.get("displayName") == equipment.model_name
        if equipment.device_uid:
            assert device["identifier"][0]["value"] == f"urn:oid:{equipment.device_uid}"
    else:
        assert device["meta"]["profile"] == [IG + "algorithm-identification"]
        assert device["displayName"] == algorithm.name
        assert device["version"] == [{"value": algorithm.version}]
        assert [p["valueString"] for p in device.get("property", [])] == list(algorithm.parameters)
        assert case.resolve(device["parent"])["manufacturer"] == equipment.manufacturer


def check_site(case: Case, observation: dict, site: FindingSite | None) -> None:
    if site is None:
        assert "bodyStructure" not in observation
        return
    body = case.resolve(observation["bodyStructure"])
    [structure] = body["includedStructure"]
    assert structure["structure"]["coding"] == [coding(case.spec, site.site)]
    if site.laterality is not None:
        assert structure["laterality"]["coding"] == [coding(case.spec, site.laterality)]
    else:
        assert "laterality" not in structure
    if site.topographical_modifier is not None:
        assert structure["qualifier"][0]["coding"] == [coding(case.spec, site.topographical_modifier)]


def check_selection(case: MappedCase, selection: dict, reference: ImageReference) -> None:
    spec = case.spec
    kind = reference.kind
    assert selection["meta"]["profile"] == [SELECTION_PROFILE[kind]]
    assert selection["code"]["coding"][0]["code"] == synth_catalog.REFERENCE_ITEMS[kind][1].value
    assert case.resolve(selection["subject"])["identifier"][0]["value"] == spec.patient.patient_id
    assert case.resolve(selection["derivedFrom"][0])["resourceType"] == "ImagingStudy"
    if reference.frame_of_reference_uid is not None:
        assert selection["frameOfReferenceUid"] == reference.frame_of_reference_uid
    instance = reference.instance
    if instance is None:  # SCOORD3D: the IG carries only the frame of reference in R5
        assert selection["studyUid"] == spec.study.study_instance_uid
        assert "instance" not in selection
        return
    subset: tuple[int, ...] | tuple[str, ...]
    assert selection["studyUid"] == instance.study_instance_uid
    assert selection["seriesUid"] == instance.series_instance_uid
    [entry] = selection["instance"]
    assert entry["uid"] == instance.sop_instance_uid
    assert entry["sopClass"]["system"] == SOP_CLASS_SYSTEM
    assert entry["sopClass"]["code"] == instance.sop_class_uid
    if kind is ReferenceKind.REFERENCED_SEGMENT:
        subset = instance.segment_numbers
    elif kind is ReferenceKind.REFERENCED_SEGMENTATION_FRAME:
        subset = instance.segment_numbers or instance.frame_numbers
    elif kind is ReferenceKind.REGION_IN_SPACE:
        subset = reference.roi_numbers
    else:
        subset = instance.frame_numbers
    assert entry.get("subset", []) == [str(n) for n in subset]
    if kind is ReferenceKind.IMAGE_REGION_2D:
        data = list(reference.graphic_data)
        if reference.graphic_type == "MULTIPOINT":  # R5 has no multipoint: one point region per point
            expected = [{"regionType": "point", "coordinate": data[i : i + 2]} for i in range(0, len(data), 2)]
        else:
            assert reference.graphic_type is not None  # a 2D image region always has one
            expected = [{"regionType": REGION_TYPE[reference.graphic_type], "coordinate": data}]
        assert entry["imageRegion2D"] == expected


def check_selections(case: Case, observation: dict, references: list[ImageReference]) -> None:
    selections = selections_of(case, observation)
    assert len(selections) == len(references)
    for selection, reference in zip(selections, references, strict=True):
        check_selection(case, selection, reference)


def check_group(case: Case, group_observation: dict, group: MeasurementGroup, algorithm: Algorithm | None) -> None:
    spec = case.spec
    assert group_observation["meta"]["profile"] == [IG + "imaging-measurement-group"]
    assert group_observation["category"][0]["coding"][0]["code"] == "125007"
    expected_code = (
        [coding(spec, group.finding_category)]
        if group.finding_category
        else [{"system": SYSTEMS["DCM"], "code": "125007", "display": "Measurement Group"}]
    )
    assert group_observation["code"]["coding"] == expected_code
    if group.finding is not None:
        assert group_observation["valueCodeableConcept"]["coding"] == [coding(spec, group.finding)]
    if group.method is not None:
        assert group_observation["method"]["coding"] == [coding(spec, group.method)]
    check_common(case, group_observation, group.observation_uid, group.observation_datetime)
    check_device(case, group_observation, algorithm)
    check_site(case, group_observation, group.finding_site)
    check_selections(case, group_observation, list(group.image_references))
    tracking = identifiers_of(case, group_observation)
    assert tracking.get("112039") == group.tracking_identifier
    assert tracking.get("112040") == (f"urn:oid:{group.tracking_uid}" if group.tracking_uid else None)


# --- Tests --------------------------------------------------------------------------------------------------


def test_every_seed_maps(cases: list[Case]) -> None:
    for case in cases:
        record = case.result.record
        expected = expected_items(case.spec)
        assert record.status.value == "mapped", (case.seed, record)
        assert record.sop_instance_uid == case.spec.instance.sop_instance_uid
        assert record.content_items == count_content_items(case.spec)
        assert record.measurement_groups == len(case.spec.all_groups)
        assert record.measurements == len(expected.measurements)
        assert record.qualitative_evaluations == len(expected.evaluations)


def test_measurement_rows_and_observations(cases: list[Case]) -> None:
    for case in cases:
        spec = case.spec
        expected = expected_items(spec).measurements
        rows = case.result.rows["measurements"]
        assert len(rows) == len(expected)
        for row, item in zip(rows, expected, strict=True):
            m, group = item.measurement, item.group
            # Rows: the research table
            assert row["measurement_code"] == m.concept.value
            assert row["measurement_system"] == system(spec, m.concept.scheme)
            assert row["value_text"] == m.value
            assert row["value"] == (float(m.value) if m.value is not None else None)
            assert row["unit_code"] == ucum(m.unit)
            assert row["unit_display"] == (m.unit.meaning if m.unit else None)
            assert row["value_qualifier_code"] == (m.qualifier.value if m.qualifier else None)
            assert row["derivation_code"] == (m.derivation.value if m.derivation else None)
            assert row["method_code"] == (item.method.value if item.method else None)
            assert row["algorithm_name"] == (item.algorithm.name if item.algorithm else None)
            assert row["algorithm_version"] == (item.algorithm.version if item.algorithm else None)
            assert row["is_derived"] is item.derived
            assert row["observation_uid"] == m.observation_uid
            assert row["group_index"] == item.group_index
            assert row["group_template"] == (group.template.value if group else None)
            assert row["tracking_identifier"] == (group.tracking_identifier if group else None)
            assert row["tracking_uid"] == (group.tracking_uid if group else None)
            assert row["time_point"] == (group.time_point if group else None)
            assert row["finding_code"] == (group.finding.value if group and group.finding else None)
            assert row["finding_category_code"] == (
                group.finding_category.value if group and group.finding_category else None
            )
            site = item.site
            assert row["finding_site_code"] == (site.site.value if site else None)
            assert row["finding_site_system"] == (SYSTEMS["SCT"] if site else None)
            assert row["laterality_code"] == (site.laterality.value if site and site.laterality else None)
            assert row["sop_instance_uid"] == spec.instance.sop_instance_uid
            assert row["study_instance_uid"] == spec.study.study_instance_uid
            assert row["series_instance_uid"] == spec.instance.series_instance_uid
            assert row["patient_id"] == spec.patient.patient_id
            assert str(row["study_date"]).replace("-", "") == spec.study.study_date
            # FHIR: the Observation the row names
            observation = case.by_ref[f"Observation/{row['observation_id']}"]
            profile = "derived-imaging-measurement" if item.derived else "imaging-measurement"
            assert observation["meta"]["profile"] == [IG + profile]
            assert observation["code"]["coding"] == [coding(spec, m.concept)]
            if m.value is not None:
                assert m.unit is not None  # a NUM with a value has units
                quantity = observation["valueQuantity"]
                assert decimal_tuple(str(exact_value(observation))) == decimal_tuple(m.value)
                assert float(quantity["value"]) == float(m.value)
                assert (quantity["unit"], quantity["system"], quantity["code"]) == (
                    m.unit.meaning,
                    SYSTEMS["UCUM"],
                    ucum(m.unit),
                )
                assert "dataAbsentReason" not in observation
            else:
                assert "valueQuantity" not in observation
                reasons = observation["dataAbsentReason"]["coding"]
                assert reasons[0]["code"] == (DATA_ABSENT[m.qualifier.value] if m.qualifier else "unknown")
                if m.qualifier:
                    assert reasons[1] == coding(spec, m.qualifier)
            if m.derivation is not None:
                [component] = observation["component"]
                assert component["code"]["coding"][0]["code"] == "121401"
                assert component["valueCodeableConcept"]["coding"] == [coding(spec, m.derivation)]
            else:
                assert "component" not in observation
            if item.method is not None:
                assert observation["method"]["coding"] == [coding(spec, item.method)]
            else:
                assert "method" not in observation
            check_common(case, observation, m.observation_uid, m.observation_datetime)
            check_device(case, observation, item.algorithm)
            if item.derived:
                assert "bodyStructure" not in observation
                derived = next(d for d in spec.derived_measurements if d.measurement is m)
                groups = [case.resolve(r) for r in observation["derivedFrom"]]
                assert len(groups) == len(derived.groups)
                assert all(g["meta"]["profile"] == [IG + "imaging-measurement-group"] for g in groups)
                assert row["group_observation_id"] is None
            else:
                check_site(case, observation, item.site)
                group_observation = case.by_ref[f"Observation/{row['group_observation_id']}"]
                assert {"reference": f"Observation/{row['observation_id']}"} in group_observation["hasMember"]
                check_selections(case, observation, item.references)
                tracking = identifiers_of(case, observation)
                assert group is not None  # only derived measurements have no group
                assert tracking.get("112039") == group.tracking_identifier


def test_group_observations(cases: list[Case]) -> None:
    for case in cases:
        expected = expected_items(case.spec)
        rows = case.result.rows["measurements"] + case.result.rows["qualitative_evaluations"]
        groups = [r for r in case.result.resources if r["meta"]["profile"] == [IG + "imaging-measurement-group"]]
        assert len(groups) == len(expected.groups)
        for item in expected.groups:
            members = [r for r in rows if r["group_index"] == item.index]
            [observation_id] = {r["group_observation_id"] for r in members}
            observation = case.by_ref[f"Observation/{observation_id}"]
            check_group(case, observation, item.group, item.algorithm)
            # hasMember: the group's measurements, then its evaluations, in document order
            assert observation["hasMember"] == [{"reference": f"Observation/{r['observation_id']}"} for r in members]


def test_qualitative_evaluations(cases: list[Case]) -> None:
    for case in cases:
        spec = case.spec
        expected = expected_items(spec).evaluations
        rows = case.result.rows["qualitative_evaluations"]
        assert len(rows) == len(expected)
        for row, item in zip(rows, expected, strict=True):
            e, group = item.evaluation, item.group
            assert (row["evaluation_code"], row["evaluation_system"]) == (
                e.concept.value,
                system(spec, e.concept.scheme),
            )
            assert row["value_code"] == (e.value_code.value if e.value_code else None)
            assert row["value_system"] == (system(spec, e.value_code.scheme) if e.value_code else None)
            assert row["value_display"] == (e.value_code.meaning if e.value_code else None)
            assert row["value_text"] == e.value_text
            assert row["algorithm_name"] == (item.algorithm.name if item.algorithm else None)
            assert row["observation_uid"] == e.observation_uid
            assert row["group_index"] == item.group_index
            assert row["tracking_identifier"] == (group.tracking_identifier if group else None)
            assert (row["group_observation_id"] is None) == (group is None)
            observation = case.by_ref[f"Observation/{row['observation_id']}"]
            assert observation["meta"]["profile"] == [IG + "imaging-qualitative-evaluation"]
            assert observation["category"][0]["coding"][0] == {
                "system": SYSTEMS["UMLS"],
                "code": "C0034375",
                "display": "Qualitative Evaluations",
            }
            assert observation["code"]["coding"] == [coding(spec, e.concept)]
            value = observation["valueCodeableConcept"]
            assert value == ({"coding": [coding(spec, e.value_code)]} if e.value_code else {"text": e.value_text})
            check_common(case, observation, e.observation_uid, e.observation_datetime)
            check_device(case, observation, item.algorithm)
            check_selections(case, observation, list(group.image_references) if group else [])
            check_site(case, observation, group.finding_site if group else None)


def test_every_reference_resolves_once(cases: list[Case]) -> None:
    """Every `reference` names a resource of the same result; ids are unique; no list repeats a target."""
    for case in cases:
        assert len(case.by_ref) == len(case.result.resources)
        for resource in case.result.resources:
            for reference in references_in(resource):
                assert reference in case.by_ref, (case.seed, resource["resourceType"], reference)
            for key in ("focus", "hasMember", "derivedFrom", "performer", "basedOn", "partOf"):
                targets = [r["reference"] for r in resource.get(key, [])]
                assert len(targets) == len(set(targets)), (case.seed, resource["id"], key)


def test_by_reference_items_point_at_the_groups_selection(cases: list[Case]) -> None:
    """A NUM INFERRED FROM (by reference) the group's region is focused on that same ImagingSelection."""
    checked = 0
    for case in cases:
        expected = expected_items(case.spec).measurements
        rows = case.result.rows["measurements"]
        for row, item in zip(rows, expected, strict=True):
            for index in item.measurement.group_references:
                observation = case.by_ref[f"Observation/{row['observation_id']}"]
                group_observation = case.by_ref[f"Observation/{row['group_observation_id']}"]
                target = selections_of(case, group_observation)[index]
                assert selections_of(case, observation).count(target) == 1
                checked += 1
    assert checked >= 5


def test_every_resource_validates_as_fhir_r5(cases: list[Case]) -> None:
    for case in cases:
        for resource in case.result.resources:
            model = get_fhir_model_class(resource["resourceType"])
            model.model_validate(orjson.loads(dumps_json(resource)))


def test_patient_study_order_and_equipment(cases: list[Case]) -> None:
    for case in cases:
        spec = case.spec
        by_type: dict[str, list[dict]] = {}
        for resource in case.result.resources:
            by_type.setdefault(resource["resourceType"], []).append(resource)
        [patient] = by_type["Patient"]
        [identifier] = patient["identifier"]
        assert identifier["value"] == spec.patient.patient_id
        issuer = spec.patient.issuer
        if issuer is not None and issuer.universal_id:
            prefix = "urn:oid:" if issuer.universal_id_type == "ISO" else ""
            assert identifier["system"] == prefix + issuer.universal_id
        assert "name" not in patient and "birthDate" not in patient  # demographics stay out by default
        [study] = by_type["ImagingStudy"]
        assert study["identifier"][0] == {
            "system": "urn:dicom:uid",
            "value": f"urn:oid:{spec.study.study_instance_uid}",
        }
        orders = by_type.get("ServiceRequest", [])
        assert [o["identifier"][0]["value"] for o in orders] == (
            [spec.study.accession_number] if spec.study.accession_number else []
        )
        practitioners = by_type.get("Practitioner", [])
        assert len(practitioners) == len(spec.person_observers)


def test_same_spec_gives_identical_output(cases: list[Case]) -> None:
    for case in cases[:10]:
        again = map_sr(write_sr(random_spec(case.seed)))
        assert random_spec(case.seed) == case.spec
        assert write_sr(case.spec) == case.data
        assert dumps_json(again.resources) == dumps_json(case.result.resources)
        assert again.rows == case.result.rows
        assert again.record == case.result.record


def _encoding_id(encoding: Encoding) -> str:
    lengths = "".join(
        "U" if undefined else "D"
        for undefined in (encoding.undefined_length_sequences, encoding.undefined_length_items)
    )
    return f"{encoding.transfer_syntax.name.lower()}-{lengths}"


@pytest.mark.parametrize("encoding", ENCODINGS[1:], ids=_encoding_id)
def test_every_encoding_maps_to_the_same_output(cases: list[Case], encoding: Encoding) -> None:
    """Transfer syntax and sequence/item lengths change the bytes, never the mapping."""
    for case in cases[:: len(ENCODINGS) - 1]:
        data = write_sr(case.spec, encoding)
        assert data != case.data
        result = map_sr(data)
        assert dumps_json(result.resources) == dumps_json(case.result.resources), case.seed
        assert result.rows == case.result.rows


def test_legacy_snomed_reads_as_snomed_ct(cases: list[Case]) -> None:
    """The same report written with SNOMED-RT codes maps to exactly the SCT output."""
    for case in cases[:12]:
        legacy = dataclasses.replace(case.spec, legacy_snomed=not case.spec.legacy_snomed)
        data = write_sr(legacy)
        assert (b"SRT" in data) != (b"SRT" in case.data)
        result = map_sr(data)
        assert dumps_json(result.resources) == dumps_json(case.result.resources), case.seed
        assert result.rows == case.result.rows


def features(spec: ReportSpec) -> set[str]:
    """Names of the features one spec exercises; `test_seeds_cover_every_feature` wants them all."""
    found = {
        f"storage:{spec.instance.sop_class.name}",
        f"charset:{spec.instance.specific_character_set}",
        f"preliminary:{spec.instance.preliminary_flag}",
        f"timezone:{spec.instance.timezone_offset is not None}",
        f"legacy_snomed:{spec.legacy_snomed}",
    }
    found |= {f"scheme:{s.designator}" for s in spec.coding_schemes}
    flags = {
        "derived": bool(spec.derived_measurements),
        "report_evaluations": bool(spec.qualitative_evaluations),
        "measurements_algorithm": spec.measurements_algorithm is not None,
        "person_observer": bool(spec.person_observers),
        "device_observer": bool(spec.device_observers),
        "image_library": spec.image_library,
        "accession": spec.study.accession_number is not None,
        "prior_study_reference": any(
            i.study_instance_uid != spec.study.study_instance_uid for i in spec.referenced_instances()
        ),
    }
    found |= {name for name, present in flags.items() if present}
    for reference in spec.image_references():
        found.add(f"reference:{reference.kind.value}")
        if reference.graphic_type:
            found.add(f"graphic:{'3d' if reference.frame_of_reference_uid else '2d'}:{reference.graphic_type}")
        if reference.instance is not None and reference.instance.frame_numbers:
            found.add(f"frames:{reference.kind.value}")
    expected = expected_items(spec)
    for item in expected.measurements:
        m = item.measurement
        flags = {
            "num:qualifier": m.qualifier is not None,
            "num:no_value": m.value is None and m.qualifier is None,
            "num:exponent": m.value is not None and "E" in m.value,
            "num:by_reference": bool(m.group_references),
            "num:own_reference": bool(m.image_references),
            "num:own_site": m.finding_site is not None,
            "num:own_method": m.method is not None,
            "num:own_algorithm": m.algorithm is not None,
            "num:derivation": m.derivation is not None,
            "num:observation_uid": m.observation_uid is not None,
            "num:datetime_offset": m.observation_datetime is not None and m.observation_datetime[-5] in "+-",
        }
        found |= {name for name, present in flags.items() if present}
    for evaluation in expected.evaluations:
        e = evaluation.evaluation
        found.add("evaluation:code" if e.value_code else "evaluation:text")
        if e.algorithm is not None:
            found.add("evaluation:own_algorithm")
    for group in spec.all_groups:
        found.add(f"template:{group.template.value}")
        site = group.finding_site
        flags = {
            "group:tracking_identifier": group.tracking_identifier is not None,
            "group:tracking_uid": group.tracking_uid is not None,
            "group:no_tracking": group.tracking_identifier is None and group.tracking_uid is None,
            "group:laterality": site is not None and site.laterality is not None,
            "group:topographical_modifier": site is not None and site.topographical_modifier is not None,
            "group:finding_category": group.finding_category is not None,
            "group:time_point": group.time_point is not None,
            "group:source_series": group.source_series_uid is not None,
            "group:algorithm": group.algorithm is not None,
            "group:observation_uid": group.observation_uid is not None,
        }
        found |= {name for name, present in flags.items() if present}
    return found


REQUIRED_FEATURES = (
    {f"storage:{s.name}" for s in SRStorage}
    | {f"charset:{c}" for c in (None, "ISO_IR 100", "ISO_IR 192")}
    | {f"preliminary:{p}" for p in (None, "FINAL", "PRELIMINARY")}
    | {"timezone:True", "timezone:False", "legacy_snomed:True", "legacy_snomed:False"}
    | {"scheme:99SYNTH", "scheme:99SYNGRADE"}
    | {f"reference:{kind.value}" for kind in ReferenceKind}
    | {f"graphic:2d:{t}" for t in synth_catalog.GRAPHIC_TYPES_2D}
    | {f"graphic:3d:{t}" for t in synth_catalog.GRAPHIC_TYPES_3D}
    | {"frames:image-region-2d", "frames:referenced-segmentation-frame", "frames:visual-explanation"}
    | {f"template:{t.value}" for t in GroupTemplate}
    | {"derived", "report_evaluations", "measurements_algorithm", "person_observer", "device_observer"}
    | {"image_library", "accession", "prior_study_reference", "evaluation:code", "evaluation:text"}
    | {"evaluation:own_algorithm"}
    | {
        "num:qualifier",
        "num:no_value",
        "num:exponent",
        "num:by_reference",
        "num:own_reference",
        "num:own_site",
        "num:own_method",
        "num:own_algorithm",
        "num:derivation",
        "num:observation_uid",
        "num:datetime_offset",
    }
    | {
        "group:tracking_identifier",
        "group:tracking_uid",
        "group:no_tracking",
        "group:laterality",
        "group:topographical_modifier",
        "group:finding_category",
        "group:time_point",
        "group:source_series",
        "group:algorithm",
        "group:observation_uid",
    }
)


def test_seeds_cover_every_feature(cases: list[Case]) -> None:
    """The round-trip tests above are only as good as the variety of SEEDS: all features must occur."""
    covered = set().union(*(features(case.spec) for case in cases))
    assert REQUIRED_FEATURES - covered == set()
