"""Numeric Values (DS) as numbers: the one rule the FHIR resources and the table rows share.

A NUM's Numeric Value (0040,A30A) is text; it becomes FHIR `valueQuantity.value` (an exact decimal) and the
`measurements.value` column (a 64-bit float). Both outputs take the number, or neither does: a text that is
not a finite decimal, or that one of them cannot hold, is an absent value in both (no `valueQuantity` but a
`dataAbsentReason`, a null `value`, the text kept in `value_text`) with a `value_absent` warning.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

FHIR_DECIMAL = re.compile(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,17})?([eE](0|[+\-]?[1-9][0-9]{0,9}))?")
"""The lexical form of a FHIR decimal as the HL7 validator checks it: at most 18 integer and 17 fraction digits
(the R5 definition's regex has a typo in its exponent part; this is the validator's corrected one)."""


_DS_LENGTH = 16
"""The longest Decimal String value PS3.5 allows."""


def measured_value(text: str | None) -> Decimal | None:
    """The number `text` stands for, exactly, when both outputs can hold it; None otherwise.

    Both can hold a finite decimal whose FHIR form meets `FHIR_DECIMAL` and whose magnitude a 64-bit float
    holds: at most 1.7976931348623157e308, and not so small it rounds to zero (`1e400` and `1e-400` are out;
    a FHIR decimal that large or small also becomes infinity or zero in every JSON reader that parses numbers
    as doubles)."""
    if text is None:
        return None
    text = text.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    # A DS as DICOM allows it (at most 16 characters, no exponent: most are) always has a FHIR form within the
    # regex's digits (tests/test_numbers.py tries many); others are checked.
    if (len(text) > _DS_LENGTH or "e" in text or "E" in text) and not FHIR_DECIMAL.fullmatch(str(value)):
        return None
    number = float(value)
    if math.isinf(number) or (number == 0 and value != 0):
        return None
    return value


_FLOAT32 = struct.Struct("<f")


def float32_decimal(value: float) -> float:
    """The double of the shortest decimal that reads back as the same float32 as `value`.

    Graphic Data (0070,0022) is FL: a reader widens each float32 to a double, and 83.58 becomes
    83.58000183105469 in JSON. The producer wrote 83.58, and 83.58 is what reads back as that float32, so
    FHIR and the tables get 83.58. A value that is no float32 (an FD, or a value computed elsewhere) is kept.
    """
    if not math.isfinite(value):
        return value
    # Rounding to 6 significant digits already gives the shortest form when it has at most 6 (a float32 is
    # within 6e-8 of it): the common case costs one format and one float32 round trip. 9 digits always read
    # back (IEEE 754 binary32).
    try:
        candidate = float(f"{value:.6g}")
        if _FLOAT32.unpack(_FLOAT32.pack(candidate))[0] == value:
            return candidate
        if _FLOAT32.unpack(_FLOAT32.pack(value))[0] != value:
            return value  # no float32
    except OverflowError:
        return value
    for digits in range(7, 10):
        candidate = float(f"{value:.{digits}g}")
        if _FLOAT32.unpack(_FLOAT32.pack(candidate))[0] == value:
            return candidate
    return value


def float32_decimals(values: Sequence[float]) -> tuple[float, ...]:
    """`float32_decimal` of each value."""
    return tuple(float32_decimal(v) for v in values)
