"""sr2fhir_core.numbers: the one rule for Numeric Values in FHIR and in the tables."""

from __future__ import annotations

import random
from decimal import Decimal, InvalidOperation

import pytest

from sr2fhir_core.numbers import FHIR_DECIMAL, measured_value


def test_a_ds_without_exponent_always_has_a_fhir_form() -> None:
    """measured_value checks FHIR's regex only for texts longer than a DS may be or with an exponent: any finite
    decimal of at most 16 characters without one writes within the regex's digits (with one it may not:
    0e99999999999)."""
    rng = random.Random(16)
    alphabet = "0123456789" * 4 + ".+- "
    tried = 0
    for _ in range(300_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 17)))
        try:
            value = Decimal(text.strip())
        except InvalidOperation:
            continue
        if value.is_finite():
            tried += 1
            assert FHIR_DECIMAL.fullmatch(str(value)), text
    assert tried > 100_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.5", "12.5"),
        (" 12.5 ", "12.5"),
        ("+.5", "0.5"),
        ("-0", "-0"),
        ("1e5", "1E+5"),
        ("1.7976931348623157e308", "1.7976931348623157E+308"),
        ("4.9e-324", "4.9E-324"),
        ("1e400", None),
        ("1e-400", None),
        ("0e99999999999", None),  # zero, but its FHIR form has an exponent of 11 digits
        ("1" * 19, None),
        ("0." + "1" * 18, None),
        ("nan", None),
        ("-inf", None),
        ("", None),
        ("twelve", None),
        (None, None),
    ],
)
def test_measured_value(text: str | None, expected: str | None) -> None:
    value = measured_value(text)
    assert (None if value is None else str(value)) == expected


def _float32(value: float) -> float:
    import struct

    return struct.unpack("<f", struct.pack("<f", value))[0]


@pytest.mark.parametrize(
    ("written", "expected"),
    [(83.58, 83.58), (120.1, 120.1), (0.1, 0.1), (1e-07, 1e-07), (123456.7, 123456.7), (1.0, 1.0), (-0.0, -0.0)],
)
def test_float32_coordinates_are_written_as_the_producer_wrote_them(written: float, expected: float) -> None:
    from sr2fhir_core.numbers import float32_decimal

    widened = _float32(written)  # what a reader of FL gives: 83.58000183105469
    assert widened != written or written == expected
    assert float32_decimal(widened) == expected


def test_float32_decimals_read_back_and_are_shortest() -> None:
    import random

    from sr2fhir_core.numbers import float32_decimal

    rng = random.Random(7)
    for _ in range(20_000):
        value = _float32(rng.uniform(-1, 1) * 10 ** rng.randint(-8, 8))
        decimal = float32_decimal(value)
        assert _float32(decimal) == value
        digits = len(f"{decimal:.9g}".lstrip("-").replace(".", "").split("e")[0].strip("0"))
        shorter = f"{value:.{max(digits - 1, 1)}g}"
        assert digits == 1 or _float32(float(shorter)) != value  # one digit fewer does not read back
    assert float32_decimal(0.30000001) == 0.30000001  # a double that is no float32 is kept
    assert float32_decimal(float("nan")) != float32_decimal(float("nan"))
