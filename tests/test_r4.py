"""R4 output (`fhir_version: r4`): nothing the R5 output says is lost, references resolve, the tables and the R5
output do not change, the option reaches the job's configuration, fingerprint and command line.

The HL7 validator's verdict on the R4 output is in profile_validation/test_r4_conformance.py (marker profiles).
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from jobs.cli import main
from jobs.config import load_config
from jobs.errors import ConfigError
from jobs.run.context import mapping_fingerprint
from jobs.sinks.ndjson import exported_deletions
from sr2fhir_core import FhirVersion, IgVersion, MappingOptions, dumps_json, map_sr
from sr2fhir_core.fhir.r4 import ALTERNATE_REFERENCE, BODY_SITE, NATIVE, XVER, R4ConversionError, to_r4
from sr2fhir_synth import FIDELITY_FEATURES, every_row_spec, random_spec, write_sr

SEEDS = range(0, 40, 3)
PACKAGES = Path.home() / ".cache/sr2fhir/fhir-validator/.fhir/packages"
"""The validator harness's FHIR packages (tests/profile_validation/fhir_validator.py install)."""
XVER_PATHS = PACKAGES / "hl7.fhir.xver-extensions#0.1.0/package/other/xver-paths-5.0.json"


def _inputs() -> list[bytes]:
    inputs = [write_sr(random_spec(s, participants=s % 8 == 0)) for s in SEEDS]
    inputs += [write_sr(random_spec(s, features=FIDELITY_FEATURES)) for s in range(3)]
    return [*inputs, write_sr(every_row_spec())]


@pytest.fixture(scope="module", params=[IgVersion.BALLOT, IgVersion.STU1], ids=lambda v: v.value)
def pairs(request: pytest.FixtureRequest) -> list[tuple[object, object]]:
    """(R5 result, R4 result) per generated report, under one IG structure."""
    r5 = MappingOptions(ig_version=request.param)
    r4 = MappingOptions(ig_version=request.param, fhir_version=FhirVersion.R4)
    return [(map_sr(data, r5), map_sr(data, r4)) for data in _inputs()]


