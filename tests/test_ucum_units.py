"""Units are checked against UCUM (sr2fhir_core/units.py, docs/units.md): valid codes pass unchanged, known
misspellings are corrected, other invalid codes leave the UCUM system; FHIR and the tables agree."""

from __future__ import annotations

import dataclasses
import time
from decimal import Decimal

import pytest

from sr2fhir_core import map_sr, units
from sr2fhir_core.codes import DICOM_DCM, UCUM, UNREGISTERED_SYSTEM_PREFIX, CodeSystems, system_for
from sr2fhir_core.content import Code
from sr2fhir_core.errors import WarningCode
from sr2fhir_core.fhir.datatypes import CodingContext, quantity
from sr2fhir_synth import random_spec, write_sr
from sr2fhir_synth import spec as synth

# What ucumvert 0.3 answers, asserted as facts: the table below is the test of the grammar we rely on.
VALID = [
    "mm",
    "cm",
    "mm2",
    "mm3",
    "ml",
    "mL",
    "cm3",
    "g",
    "g/ml{SUVbw}",
    "cm2/ml{SUVbsa}",
    "{ratio}",
    "1",
    "%",
    "[hnsf'U]",
    "Bq/ml",
    "/min",
    "ml/min/{1.73_m2}",
    "hu",  # valid, but hecto-(enzyme) unit: not a Hounsfield unit, and so left alone
]
INVALID = [
    "HU",
    "hnsf'U",
    "{SUVbw}g/ml",
    "mm^2",
    "mm²",
    "µm",
    "cc",
    "mmHg",
    "{Hounsfield unit}",  # a space is not allowed in an annotation
    "no units",
    "",
]


@pytest.mark.parametrize("code", VALID)
def test_valid_units_pass_unchanged(code: str) -> None:
    assert units.is_valid_ucum(code)
    unit = Code(code, "UCUM", "some unit")
    assert units.quantity_unit(unit, UCUM, "1.2") == units.QuantityUnit("some unit", UCUM, code, None)
    assert units.unit_code(unit, UCUM) == code


@pytest.mark.parametrize("code", INVALID)
def test_invalid_units_are_invalid(code: str) -> None:
    assert not units.is_valid_ucum(code)


@pytest.mark.parametrize(("written", "ucum"), sorted(units.UCUM_MISSPELLINGS.items()))
def test_each_misspelling_is_invalid_and_its_correction_valid(written: str, ucum: str) -> None:
    assert not units.is_valid_ucum(written)
    assert units.is_valid_ucum(ucum)
    unit = Code(written, "UCUM", "the meaning")
    resolved = units.quantity_unit(unit, UCUM, "1.4.2")
    assert (resolved.unit, resolved.system, resolved.code) == ("the meaning", UCUM, ucum)
    assert resolved.warning is not None
    assert (resolved.warning.code, resolved.warning.position) == (WarningCode.INVALID_UNIT, "1.4.2")
    assert "corrected to valid UCUM" in resolved.warning.message
    assert written not in resolved.warning.message
    assert units.unit_code(unit, UCUM) == ucum
    # Without a meaning, the display is the corrected code, not the misspelling.
    assert units.quantity_unit(Code(written, "UCUM"), UCUM).unit == ucum


def test_the_table_starts_from_the_known_cases() -> None:
    assert units.UCUM_MISSPELLINGS["hnsf'U"] == "[hnsf'U]"
    assert units.UCUM_MISSPELLINGS["{SUVbw}g/ml"] == "g/ml{SUVbw}"


@pytest.mark.parametrize("designator", ["UCUM", "ucum"])
def test_an_invalid_unit_leaves_ucum_with_one_warning(designator: str) -> None:
    system, registered = system_for(designator)
    assert (system, registered) == (UCUM, True)
    unit = Code("mm^2", designator, "square millimeter")
    resolved = units.quantity_unit(unit, system, "1.3")
    assert (resolved.unit, resolved.system, resolved.code) == (
        "square millimeter",
        UNREGISTERED_SYSTEM_PREFIX + designator,
        "mm^2",
    )
    assert resolved.system != UCUM
    assert resolved.warning is not None
    assert (resolved.warning.code, resolved.warning.position) == (WarningCode.INVALID_UNIT, "1.3")
    assert "not valid UCUM" in resolved.warning.message and "mm^2" not in resolved.warning.message
    assert units.unit_code(unit, system) == "mm^2"


def test_a_scheme_declared_as_ucum_is_checked() -> None:
    """A designator is UCUM when it resolves to the UCUM URI, e.g. through the SR's own declaration."""
    systems = CodeSystems([], {"99UNITS": UCUM})
    context = CodingContext(systems)
    assert context.unit(Code("hnsf'U", "99UNITS", "Hounsfield unit"))["code"] == "[hnsf'U]"
    assert context.unit(Code("mm^2", "99UNITS"))["system"] == UNREGISTERED_SYSTEM_PREFIX + "99UNITS"


@pytest.mark.parametrize(
    ("unit", "system"),
    [
        (Code("{SUVbw}g/ml", "DCM", "Standardized Uptake Value body weight"), DICOM_DCM),
        (Code("hnsf'U", "99PRIVATE", "Hounsfield unit"), UNREGISTERED_SYSTEM_PREFIX + "99PRIVATE"),
    ],
)
def test_other_schemes_keep_their_codes(unit: Code, system: str) -> None:
    assert units.quantity_unit(unit, system) == units.QuantityUnit(unit.meaning, system, unit.value, None)
    assert units.unit_code(unit, system) == unit.value
    context = CodingContext(CodeSystems([], {}))
    one = Decimal(1)
    assert quantity(one, unit, context) == {"value": one, "unit": unit.meaning, "system": system, "code": unit.value}


