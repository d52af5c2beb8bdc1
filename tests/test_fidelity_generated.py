"""Nothing the generator wrote is lost (issue 16), proved from the output alone.

`test_fidelity.py` checks the accounting (every content item mapped or reported). This module checks the
other side: on generated reports that contain every fidelity case (`random_spec(seed,
features=FIDELITY_FEATURES)` and `every_row_spec()`), the FHIR resources alone, read as a consumer reads them
(the JSON text, references followed by "Type/id"), give back each measurement group the spec describes: its
finding sites in order, tracking ids, finding, measurements with their values, units, derivations, methods,
concept modifiers and derivation parameters, qualitative evaluations, regions with their exact coordinates,
segment numbers, other spatial items and devices. The same summary is computed from the spec (the truth) and
compared; the research tables are checked separately against the spec. Both IG versions are mapped.

What the decision table (docs/mapping-decisions.md §18) says is *reported* is left out of the comparison,
with a comment citing its row; everything else the spec says must come back.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, DecimalTuple
from typing import Any

import pytest
from test_fidelity import losses
from test_synth_roundtrip import IG, SYSTEMS, coding, ucum

from sr2fhir_core import IgVersion, MappingOptions, MappingResult, WarningCode, dumps_json, map_sr
from sr2fhir_core.reading import read_document
from sr2fhir_core.tid1500.model import MeasurementReport
from sr2fhir_core.tid1500.parse import parse_report
from sr2fhir_synth import FIDELITY_FEATURES, ROOT_OMISSIONS, Feature, catalog, every_row_spec, random_spec, write_sr
from sr2fhir_synth.spec import (
    Algorithm,
    Code,
    CodedValue,
    DeviceObserver,
    FindingSite,
    ImageReference,
    Measurement,
    MeasurementGroup,
    NumValue,
    QualitativeEvaluation,
    ReferenceKind,
    ReportSpec,
    SpatialItem,
)

SEEDS = range(10)
EVERY_ROW = "every-row"
SOURCES = [f"seed-{seed}" for seed in SEEDS] + [EVERY_ROW]
IG_VERSIONS = (IgVersion.BALLOT, IgVersion.STU1)

Resource = dict[str, Any]
Coding = tuple[str, str, str | None]
"""(system, code, display) of a FHIR Coding, or of a spec `Code` as the mapping must write it."""

GROUP = IG + "imaging-measurement-group"
MEASUREMENT = IG + "imaging-measurement"
DERIVED = IG + "derived-imaging-measurement"
EVALUATION = IG + "imaging-qualitative-evaluation"
ALGORITHM = IG + "algorithm-identification"
BASE_SELECTION = IG + "observation-imaging-selection"
SOURCE_SR = IG + "source-sr-content-item"
DERIVATION = (SYSTEMS["DCM"], "121401", "Derivation")
SOURCE_IMAGE_CODE = catalog.SOURCE_IMAGE_FOR_SEGMENTATION.value
REGION_TYPE = {"POINT": "point", "POLYLINE": "polyline", "CIRCLE": "circle", "ELLIPSE": "ellipse"}
SEGMENTATION_KINDS = (ReferenceKind.REFERENCED_SEGMENT, ReferenceKind.REFERENCED_SEGMENTATION_FRAME)
EQUIVALENT_MEANING = (SYSTEMS["DCM"], catalog.EQUIVALENT_MEANING.value)
"""§18 row "TID 300 Equivalent Meaning of Concept Name, Equation, Tracking Identifier and UID on a NUM":
reported. Its CODE form (TID 301 row 16b) nevertheless reaches `component` and `concept_modifiers`; being
a reported row, it is left out of the comparison on both sides."""


# --- Mapping the sources once per worker ---------------------------------------------------------------------


def spec_of(source: str) -> ReportSpec:
    """`every_row_spec()`, or `random_spec(seed)` with every fidelity feature."""
    if source == EVERY_ROW:
        return every_row_spec()
    return random_spec(int(source.removeprefix("seed-")), features=FIDELITY_FEATURES)


@functools.cache
def _spec_and_data(source: str) -> tuple[ReportSpec, bytes]:
    spec = spec_of(source)
    return spec, write_sr(spec)


@functools.cache
def parsed(source: str) -> MeasurementReport:
    """The TID 1500 parse, for its list of unmapped items (the accounting, not the output under test)."""
    return parse_report(read_document(_spec_and_data(source)[1]))


@dataclass(frozen=True)
class Mapped:
    """One source mapped under one IG version; `resources` are the FHIR JSON text read back, numbers as
    `Decimal` exactly as written."""

    source: str
    ig: IgVersion
    spec: ReportSpec
    result: MappingResult
    resources: list[Resource]

    @functools.cached_property
    def by_ref(self) -> dict[str, Resource]:
        return {f"{r['resourceType']}/{r['id']}": r for r in self.resources}

    def resolve(self, reference: dict) -> Resource:
        return self.by_ref[reference["reference"]]

    def with_profile(self, profile: str) -> list[Resource]:
        return [r for r in self.resources if r["meta"]["profile"][0] == profile]


@functools.cache
def mapped(source: str, ig: IgVersion) -> Mapped:
    spec, data = _spec_and_data(source)
    result = map_sr(data, MappingOptions(ig_version=ig))
    resources = json.loads(dumps_json(result.resources), parse_float=Decimal)
    return Mapped(source, ig, spec, result, resources)


@pytest.fixture(params=[(s, ig) for s in SOURCES for ig in IG_VERSIONS], ids=lambda p: f"{p[0]}-{p[1].value}")
def case(request: pytest.FixtureRequest) -> Mapped:
    source, ig = request.param
    result = mapped(source, ig)
    assert result.result.mapped, result.result.record
    return result


# --- Summaries: what a group says, the same shape from FHIR and from the spec --------------------------------

Site = tuple[Coding, Coding | None, Coding | None]
"""A finding site: (site, laterality, topographical modifier)."""
Quantity = tuple[DecimalTuple, str, str]
"""A value: its decimal digits and exponent as written (12.50 keeps its trailing zero), unit system, unit code."""
Component = tuple[Coding, object]
"""An Observation component other than the derivation: its code and value (a Coding, a text, a Quantity, or
None for an absent value)."""


@dataclass(frozen=True)
class Entry:
    """One thing an ImagingSelection selects: a 2D region on an instance (one per point of a MULTIPOINT), an
    instance without region, or (SCOORD3D, no instance) a frame of reference; one per `subset` value (a frame,
    segment or ROI number), whether the output lists several values in one `instance` entry or one per entry.
    Coordinates are Decimals of the JSON text, normalised, so that 83.58 and 83.58000183105469 differ."""

    profile: str
    code: Coding
    uid: str | None
    subset: str | None
    region: tuple[str, tuple[Decimal, ...]] | None
    frame_of_reference: str | None


@dataclass(frozen=True)
class Selected:
    """The entries of several selections, independent of how the IG version groups items into selections
    (ballot: one per item; STU1: one per profile): 2D and instance entries as a sorted multiset, 3D regions
    (whose coordinates R5 cannot hold, §5) as a set of frames of reference."""

    entries: tuple[Entry, ...]
    frames: frozenset[Entry]

    @staticmethod
    def of(entries: Iterable[Entry]) -> Selected:
        listed = list(entries)
        flat = sorted((e for e in listed if e.frame_of_reference is None), key=repr)
        return Selected(tuple(flat), frozenset(e for e in listed if e.frame_of_reference is not None))


@dataclass(frozen=True)
class DeviceView:
    """What `Observation.device` says: an algorithm (TID 4019) or a device (observer, equipment)."""

    kind: str
    name: str | None
    manufacturer: str | None
    identifier: str | None = None
    version: str | None = None
    parameters: tuple[str, ...] = ()
    family: Coding | None = None
    names: tuple[str, ...] = ()
    serial_number: str | None = None
    model_number: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class MeasurementView:
    """What an imaging-measurement Observation says (its references and device are the group view's)."""

    code: Coding
    value: DecimalTuple | None
    """The digits and exponent of the value as written (12.50 keeps its trailing zero)."""
    unit: Coding | None
    qualifier: Coding | None
    derivation: Coding | None
    method: Coding | None
    sites: tuple[Site, ...]
    components: tuple[Component, ...]
    sources: tuple[Component, ...]
    """The measurements it is derived from (`derivedFrom` Observations): code and value."""


@dataclass(frozen=True)
class EvaluationView:
    """What an imaging-qualitative-evaluation Observation says."""

    code: Coding
    value: Coding | str
    modifiers: tuple[Component, ...]


@dataclass(frozen=True)
class GroupView:
    """What a measurement group says, with its members: the unit of comparison."""

    uid: str | None
    tracking_identifier: str | None
    tracking_uid: str | None
    category: Coding
    finding: Coding | None
    method: Coding | None
    sites: tuple[Site, ...]
    measurements: tuple[MeasurementView, ...]
    evaluations: tuple[EvaluationView, ...]
    regions: Selected
    source_images: frozenset[str]
    spatial: Selected
    measurement_selections: tuple[Selected, ...]
    """Each measurement's own (TID 320) selections, beside the group's."""
    device: DeviceView
    measurement_devices: tuple[DeviceView, ...]
    evaluation_devices: tuple[DeviceView, ...]


# --- From FHIR alone -----------------------------------------------------------------------------------------


def fhir_coding(concept: dict | None) -> Coding | None:
    """The first coding of a CodeableConcept (the mapping writes one)."""
    if concept is None or "coding" not in concept:
        return None
    first = concept["coding"][0]
    return first["system"], first["code"], first.get("display")


def must_coding(concept: dict) -> Coding:
    found = fhir_coding(concept)
    assert found is not None, concept
    return found


def quantity(value: dict) -> Quantity:
    return Decimal(value["value"]).as_tuple(), value["system"], value["code"]


def component_value(component: dict) -> object:
    if "valueCodeableConcept" in component:
        concept = component["valueCodeableConcept"]
        return fhir_coding(concept) or concept.get("text")
    if "valueQuantity" in component:
        return quantity(component["valueQuantity"])
    if "valueString" in component:
        return component["valueString"]
    return None  # dataAbsentReason: a parameter without a value


def components_of(observation: Resource) -> tuple[Coding | None, tuple[Component, ...]]:
    """(derivation, the other components in order) of an Observation."""
    derivation = None
    others = []
    for component in observation.get("component", []):
        code = must_coding(component["code"])
        if code == DERIVATION:
            derivation = fhir_coding(component["valueCodeableConcept"])
        elif code[:2] != EQUIVALENT_MEANING:  # reported (§18), see EQUIVALENT_MEANING
            others.append((code, component_value(component)))
    return derivation, tuple(others)


def sites_of(case: Mapped, observation: Resource) -> tuple[Site, ...]:
    """Finding sites: STU1's bare `bodySite`, else the finding-site BodyStructure's includedStructure (one per
    site, §15); a structure with only text names the tracking id of a group without site."""
    if "bodySite" in observation:
        return ((must_coding(observation["bodySite"]), None, None),)
    if "bodyStructure" not in observation:
        return ()
    body = case.resolve(observation["bodyStructure"])
    sites = []
    for part in body["includedStructure"]:
        site = fhir_coding(part["structure"])
        if site is None:
            continue
        qualifiers = part.get("qualifier", [])
        modifier = fhir_coding(qualifiers[0]) if qualifiers else None
        sites.append((site, fhir_coding(part.get("laterality")), modifier))
    return tuple(sites)


def tracking_of(case: Mapped, observation: Resource) -> dict[str, str]:
    """Tracking Identifier (112039) and UID (112040) on the BodyStructures the Observation names (ballot:
    the tracking BodyStructure in `focus`; STU1: identifiers of the finding-site BodyStructure)."""
    found = {}
    targets = list(observation.get("focus", []))
    if "bodyStructure" in observation:
        targets.append(observation["bodyStructure"])
    for reference in targets:
        if reference["reference"].startswith("BodyStructure/"):
            for identifier in case.resolve(reference).get("identifier", []):
                found[identifier["type"]["coding"][0]["code"]] = identifier["value"]
    return found


def is_device(resource: Resource) -> bool:
    return bool(resource["resourceType"] == "Device")


def observation_uid(observation: Resource) -> str | None:
    for identifier in observation.get("identifier", []):
        if identifier["type"]["coding"][0]["code"] == "observation-uid":
            return str(identifier["value"]).removeprefix("urn:oid:")
    return None


def selections_of(case: Mapped, observation: Resource) -> list[Resource]:
    """The ImagingSelections an Observation names (ballot: `focus`; STU1: `derivedFrom`), and those they
    name in their own `focus` (STU1's source image for segmentation), without the source SR content item."""
    out: dict[str, Resource] = {}
    for reference in observation.get("focus", []) + observation.get("derivedFrom", []):
        if reference["reference"].startswith("ImagingSelection/"):
            selection = case.resolve(reference)
            out[selection["id"]] = selection
            for inner in selection.get("focus", []):
                if inner["reference"].startswith("ImagingSelection/"):
                    target = case.resolve(inner)
                    out[target["id"]] = target
    return [s for s in out.values() if s["meta"]["profile"][0] != SOURCE_SR]


def entries_of(selection: Resource) -> Iterator[Entry]:
    profile, code = selection["meta"]["profile"][0], must_coding(selection["code"])
    if "instance" not in selection:
        yield Entry(profile, code, None, None, None, selection.get("frameOfReferenceUid"))
        return
    for instance in selection["instance"]:
        for region in instance.get("imageRegion2D") or [None]:
            shape = None
            if region is not None:
                shape = (region["regionType"], tuple(Decimal(c).normalize() for c in region["coordinate"]))
            for value in instance.get("subset") or [None]:
                yield Entry(profile, code, instance["uid"], value, shape, None)


def device_of(case: Mapped, observation: Resource) -> DeviceView:
    return device_view(case.resolve(observation["device"]))


def device_view(device: Resource) -> DeviceView:
    if device["meta"]["profile"][0] == ALGORITHM:
        versions = device.get("version", [])
        types = device.get("type", [])
        return DeviceView(
            "algorithm",
            device.get("displayName"),
            device.get("manufacturer"),
            version=versions[0]["value"] if versions else None,
            parameters=tuple(p["valueString"] for p in device.get("property", [])),
            family=fhir_coding(types[0]) if types else None,
        )
    identifiers = device.get("identifier", [])
    return DeviceView(
        "device",
        device.get("displayName"),
        device.get("manufacturer"),
        identifier=identifiers[0]["value"] if identifiers else None,
        names=tuple(n["value"] for n in device.get("name", [])),
        serial_number=device.get("serialNumber"),
        model_number=device.get("modelNumber"),
        location=device.get("location", {}).get("display"),
    )


def own_selections(case: Mapped, observation: Resource, group_selections: set[str]) -> Selected:
    """A member's selections that are not its group's: its own TID 320 references."""
    own = [s for s in selections_of(case, observation) if s["id"] not in group_selections]
    return Selected.of(e for s in own for e in entries_of(s))


def fhir_measurement(case: Mapped, observation: Resource) -> MeasurementView:
    reasons = observation.get("dataAbsentReason", {}).get("coding", [])
    quantity_ = observation.get("valueQuantity")
    derivation, components = components_of(observation)
    return MeasurementView(
        code=must_coding(observation["code"]),
        value=Decimal(quantity_["value"]).as_tuple() if quantity_ else None,
        unit=(quantity_["system"], quantity_["code"], quantity_.get("unit")) if quantity_ else None,
        qualifier=fhir_coding({"coding": reasons[1:]}) if len(reasons) > 1 else None,
        derivation=derivation,
        method=fhir_coding(observation.get("method")),
        sites=sites_of(case, observation),
        components=components,
        sources=sources_of(case, observation),
    )


def sources_of(case: Mapped, observation: Resource) -> tuple[Component, ...]:
    """The measurements an Observation is derived from (`derivedFrom`): code and value of each."""
    sources = [case.resolve(r) for r in observation.get("derivedFrom", [])]
    return tuple(
        (must_coding(s["code"]), quantity(s["valueQuantity"]) if "valueQuantity" in s else None)
        for s in sources
        if s["resourceType"] == "Observation" and s["meta"]["profile"][0] == MEASUREMENT
    )


def fhir_evaluation(case: Mapped, observation: Resource) -> EvaluationView:
    value = observation["valueCodeableConcept"]
    return EvaluationView(
        code=must_coding(observation["code"]),
        value=fhir_coding(value) or value["text"],
        modifiers=components_of(observation)[1],
    )


SPATIAL_CONCEPTS = frozenset({(SYSTEMS["DCM"], catalog.REFERENCE_POINTS.value)})
"""(system, code) of the spatial items the generator writes that are not a group's ROI (§17)."""


def fhir_group(case: Mapped, observation: Resource) -> GroupView:
    members = [case.resolve(r) for r in observation.get("hasMember", [])]
    measurements = [m for m in members if m["meta"]["profile"][0] == MEASUREMENT]
    evaluations = [e for e in members if e["meta"]["profile"][0] == EVALUATION]
    selections = selections_of(case, observation)
    regions: list[Entry] = []
    spatial: list[Entry] = []
    images: set[str] = set()
    for selection in selections:
        code = must_coding(selection["code"])
        if code[1] == SOURCE_IMAGE_CODE:
            images.update(i["uid"] for i in selection.get("instance", []))
        elif code[:2] in SPATIAL_CONCEPTS:
            spatial += list(entries_of(selection))
        else:
            regions += list(entries_of(selection))
    ids = {s["id"] for s in selections}
    tracking = tracking_of(case, observation)
    return GroupView(
        uid=observation_uid(observation),
        tracking_identifier=tracking.get("112039"),
        tracking_uid=tracking.get("112040"),
        category=must_coding(observation["code"]),
        finding=fhir_coding(observation.get("valueCodeableConcept")),
        method=fhir_coding(observation.get("method")),
        sites=sites_of(case, observation),
        measurements=tuple(fhir_measurement(case, m) for m in measurements),
        evaluations=tuple(fhir_evaluation(case, e) for e in evaluations),
        regions=Selected.of(regions),
        source_images=frozenset(images),
        spatial=Selected.of(spatial),
        measurement_selections=tuple(own_selections(case, m, ids) for m in measurements),
        device=device_of(case, observation),
        measurement_devices=tuple(device_of(case, m) for m in measurements),
        evaluation_devices=tuple(device_of(case, e) for e in evaluations),
    )


def group_observations(case: Mapped) -> list[Resource]:
    """Every group Observation, in the order of the spec's groups: matched by Observation UID where the
    spec gives one, the rest in resource (document) order."""
    observations = case.with_profile(GROUP)
    spec_groups = case.spec.all_groups
    assert len(observations) == len(spec_groups)
    by_uid = {observation_uid(o): o for o in observations if observation_uid(o)}
    without = iter(o for o in observations if not observation_uid(o))
    return [by_uid[g.observation_uid] if g.observation_uid else next(without) for g in spec_groups]


def fhir_groups(case: Mapped) -> list[GroupView]:
    return [fhir_group(case, o) for o in group_observations(case)]


# --- From the spec ---------------------------------------------------------------------------------------------


def code_of(spec: ReportSpec, code: Code | None) -> Coding | None:
    if code is None:
        return None
    found = coding(spec, code)
    return found["system"], found["code"], found["display"]


def must(spec: ReportSpec, code: Code) -> Coding:
    found = code_of(spec, code)
    assert found is not None
    return found


def spec_sites(spec: ReportSpec, sites: tuple[FindingSite, ...]) -> tuple[Site, ...]:
    return tuple(
        (must(spec, s.site), code_of(spec, s.laterality), code_of(spec, s.topographical_modifier)) for s in sites
    )


def spec_unit(spec: ReportSpec, unit: Code) -> tuple[str, str]:
    """(system, code) of a unit: UCUM corrected where docs/units.md lists a misspelling (the spec holds the
    canonical code; `unit_spelling` is only how the writer spells it)."""
    code = ucum(unit)
    assert code is not None
    return SYSTEMS[unit.scheme], code


def spec_quantity(spec: ReportSpec, value: str | None, unit: Code | None) -> Quantity | None:
    if value is None or unit is None:
        return None
    return (Decimal(value.strip()).as_tuple(), *spec_unit(spec, unit))


def numeric_parameters(spec: ReportSpec, m: Measurement) -> list[tuple[Coding, Quantity | None]]:
    """Numeric derivation parameters by value (TID 1419 row 13), in document order, with their values. Not
    compared, reported by §18 row "TID 300 INFERRED FROM CODE or TEXT (coded or text derivation parameters)":
    rows 14b and 14c."""
    return [
        (must(spec, p.concept), spec_quantity(spec, p.value, p.unit))
        for p in m.derivation_parameters
        if isinstance(p, NumValue)
    ]


def spec_parameters(spec: ReportSpec, m: Measurement) -> list[Component]:
    """The numeric parameters that are components: §18 row "TID 300 derivation parameters" leaves out one of the
    measurement's own concept (obs-7), which only the table keeps."""
    own = must(spec, m.concept)[:2]
    return [(code, value) for code, value in numeric_parameters(spec, m) if code[:2] != own]


def spec_sources(spec: ReportSpec, group: MeasurementGroup, m: Measurement) -> list[tuple[Coding, Quantity | None]]:
    """Derivation parameters by reference (TID 1419 row 14, R-INFERRED FROM an earlier measurement of the
    group): §18 row "TID 300 derivation parameters" names that measurement's Observation in `derivedFrom`."""
    targets = [group.measurements[i] for i in m.derivation_parameter_references]
    return [(must(spec, t.concept), spec_quantity(spec, t.value, t.unit)) for t in targets]


def spec_modifiers(spec: ReportSpec, modifiers: tuple[CodedValue, ...]) -> list[Component]:
    return [(must(spec, m.concept), must(spec, m.value)) for m in modifiers]


def spec_algorithm(spec: ReportSpec, algorithm: Algorithm) -> DeviceView:
    return DeviceView(
        "algorithm",
        algorithm.name,
        algorithm.manufacturer,
        version=algorithm.version,
        parameters=algorithm.parameters,
        family=code_of(spec, algorithm.family),
    )


def spec_observer(observer: DeviceObserver) -> DeviceView:
    """A TID 1004 device observer's Device (§16)."""
    return DeviceView(
        "device",
        observer.name or observer.model_name,
        observer.manufacturer,
        identifier=f"urn:oid:{observer.uid}",
        names=(observer.name,) if observer.name else (),
        serial_number=observer.serial_number,
        model_number=observer.model_name,
        location=observer.physical_location,
    )


def spec_device(spec: ReportSpec, ig: IgVersion, algorithm: Algorithm | None, *, derived: bool = False) -> DeviceView:
    """§6/§16: the nearest algorithm, else the first device observer (not for STU1's derived measurements,
    whose profile names none), else the General Equipment."""
    if algorithm is not None:
        return spec_algorithm(spec, algorithm)
    if spec.device_observers and not (derived and ig is IgVersion.STU1):
        return spec_observer(spec.device_observers[0])
    equipment = spec.equipment
    return DeviceView(
        "device",
        equipment.model_name,
        equipment.manufacturer,
        identifier=f"urn:oid:{equipment.device_uid}" if equipment.device_uid else None,
        serial_number=equipment.serial_number,
    )


def reference_code(spec: ReportSpec, reference: ImageReference) -> Coding:
    return must(spec, reference.purpose or catalog.REFERENCE_ITEMS[reference.kind][1])


def reference_profile(reference: ImageReference) -> str:
    """The IG profile of a reference kind; an item with an $ImagePurpose concept or of a kind no profile names
    is a base-profile selection with its own concept (§12)."""
    if reference.purpose is not None or reference.kind is ReferenceKind.SOURCE_OF_MEASUREMENT:
        return BASE_SELECTION
    return IG + reference.kind.value


def regions_2d(graphic_type: str, data: tuple[float, ...]) -> list[tuple[str, tuple[Decimal, ...]]]:
    """The spec's decimals (repr: the shortest that the float holds) as FHIR regions; a MULTIPOINT is one point
    region per point (§4)."""
    values = tuple(Decimal(repr(v)).normalize() for v in data)
    if graphic_type == "MULTIPOINT":
        return [("point", values[i : i + 2]) for i in range(0, len(values), 2)]
    return [(REGION_TYPE[graphic_type], values)]


def spec_entries(spec: ReportSpec, reference: ImageReference) -> list[Entry]:
    profile, code = reference_profile(reference), reference_code(spec, reference)
    instance = reference.instance
    if instance is None:
        return [Entry(profile, code, None, None, None, reference.frame_of_reference_uid)]
    subset: tuple[object, ...]
    if reference.kind in SEGMENTATION_KINDS:
        # §17: segment numbers; a segmentation frame's Referenced Frame Numbers have no element beside them and
        # are reported in a warning (frames only when it names no segment).
        subset = instance.segment_numbers or instance.frame_numbers
    elif reference.kind is ReferenceKind.REGION_IN_SPACE:
        subset = reference.roi_numbers
    else:
        subset = instance.frame_numbers
    shapes: list[tuple[str, tuple[Decimal, ...]] | None] = [None]
    if reference.graphic_type is not None:
        shapes = list(regions_2d(reference.graphic_type, reference.graphic_data))
    values: list[str | None] = [str(n) for n in subset] or [None]
    return [Entry(profile, code, instance.sop_instance_uid, v, shape, None) for shape in shapes for v in values]


def spatial_entries(spec: ReportSpec, item: SpatialItem) -> list[Entry]:
    """§17: a base-profile selection with the item's own concept and (2D) coordinates."""
    code = must(spec, item.concept)
    if item.instance is None:
        return [Entry(BASE_SELECTION, code, None, None, None, item.frame_of_reference_uid)]
    # A frame number is of the multi-frame image the item is SELECTED FROM (one at most).
    frame = str(item.instance.frame_numbers[0]) if item.instance.frame_numbers else None
    return [
        Entry(BASE_SELECTION, code, item.instance.sop_instance_uid, frame, shape, None)
        for shape in regions_2d(item.graphic_type, item.graphic_data)
    ]


def spec_source_images(spec: ReportSpec, ig: IgVersion, group: MeasurementGroup) -> frozenset[str]:
    """Source images for segmentation. Ballot: base-profile selections of the IMAGE items; its Source series
    for segmentation has no element there and is reported in a warning (§18 row "Source series for
    segmentation"). STU1: the items' instances, else the evidence instances of the named series (§14)."""
    images = frozenset(i.sop_instance_uid for i in group.source_images)
    if images or ig is IgVersion.BALLOT or group.source_series_uid is None:
        return images
    series = group.source_series_uid
    return frozenset(i.sop_instance_uid for i in spec.referenced_instances() if i.series_instance_uid == series)


def spec_measurement(spec: ReportSpec, group: MeasurementGroup, m: Measurement) -> MeasurementView:
    # Not compared, reported by §18: the NUM's Tracking Identifier / UID, Equation and Equivalent Meaning
    # ("TID 300 Equivalent Meaning of Concept Name, Equation, Tracking Identifier and UID on a NUM").
    unit = spec_unit(spec, m.unit) if m.value is not None and m.unit is not None else None
    return MeasurementView(
        code=must(spec, m.concept),
        value=Decimal(m.value.strip()).as_tuple() if m.value is not None else None,
        unit=(*unit, m.unit.meaning) if unit is not None and m.unit is not None else None,
        qualifier=code_of(spec, m.qualifier),
        derivation=code_of(spec, m.derivation),
        method=code_of(spec, m.method or group.method),
        sites=spec_sites(spec, m.finding_sites or group.finding_sites),
        components=tuple(spec_modifiers(spec, m.modifiers) + spec_parameters(spec, m)),
        sources=tuple(spec_sources(spec, group, m)),
    )


def spec_evaluation(spec: ReportSpec, e: QualitativeEvaluation) -> EvaluationView:
    value = must(spec, e.value_code) if e.value_code is not None else e.value_text or ""
    return EvaluationView(
        code=must(spec, e.concept),
        value=value,
        modifiers=tuple(spec_modifiers(spec, e.modifiers)),
    )


def spec_group(spec: ReportSpec, ig: IgVersion, group: MeasurementGroup, inherited: Algorithm | None) -> GroupView:
    # Not compared, reported by §18: Activity Session, TID 1502 rows but Time Point (which only the tables
    # carry, §3), Geometric purpose of region.
    algorithm = group.algorithm or inherited
    default_category = Code(catalog.MEASUREMENT_GROUP.value, "DCM", catalog.MEASUREMENT_GROUP.meaning)
    return GroupView(
        uid=group.observation_uid,
        tracking_identifier=group.tracking_identifier,
        tracking_uid=f"urn:oid:{group.tracking_uid}" if group.tracking_uid else None,
        category=must(spec, group.finding_category or default_category),
        finding=code_of(spec, group.finding),
        method=code_of(spec, group.method),
        sites=spec_sites(spec, group.finding_sites),
        measurements=tuple(spec_measurement(spec, group, m) for m in group.measurements),
        evaluations=tuple(spec_evaluation(spec, e) for e in group.qualitative_evaluations),
        regions=Selected.of(e for r in group.image_references for e in spec_entries(spec, r)),
        source_images=spec_source_images(spec, ig, group),
        spatial=Selected.of(e for s in group.other_spatial_items for e in spatial_entries(spec, s)),
        measurement_selections=tuple(
            Selected.of(e for r in m.image_references for e in spec_entries(spec, r)) for m in group.measurements
        ),
        device=spec_device(spec, ig, algorithm),
        measurement_devices=tuple(spec_device(spec, ig, m.algorithm or algorithm) for m in group.measurements),
        evaluation_devices=tuple(
            spec_device(spec, ig, e.algorithm or algorithm) for e in group.qualitative_evaluations
        ),
    )


def spec_groups(spec: ReportSpec, ig: IgVersion) -> list[GroupView]:
    """Groups in document order with the algorithm each inherits: the Imaging Measurements container's, or the
    derived NUM's a group sits under (its own, else the Derived Imaging Measurements container's)."""
    out = [spec_group(spec, ig, g, spec.measurements_algorithm) for g in spec.groups]
    for derived in spec.derived_measurements:
        algorithm = derived.measurement.algorithm or spec.derived_measurements_algorithm
        out += [spec_group(spec, ig, g, algorithm) for g in derived.groups]
    return out


@functools.cache
def _views(source: str, ig: IgVersion) -> tuple[list[GroupView], list[GroupView]]:
    case = mapped(source, ig)
    return fhir_groups(case), spec_groups(case.spec, ig)


def views(case: Mapped) -> tuple[list[GroupView], list[GroupView]]:
    """(from FHIR alone, from the spec): one view per group, in the spec's order."""
    return _views(case.source, case.ig)


# --- 1. Reconstruction from FHIR alone -------------------------------------------------------------------------
# Each test compares one aspect of every group of the report at once, so that a difference shows with its
# neighbours (pytest -vv prints the whole list).


def test_group_sites_tracking_and_findings(case: Mapped) -> None:
    """Every finding site of a group, in order, each with its own laterality and topographical modifier (§15);
    tracking identifier and UID, finding category, finding and method."""
    got, want = views(case)
    fields = ("uid", "tracking_identifier", "tracking_uid", "category", "finding", "method", "sites")
    assert [[getattr(g, f) for f in fields] for g in got] == [[getattr(g, f) for f in fields] for g in want]


def test_measurements(case: Mapped) -> None:
    """Each measurement: code, value digit for digit, UCUM unit (corrected, docs/units.md), qualifier,
    derivation, method (its own or the group's), sites (its own or the group's), its other components in order
    (concept modifiers, then numeric derivation parameters with their values), and the measurements it names
    as derivation parameters by reference, in `derivedFrom`."""
    got, want = views(case)
    assert [g.measurements for g in got] == [g.measurements for g in want]


def test_qualitative_evaluations(case: Mapped) -> None:
    """Each evaluation of a group: code, coded or text value, and its $QualModType modifiers as components."""
    got, want = views(case)
    assert [g.evaluations for g in got] == [g.evaluations for g in want]


def test_regions_coordinates_and_segments(case: Mapped) -> None:
    """The group's references with exact decimals (float32 Graphic Data as the shortest decimal, §17), frame,
    segment (§17) and ROI numbers in `subset`, each with its profile and concept; the source images for
    segmentation."""
    got, want = views(case)
    assert [(g.regions, g.source_images) for g in got] == [(g.regions, g.source_images) for g in want]


def test_measurement_references(case: Mapped) -> None:
    """A measurement's own TID 320 references (INFERRED FROM), beside its group's: §12 gives an item that no
    profile names, such as one whose concept is the $ImagePurpose "Source of Measurement", the base profile
    and its own concept."""
    got, want = views(case)
    assert [g.measurement_selections for g in got] == [g.measurement_selections for g in want]


def test_other_spatial_items(case: Mapped) -> None:
    """Spatial items that are not the group's ROI (Reference Points): base-profile selections with their own
    concept and coordinates, named by the group only, not by its members (§17)."""
    got, want = views(case)
    assert [g.spatial for g in got] == [g.spatial for g in want]
    spatial = {
        r["id"]
        for r in case.resources
        if r["resourceType"] == "ImagingSelection" and must_coding(r["code"])[:2] in SPATIAL_CONCEPTS
    }
    for observation, group in zip(group_observations(case), case.spec.all_groups, strict=True):
        named = spatial & {s["id"] for s in selections_of(case, observation)}
        assert len(named) == len(group.other_spatial_items)  # one selection each
    for member in case.with_profile(MEASUREMENT) + case.with_profile(EVALUATION):
        assert not spatial & {s["id"] for s in selections_of(case, member)}, member["id"]


def test_devices(case: Mapped) -> None:
    """`Observation.device`: the nearest algorithm, else the first device observer's Device with every field
    TID 1004 maps to (§16), else the equipment. Every device observer is a Device, the second and later too."""
    got, want = views(case)
    fields = ("device", "measurement_devices", "evaluation_devices")
    assert [[getattr(g, f) for f in fields] for g in got] == [[getattr(g, f) for f in fields] for g in want]
    written = {device_view(d) for d in case.resources if is_device(d)}
    assert {spec_observer(o) for o in case.spec.device_observers} <= written


def test_derived_measurements_and_report_evaluations(case: Mapped) -> None:
    """Outside the groups: each derived measurement (code, value, unit, device, the groups it is derived from,
    by value and by reference) and each report-level qualitative evaluation with its device."""
    spec, ig = case.spec, case.ig
    index = {o["id"]: n for n, o in enumerate(group_observations(case))}
    derived = case.with_profile(DERIVED)
    assert len(derived) == len(spec.derived_measurements)
    for observation, item in zip(derived, spec.derived_measurements, strict=True):
        m = item.measurement
        value = observation.get("valueQuantity")
        assert must_coding(observation["code"]) == must(spec, m.concept)
        assert (quantity(value) if value else None) == spec_quantity(spec, m.value, m.unit)
        algorithm = m.algorithm or spec.derived_measurements_algorithm
        assert device_of(case, observation) == spec_device(spec, ig, algorithm, derived=True)
        sources = [case.resolve(r) for r in observation.get("derivedFrom", [])]
        groups = sorted(index[s["id"]] for s in sources if s["meta"]["profile"][0] == GROUP)
        children = [next(n for n, g in enumerate(spec.all_groups) if g is child) for child in item.groups]
        assert groups == sorted(children + list(item.group_references))
    members = {r["reference"] for o in case.with_profile(GROUP) for r in o.get("hasMember", [])}
    report_level = [e for e in case.with_profile(EVALUATION) if f"Observation/{e['id']}" not in members]
    assert [fhir_evaluation(case, e) for e in report_level] == [
        spec_evaluation(spec, e) for e in spec.qualitative_evaluations
    ]
    algorithm = spec.qualitative_evaluations_algorithm
    assert [device_of(case, e) for e in report_level] == [
        spec_device(spec, ig, e.algorithm or algorithm) for e in spec.qualitative_evaluations
    ]


def algorithms(spec: ReportSpec) -> list[Algorithm]:
    """Every TID 4019 block the spec writes."""
    containers = [spec.measurements_algorithm, spec.derived_measurements_algorithm]
    containers.append(spec.qualitative_evaluations_algorithm)
    items: list[MeasurementGroup | Measurement | QualitativeEvaluation] = [*spec.qualitative_evaluations]
    items += [d.measurement for d in spec.derived_measurements]
    for group in spec.all_groups:
        items += [group, *group.measurements, *group.qualitative_evaluations]
    return [a for a in containers + [i.algorithm for i in items] if a is not None]


def codings_in(value: object) -> Iterator[tuple[str, str]]:
    """(system, code) of every Coding anywhere in a resource."""
    if isinstance(value, dict):
        if "system" in value and "code" in value:
            yield value["system"], str(value["code"])
        for item in value.values():
            yield from codings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from codings_in(item)


def test_algorithm_name_codes(case: Mapped) -> None:
    """TID 4019 row 1b writes the Algorithm Name as a CODE as well: each code is in FHIR, or the items are
    reported (§18 names no target for them); not counted as mapped and dropped."""
    codes = [must(case.spec, a.name_code)[:2] for a in algorithms(case.spec) if a.name_code]
    written = {c for r in case.resources for c in codings_in(r)}
    name = ("DCM", catalog.ALGORITHM_NAME.value)
    reported = [u for u in parsed(case.source).unmapped if u.concept == name and u.value_type == "CODE"]
    assert set(codes) <= written or len(reported) == len(codes)


def test_seeds_cover_the_fidelity_cases() -> None:
    """The seeds are only as good as what they contain: several sites per group and per measurement, groups
    without Observation UID (matched by order), 2D and 3D spatial items (also as HAS CONCEPT MOD), MULTIPOINT,
    several segment numbers, segmentation frames, two device observers, misspelled units, legacy SNOMED."""
    found: set[str] = set()
    for source in SOURCES[:-1]:
        spec = spec_of(source)
        found.add(f"observers:{len(spec.device_observers)}")
        found |= {"legacy-snomed"} if spec.legacy_snomed else set()
        for group in spec.all_groups:
            found |= {"group-sites"} if len(group.finding_sites) > 1 else set()
            found |= {"no-uid"} if group.observation_uid is None else set()
            for item in group.other_spatial_items:
                found |= {f"spatial:{item.graphic_type}:{'2d' if item.instance else '3d'}:{item.relationship}"}
            for reference in group.image_references:
                instance = reference.instance
                if instance is not None and reference.kind in SEGMENTATION_KINDS:
                    found.add(f"{reference.kind.value}:{'several' if len(instance.segment_numbers) > 1 else 'one'}")
            for m in group.measurements:
                found |= {"measurement-sites"} if len(m.finding_sites) > 1 else set()
                found |= {"hnsf'U"} if m.unit_spelling else set()
    assert found >= {
        "observers:1",
        "observers:2",
        "legacy-snomed",
        "group-sites",
        "measurement-sites",
        "no-uid",
        "spatial:POINT:2d:HAS PROPERTIES",
        "spatial:POINT:2d:HAS CONCEPT MOD",
        "spatial:MULTIPOINT:2d:HAS PROPERTIES",
        "spatial:MULTIPOINT:2d:HAS CONCEPT MOD",
        "spatial:POINT:3d:HAS PROPERTIES",
        "referenced-segment:several",
        "referenced-segmentation-frame:several",
        "hnsf'U",
    }, found


# --- 2. Tables ---------------------------------------------------------------------------------------------------


def row_site(spec: ReportSpec, site: FindingSite) -> dict:
    """A `finding_sites` struct (sr2fhir_core.rows.FINDING_SITE_TYPE) as the spec gives it."""
    code, laterality, modifier = (code_of(spec, c) for c in (site.site, site.laterality, site.topographical_modifier))
    assert code is not None
    return {
        "code": code[1],
        "system": code[0],
        "display": code[2],
        "laterality_code": laterality[1] if laterality else None,
        "laterality_display": laterality[2] if laterality else None,
        "modifier_code": modifier[1] if modifier else None,
        "modifier_system": modifier[0] if modifier else None,
        "modifier_display": modifier[2] if modifier else None,
    }


def row_modifier(spec: ReportSpec, modifier: CodedValue) -> dict:
    (system, code, display), (value_system, value_code, value_display) = (
        must(spec, modifier.concept),
        must(spec, modifier.value),
    )
    return {
        "code": code,
        "system": system,
        "display": display,
        "value_code": value_code,
        "value_system": value_system,
        "value_display": value_display,
    }


def table_modifiers(row: dict) -> list[dict]:
    # The Equivalent Meaning CODE is a reported row (§18), left out; see EQUIVALENT_MEANING.
    return [m for m in row["concept_modifiers"] if (m["system"], m["code"]) != EQUIVALENT_MEANING]


def check_sites(spec: ReportSpec, row: dict, sites: tuple[FindingSite, ...]) -> None:
    """`finding_sites` lists every site in order; the scalar columns are the first (§15)."""
    listed = [row_site(spec, s) for s in sites]
    assert row["finding_sites"] == listed
    first = listed[0] if listed else dict.fromkeys(("code", "system", "display", "laterality_code"), None)
    assert (row["finding_site_code"], row["finding_site_system"], row["finding_site_display"]) == (
        first["code"],
        first["system"],
        first["display"],
    )
    assert row["laterality_code"] == first["laterality_code"]


def check_parameters(spec: ReportSpec, row: dict, group: MeasurementGroup, m: Measurement) -> None:
    """`derivation_parameters`: the numeric ones by value, then by reference, each with its value as written and
    its unit (the coded and text ones are reported, §18)."""
    want = [
        (code[0], code[1], value[0] if value else None, value[2] if value else None)
        for code, value in numeric_parameters(spec, m) + spec_sources(spec, group, m)
    ]
    got = [
        (p["system"], p["code"], Decimal(p["value_text"]).as_tuple() if p["value_text"] else None, p["unit_code"])
        for p in row["derivation_parameters"]
    ]
    assert got == want


def test_tables(case: Mapped) -> None:
    """The rows of each group carry every finding site, the concept modifiers and the derivation parameters the
    spec wrote, and the time point (kept in the tables only, §3)."""
    spec, rows = case.spec, case.result.rows
    for index, group in enumerate(spec.all_groups, start=1):
        measurements = [r for r in rows["measurements"] if r["group_index"] == index]
        assert len(measurements) == len(group.measurements)
        for row, m in zip(measurements, group.measurements, strict=True):
            check_sites(spec, row, m.finding_sites or group.finding_sites)
            assert table_modifiers(row) == [row_modifier(spec, x) for x in m.modifiers]
            check_parameters(spec, row, group, m)
            assert row["time_point"] == group.time_point
        evaluations = [r for r in rows["qualitative_evaluations"] if r["group_index"] == index]
        assert len(evaluations) == len(group.qualitative_evaluations)
        for row, e in zip(evaluations, group.qualitative_evaluations, strict=True):
            check_sites(spec, row, group.finding_sites)
            assert table_modifiers(row) == [row_modifier(spec, x) for x in e.modifiers]


# --- 3. Accounting ------------------------------------------------------------------------------------------------


def test_accounting(case: Mapped) -> None:
    """What reaches no output is a row the decision table reports, counted in the record and listed in one
    document warning. A reported concept counts only in its own row: of the INFERRED FROM items the table
    reports only the coded and text ones (derivation parameters, the Equation), so an unmapped numeric or
    reference item is lost even when its concept is one a reported row names."""
    report = parsed(case.source)
    assert losses(report.unmapped) == []
    inferred = [u for u in report.unmapped if u.relationship == "INFERRED FROM"]
    assert [u for u in inferred if u.value_type not in ("CODE", "TEXT")] == []
    record = case.result.record
    assert record.unmapped_items == len(report.unmapped)
    warnings = [w for w in case.result.warnings if w.code is WarningCode.UNMAPPED_CONTENT and not w.position]
    if report.unmapped:
        [warning] = warnings
        assert warning.message.startswith(f"{len(report.unmapped)} content items not mapped: ")
    else:
        assert warnings == []


def test_every_row_reports_only_reported_rows() -> None:
    """`every_row_spec` writes every template row: what it leaves unmapped are only rows §18 reports, and the
    reported rows are counted as unmapped (a sample: language, procedure reported, activity session, image
    library, device role in procedure), not taken up by some other row."""
    report = parsed(EVERY_ROW)
    assert losses(report.unmapped) == []
    unmapped = {u.concept for u in report.unmapped}
    for concept in [("DCM", "121049"), ("DCM", "121058"), ("NCIt", "C67447"), ("DCM", "111028"), ("DCM", "113876")]:
        assert concept in unmapped


def is_quantity(value: object) -> bool:
    """A component value that is a quantity (decimal digits, unit system, unit code), not a Coding."""
    return isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], DecimalTuple)