def _leaves(node: object, skip_profiles: bool = True) -> Counter[str]:
    """Every primitive value of a resource tree, as text; ImagingSelection references as their Basic's."""
    found: Counter[str] = Counter()

    def walk(value: object, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k in ("resourceType", "url") or (skip_profiles and k == "meta"):
                    continue
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        else:
            text = str(value)
            if key == "reference":
                text = text.replace("ImagingSelection/", "Basic/")
            found[text] += 1

    walk(node, "")
    return found


def test_nothing_the_r5_output_says_is_lost(pairs: list) -> None:
    """Every value of the R5 resources (but their R5 profiles) is in the R4 resources of the same report, as
    often; R4 adds nothing but the contained BodyStructures' copies of a site and its patient."""
    for r5, r4 in pairs:
        assert r4.mapped and r4.record.resources == r5.record.resources
        assert [r["id"] for r in r4.resources] == [r["id"] for r in r5.resources]
        missing = _leaves(r5.resources) - _leaves(r4.resources)
        assert not missing, f"R5 values missing from R4: {list(missing.items())[:10]}"


def test_tables_do_not_depend_on_the_fhir_version(pairs: list) -> None:
    for r5, r4 in pairs:
        assert r4.rows == r5.rows
        assert r4.record == r5.record
        assert [(w.code, w.position, w.message) for w in r4.warnings] == [
            (w.code, w.position, w.message) for w in r5.warnings
        ]


def _references(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return own + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def test_r4_resources_are_r4(pairs: list) -> None:
    """No R5-only type or IG profile; ImagingSelections are Basics of the same id; every reference resolves in
    the report (a contained resource in its container); references R4 cannot type are alternate references."""
    for r5, r4 in pairs:
        assert not any(r["resourceType"] == "ImagingSelection" or "meta" in r for r in r4.resources)
        selections = {r["id"] for r in r5.resources if r["resourceType"] == "ImagingSelection"}
        assert selections == {r["id"] for r in r4.resources if r["resourceType"] == "Basic"}
        known = {f"{r['resourceType']}/{r['id']}" for r in r4.resources}
        for resource in r4.resources:
            contained = {f"#{c['id']}" for c in resource.get("contained", [])}
            for reference in _references(resource):
                assert reference in known | contained, reference
            for element in ("derivedFrom", "partOf", "hasMember"):
                for item in resource.get(element, []):
                    assert ("reference" in item) != ("extension" in item)
                    if "extension" in item:
                        assert item["extension"][0]["url"] == ALTERNATE_REFERENCE
                        assert item["extension"][0]["valueReference"]["reference"].startswith("Basic/")


def test_r5_output_is_unchanged_by_the_option(pairs: list) -> None:
    """R5 resources are still what the R5 builders make (to_r4 copies, never changes its input)."""
    for r5, _ in pairs:
        before = dumps_json(r5.resources)
        to_r4(r5.resources)
        assert dumps_json(r5.resources) == before
    assert any(r["resourceType"] == "ImagingSelection" for r5, _ in pairs for r in r5.resources)


def test_conversion_is_deterministic(pairs: list) -> None:
    for r5, r4 in pairs[:3]:
        assert dumps_json(to_r4(r5.resources)) == dumps_json(r4.resources)


def _extensions(node: object, path: tuple[str, ...] = ()) -> list[tuple[str, dict, tuple[str, ...]]]:
    """(url, extension, urls of the extensions it is nested in) of every extension."""
    found = []
    if isinstance(node, dict):
        for key in ("extension", "modifierExtension"):
            for extension in node.get(key, []):
                found.append((extension["url"], extension, path))
                found += _extensions(extension, (*path, extension["url"]))
        for key, value in node.items():
            if key not in ("extension", "modifierExtension"):
                found += _extensions(value, path)
    elif isinstance(node, list):
        for value in node:
            found += _extensions(value, path)
    return found


XVER_TYPE_OF_VALUE = {
    "valueReference": "Reference",
    "valueId": "id",
    "valueCode": "code",
    "valueString": "string",
    "valueDecimal": "decimal",
    "valueCoding": "Coding",
    "valueCodeableConcept": "CodeableConcept",
    "valueInstant": "instant",
    "valueUnsignedInt": "unsignedInt",
    "valueBoolean": "boolean",
}


def test_cross_version_extensions_are_those_of_the_path_maps(pairs: list) -> None:
    """Each cross-version extension written names an R5 element of hl7.fhir.xver-extensions' path map, with a
    value of one of that element's types, and a complex one has only the element's children as parts."""
    if not XVER_PATHS.is_file():
        pytest.skip(f"{XVER_PATHS} not installed (tests/profile_validation/fhir_validator.py install)")
    paths = json.loads(XVER_PATHS.read_text())
    seen = set()
    for _, r4 in pairs:
        for url, extension, parents in _extensions(r4.resources):
            chain = [*parents, url]
            roots = [i for i, u in enumerate(chain) if u.startswith(XVER)]
            if roots:
                element = ".".join([chain[roots[-1]].removeprefix(XVER), *chain[roots[-1] + 1 :]])
            else:
                assert url in (ALTERNATE_REFERENCE, BODY_SITE), url
                continue
            seen.add(element)
            facts = paths.get(element) or paths.get(element + "[x]")
            assert facts is not None, f"{element} is not in the R5 path map"
            if "extension" in extension:
                children = {p["url"] for p in extension["extension"]}
                assert children <= set(facts["elements"]), element
                continue
            (value_key,) = [k for k in extension if k.startswith("value")]
            wanted = XVER_TYPE_OF_VALUE[value_key]
            assert any(t.partition("(")[0] == wanted for t in facts["types"]), (element, value_key, facts)
    assert {"ImagingSelection.instance", "ImagingSelection.status", "Observation.bodyStructure"} <= seen


def _snapshot(package: str, resource_type: str) -> dict[str, dict]:
    path = PACKAGES / package / "package" / f"StructureDefinition-{resource_type}.json"
    if not path.is_file():
        pytest.skip(f"{path} not installed (tests/profile_validation/fhir_validator.py install)")
    return {e["path"]: e for e in json.loads(path.read_text())["snapshot"]["element"]}


def test_native_elements_are_the_same_in_r4() -> None:
    """Each element copied as it is has, in the R4 core StructureDefinitions, the R5 element's cardinality and
    types (a choice element: its type among both versions' choices)."""
    for resource_type, elements in NATIVE.items():
        r4 = _snapshot("hl7.fhir.r4.core#4.0.1", resource_type)
        r5 = _snapshot("hl7.fhir.r5.core#5.0.0", resource_type)
        for element in sorted(elements):
            path, choice = f"{resource_type}.{element}", None
            for base in ("value", "effective"):
                if element.startswith(base) and element != base:
                    path, choice = f"{resource_type}.{base}[x]", element.removeprefix(base).lower()
            old, new = r4[path], r5[path]
            assert (old["min"], old["max"]) == (new["min"], new["max"]), path
            old_types = {t["code"].lower() for t in old["type"]}
            new_types = {t["code"].lower() for t in new["type"]}
            assert choice in old_types & new_types if choice else old_types == new_types, (path, element)


def test_an_element_without_a_rule_is_an_error() -> None:
    with pytest.raises(R4ConversionError, match=r"Observation\.triggeredBy: no rule for unknown"):
        to_r4([{"resourceType": "Observation", "id": "o", "triggeredBy": [{"unknown": 1}]}])
    with pytest.raises(R4ConversionError, match=r"Observation\.instantiatesCanonical"):
        to_r4([{"resourceType": "Observation", "id": "o", "instantiatesCanonical": "x"}])
    with pytest.raises(R4ConversionError, match="resource type Specimen"):
        to_r4([{"resourceType": "Specimen", "id": "s"}])


def test_body_structure_and_device_conversion() -> None:
    """The element facts R4 says natively: includedStructure → location/locationQualifier (further ones
    contained), Device names, a single type, property values R4 cannot type as extensions."""
    site = {"coding": [{"system": "http://snomed.info/sct", "code": "10200004"}]}
    left = {"coding": [{"system": "http://snomed.info/sct", "code": "7771000"}]}
    upper = {"text": "upper"}
    (body,) = to_r4(
        [
            {
                "resourceType": "BodyStructure",
                "id": "b",
                "patient": {"reference": "Patient/p"},
                "includedStructure": [
                    {"structure": site, "laterality": left, "qualifier": [upper]},
                    {"structure": upper},
                ],
            }
        ]
    )
    assert body["location"] == site and body["locationQualifier"] == [left, upper]
    assert body["contained"] == [
        {"resourceType": "BodyStructure", "id": "structure-2", "location": upper, "patient": {"reference": "Patient/p"}}
    ]
    assert body["extension"] == [{"url": BODY_SITE, "valueReference": {"reference": "#structure-2"}}]
    (device,) = to_r4(
        [
            {
                "resourceType": "Device",
                "id": "d",
                "displayName": "CAD",
                "name": [{"value": "Bob", "type": "user-friendly-name"}, {"value": "R", "type": "registered-name"}],
                "type": [upper, site],
                "property": [
                    {"type": upper, "valueString": "k=1"},
                    {"type": upper, "valueQuantity": {"value": Decimal(1)}},
                ],
            }
        ]
    )
    assert device["deviceName"] == [{"name": "Bob", "type": "user-friendly-name"}]
    assert device["type"] == upper
    assert device["property"] == [
        {"type": upper, "extension": [{"url": XVER + "Device.property.value", "valueString": "k=1"}]},
        {"type": upper, "valueQuantity": [{"value": Decimal(1)}]},
    ]
    assert device["extension"] == [
        {"url": XVER + "Device.displayName", "valueString": "CAD"},
        {
            "url": XVER + "Device.name",
            "extension": [{"url": "value", "valueString": "R"}, {"url": "type", "valueCode": "registered-name"}],
        },
        {"url": XVER + "Device.type", "valueCodeableConcept": site},
    ]


def test_fhir_version_is_a_configuration_key_and_part_of_the_fingerprint(tmp_path: Path) -> None:
    r5 = load_config(inputs=["x"], output=str(tmp_path))
    r4 = load_config(inputs=["x"], output=str(tmp_path), overrides=["mapping.fhir_version=r4"])
    assert r5.mapping.fhir_version is FhirVersion.R5 and r4.mapping.fhir_version is FhirVersion.R4
    assert "fhir_version" not in r5.mapping.as_dict()  # R5 lakes keep their fingerprint
    assert mapping_fingerprint(r5) != mapping_fingerprint(r4)
    with pytest.raises(ConfigError, match="mapping: 'r3' is not a valid FhirVersion"):
        load_config(inputs=["x"], output=str(tmp_path), overrides=["mapping.fhir_version=r3"])


def test_r4_exports_leave_out_deletions_of_r5_only_types() -> None:
    deleted = [("ImagingSelection", "a"), ("Observation", "b"), ("Basic", "c")]
    assert exported_deletions(deleted, FhirVersion.R4) == [("Observation", "b"), ("Basic", "c")]
    assert exported_deletions(deleted, FhirVersion.R5) == deleted


def test_map_command_writes_r4(tmp_path: Path) -> None:
    source = tmp_path / "report.dcm"
    source.write_bytes(write_sr(random_spec(1)))
    assert main(["map", str(source), "-o", str(tmp_path), "--fhir-version", "r4"]) == 0
    bundle = orjson.loads((tmp_path / "report.dcm.json").read_bytes())
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert "Basic" in types and "ImagingSelection" not in types
    assert all(
        e["fullUrl"].endswith(f"/{e['resource']['resourceType']}/{e['resource']['id']}") for e in bundle["entry"]
    )