def test_one_warning_per_unit_and_document_at_its_first_position() -> None:
    context = CodingContext(CodeSystems([], {}))
    misspelt, invalid, valid = Code("hnsf'U", "UCUM", "HU"), Code("mm^2", "UCUM"), Code("mm", "UCUM")
    first = context.unit(misspelt, (1, 4, 2))
    assert context.unit(misspelt, (1, 5, 1)) is first  # made once per unit and document
    context.unit(invalid, (1, 6))
    context.unit(invalid, (1, 7))
    context.unit(valid, (1, 8))
    warnings = [w for w in context.warnings() if w.code is WarningCode.INVALID_UNIT]
    assert [w.position for w in warnings] == ["1.4.2", "1.6"]
    assert first == {"unit": "HU", "system": UCUM, "code": "[hnsf'U]"}


def test_too_long_codes_are_not_parsed() -> None:
    long = "mm." * 30 + "mm"  # valid UCUM, but far beyond any real unit
    assert len(long) > units.MAX_UCUM_LENGTH
    started = time.perf_counter()
    assert not units.is_valid_ucum(long)
    assert time.perf_counter() - started < 0.01


def test_the_parser_is_built_once_and_answers_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    units.valid_ucum("mm")
    for code in ("mm", "cm3", "hnsf'U", "mm^2"):
        units.valid_ucum(code)
    info = units._parser.cache_info()
    assert (info.misses, info.currsize) == (1, 1)
    assert units._VALID["hnsf'U"] == "[hnsf'U]"
    assert units._VALID["mm^2"] is None
    # Bounded: a flood of distinct codes does not grow the cache past its limit.
    monkeypatch.setattr(units, "_VALID_LIMIT", 8)
    monkeypatch.setattr(units, "_VALID", {})
    for n in range(1, 30):
        assert units.valid_ucum(f"{n}.mm") == f"{n}.mm"
    assert len(units._VALID) <= 8


# --- End to end: a synthetic report through map_sr ---------------------------------------------------------

HOUNSFIELD_MISSPELT = synth.Code("hnsf'U", "UCUM", "Hounsfield unit")
INVALID_UNIT = synth.Code("mm^2", "UCUM", "square millimeter")


def _report_with_two_bad_units() -> synth.ReportSpec:
    """The first random report with a group of two measured values: one in a misspelt unit, one in an
    invalid one, each with a value no other measurement has."""
    for seed in range(100):
        spec = random_spec(seed)
        for index, group in enumerate(spec.groups):
            measured = [i for i, m in enumerate(group.measurements) if m.value is not None and m.unit is not None]
            if len(measured) < 2:
                continue
            changed = list(group.measurements)
            changed[measured[0]] = dataclasses.replace(changed[measured[0]], unit=HOUNSFIELD_MISSPELT, value="4242.5")
            changed[measured[1]] = dataclasses.replace(changed[measured[1]], unit=INVALID_UNIT, value="4343.5")
            groups = list(spec.groups)
            groups[index] = dataclasses.replace(group, measurements=tuple(changed))
            return dataclasses.replace(spec, groups=tuple(groups))
    raise AssertionError("no random report has a group with two measured values")


def test_map_sr_corrects_or_moves_units_in_fhir_and_rows() -> None:
    result = map_sr(write_sr(_report_with_two_bad_units()))
    assert result.mapped, result.record
    rows = {row["value_text"]: row for row in result.rows["measurements"]}
    observations = {r["id"]: r for r in result.resources if r["resourceType"] == "Observation"}

    misspelt, invalid = rows["4242.5"], rows["4343.5"]
    assert (misspelt["unit_code"], misspelt["unit_display"]) == ("[hnsf'U]", "Hounsfield unit")
    assert observations[misspelt["observation_id"]]["valueQuantity"] | {"value": None} == {
        "value": None,
        "unit": "Hounsfield unit",
        "system": UCUM,
        "code": "[hnsf'U]",
    }
    assert (invalid["unit_code"], invalid["unit_display"]) == ("mm^2", "square millimeter")
    assert observations[invalid["observation_id"]]["valueQuantity"] | {"value": None} == {
        "value": None,
        "unit": "square millimeter",
        "system": UNREGISTERED_SYSTEM_PREFIX + "UCUM",
        "code": "mm^2",
    }

    unit_warnings = [w for w in result.warnings if w.code is WarningCode.INVALID_UNIT]
    assert sorted(w.position for w in unit_warnings) == sorted(
        [misspelt["content_position"], invalid["content_position"]]
    )
    assert not any(code in w.message for w in unit_warnings for code in ("hnsf'U", "mm^2"))
    assert result.record.warnings == len(result.warnings)

    # Every measurement: the table's unit code is the Quantity's.
    for row in result.rows["measurements"]:
        value = observations[row["observation_id"]].get("valueQuantity")
        if value is not None and "code" in value:
            assert row["unit_code"] == value["code"]
            assert units.is_valid_ucum(value["code"]) == (value["system"] == UCUM)
