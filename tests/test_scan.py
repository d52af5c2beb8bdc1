"""The C element scanner (`reading._scan`) against the Python walker it mirrors, on adversarial inputs built
here: huge lengths, lengths past the end, deep nesting, odd and zero lengths, stray delimiters, truncation at
every byte, seeded random mutations. Every input must give both the same outcome: the same raw data set, or
the same exception with the same message (and rejection reason). None may crash or leak.

The corpus-wide comparison is in `test_reader_differential.py`; `benchmarks/scan_sanitizers.sh` runs this file
with AddressSanitizer and UBSan.
"""

from __future__ import annotations

import gc
import random
import signal
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import pytest
from leak_check import LEAK_LIMIT, memory_growth

from sr2fhir_core.errors import RejectionReason, SRRejected
from sr2fhir_core.reading import fast_parser
from sr2fhir_core.reading import tags as t
from sr2fhir_core.reading.fast_parser import FastReaderUnsupported, RawDataSet

if TYPE_CHECKING:
    from typing_extensions import Buffer

pytestmark = pytest.mark.skipif(
    not fast_parser.C_SCANNER_AVAILABLE, reason="C scanner not built (no C compiler when the package was installed)"
)

UNDEFINED = 0xFFFFFFFF
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
UNKEPT_SEQUENCE = 0x00081110
"""Referenced Study Sequence: a sequence the reader does not keep (walked, nothing built)."""
UNKEPT_VALUE = 0x00081030 + 1  # (0008,1031) is not in the data dictionary; implicit VR skips it by length
assert UNKEPT_SEQUENCE not in t.READ_VR and UNKEPT_VALUE not in t.READ_VR


# --- encoders (explicit and implicit VR little endian) ------------------------------------------------


def element(tag: int, vr: bytes, value: bytes, length: int | None = None) -> bytes:
    size = len(value) if length is None else length
    if vr in LONG_VRS:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr, 0, size) + value
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, size) + value


def implicit(tag: int, value: bytes, length: int | None = None) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value) if length is None else length) + value


def delimiter(tag: int, length: int = 0) -> bytes:
    return struct.pack("<HHL", 0xFFFE, tag & 0xFFFF, length)


def item(body: bytes, defined: bool = True) -> bytes:
    if defined:
        return delimiter(t.ITEM, len(body)) + body
    return delimiter(t.ITEM, UNDEFINED) + body + delimiter(t.ITEM_DELIMITATION_ITEM)


def sequence(tag: int, items: list[bytes], explicit: bool, defined: bool = True) -> bytes:
    body = b"".join(items)
    if explicit:
        if defined:
            return element(tag, b"SQ", body)
        return element(tag, b"SQ", body, UNDEFINED) + delimiter(t.SEQUENCE_DELIMITATION_ITEM)
    if defined:
        return implicit(tag, body)
    return implicit(tag, body, UNDEFINED) + delimiter(t.SEQUENCE_DELIMITATION_ITEM)


def code_item(explicit: bool, defined: bool, value: bytes = b"121071") -> bytes:
    if explicit:
        body = (
            element(t.CODE_VALUE, b"SH", value)
            + element(t.CODING_SCHEME_DESIGNATOR, b"SH", b"DCM ")
            + element(t.CODE_MEANING, b"LO", b"Finding ")
        )
    else:
        body = implicit(t.CODE_VALUE, value) + implicit(t.CODING_SCHEME_DESIGNATOR, b"DCM ")
        body += implicit(t.CODE_MEANING, b"Finding ")
    return item(body, defined)


def small_dataset(explicit: bool, defined: bool) -> bytes:
    """A report-shaped data set: top-level values, nested kept sequences, an unkept sequence, a skipped value."""
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    concept = sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [code_item(explicit, defined)], explicit, defined)
    unit = sequence(t.MEASUREMENT_UNITS_CODE_SEQUENCE, [code_item(explicit, defined, b"mm")], explicit, defined)
    measured = sequence(
        t.MEASURED_VALUE_SEQUENCE,
        [item(unit + enc(t.NUMERIC_VALUE, b"DS", b"12.5"), defined)],
        explicit,
        defined,
    )
    num = item(
        enc(t.RELATIONSHIP_TYPE, b"CS", b"CONTAINS") + enc(t.VALUE_TYPE, b"CS", b"NUM ") + concept + measured,
        defined,
    )
    unkept = sequence(UNKEPT_SEQUENCE, [item(enc(t.SOP_INSTANCE_UID, b"UI", b"1.2\0"), defined)], explicit, defined)
    return (
        enc(t.SOP_CLASS_UID, b"UI", b"1.2.840.10008.5.1.4.1.1.88.22\0")
        + (element(UNKEPT_VALUE, b"LO", b"skip") if explicit else implicit(UNKEPT_VALUE, b"skip"))
        + unkept
        + enc(t.PATIENT_NAME, b"PN", b"Doe^J ")
        + enc(t.VALUE_TYPE, b"CS", b"CONTAINER ")
        + sequence(t.CONTENT_SEQUENCE, [num, num.replace(b"12.5", b"3.25")], explicit, defined)
    )


# --- the comparison ----------------------------------------------------------------------------------


def outcome(scan: Callable[[bytes, int, bool], object], data: bytes, pos: int, explicit: bool) -> object:
    try:
        return scan(data, pos, explicit)
    except SRRejected as rejection:
        return ("SRRejected", rejection.reason, str(rejection))
    except FastReaderUnsupported as unsupported:
        return ("FastReaderUnsupported", str(unsupported))


def c_scan() -> Callable[[bytes, int, bool], RawDataSet]:
    """The C scanner (this module is skipped when it is not built)."""
    assert fast_parser._C_SCAN is not None
    return fast_parser._C_SCAN


def items_of(value: bytes | list[RawDataSet]) -> list[RawDataSet]:
    """A sequence's items (a raw value is a list for a sequence, bytes otherwise)."""
    assert isinstance(value, list)
    return value