def is_coding(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 3 and isinstance(value[0], str)


def repeats(case: Mapped) -> dict[str, int]:
    """For each row `every_row_spec` writes two or more times (its docstring), how often the FHIR output holds
    it: the fewest per item for "n per X" rows, the most for "x n" rows. Not counted: rows §18 reports
    (Procedure reported, Time Point Type, Device Role in Procedure, Manufacturer Class UID, Unique Device
    Identifiers), and 3D regions, whose coordinates R5 cannot hold (§5), so that STU1 rightly keeps one
    selection per frame of reference (§14)."""
    observations = group_observations(case)
    groups = [fhir_group(case, o) for o in observations]
    measurements = [m for g in groups for m in g.measurements]
    coded = [e for g in groups for e in g.evaluations if not isinstance(e.value, str)]
    volumetric = [v for v, g in zip(groups, case.spec.all_groups, strict=True) if g.template.value == "1411"]
    selections = [r for r in case.resources if r["resourceType"] == "ImagingSelection"]

    def subsets(code: str) -> list[int]:
        """Subset values of each selection of a concept, over its instance entries."""
        found = [s for s in selections if must_coding(s["code"])[1] == code]
        return [sum(len(i.get("subset", [])) for i in s["instance"]) for s in found]

    def entries(view: GroupView, code: str) -> int:
        return sum(e.code[1] == code and e.uid is not None for e in view.regions.entries)

    def spatial_selections(observation: Resource) -> int:
        return sum(must_coding(s["code"])[:2] in SPATIAL_CONCEPTS for s in selections_of(case, observation))

    points = [
        sum(len(i.get("imageRegion2D", [])) for i in s.get("instance", []))
        for s in selections
        if must_coding(s["code"])[:2] in SPATIAL_CONCEPTS
    ]
    observers = {spec_observer(o) for o in case.spec.device_observers}

    return {
        "groups": len(groups),
        "finding sites per group": min(len(g.sites) for g in groups),
        "reference points per group": min(spatial_selections(o) for o in observations),
        "points of a MULTIPOINT reference points item": max(points),
        "visual explanations per group": min(entries(g, "130401") for g in groups),
        "illustrations per TID 1411 group": min(entries(g, "121200") for g in volumetric),
        "2D image regions of a group": max(entries(g, "111030") for g in groups),
        "source images for segmentation of a group": max(len(g.source_images) for g in groups),
        "measurements per group": min(len(g.measurements) for g in groups),
        "finding sites per measurement": min(len(m.sites) for m in measurements),
        "concept modifiers per measurement": min(sum(is_coding(v) for _, v in m.components) for m in measurements),
        "numeric derivation parameters of a measurement": max(
            sum(is_quantity(v) for _, v in m.components) for m in measurements
        ),
        "measurements a measurement is derived from": max(len(m.sources) for m in measurements),
        "own references of a measurement": max(
            len(s.entries) + len(s.frames) for g in groups for s in g.measurement_selections
        ),
        "coded evaluations per group": min(sum(not isinstance(e.value, str) for e in g.evaluations) for g in groups),
        "text evaluations per group": min(sum(isinstance(e.value, str) for e in g.evaluations) for g in groups),
        "modifiers per coded evaluation": min(len(e.modifiers) for e in coded),
        "segment numbers of a referenced segment": min(subsets("121191")),
        "segment numbers of a segmentation frame": min(subsets("121214")),
        "ROI numbers of a region in space": min(subsets("130488")),
        "parameters per algorithm": min(len(d.get("property", [])) for d in case.with_profile(ALGORITHM)),
        "device observers": len(observers & {device_view(r) for r in case.resources if is_device(r)}),
        "person observers": sum(1 for r in case.resources if r["resourceType"] == "Practitioner"),
        "derived measurements": len(case.with_profile(DERIVED)),
        "groups per derived measurement": min(
            sum(case.resolve(r)["meta"]["profile"][0] == GROUP for r in d["derivedFrom"])
            for d in case.with_profile(DERIVED)
        ),
    }


@pytest.mark.parametrize("ig", IG_VERSIONS, ids=str)
def test_every_row_repeats_reach_fhir(ig: IgVersion) -> None:
    """Every row the generator writes two or more times is there two or more times in FHIR: a mapping that
    keeps only the first site, device, segment number, modifier or parameter fails here."""
    counts = repeats(mapped(EVERY_ROW, ig))
    assert {name: count for name, count in counts.items() if count < 2} == {}, counts


# --- 4. Root omissions -------------------------------------------------------------------------------------------

ROOT_ROWS = {
    Feature.OMIT_LANGUAGE: "(TID 1204)",
    Feature.OMIT_OBSERVER_CONTEXT: "(TID 1001)",
    Feature.OMIT_PROCEDURE_REPORTED: "(121058, DCM)",
}
"""How the warning names each of TID 1500's mandatory root rows: by its template or concept."""
ROOT_WARNING = "TID 1500 report without its mandatory "


def missing_root_rows(spec: ReportSpec) -> set[Feature]:
    """The root rows a spec leaves out (the generator leaves some out by chance as well)."""
    missing = set()
    if spec.language is None:
        missing.add(Feature.OMIT_LANGUAGE)
    if not spec.person_observers and not spec.device_observers:
        missing.add(Feature.OMIT_OBSERVER_CONTEXT)
    if not spec.procedures_reported:
        missing.add(Feature.OMIT_PROCEDURE_REPORTED)
    return missing


@pytest.mark.parametrize(
    "omitted", [frozenset({f}) for f in ROOT_ROWS] + [ROOT_OMISSIONS], ids=lambda o: "+".join(sorted(o))
)
def test_root_omissions(omitted: frozenset[Feature]) -> None:
    """A report without TID 1500's mandatory root rows still maps, every measurement, with one
    nonconformant_content warning that names exactly the rows it misses (§18), and loses nothing else."""
    for seed in range(4):
        spec = random_spec(seed, features=omitted | FIDELITY_FEATURES)  # an omission wins over device observers
        missing = missing_root_rows(spec)
        assert omitted <= missing
        data = write_sr(spec)
        report = parse_report(read_document(data))
        assert losses(report.unmapped) == []
        for ig in IG_VERSIONS:
            result = map_sr(data, MappingOptions(ig_version=ig))
            assert result.mapped, (seed, ig, result.record)
            assert len(result.rows["measurements"]) == sum(len(g.measurements) for g in spec.all_groups) + len(
                spec.derived_measurements
            )
            [warning] = [
                w
                for w in result.warnings
                if w.code is WarningCode.NONCONFORMANT_CONTENT and w.message.startswith(ROOT_WARNING)
            ]
            named = {feature for feature, name in ROOT_ROWS.items() if name in warning.message}
            assert named == missing, (seed, ig, warning.message)


def test_a_complete_root_gives_no_root_warning() -> None:
    """The warning is about the report, not a constant: `every_row_spec` has every root row."""
    result = mapped(EVERY_ROW, IgVersion.BALLOT).result
    assert not [w for w in result.warnings if w.message.startswith(ROOT_WARNING)]
