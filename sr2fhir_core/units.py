"""Measurement units → the unit elements of a FHIR Quantity, checked against UCUM (docs/units.md).

A unit whose coding scheme names UCUM goes to FHIR under `http://unitsofmeasure.org`, which tells every
reader that the code is valid UCUM it can compute with. Real SRs carry codes that are not: a known
misspelling of a DICOM-era writer is corrected to the valid UCUM code; any other invalid code keeps its
value but leaves the UCUM system. Both say so in one warning per document and unit.

Validity is decided by `ucumvert`'s UCUM grammar, never by a grammar of ours. Its parser is built lazily,
once per process (importing ucumvert and building the parser cost about 0.3 s), and a parse costs about
0.6 ms, so the answer for each unit string is kept in a bounded dict: a core maps thousands of reports per
second and most use a handful of units. Pure: no I/O besides reading ucumvert's own grammar file once.
"""

from __future__ import annotations

from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple

from . import codes
from .content import Code
from .errors import MappingWarning, WarningCode

UCUM_MISSPELLINGS: MappingProxyType[str, str] = MappingProxyType(
    {
        # Hounsfield unit. dcmjs (OHIF's SR writer) wrote ("hnsf'U", UCUM) in `utilities.unitsCodedTermMap`
        # and ("HU", UCUM, "Hounsfield unit") in its TID 300 Ellipse; UCUM's atom is [hnsf'U] (PS3.16 CID 83,
        # 7181). "HU" has no other reading in DICOM: it is the Rescale Type (0028,1054) for Hounsfield units.
        "hnsf'U": "[hnsf'U]",
        "HU": "[hnsf'U]",
        # SUV units of PS3.16 CID 85 as editions before the correction wrote them (annotation first, which
        # UCUM's syntax does not allow), and as dcmjs and QIICR's Slicer SUV Factor Calculator still write
        # them; the current edition (and pydicom's copy of it) moves the annotation to the end.
        "{SUVbw}g/ml": "g/ml{SUVbw}",
        "{SUVlbm}g/ml": "g/ml{SUVlbm}",
        "{SUVibw}g/ml": "g/ml{SUVibw}",
        "{SUVbsa}cm2/ml": "cm2/ml{SUVbsa}",
    }
)
"""Unit codes real DICOM writers put under UCUM that are not valid UCUM → the valid UCUM code they mean.
Facts only: each entry is invalid before and valid after (tests/test_ucum_units.py checks both), and its
meaning is unambiguous."""

MAX_UCUM_LENGTH = 64
"""Longer unit codes are not parsed and count as not valid UCUM: the parse time grows with the length
(about 40 ms at 120 characters), and no real unit comes near it (a Code Value holds 16 characters)."""

_VALID: dict[str, str | None] = {}
_VALID_LIMIT = 4096


class QuantityUnit(NamedTuple):
    """The unit elements of a FHIR Quantity, and what the mapping warns about them."""

    unit: str
    """`Quantity.unit`, the display: the Code Meaning, else the code."""
    system: str
    code: str
    warning: MappingWarning | None = None


@lru_cache(maxsize=1)
def _parser() -> Any:
    import ucumvert  # at the first UCUM unit, not with the core: it imports pint (about 0.15 s)

    return ucumvert.get_ucum_parser()


def _parses(code: str) -> bool:
    if not code or len(code) > MAX_UCUM_LENGTH:
        return False
    import ucumvert

    try:
        ucumvert.parse_ucum(code, _parser())
    except ucumvert.InvalidUcumError:
        return False
    return True


def is_valid_ucum(code: str) -> bool:
    """Whether `code` is a valid UCUM unit expression (case-sensitive UCUM, as FHIR uses it); not memoised."""
    return _parses(code)


def valid_ucum(code: str) -> str | None:
    """The valid UCUM code a unit code stands for: itself when valid, the correction of a known misspelling,
    else None. Memoised per code string in a bounded dict (cleared when full)."""
    try:
        return _VALID[code]
    except KeyError:
        pass
    if _parses(code):
        valid: str | None = code
    else:
        correction = UCUM_MISSPELLINGS.get(code)
        valid = correction if correction is not None and _parses(correction) else None
    if len(_VALID) >= _VALID_LIMIT:
        _VALID.clear()
    _VALID[code] = valid
    return valid


def non_ucum_system(designator: str) -> str:
    """Where a unit code under a UCUM designator that is not valid UCUM goes: the fallback URN of a coding
    scheme without a registered system, `urn:dicom:coding-scheme:<designator>`, i.e. the system the
    designator would get if it did not name UCUM.

    FHIR knows UCUM by the exact system `http://unitsofmeasure.org` only, so no reader computes with a code
    under this URN or takes it for UCUM, while the code and the designator it was written under stay there
    for whoever wants to look. Not the designator's table entry, nor the system the SR declares for it: that
    is the UCUM URI. Not dropped either: `Quantity.code` without a system is invalid FHIR (qty-3), and the
    code is the only machine-readable trace of what the value was measured in."""
    return codes.UNREGISTERED_SYSTEM_PREFIX + designator


def unit_code(unit: Code, system: str) -> str:
    """The code a Quantity and the measurements table carry for a unit whose designator has `system` in
    this document: the valid UCUM code under UCUM when there is one, else the code as written."""
    if system != codes.UCUM:
        return unit.value
    return valid_ucum(unit.value) or unit.value


def quantity_unit(unit: Code, system: str, position: str = "") -> QuantityUnit:
    """`Quantity.unit`, `.system` and `.code` for a unit, and a warning if its code had to be corrected or
    left UCUM.

    `unit` is the code as emitted (`codes.canonical`), `system` the FHIR system its designator has in this
    document (`codes.CodeSystems`): a designator counts as UCUM when it resolves to the UCUM URI, from the
    built-in table (`UCUM`, in any case), the SR's Coding Scheme Identification Sequence or the configured
    overrides. Other schemes (private ones, DCM) are kept as they are. `position` locates the warning (the
    first content item with the unit). Messages name no value from the file.
    """
    if system != codes.UCUM:
        return QuantityUnit(unit.meaning or unit.value, system, unit.value)
    valid = valid_ucum(unit.value)
    if valid == unit.value:
        return QuantityUnit(unit.meaning or unit.value, system, unit.value)
    if valid is not None:
        warning = MappingWarning(
            WarningCode.INVALID_UNIT,
            position,
            "Measurement Units Code Sequence (0040,08EA): a unit code that is not valid UCUM (a known misspelling) "
            "was corrected to valid UCUM",
        )
        return QuantityUnit(unit.meaning or valid, system, valid, warning)
    warning = MappingWarning(
        WarningCode.INVALID_UNIT,
        position,
        "Measurement Units Code Sequence (0040,08EA): a unit code that is not valid UCUM is kept under "
        f"{codes.UNREGISTERED_SYSTEM_PREFIX}<designator>, not under {codes.UCUM}",
    )
    return QuantityUnit(unit.meaning or unit.value, non_ucum_system(unit.scheme), unit.value, warning)