def same(data: bytes, explicit: bool, pos: int = 0) -> object:
    """Both scanners on `data`; their outcomes must be equal. Returns the outcome."""
    c = outcome(c_scan(), data, pos, explicit)
    python = outcome(fast_parser._python_scan, data, pos, explicit)
    assert c == python, f"C {c!r:.300} != Python {python!r:.300}"
    return c


def same_dataset(data: bytes, explicit: bool, pos: int = 0) -> RawDataSet:
    """`same`, for data both scanners read: the data set."""
    result = same(data, explicit, pos)
    assert isinstance(result, dict), result
    return result


def unsupported(why: str) -> tuple[str, str]:
    return ("FastReaderUnsupported", why)


CORRUPT = ("SRRejected", RejectionReason.CORRUPT, str(fast_parser._corrupt()))
OVERRUN = unsupported("length overruns its enclosing item or sequence")
ENCODINGS = [
    pytest.param(True, True, id="explicit-defined"),
    pytest.param(True, False, id="explicit-undefined"),
    pytest.param(False, True, id="implicit-defined"),
    pytest.param(False, False, id="implicit-undefined"),
]


# --- well-formed input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_well_formed(explicit: bool, defined: bool) -> None:
    result = same(small_dataset(explicit, defined), explicit)
    assert isinstance(result, dict)
    assert list(result) == [t.SOP_CLASS_UID, t.PATIENT_NAME, t.VALUE_TYPE, t.CONTENT_SEQUENCE]
    first, second = result[t.CONTENT_SEQUENCE]
    assert first[t.CONCEPT_NAME_CODE_SEQUENCE] == [
        {t.CODE_VALUE: b"121071", t.CODING_SCHEME_DESIGNATOR: b"DCM ", t.CODE_MEANING: b"Finding "}
    ]
    assert first[t.MEASURED_VALUE_SEQUENCE][0][t.NUMERIC_VALUE] == b"12.5"
    assert second[t.MEASURED_VALUE_SEQUENCE][0][t.NUMERIC_VALUE] == b"3.25"
    assert first[t.MEASURED_VALUE_SEQUENCE][0][t.MEASUREMENT_UNITS_CODE_SEQUENCE][0][t.CODE_VALUE] == b"mm"


@pytest.mark.parametrize("explicit", [True, False])
def test_empty_input_and_start_at_end(explicit: bool) -> None:
    assert same(b"", explicit) == {}
    data = small_dataset(explicit, True)
    assert same(data, explicit, pos=len(data)) == {}


def test_buffers_without_copy() -> None:
    """Any contiguous buffer is read in place; values come out as bytes, as from a bytes input."""
    data = small_dataset(True, False)
    # The C scanner takes any buffer; its declared type is the Python walker's (bytes only).
    scan: Callable[[Buffer, int, bool], RawDataSet] = c_scan()  # type: ignore[assignment]
    expected = scan(data, 0, True)
    assert scan(bytearray(data), 0, True) == expected
    assert scan(memoryview(data), 0, True) == expected
    framed = b"\0" * 7 + data
    assert scan(memoryview(framed)[7:], 0, True) == expected
    with pytest.raises(BufferError):
        scan(memoryview(framed)[::2], 0, True)


def test_call_errors() -> None:
    scan = c_scan()
    with pytest.raises(ValueError):
        scan(b"abc", 4, True)
    with pytest.raises(ValueError):
        scan(b"abc", -1, True)
    with pytest.raises(TypeError):
        scan(b"abc", 0)  # type: ignore[call-arg]  # the missing argument is the point
    with pytest.raises(TypeError):
        scan("text", 0, True)  # type: ignore[arg-type]  # str, not a buffer, is the point


def test_short_values_shared_within_a_scan() -> None:
    """One bytes object per distinct short value in a scan (equal to what the Python walker makes); long
    values are not shared; thousands of distinct values grow the table without changing the result."""
    scanned = c_scan()(small_dataset(True, True), 0, True)
    first, second = items_of(scanned[t.CONTENT_SEQUENCE])
    assert first[t.VALUE_TYPE] is second[t.VALUE_TYPE]
    first_code = items_of(first[t.CONCEPT_NAME_CODE_SEQUENCE])[0]
    assert first_code[t.CODE_MEANING] is items_of(second[t.CONCEPT_NAME_CODE_SEQUENCE])[0][t.CODE_MEANING]
    long_text = b"x" * 66
    items = [item(element(t.TEXT_VALUE, b"UT", long_text)) for _ in range(2)]
    result = same_dataset(sequence(t.CONTENT_SEQUENCE, items, True), True)
    first, second = items_of(result[t.CONTENT_SEQUENCE])
    assert first[t.TEXT_VALUE] == second[t.TEXT_VALUE] and first[t.TEXT_VALUE] is not second[t.TEXT_VALUE]
    distinct = [item(element(t.TEXT_VALUE, b"UT", b"%d" % number)) for number in range(5_000)]
    distinct += [item(element(t.TEXT_VALUE, b"UT", b"%d" % number)) for number in range(0, 5_000, 7)]
    result = same_dataset(sequence(t.CONTENT_SEQUENCE, distinct, True), True)
    assert [value[t.TEXT_VALUE] for value in items_of(result[t.CONTENT_SEQUENCE])][4_999:5_001] == [b"4999", b"0"]


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_equal_code_items_shared_within_a_scan(explicit: bool, defined: bool) -> None:
    """Equal items of code sequences are one dict (equal to the Python walker's separate dicts); items that
    differ in any byte, and items of other sequences, are not."""
    result = same_dataset(small_dataset(explicit, defined), explicit)
    first, second = items_of(result[t.CONTENT_SEQUENCE])
    assert first is not second  # Content Sequence items are never shared

    def concept(content: RawDataSet) -> RawDataSet:
        return items_of(content[t.CONCEPT_NAME_CODE_SEQUENCE])[0]

    def unit(content: RawDataSet) -> RawDataSet:
        return items_of(items_of(content[t.MEASURED_VALUE_SEQUENCE])[0][t.MEASUREMENT_UNITS_CODE_SEQUENCE])[0]

    assert concept(first) is concept(second)
    assert unit(first) is unit(second)
    assert unit(first) is not concept(first)
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    code_body = enc(t.CODE_VALUE, b"SH", b"11") + enc(t.CODING_SCHEME_DESIGNATOR, b"SH", b"DCM ")
    bodies = [code_body, code_body.replace(b"11", b"12"), code_body, code_body]
    bodies.append(code_body + enc(t.CODING_SCHEME_VERSION, b"SH", b"01"))
    items = [
        item(sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [item(body, defined)], explicit, defined), defined)
        for body in bodies
    ]
    result = same_dataset(sequence(t.CONTENT_SEQUENCE, items, explicit, defined), explicit)
    concepts = [concept(content) for content in items_of(result[t.CONTENT_SEQUENCE])]
    assert [concept is concepts[0] for concept in concepts] == [True, False, True, True, False]


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_shared_code_item_checked_again_where_it_recurs(explicit: bool, defined: bool) -> None:
    """An item equal to one seen before is still walked where it recurs: deeper down, its own nested sequence
    is too deep, and that is refused rather than answered from the table."""
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    equivalent = sequence(UNKEPT_SEQUENCE, [item(b"", defined)], explicit, defined)
    code = item(enc(t.CODE_VALUE, b"SH", b"11") + equivalent, defined)
    concept = sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [code], explicit, defined)
    for depth in (fast_parser.MAX_DEPTH - 3, fast_parser.MAX_DEPTH - 2, fast_parser.MAX_DEPTH - 1):
        result = same(concept + nested(depth, t.CONTENT_SEQUENCE, explicit, defined, innermost=concept), explicit)
        # (A defined-length sequence nothing keeps is skipped by its length, as pydicom never parses it.)
        if depth == fast_parser.MAX_DEPTH - 1 and not defined:
            assert result == unsupported("nested too deeply")
        else:
            assert isinstance(result, dict)


