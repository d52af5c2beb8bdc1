"""Small pure functions of the core: DICOM dates and times, coding schemes, ids."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sr2fhir_core import MappingOptions, map_sr
from sr2fhir_core.codes import CodeSystems, canonical, same_concept, system_for
from sr2fhir_core.content import Code
from sr2fhir_core.datetimes import dicom_date, from_date_time, from_dicom_datetime
from sr2fhir_core.document import CodingSchemeIdentification, Issuer
from sr2fhir_core.fhir.context import _issuer_system
from sr2fhir_core.fhir.ids import document_resource_id, resource_id
from sr2fhir_synth import random_spec, write_sr


@pytest.mark.parametrize(
    ("da", "tm", "instant", "expected"),
    [
        ("20190323", "082428", True, "2019-03-23T08:24:28+00:00"),
        ("20190323", "0824", True, "2019-03-23T08:24:00+00:00"),
        ("20230501", "225835.127244", True, "2023-05-01T22:58:35.127244+00:00"),
        ("20230501", None, True, None),
        ("20230501", None, False, "2023-05-01"),
        ("20230231", "1200", False, None),
        ("", "1200", False, None),
        ("2019.03.23", "08:24:28", True, "2019-03-23T08:24:28+00:00"),
    ],
)
def test_date_and_time(da: str, tm: str | None, instant: bool, expected: str | None) -> None:
    assert from_date_time(da, tm, "+00:00", instant=instant) == expected


def test_datetime_offset_wins_over_default() -> None:
    assert from_dicom_datetime("20190323082428+0100", "+00:00", instant=True) == "2019-03-23T08:24:28+01:00"
    assert from_dicom_datetime("20190323082428", "-05:00", instant=True) == "2019-03-23T08:24:28-05:00"
    assert from_dicom_datetime("2019", "+00:00", instant=False) == "2019"
    assert from_dicom_datetime("2019", "+00:00", instant=True) is None
    assert from_dicom_datetime("not a date", "+00:00", instant=False) is None
    assert dicom_date("19861311") is None


def test_legacy_snomed_rt_is_mapped_to_snomed_ct() -> None:
    finding_site = Code(value="G-C0E3", scheme="SRT", meaning="Finding Site")
    assert canonical(finding_site).key == ("SCT", "363698007")
    assert same_concept(finding_site, Code(value="363698007", scheme="SCT"))
    unknown = Code(value="X-NOPE", scheme="SRT")
    assert canonical(unknown) == unknown


def test_coding_scheme_systems() -> None:
    assert system_for("SCT") == ("http://snomed.info/sct", True)
    assert system_for("RadLex") == ("http://radlex.org", True)
    assert system_for("99PYRADIOMICS") == ("urn:dicom:coding-scheme:99PYRADIOMICS", False)
    declared = CodeSystems(
        [
            CodingSchemeIdentification(designator="99X", url="https://example.org/x"),
            CodingSchemeIdentification(designator="99Y", uid="1.2.3"),
        ],
        {"99Z": "https://example.org/z"},
    )
    assert declared.system("99X") == "https://example.org/x"
    assert declared.system("99Y") == "urn:oid:1.2.3"
    assert declared.system("99Z") == "https://example.org/z"
    assert declared.system("IBSI") == "urn:oid:1.2.840.10008.2.16.13"  # DICOM's UID for it, declared or not
    assert declared.system("ABC").startswith("urn:dicom:coding-scheme:")
    assert declared.unregistered == {"ABC"}


def test_ids_are_stable_and_distinct() -> None:
    assert resource_id("Patient", "a", "1") == resource_id("Patient", "a", "1")
    assert resource_id("Patient", "a", "1") != resource_id("Patient", "a1", "")
    assert document_resource_id("Observation", "1.2", (1, 4)) != document_resource_id("Observation", "1.2", (1, 4), "x")


def test_options_validate_timezone() -> None:
    assert MappingOptions(default_timezone="+0130").default_timezone == "+01:30"
    with pytest.raises(ValueError):
        MappingOptions(default_timezone="CET")


def test_ids_are_rfc4122_name_based_uuids() -> None:
    import uuid

    from sr2fhir_core.fhir.ids import NAMESPACE

    assert resource_id("Patient", "x", "PID-1") == str(uuid.uuid5(NAMESPACE, "Patient\x1fx\x1fPID-1"))
    assert document_resource_id("Observation", "1.2", (1, 4, 2)) == str(
        uuid.uuid5(NAMESPACE, "Observation\x1f1.2\x1f1.4.2\x1f")
    )


@pytest.mark.parametrize(
    ("universal_id", "kind", "expected"),
    [
        ("http://test-hospital.org/mr", "URI", "http://test-hospital.org/mr"),
        ("1.2.3.4", "ISO", "urn:oid:1.2.3.4"),
        ("1.2.3.4", None, "urn:oid:1.2.3.4"),
        # The IG's own example: type URI, but no scheme; Identifier.system must be absolute.
        ("test-hospital.org", "URI", None),
        ("test-hospital.org", "DNS", None),
        ("urn:uuid:6f1c1d55-2a3e-5d0b-9b7e-5e2f0c5a7d11", None, "urn:uuid:6f1c1d55-2a3e-5d0b-9b7e-5e2f0c5a7d11"),
    ],
)
def test_issuer_system_is_an_absolute_uri_or_absent(universal_id: str, kind: str | None, expected: str | None) -> None:
    assert _issuer_system(Issuer(universal_id=universal_id, universal_id_type=kind)) == expected


def test_bundle_full_urls_resolve_every_relative_reference() -> None:
    """FHIR resolves "Type/id" inside a Bundle against the base of a RESTful fullUrl (not a urn:uuid)."""
    result = map_sr(write_sr(random_spec(3)))
    for base in ("http://sr2fhir.invalid/fhir", "https://fhir.example.net/r5/"):
        bundle = result.bundle(base)
        full_urls = {entry["fullUrl"] for entry in bundle["entry"]}
        assert len(full_urls) == len(bundle["entry"])
        references = list(_references(bundle))
        assert len(references) > 10
        for reference in references:
            assert f"{base.rstrip('/')}/{reference}" in full_urls


def _references(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)
