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