# --- lengths -------------------------------------------------------------------------------------------

HUGE = [0xFFFFFFFE, 0xFFFFFFF0, 0x80000000, 0x7FFFFFFF, 0x10000]


@pytest.mark.parametrize("length", HUGE)
@pytest.mark.parametrize("explicit", [True, False])
def test_huge_lengths(length: int, explicit: bool) -> None:
    value = element(t.TEXT_VALUE, b"UT", b"abcd", length) if explicit else implicit(t.TEXT_VALUE, b"abcd", length)
    assert same(value, explicit) == CORRUPT  # top level: pydicom reads it eagerly
    # The same element inside an item of a defined-length sequence: not truncation, pydicom's call.
    assert same(sequence(t.CONTENT_SEQUENCE, [item(value)], explicit), explicit) == OVERRUN
    # A sequence, an item and an unkept sequence with the huge length.
    huge_sequence = (
        element(t.CONTENT_SEQUENCE, b"SQ", b"", length) if explicit else implicit(t.CONTENT_SEQUENCE, b"", length)
    )
    assert same(huge_sequence, explicit) == CORRUPT
    bad_item = delimiter(t.ITEM, length) + b"\0" * 8
    same(sequence(t.CONTENT_SEQUENCE, [bad_item], explicit), explicit)
    same(sequence(t.CONTENT_SEQUENCE, [bad_item], explicit, defined=False), explicit)
    same(sequence(UNKEPT_SEQUENCE, [bad_item], explicit, defined=False), explicit)


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_every_length_field_off_by_one_and_huge(explicit: bool, defined: bool) -> None:
    """Each 2- or 4-byte length field of the small data set set to length ± 1, 0 and 0xFFFFFFFF."""
    data = small_dataset(explicit, defined)
    for offset, size in _length_fields(data, explicit):
        original = int.from_bytes(data[offset : offset + size], "little")
        for length in {original + 1, original - 1, 0, (1 << (8 * size)) - 1, len(data)}:
            length &= (1 << (8 * size)) - 1
            same(data[:offset] + length.to_bytes(size, "little") + data[offset + size :], explicit)


def _length_fields(data: bytes, explicit: bool) -> list[tuple[int, int]]:
    """Offset and size of every length field (the test data is well formed, so a simple walk finds them)."""
    fields, pos = [], 0
    while pos + 8 <= len(data):
        group = int.from_bytes(data[pos : pos + 2], "little")
        vr = data[pos + 4 : pos + 6]
        if group == 0xFFFE or not explicit:
            fields.append((pos + 4, 4))
            length, header = int.from_bytes(data[pos + 4 : pos + 8], "little"), 8
        elif vr in LONG_VRS:
            fields.append((pos + 8, 4))
            length, header = int.from_bytes(data[pos + 8 : pos + 12], "little"), 12
        else:
            fields.append((pos + 6, 2))
            length, header = int.from_bytes(data[pos + 6 : pos + 8], "little"), 8
        is_sequence = group == 0xFFFE or vr == b"SQ" or (not explicit and _sequence_tag(data, pos))
        pos += header if (is_sequence or length == UNDEFINED) else header + length
    return fields


def _sequence_tag(data: bytes, pos: int) -> bool:
    tag = int.from_bytes(data[pos : pos + 2], "little") << 16 | int.from_bytes(data[pos + 2 : pos + 4], "little")
    return t.READ_VR.get(tag) == b"SQ" or tag == UNKEPT_SEQUENCE


