"""Raw value bytes → the strings and numbers the pydicom reader produces for the same element.

Each function reproduces what pydicom's value converter does for the VR followed by what the reference
reader's accessor (`_text`, `_texts`, `_ints`, `_floats`, `_person_name`) does with the result, so the
two readers agree to the character. Where pydicom falls back to guessing (a DS that is not a number, an
IS that is not an integer, a binary value of the wrong length) these raise `FastReaderUnsupported` and the
reference reader decides. Text in Specific Character Set encodings is decoded by pydicom's own codec
handling (`pydicom.charset`), which knows the ISO 2022 escape sequences and the DICOM defined terms.
"""

from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache
from struct import Struct, unpack

from pydicom.charset import convert_encodings, decode_bytes

from .fast_parser import FastReaderUnsupported

Encodings = tuple[str, ...]

DEFAULT_ENCODINGS: Encodings = ("iso8859",)
"""pydicom's name for the default repertoire (ISO-IR 6, read as Latin-1, which includes it)."""

_ESC = b"\x1b"
_TEXT_VR_DELIMITERS = {0x0D, 0x0A, 0x09, 0x0C}
"""CR, LF, TAB, FF reset ISO 2022 code extensions in text values (PS3.5 6.1.2.5.3); as pydicom."""
_SIMPLE_INTEGER = re.compile(r"[+-]?[0-9]{1,15}", re.ASCII)
"""An IS that int() reads exactly as pydicom's IS does; anything else (floats, '1_0', huge) is left to it."""

_FLOAT64 = Struct("<d")


class _Missing(Enum):
    """A cache miss: a one-member enum rather than a bare object(), so that `is _MISSING` narrows the type."""

    MISSING = 0


_MISSING = _Missing.MISSING
_BINARY_FORMATS = {b"FD": ("d", 8), b"FL": ("f", 4), b"UL": ("L", 4), b"US": ("H", 2)}


@lru_cache(maxsize=256)
def encodings_for(raw: bytes) -> Encodings:
    """Specific Character Set (0008,0005) bytes → Python codecs, exactly as pydicom converts them."""
    values = raw.decode("latin-1").rstrip(" \x00").split("\\")
    # pydicom passes one value as a str and several as a list; convert_encodings treats them alike
    # except for an empty first value of several, which it reads as ISO_IR 6.
    return tuple(convert_encodings(values[0] if len(values) == 1 else values))


_FAST_CODEC_NAMES = {"iso8859": "latin-1", "UTF8": "utf-8", "utf_8": "utf-8", "latin_1": "latin-1"}
"""pydicom's codec names → the spellings CPython decodes without a codec registry lookup (~10× faster)."""


def decode(raw: bytes, encodings: Encodings) -> str:
    """Bytes of a text VR (SH, LO, ST, LT, UC, UT, PN) in the data set's character set."""
    if _ESC not in raw:
        first = encodings[0]
        try:
            return raw.decode(_FAST_CODEC_NAMES.get(first, first))
        except (UnicodeError, LookupError):
            pass  # pydicom then warns and replaces undecodable bytes; let it
    return decode_bytes(raw, list(encodings), _TEXT_VR_DELIMITERS)


# --- `_text`: one string, multiple values joined with backslashes, stripped; None when empty ---------


_ASCII_CACHE: dict[bytes, str | None] = {}
_UID_CACHE: dict[bytes, str | None] = {}
_CACHE_LIMIT = 50_000
"""Coded strings (CS) and UIDs repeat across items and documents; a dict hit is cheaper than decoding.
Bounded, and cleared when full."""


def ascii_text(raw: bytes) -> str | None:
    """AS, CS, DA, DT, TM (pydicom's plain string converter, default repertoire)."""
    return raw.decode("latin-1").rstrip(" \x00").strip() or None


def coded_text(raw: bytes) -> str | None:
    """CS, as `ascii_text`, remembered: coded values repeat in every item (Value Type, Relationship Type).
    Dates are not remembered: a birth date has no business in a process-wide cache."""
    text = _ASCII_CACHE.get(raw, _MISSING)
    if text is _MISSING:
        if len(_ASCII_CACHE) >= _CACHE_LIMIT:
            _ASCII_CACHE.clear()
        text = _ASCII_CACHE[raw] = raw.decode("latin-1").rstrip(" \x00").strip() or None
    return text


def uid_text(raw: bytes) -> str | None:
    """UI: pydicom strips each UID value, so multiple values lose the spaces around backslashes."""
    text = _UID_CACHE.get(raw, _MISSING)
    if text is _MISSING:
        value = raw.decode("latin-1").rstrip("\x00 ")
        if "\\" in value:
            value = "\\".join(part.strip() for part in value.split("\\"))
        if len(_UID_CACHE) >= _CACHE_LIMIT:
            _UID_CACHE.clear()
        text = _UID_CACHE[raw] = value.strip() or None
    return text