@pytest.mark.parametrize("explicit", [True, False])
def test_lengths_one_past_the_end(explicit: bool) -> None:
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    head = enc(t.SOP_CLASS_UID, b"UI", b"1.2\0")
    assert same(head + enc(t.TEXT_VALUE, b"UT", b"ab", 3), explicit) == CORRUPT
    assert same(head + enc(t.PATIENT_NAME, b"PN", b"ab", 3), explicit) == CORRUPT
    nested = enc(t.TEXT_VALUE, b"UT", b"ab", 3)
    assert same(head + sequence(t.CONTENT_SEQUENCE, [item(nested)], explicit), explicit) == OVERRUN
    # Undefined-length sequences at the top level are read eagerly: truncation again, when the value
    # reaches past the end of the data (and not only into the delimiters after it).
    nested = enc(t.TEXT_VALUE, b"UT", b"ab", 19)
    assert same(head + sequence(t.CONTENT_SEQUENCE, [item(nested, False)], explicit, False), explicit) == CORRUPT


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_odd_and_zero_lengths(explicit: bool, defined: bool) -> None:
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    odd = enc(t.SOP_CLASS_UID, b"UI", b"1.2") + enc(t.PATIENT_NAME, b"PN", b"D") + enc(t.TEXT_VALUE, b"UT", b"abc")
    assert same(odd, explicit) == {t.SOP_CLASS_UID: b"1.2", t.PATIENT_NAME: b"D", t.TEXT_VALUE: b"abc"}
    zero = enc(t.SOP_CLASS_UID, b"UI", b"") + enc(t.PATIENT_NAME, b"PN", b"")
    assert same(zero, explicit) == {t.SOP_CLASS_UID: b"", t.PATIENT_NAME: b""}
    empty_items = sequence(t.CONTENT_SEQUENCE, [item(b"", defined), item(b"", defined)], explicit, defined)
    assert same(empty_items, explicit) == {t.CONTENT_SEQUENCE: [{}, {}]}
    assert same(sequence(t.CONTENT_SEQUENCE, [], explicit, defined), explicit) == {t.CONTENT_SEQUENCE: []}
    odd_item = sequence(t.CONTENT_SEQUENCE, [item(enc(t.TEXT_VALUE, b"UT", b"abc"), defined)], explicit, defined)
    assert same(odd_item, explicit) == {t.CONTENT_SEQUENCE: [{t.TEXT_VALUE: b"abc"}]}


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_truncated_at_every_byte(explicit: bool, defined: bool) -> None:
    data = small_dataset(explicit, defined)
    for cut in range(len(data)):
        same(data[:cut], explicit)
    for extra in range(1, 13):
        same(data + b"\xfe\xff\x0d\xe0\0\0\0\0\0\0\0\0"[:extra], explicit)


# --- structure -------------------------------------------------------------------------------------------


def nested(depth: int, tag: int, explicit: bool, defined: bool, innermost: bytes | None = None) -> bytes:
    """`depth` sequences each holding one item holding the next, the last holding `innermost` (a Text
    Value by default); built from the inside out without re-copying the inner bytes at every level."""
    body = element(t.TEXT_VALUE, b"UT", b"deep") if explicit else implicit(t.TEXT_VALUE, b"deep")
    if innermost is not None:
        body = innermost
    heads, tails, size = [], [], len(body)
    for _ in range(depth):
        if defined:
            item_head = delimiter(t.ITEM, size)
            size += len(item_head)
            sequence_head = element(tag, b"SQ", b"", size) if explicit else implicit(tag, b"", size)
            size += len(sequence_head)
            heads.append(sequence_head + item_head)
        else:
            heads.append(
                (element(tag, b"SQ", b"", UNDEFINED) if explicit else implicit(tag, b"", UNDEFINED))
                + delimiter(t.ITEM, UNDEFINED)
            )
            tails.append(delimiter(t.ITEM_DELIMITATION_ITEM) + delimiter(t.SEQUENCE_DELIMITATION_ITEM))
    return b"".join(reversed(heads)) + body + b"".join(tails)


@pytest.mark.parametrize("depth", [1, 2, 99, 100, 101, 102, 1_000, 20_000])
@pytest.mark.parametrize("tag", [t.CONTENT_SEQUENCE, UNKEPT_SEQUENCE], ids=["kept", "unkept"])
@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_deep_nesting(depth: int, tag: int, explicit: bool, defined: bool) -> None:
    data = nested(depth, tag, explicit, defined)
    if depth <= 3:
        assert data == _nested_by_concatenation(depth, tag, explicit, defined)
    result = same(data, explicit)
    # An unkept defined-length sequence is skipped by its length (pydicom never parses it), however deep.
    walked = tag == t.CONTENT_SEQUENCE or not defined
    if depth > fast_parser.MAX_DEPTH and walked:
        assert result == unsupported("nested too deeply")
    else:
        assert isinstance(result, dict)


def _nested_by_concatenation(depth: int, tag: int, explicit: bool, defined: bool) -> bytes:
    body = element(t.TEXT_VALUE, b"UT", b"deep") if explicit else implicit(t.TEXT_VALUE, b"deep")
    for _ in range(depth):
        body = sequence(tag, [item(body, defined)], explicit, defined)
    return body


@pytest.mark.parametrize("explicit", [True, False])
def test_stray_delimiters_and_items(explicit: bool) -> None:
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    head = enc(t.SOP_CLASS_UID, b"UI", b"1.2\0")
    inputs = [
        delimiter(t.ITEM_DELIMITATION_ITEM),
        head + delimiter(t.ITEM_DELIMITATION_ITEM),
        head + delimiter(t.SEQUENCE_DELIMITATION_ITEM),
        head + delimiter(t.ITEM, 0),
        head + delimiter(t.ITEM, UNDEFINED),
        delimiter(t.SEQUENCE_DELIMITATION_ITEM)[:6],
        head + sequence(t.CONTENT_SEQUENCE, [delimiter(t.ITEM_DELIMITATION_ITEM)], explicit),
        head + sequence(t.CONTENT_SEQUENCE, [delimiter(t.SEQUENCE_DELIMITATION_ITEM)], explicit),
        head + sequence(t.CONTENT_SEQUENCE, [enc(t.TEXT_VALUE, b"UT", b"ab")], explicit),
        # Delimiters with a non-zero length, and in the wrong kind of container.
        head + sequence(t.CONTENT_SEQUENCE, [item(b"", False)[:-4] + b"\x04\0\0\0"], explicit, False),
        head + sequence(t.CONTENT_SEQUENCE, [item(b"", False)[:-4] + b"\0\0\x01\0"], explicit, False),
        head + sequence(t.CONTENT_SEQUENCE, [item(b"")], explicit, False)[:-4] + b"\x04\0\0\0",
        head + sequence(t.CONTENT_SEQUENCE, [item(b"" + delimiter(t.SEQUENCE_DELIMITATION_ITEM), False)], explicit),
        head + sequence(t.CONTENT_SEQUENCE, [item(b"")], explicit, False)[:-8],  # no Sequence Delimitation Item
        head + sequence(t.CONTENT_SEQUENCE, [item(b"", False)[:-8]], explicit, False)[:-8],
        # Out of order and repeated elements.
        head + head,
        enc(t.PATIENT_NAME, b"PN", b"D ") + head,
    ]
    for data in inputs:
        same(data, explicit)


def test_explicit_vr_mismatches() -> None:
    head = element(t.SOP_CLASS_UID, b"UI", b"1.2\0")
    for vr in (b"SH", b"LO", b"ZZ", b"\0\0", b"sq", b"UN", b"OB", b"UT"):
        same(head + element(t.VALUE_TYPE, vr, b"NUM "), True)
        same(head + element(t.CONTENT_SEQUENCE, vr, item(b"")), True)
        same(head + element(UNKEPT_VALUE, vr, b"skip"), True)
    same(head + element(t.CONTENT_SEQUENCE, b"SQ", b"", UNDEFINED), True)
    same(head + element(t.TEXT_VALUE, b"UT", b"", UNDEFINED), True)


def test_encapsulated_pixel_data() -> None:
    pixel_data = 0x7FE00010
    head = element(t.SOP_CLASS_UID, b"UI", b"1.2\0")
    fragments = delimiter(t.ITEM, 0) + delimiter(t.ITEM, 4) + b"\xff\xd8\xff\xd9"
    end = delimiter(t.SEQUENCE_DELIMITATION_ITEM)
    assert same(head + element(pixel_data, b"OB", fragments + end, UNDEFINED), True) == {t.SOP_CLASS_UID: b"1.2\0"}
    same(head + element(pixel_data, b"OW", fragments + end, UNDEFINED), True)
    same(head + element(pixel_data, b"OB", fragments, UNDEFINED), True)  # no delimiter
    same(head + element(pixel_data, b"OB", fragments[:-2], UNDEFINED), True)  # fragment past the end
    same(head + element(pixel_data, b"OB", delimiter(t.ITEM, UNDEFINED) + end, UNDEFINED), True)
    same(head + element(pixel_data, b"UN", fragments + end, UNDEFINED), True)  # not an encapsulated VR


def test_implicit_undefined_length_on_unknown_tags() -> None:
    """Implicit VR, undefined length, a tag not kept: the data dictionary (asked in Python) decides."""
    head = implicit(t.SOP_CLASS_UID, b"1.2\0")
    private = 0x00091010
    for tag in (UNKEPT_SEQUENCE, private, UNKEPT_VALUE, 0x00100010 + 0x1000):
        same(head + sequence(tag, [item(b"", False)], False, False), False)
        same(head + implicit(tag, b"abcd", UNDEFINED), False)
    same(head + implicit(t.TEXT_VALUE, b"abcd", UNDEFINED), False)