def url_text(raw: bytes) -> str | None:
    """UR: one value, default repertoire."""
    return raw.decode("latin-1").strip() or None


def multi_text(raw: bytes, encodings: Encodings) -> str | None:
    """SH, LO, UC: pydicom splits on backslash and strips trailing NUL and spaces of each value."""
    value = decode(raw, encodings)
    if "\\" in value:
        return "\\".join(part.rstrip("\x00 ") for part in value.split("\\")).strip() or None
    return value.rstrip("\x00 ").strip() or None


def single_text(raw: bytes, encodings: Encodings) -> str | None:
    """ST, LT, UT: never split."""
    return decode(raw, encodings).rstrip("\x00 ").strip() or None


def ds_text(raw: bytes) -> str | None:
    """DS: pydicom keeps each number's own text (DSfloat.original_string), after checking it is a float."""
    text = raw.decode("latin-1").strip().rstrip(" \x00")
    if "\\" not in text:  # one value: the common case, without splitting
        stripped = text.strip()
        if not stripped:
            return None
        try:
            float(text)
        except ValueError:
            raise FastReaderUnsupported("DS value that is not a number") from None
        return stripped
    parts = text.split("\\")
    # A blank value among several stays as written (DSfloat returns it unchanged).
    for part in parts:
        if part.strip():
            _check_float(part)
    return "\\".join(part.strip() if part.strip() else part for part in parts).strip() or None


def is_text(raw: bytes) -> str | None:
    parts = _is_parts(raw)
    return "\\".join(parts).strip() or None


def person_name(raw: bytes, encodings: Encodings) -> str:
    """PN as `str(PersonName)`: component groups joined by '=', trailing empty groups dropped."""
    value = decode(raw.rstrip(b"\x00 "), encodings)
    if "\\" in value:
        return "\\".join(part.rstrip("=") for part in value.split("\\")).strip()
    return value.rstrip("=").strip()


# --- `_texts`: a tuple of stripped values, () when empty ----------------------------------------------


def ascii_texts(raw: bytes) -> tuple[str, ...]:
    """CS, DT."""
    value = raw.decode("latin-1").rstrip(" \x00")
    if not value:
        return ()
    return tuple(part.strip() for part in value.split("\\"))


def multi_texts(raw: bytes, encodings: Encodings) -> tuple[str, ...]:
    """SH, LO."""
    parts = [part.rstrip("\x00 ") for part in decode(raw, encodings).split("\\")]
    if len(parts) == 1 and not parts[0]:
        return ()
    return tuple(part.strip() for part in parts)


# --- `_ints` and `_floats` ----------------------------------------------------------------------------


def is_ints(raw: bytes) -> tuple[int, ...]:
    parts = _is_parts(raw)
    if len(parts) == 1 and not parts[0].strip():
        return ()
    if any(not part.strip() for part in parts):
        raise FastReaderUnsupported("empty value among several IS values")
    return tuple(int(part) for part in parts)


def ds_floats(raw: bytes) -> tuple[float, ...]:
    parts = _ds_parts(raw)
    if len(parts) == 1 and not parts[0].strip():
        return ()
    return tuple(_check_float(part) for part in parts)


def binary_numbers(raw: bytes, vr: bytes) -> tuple[int, ...] | tuple[float, ...]:
    """FD, FL, UL, US: little endian, as Python numbers (a float32 widens exactly, as in pydicom)."""
    code, size = _BINARY_FORMATS[vr]
    count, remainder = divmod(len(raw), size)
    if remainder:
        raise FastReaderUnsupported("binary value length is not a multiple of its size")
    return unpack(f"<{count}{code}", raw)


def first_float64(raw: bytes) -> float | None:
    """The first value of an FD, for Floating Point Value (0040,A161)."""
    if len(raw) % 8:
        raise FastReaderUnsupported("FD length is not a multiple of 8")
    return _FLOAT64.unpack_from(raw)[0] if raw else None


# --- helpers ------------------------------------------------------------------------------------------


def _ds_parts(raw: bytes) -> list[str]:
    return raw.decode("latin-1").strip().rstrip(" \x00").split("\\")


def _is_parts(raw: bytes) -> list[str]:
    """IS values as pydicom's IS keeps them: stripped numbers, and blank values as they are."""
    parts = raw.decode("latin-1").rstrip(" \x00").split("\\")
    result = []
    for part in parts:
        stripped = part.strip()
        if not stripped:
            result.append(part)
        elif _SIMPLE_INTEGER.fullmatch(stripped):
            result.append(stripped)
        else:
            raise FastReaderUnsupported("IS value that is not a plain integer")
    return result


def _check_float(part: str) -> float:
    if not part.strip():
        raise FastReaderUnsupported("empty value among several DS values")
    try:
        return float(part)
    except ValueError:
        raise FastReaderUnsupported("DS value that is not a number") from None