# --- seeded random mutations --------------------------------------------------------------------------


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_random_mutations(explicit: bool, defined: bool) -> None:
    data = small_dataset(explicit, defined)
    fields = _length_fields(data, explicit)
    rng = random.Random(f"scan:{explicit}:{defined}")
    for _ in range(3_000):
        mutated = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 3, 6])):
            kind = rng.random()
            if kind < 0.4:
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            elif kind < 0.8:
                offset, size = rng.choice(fields)
                value = rng.choice([0, 1, 2, 7, 8, 0xFFFF, UNDEFINED, rng.randrange(1 << (8 * size))])
                mutated[offset : offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
            elif kind < 0.9:
                start = rng.randrange(len(mutated))
                del mutated[start : start + rng.randrange(1, 9)]
            else:
                start = rng.randrange(len(mutated))
                mutated[start:start] = rng.randbytes(rng.randrange(1, 9))
        same(bytes(mutated), explicit)


# --- the Scanner's tables come from Python -------------------------------------------------------------


class Scanner(Protocol):
    """What `_scan.Scanner` offers (the extension has no stubs)."""

    def scan(self, data: bytes, pos: int, explicit: bool, /) -> RawDataSet: ...


def _scanner(**overrides: object) -> Scanner:
    from sr2fhir_core.reading import _scan

    arguments: dict[str, object] = {
        "read_vr": t.READ_VR,
        "header_sizes": fast_parser._EXPLICIT_HEADER_SIZES,
        "encapsulated_vrs": fast_parser._ENCAPSULATED_VR_CODES,
        "shared_item_sequences": t.CODE_SEQUENCES,
        "unsupported": FastReaderUnsupported,
        "corrupt": fast_parser._corrupt,
        "is_sequence_tag": fast_parser._is_sequence_tag,
        "check_charset": fast_parser._check_charset,
        "max_depth": fast_parser.MAX_DEPTH,
    }
    arguments.update(overrides)
    scanner: Scanner = _scan.Scanner(**arguments)  # type: ignore[arg-type]  # tests pass wrong tables on purpose
    return scanner


def test_scanner_keeps_the_tags_it_is_given() -> None:
    data = small_dataset(True, True)
    scanner = _scanner(
        read_vr={t.PATIENT_NAME: b"PN", t.CONTENT_SEQUENCE: b"SQ", t.NUMERIC_VALUE: b"DS"}, shared_item_sequences=()
    )
    # Measured values and their numbers sit in a sequence this table does not keep.
    assert scanner.scan(data, 0, True) == {t.PATIENT_NAME: b"Doe^J ", t.CONTENT_SEQUENCE: [{}, {}]}
    deep = _scanner(max_depth=3)
    assert isinstance(deep.scan(nested(3, t.CONTENT_SEQUENCE, True, True), 0, True), dict)
    too_deep = outcome(deep.scan, nested(4, t.CONTENT_SEQUENCE, True, True), 0, True)
    assert too_deep == unsupported("nested too deeply")


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"read_vr": [(t.PATIENT_NAME, b"PN")]}, TypeError),
        ({"read_vr": {t.PATIENT_NAME: "PN"}}, TypeError),
        ({"read_vr": {t.PATIENT_NAME: b"PNX"}}, TypeError),
        ({"read_vr": {"tag": b"PN"}}, TypeError),
        ({"read_vr": {-1: b"PN"}}, OverflowError),
        ({"read_vr": {1 << 32: b"PN"}}, ValueError),
        ({"read_vr": {tag: b"LO" for tag in range(300)}}, ValueError),
        ({"header_sizes": {int.from_bytes(b"CS", "little"): 9}}, ValueError),
        ({"header_sizes": {int.from_bytes(b"cs", "little"): 8}}, ValueError),
        ({"header_sizes": {70000: 8}}, ValueError),
        ({"encapsulated_vrs": [int.from_bytes(b"\0\0", "little")]}, ValueError),
        ({"encapsulated_vrs": 5}, TypeError),
        ({"shared_item_sequences": [t.PATIENT_NAME]}, ValueError),
        ({"shared_item_sequences": [0x00081110]}, ValueError),
        ({"shared_item_sequences": [-1]}, OverflowError),
        ({"shared_item_sequences": None}, TypeError),
        ({"unsupported": "FastReaderUnsupported"}, TypeError),
        ({"corrupt": None}, TypeError),
        ({"check_charset": None}, TypeError),
        ({"max_depth": 0}, ValueError),
        ({"max_depth": 1_000_000}, ValueError),
    ],
)
def test_scanner_rejects_bad_tables(overrides: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        _scanner(**overrides)


def test_uninitialised_scanner() -> None:
    from sr2fhir_core.reading import _scan

    scanner = _scan.Scanner.__new__(_scan.Scanner)
    with pytest.raises(RuntimeError):
        scanner.scan(b"", 0, True)


def test_callback_errors_propagate() -> None:
    def broken(*args: object) -> bool:
        raise KeyError("dictionary")

    data = implicit(t.SOP_CLASS_UID, b"1.2\0") + implicit(0x00091010, b"", UNDEFINED)
    with pytest.raises(KeyError):
        _scanner(is_sequence_tag=broken).scan(data, 0, False)
    with pytest.raises(TypeError):
        _scanner(corrupt=lambda: "not an exception").scan(element(t.TEXT_VALUE, b"UT", b"", 9), 0, True)
    with pytest.raises(ZeroDivisionError):
        _scanner(corrupt=lambda: 1 / 0).scan(element(t.TEXT_VALUE, b"UT", b"", 9), 0, True)
    charset = element(t.SPECIFIC_CHARACTER_SET, b"CS", b"ISO_IR 100")
    with pytest.raises(KeyError):
        _scanner(check_charset=broken).scan(charset, 0, True)


def test_no_reinitialisation_during_a_scan() -> None:
    """A callback runs Python code in the middle of a scan; it cannot swap the tables the scan is using."""
    scanner = None

    def reinitialise(*args: object) -> bool:
        scanner.__init__(  # type: ignore[misc]
            read_vr={},
            header_sizes={},
            encapsulated_vrs=(),
            shared_item_sequences=(),
            unsupported=FastReaderUnsupported,
            corrupt=fast_parser._corrupt,
            is_sequence_tag=reinitialise,
            check_charset=fast_parser._check_charset,
            max_depth=1,
        )
        return True

    scanner = _scanner(is_sequence_tag=reinitialise)
    data = implicit(t.SOP_CLASS_UID, b"1.2\0") + implicit(0x00091010, b"", UNDEFINED)
    with pytest.raises(RuntimeError, match="during a scan"):
        scanner.scan(data, 0, False)
    assert scanner.scan(implicit(t.SOP_CLASS_UID, b"1.2\0"), 0, False) == {t.SOP_CLASS_UID: b"1.2\0"}


# --- references --------------------------------------------------------------------------------------------


def test_no_leaks_on_success_or_failure() -> None:
    """Thousands of scans, half ending in an exception deep in nested sequences: memory stays flat and the
    tag objects the scanner uses as keys are not left with extra references."""
    good = small_dataset(True, False)
    bad = [good[:cut] for cut in range(len(good) - 1, 0, -7)]
    bad.append(nested(150, t.CONTENT_SEQUENCE, False, False))
    bad.append(good[:-30] + b"\xff" * 30)
    scan = c_scan()
    key = next(tag for tag in t.READ_VR if tag == t.CODE_VALUE)

    def run(rounds: int) -> None:
        for _ in range(rounds):
            scan(good, 0, True)
            for data in bad:
                outcome(scan, data, 0, True)

    run(20)
    gc.collect()
    references = sys.getrefcount(key)
    growth = memory_growth(run)
    assert growth < LEAK_LIMIT, f"memory grew by {growth} bytes"
    assert sys.getrefcount(key) == references


# --- Specific Character Set values pydicom cannot convert ---------------------------------------------------

CHARSET_UNREADABLE = (
    "SRRejected",
    RejectionReason.CORRUPT,
    "corrupt: Specific Character Set (0008,0005) value cannot be read",
)


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
@pytest.mark.parametrize("value", [b"ISO_IR\x00100", b"\x00ISO_IR 100", b"ISO_IR 19\x002"])
@pytest.mark.parametrize("where", ["top", "kept item", "unkept item"])
def test_unreadable_charset(explicit: bool, defined: bool, value: bytes, where: str) -> None:
    """pydicom converts the Specific Character Set of every data set it parses and fails on a NUL inside one
    (the ValueError that once escaped the fast reader as an internal error). Where pydicom parses at load
    time (the top level, undefined-length sequences) the file is corrupt; inside a defined-length sequence,
    which pydicom parses only when asked for, the reference reader decides."""
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    charset = enc(t.SPECIFIC_CHARACTER_SET, b"CS", value + b" " * (len(value) % 2))
    inner = item(charset + enc(t.CODE_VALUE, b"SH", b"12"), defined)
    sop_class = enc(t.SOP_CLASS_UID, b"UI", b"1.2.840.10008.5.1.4.1.1.88.22\0")
    expected: object
    if where == "top":
        data, expected = charset + sop_class, CHARSET_UNREADABLE
    else:
        tag = t.CONCEPT_NAME_CODE_SEQUENCE if where == "kept item" else UNKEPT_SEQUENCE
        data = sop_class + sequence(tag, [inner], explicit, defined)
        if not defined:
            expected = CHARSET_UNREADABLE
        elif where == "kept item":
            expected = unsupported("unreadable Specific Character Set in a sequence pydicom parses on demand")
        else:
            expected = None  # an unkept defined-length sequence is skipped by its length: pydicom never parses it
    result = same(data, explicit)
    if expected is None:
        assert isinstance(result, dict)
    else:
        assert result == expected
    readable = data.replace(value, b"ISO_IR 100"[: len(value)].ljust(len(value), b" "))
    assert isinstance(same(readable, explicit), dict)


# --- pydicom's leniencies the walk follows (issue 17: the fast reader finishes where it can) ---------------

SOP = t.SOP_CLASS_UID
SOP_VALUE = b"1.2\0"


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "implicit"])
def test_repeated_and_out_of_order_elements(explicit: bool) -> None:
    """pydicom keeps a data set's elements in a dict: a tag's last occurrence is the element, whatever the order."""
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    name = enc(t.PATIENT_NAME, b"PN", b"A ")
    later = enc(t.PATIENT_NAME, b"PN", b"B ")
    assert same_dataset(enc(SOP, b"UI", SOP_VALUE) + name + later, explicit)[t.PATIENT_NAME] == b"B "
    assert same_dataset(name + enc(SOP, b"UI", SOP_VALUE), explicit) == {t.PATIENT_NAME: b"A ", SOP: SOP_VALUE}
    concept = sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [code_item(explicit, True)], explicit)
    inside = item(enc(t.VALUE_TYPE, b"CS", b"NUM ") + concept + enc(t.RELATIONSHIP_TYPE, b"CS", b"CONTAINS"))
    items = items_of(same_dataset(sequence(t.CONTENT_SEQUENCE, [inside], explicit), explicit)[t.CONTENT_SEQUENCE])
    assert items[0][t.RELATIONSHIP_TYPE] == b"CONTAINS"


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "implicit"])
def test_specific_character_set_after_other_elements_is_left_to_pydicom(explicit: bool) -> None:
    """pydicom reads an undefined-length sequence with the character set seen before it: one that comes later
    (or again) would change how earlier items decode, so that reading is the reference reader's."""
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    charset = enc(t.SPECIFIC_CHARACTER_SET, b"CS", b"ISO_IR 100")
    why = unsupported("Specific Character Set out of order or repeated")
    assert same(enc(SOP, b"UI", SOP_VALUE) + charset, explicit) == why
    assert same(charset + charset, explicit) == why
    assert isinstance(same(charset + enc(SOP, b"UI", SOP_VALUE), explicit), dict)


def test_elements_without_vr_letters_are_implicit_vr() -> None:
    """pydicom reads an element whose VR bytes are not two letters (b"AA" <= vr <= b"ZZ") as implicit VR: its
    4-byte length follows the tag, and a kept tag's VR is the dictionary's."""
    head = element(SOP, b"UI", SOP_VALUE)
    text = implicit(t.TEXT_VALUE, b"no VR")  # (0040,A160) UT, its length's low bytes in the VR's place
    assert same_dataset(head + text, True) == {SOP: SOP_VALUE, t.TEXT_VALUE: b"no VR"}
    assert same_dataset(head + implicit(UNKEPT_VALUE, b"skip") + text, True)[t.TEXT_VALUE] == b"no VR"
    # A kept sequence: its items are explicit VR, as pydicom parses its value with the data set's encoding.
    concept = implicit(t.CONCEPT_NAME_CODE_SEQUENCE, item(element(t.CODE_VALUE, b"SH", b"12")))
    assert same_dataset(head + concept, True)[t.CONCEPT_NAME_CODE_SEQUENCE] == [{t.CODE_VALUE: b"12"}]
    undefined = implicit(t.CONCEPT_NAME_CODE_SEQUENCE, b"", UNDEFINED)
    items = item(element(t.CODE_VALUE, b"SH", b"12"), False) + delimiter(t.SEQUENCE_DELIMITATION_ITEM)
    assert same_dataset(head + undefined + items, True)[t.CONCEPT_NAME_CODE_SEQUENCE] == [{t.CODE_VALUE: b"12"}]
    assert same(head + implicit(t.TEXT_VALUE, b"x", UNDEFINED), True) == unsupported(
        "undefined length on a VR that cannot have it"
    )
    # Zero bytes after a data set: empty (0000,0000) elements, however many (zero-filled storage, padding).
    for zeros in (8, 64, 8 * 1000 + 8):
        assert same_dataset(head + bytes(zeros), True) == {SOP: SOP_VALUE}
    assert same(head + bytes(12), True) == CORRUPT  # a partial header at the end


def test_unknown_vr_letters_are_skipped_unless_kept() -> None:
    """An unknown VR of letters has a 2-byte length in pydicom, which fails only when converting its value."""
    head = element(SOP, b"UI", SOP_VALUE)
    assert same_dataset(head + element(UNKEPT_VALUE, b"ZZ", b"skip"), True) == {SOP: SOP_VALUE}
    assert same(head + element(t.TEXT_VALUE, b"ZZ", b"kept"), True) == unsupported("unknown VR")


def test_item_in_implicit_vr_inside_explicit_vr_is_left_to_pydicom() -> None:
    """pydicom reads an item whose first element has no VR letters as implicit VR throughout."""
    head = element(SOP, b"UI", SOP_VALUE)
    content = sequence(
        t.CONTENT_SEQUENCE, [item(implicit(t.VALUE_TYPE, b"NUM ") + implicit(t.TEXT_VALUE, b"ab"))], True
    )
    assert same(head + content, True) == unsupported("item in implicit VR inside explicit VR")
    empty = sequence(t.CONTENT_SEQUENCE, [item(b""), item(b"", False)], True)
    assert same_dataset(head + empty, True)[t.CONTENT_SEQUENCE] == [{}, {}]


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "implicit"])
def test_item_delimitation_item_ends_the_top_level_data_set(explicit: bool) -> None:
    """pydicom ends the top-level data set at an Item Delimitation Item, whatever follows."""
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    head = enc(SOP, b"UI", SOP_VALUE)
    after = enc(t.PATIENT_NAME, b"PN", b"D ") + b"\xff" * 5
    assert same_dataset(head + delimiter(t.ITEM_DELIMITATION_ITEM) + after, explicit) == {SOP: SOP_VALUE}
    assert same_dataset(head + delimiter(t.ITEM_DELIMITATION_ITEM, 7), explicit) == {SOP: SOP_VALUE}
    if explicit:  # its length's low bytes read as a long VR: 4 more bytes, which must be there
        assert same(head + delimiter(t.ITEM_DELIMITATION_ITEM, int.from_bytes(b"OB", "little")), True) == CORRUPT


@pytest.mark.parametrize("zeros", [1, 4, 7])
def test_zero_run_shorter_than_a_header_inside_an_item(zeros: int) -> None:
    """The Python walker skips a run of zero bytes at once, but only within the current container: an item
    ending in fewer than 8 zero bytes, with more zeros after it, once made it loop forever (found by the fuzz
    campaign on the pure-Python path)."""
    head = element(SOP, b"UI", SOP_VALUE)
    content = sequence(t.CONTENT_SEQUENCE, [item(element(t.VALUE_TYPE, b"CS", b"NUM ") + bytes(zeros))], True)
    data = head + content + bytes(64)
    previous = signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(10)
    try:
        assert same(data, True) == OVERRUN
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _too_long(signum: int, frame: object) -> None:
    raise AssertionError("the walk did not end")


NOT_AN_ITEM = ("SRRejected", RejectionReason.CORRUPT, "corrupt: a sequence holds something other than an item")
NOT_AN_ITEM_ON_DEMAND = unsupported(
    "a sequence holds something other than an item, in a sequence pydicom parses on demand"
)


@pytest.mark.parametrize(("explicit", "defined"), ENCODINGS)
def test_a_sequence_holding_something_other_than_items(explicit: bool, defined: bool) -> None:
    """PS3.5 7.5: an item starts with the Item tag. pydicom reads any 8 bytes there as an item header (a run
    of zeros as one empty item per 8 bytes); the reference reader refuses that, so the scanners call it
    corrupt where pydicom reads the sequence eagerly (undefined length) and leave it to the reference reader
    where pydicom parses the sequence only when it is used (defined length)."""
    code = code_item(explicit, defined)
    expected = NOT_AN_ITEM_ON_DEMAND if defined else NOT_AN_ITEM
    for stray in (b"\xfe\xff\x01\xe0" + code[4:], bytes(8) + code, delimiter(t.ITEM_DELIMITATION_ITEM) + code):
        assert same(sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [stray], explicit, defined), explicit) == expected
    # Nested in an undefined-length item of an undefined-length sequence: read eagerly, so corrupt.
    nested = sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [bytes(8) + code], explicit, False)
    outer = sequence(t.CONTENT_SEQUENCE, [item(nested, False)], explicit, False)
    assert same(outer, explicit) == NOT_AN_ITEM


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "implicit"])
def test_sequence_delimitation_item_ends_a_sequence_whatever_its_length(explicit: bool) -> None:
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    code = code_item(explicit, True)
    name = enc(t.PATIENT_NAME, b"PN", b"D ")
    undefined = sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [code], explicit, False)[:-8] + delimiter(
        t.SEQUENCE_DELIMITATION_ITEM, 4
    )
    assert same_dataset(undefined + name, explicit)[t.PATIENT_NAME] == b"D "
    # In a defined-length sequence pydicom reads no further in the value: the second item is not read.
    early = sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [code, delimiter(t.SEQUENCE_DELIMITATION_ITEM), code], explicit)
    assert len(items_of(same_dataset(early + name, explicit)[t.CONCEPT_NAME_CODE_SEQUENCE])) == 1


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "implicit"])
def test_item_delimitation_item_ends_an_item_whatever_its_length(explicit: bool) -> None:
    code = code_item(explicit, False)
    for length in (4, 1 << 16):
        changed = code[:-4] + length.to_bytes(4, "little")
        assert same_dataset(sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [changed], explicit, False), explicit) == (
            same_dataset(sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [code], explicit, False), explicit)
        )
    if explicit:  # the length's low bytes read as a long VR ("OB"): pydicom reads 4 more bytes
        long_vr = code[:-4] + int.from_bytes(b"OB", "little").to_bytes(4, "little")
        data = sequence(t.CONCEPT_NAME_CODE_SEQUENCE, [long_vr + b"\0" * 4], True, False)
        assert same_dataset(data, True)[t.CONCEPT_NAME_CODE_SEQUENCE] == [
            {t.CODE_VALUE: b"121071", t.CODING_SCHEME_DESIGNATOR: b"DCM ", t.CODE_MEANING: b"Finding "}
        ]


@pytest.mark.parametrize("explicit", [True, False], ids=["explicit", "implicit"])
def test_item_and_sequence_tags_among_elements_are_elements(explicit: bool) -> None:
    """An Item or Sequence Delimitation tag where an element should be is an element for pydicom (read with
    the rules of any other); only an Item Delimitation Item ends a data set (here, a defined-length item's, which
    pydicom ends early and reads on from: left to it)."""
    enc = element if explicit else (lambda tag, vr, value, length=None: implicit(tag, value, length))
    head = enc(SOP, b"UI", SOP_VALUE)
    name = enc(t.PATIENT_NAME, b"PN", b"D ")
    for tag in (t.ITEM, t.SEQUENCE_DELIMITATION_ITEM):
        assert same_dataset(head + delimiter(tag, 4) + b"abcd" + name, explicit) == {
            SOP: SOP_VALUE,
            t.PATIENT_NAME: b"D ",
        }
    early = sequence(t.CONTENT_SEQUENCE, [item(name + delimiter(t.ITEM_DELIMITATION_ITEM) + name)], explicit)
    assert same(head + early, explicit) == unsupported("Item Delimitation Item inside a defined-length item")
