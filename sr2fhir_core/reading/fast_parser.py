"""Part 10 bytes → the raw attributes an SR reader needs, without pydicom (PS3.5 chapter 7, PS3.10 chapter 7).

The result is a `RawDataSet`: a dict from tag to the value's bytes, or to a list of item data sets for a
sequence. Only tags in `tags.READ_VR` are kept; every other element is skipped by its length, so pixel data
and private blocks cost one header read each. It is read-only to its users: the C scanner makes equal code
sequence items one dict.

The parser decides only what it is sure of. It raises `SRRejected(CORRUPT)` when an element or item
reaches past the end of the file where pydicom reads the same bytes eagerly (the top-level data set and
undefined-length sequences nested in it), and `FastReaderUnsupported` for anything else unusual (big
endian, an unknown VR, a length that overruns its enclosing item, tags out of order, ...): the caller then
asks the pydicom reader, so odd files get the reference behaviour instead of a second opinion.
Lengths are always checked against the bytes that remain before anything is sliced, so a corrupt length
cannot make it allocate, and nesting is bounded.

The element walk, the hot part, exists twice: in C (`_scan.c`, built when a compiler is there) and here in
Python, which is its specification. `SCANNER` says which one runs; `SR2FHIR_PURE_PYTHON=1` in the
environment makes it the Python one. Both take their tables from here and from `tags`, and give the same
result and the same signal on every input (`tests/test_reader_differential.py` compares them).
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from struct import Struct
from struct import error as struct_error
from typing import Literal, TypeAlias

from pydicom.charset import convert_encodings
from pydicom.values import convert_string

from ..errors import RejectionReason, SRRejected
from . import tags as t
from .transfer_syntaxes import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)

RawDataSet: TypeAlias = dict[int, "bytes | list[RawDataSet]"]


class FastReaderUnsupported(Exception):
    """The fast reader will not decide this input; the pydicom reader must. Never leaves `reading`."""


_EXPLICIT_HEADER = Struct("<HHHH")
"""Group, element, VR (as a little-endian int: cheaper to hash and compare than a bytes object), length."""
_IMPLICIT_HEADER = Struct("<HHL")
_UINT32 = Struct("<L")

UNDEFINED_LENGTH = 0xFFFFFFFF
MAX_INFLATED = 512 * 1024 * 1024
"""A deflated data set that inflates beyond this is left to pydicom rather than held in memory here."""
MAX_DEPTH = 100
"""Nested data sets (items) the parser follows before it hands the file to pydicom: TID 1500 needs ~10."""

_LONG_VRS = frozenset(
    vr.encode() for vr in ("OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV")
)
"""VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 Table 7.1-1)."""
_SHORT_VRS = frozenset(
    vr.encode()
    for vr in (
        "AE",
        "AS",
        "AT",
        "CS",
        "DA",
        "DS",
        "DT",
        "FD",
        "FL",
        "IS",
        "LO",
        "LT",
        "PN",
        "SH",
        "SL",
        "SS",
        "ST",
        "TM",
        "UI",
        "UL",
        "US",
    )
)


def _vr_code(vr: bytes) -> int:
    return int.from_bytes(vr, "little")


_EXPLICIT_HEADER_SIZES = {
    **{_vr_code(vr): 8 for vr in _SHORT_VRS},
    **{_vr_code(vr): 12 for vr in _LONG_VRS},
}
"""VR → explicit VR header size: one dict lookup both classifies the VR and rejects unknown ones."""
_SQ = b"SQ"
_SQ_CODE = _vr_code(_SQ)
_UI_CODE = _vr_code(b"UI")
_ENCAPSULATED_VR_CODES = frozenset((_vr_code(b"OB"), _vr_code(b"OW")))

_READ_VR = t.READ_VR
_READ_VR_CODE = {tag: _vr_code(vr) for tag, vr in _READ_VR.items()}
_ITEM = t.ITEM
_ITEM_DELIMITATION_ITEM = t.ITEM_DELIMITATION_ITEM
_SEQUENCE_DELIMITATION_ITEM = t.SEQUENCE_DELIMITATION_ITEM
_SPECIFIC_CHARACTER_SET = t.SPECIFIC_CHARACTER_SET
_ITEM_DELIMITATION_BYTES = b"\xfe\xff\x0d\xe0"

_EXPLICIT_LE_STANDARD_SYNTAXES = (
    "1.2.840.10008.1.2.4.",  # JPEG family, JPEG 2000, JPEG-LS, MPEG, HEVC (PS3.5 A.4)
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.8.",  # HTJ2K
    "1.2.840.10008.1.2.1.98",  # Encapsulated Uncompressed Explicit VR Little Endian
)
"""Encapsulated syntaxes: their data set is explicit VR little endian by definition (PS3.5 A.4)."""


def _letters(first: int, second: int) -> bool:
    """pydicom's test of the first element of a data set for an explicit VR (`filereader._is_implicit_vr`)."""
    return 0x40 < first < 0x5B and 0x40 < second < 0x5B


_LOWEST_VR = int.from_bytes(b"AA", "big")
_HIGHEST_VR = int.from_bytes(b"ZZ", "big")
"""pydicom's test of any other element's VR bytes (`b"AA" <= vr <= b"ZZ"`, byte-wise) as a big-endian int: an
element whose VR bytes fall outside is read as implicit VR, one inside with an unknown VR has a 2-byte length."""


def _unsupported(why: str) -> FastReaderUnsupported:
    return FastReaderUnsupported(why)


_TRUNCATED = "truncated: end of data before the end of an element"


def _corrupt(why: str = _TRUNCATED) -> SRRejected:
    return SRRejected(RejectionReason.CORRUPT, why)


def _not_an_item(eager: bool) -> Exception:
    """A sequence holds something other than an item (PS3.5 7.5: an item starts with the Item tag). pydicom
    reads any 8 bytes there as an item header; the reference reader refuses them (`pydicom_reader`), so where
    pydicom reads the sequence eagerly this is corrupt, and elsewhere the reference reader decides (it reads
    a lazily parsed sequence only if the document needs it)."""
    if eager:
        return _corrupt("a sequence holds something other than an item")
    return _unsupported("a sequence holds something other than an item, in a sequence pydicom parses on demand")


def _check_charset(raw: bytes, eager: bool) -> None:
    """A Specific Character Set value as the walker meets it, in any data set. pydicom converts the value of
    every data set it parses and fails the whole parse when it cannot (a NUL inside a value: `codecs.lookup`
    refuses it). Where pydicom parses at load time (`eager`) that is a corrupt file for the reference reader
    too; inside a defined-length sequence it parses only when the reader asks for the sequence, so the
    reference reader decides."""
    if _charset_unreadable(raw):
        if eager:
            raise SRRejected(RejectionReason.CORRUPT, "Specific Character Set (0008,0005) value cannot be read")
        raise _unsupported("unreadable Specific Character Set in a sequence pydicom parses on demand")


@lru_cache(maxsize=256)
def _charset_unreadable(raw: bytes) -> bool:
    # pydicom's own conversion (data_element_generator: convert_string, then convert_encodings), so that the
    # verdict is the reference reader's by construction. Its warnings about unknown terms come again when the
    # value is used.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            convert_encodings(convert_string(raw, True))
        except ValueError:
            return True
    return False


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """What `parse` found: the data set's raw attributes and the file meta's transfer syntax."""

    dataset: RawDataSet
    has_preamble: bool
    has_meta: bool
    transfer_syntax: str | None


def parse(data: bytes) -> ParsedFile:
    """Parse a Part 10 file or a bare data set. Bare data sets are left to pydicom when anything is odd,
    because pydicom's verdict on them (not DICOM or corrupt) depends on how far its guesses get."""
    has_preamble = len(data) >= 132 and data[128:132] == b"DICM"
    pos = 132 if has_preamble else 0
    has_meta = len(data) >= pos + 6 and data[pos : pos + 2] == b"\x02\x00"
    if not has_preamble:
        if len(data) < 8 or (not has_meta and _implicit_first_element_overruns(data)):
            raise SRRejected(RejectionReason.NOT_DICOM, "no DICOM preamble or data set")
        if not has_meta and _no_sop_class_tag(data):
            raise SRRejected(RejectionReason.NOT_DICOM, "no DICOM preamble and no SOP Class UID")
        try:
            transfer_syntax, pos = _parse_file_meta(data, pos) if has_meta else (None, pos)
            return ParsedFile(_parse_bare(data, pos, transfer_syntax), False, has_meta, transfer_syntax)
        except SRRejected as exc:
            raise _unsupported("bare data set that is not well formed") from exc
    if not has_meta:
        raise SRRejected(RejectionReason.CORRUPT, "file meta information missing or truncated")
    transfer_syntax, pos = _parse_file_meta(data, pos)
    if transfer_syntax is None:
        explicit = _guess_explicit(data, pos)
    elif transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN or transfer_syntax.startswith(_EXPLICIT_LE_STANDARD_SYNTAXES):
        explicit = True
    elif transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        explicit = False
    elif transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return ParsedFile(_parse_deflated(data, pos), True, True, transfer_syntax)
    else:
        raise _unsupported("transfer syntax without a known little-endian data set encoding")
    return ParsedFile(_parse_top_level(data, pos, explicit), True, True, transfer_syntax)


def _parse_bare(data: bytes, pos: int, transfer_syntax: str | None) -> RawDataSet:
    if transfer_syntax is None:
        explicit = _guess_explicit(data, pos)
    elif transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN:
        explicit = True
    elif transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN:
        explicit = False
    else:
        raise _unsupported("bare data set with an unusual transfer syntax")
    return _parse_top_level(data, pos, explicit)


def _implicit_first_element_overruns(data: bytes) -> bool:
    """Bytes without preamble or meta whose first "element" (read as implicit VR, as pydicom guesses for
    anything without a VR there) claims more bytes than the file has: text, JSON, archives. pydicom reads
    that one short element, finds no SOP Class UID and answers "not DICOM"; so can this reader."""
    if _guess_explicit(data, 0):
        return False
    group, element, length = _IMPLICIT_HEADER.unpack_from(data, 0)
    tag = group << 16 | element
    return (
        group not in (0x0000, 0x0002, 0xFFFE)
        and tag != t.SOP_CLASS_UID
        and length != UNDEFINED_LENGTH
        and 8 + length > len(data)
    )


_SOP_CLASS_TAGS = (b"\x08\x00\x16\x00", b"\x00\x08\x00\x16")
"""SOP Class UID's tag as pydicom reads it from bytes without a preamble: little endian, or big endian."""
_UNDEFINED_LENGTH_BYTES = b"\xff" * 4
_FEW_UNDEFINED_LENGTHS = 64


def _no_sop_class_tag(data: bytes) -> bool:
    """Bytes without preamble or file meta in which pydicom cannot find a SOP Class UID whatever it makes of
    them: its tag's bytes are nowhere. pydicom then says "not DICOM" (its read fails, or finds no SOP Class
    UID), and so can this reader without walking them: zero-filled or random data of any size is decided in
    one pass over the bytes. Only while too few undefined lengths are there for pydicom to nest deeply enough
    to exhaust its recursion, which `map_sr` reports as corrupt."""
    return (
        _SOP_CLASS_TAGS[0] not in data
        and _SOP_CLASS_TAGS[1] not in data
        and data.count(_UNDEFINED_LENGTH_BYTES) < _FEW_UNDEFINED_LENGTHS
    )


def _parse_deflated(data: bytes, pos: int) -> RawDataSet:
    # Same call as pydicom (raw deflate of everything after the meta and any command set, which it reads
    # before inflating), so both readers see the same bytes.
    pos = _skip_command_set(data, pos)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(data[pos:], MAX_INFLATED)
    except zlib.error as exc:
        raise SRRejected(RejectionReason.CORRUPT, "deflated data set cannot be inflated") from exc
    if inflater.unconsumed_tail:
        raise _unsupported("deflated data set inflates beyond the reader's bound")
    if not inflater.eof:
        # zlib.decompress (what pydicom calls) fails on an unfinished stream, and ignores trailing bytes.
        raise SRRejected(RejectionReason.CORRUPT, "deflated data set is truncated")
    try:
        return _parse_top_level(inflated, 0, True, command_set=False)
    except SRRejected as exc:
        # pydicom reads inflated bytes from its own buffer, where the reference reader cannot see short
        # reads; let it decide truncation inside the inflated data.
        raise _unsupported("truncated deflated data set") from exc


def _guess_explicit(data: bytes, pos: int) -> bool:
    """No transfer syntax: explicit VR when the first element's VR bytes are a VR (what pydicom guesses)."""
    if len(data) < pos + 6:
        return False
    vr = data[pos + 4 : pos + 6]
    if vr in _SHORT_VRS or vr in _LONG_VRS:
        if int.from_bytes(data[pos : pos + 2], "little") >= 0x0400:
            raise _unsupported("looks like explicit VR big endian")
        return True
    return False


def _parse_file_meta(data: bytes, pos: int) -> tuple[str | None, int]:
    """Group 0002 is always explicit VR little endian (PS3.10 7.1); only its transfer syntax is needed."""
    end = len(data)
    transfer_syntax: str | None = None
    last_tag = -1
    first: tuple[int, int, int] | None = None
    while pos + 8 <= end and data[pos : pos + 2] == b"\x02\x00":
        group, element, vr, length = _EXPLICIT_HEADER.unpack_from(data, pos)
        tag = group << 16 | element
        if tag <= last_tag:
            raise _unsupported("file meta elements out of order")
        last_tag = tag
        header_size = _EXPLICIT_HEADER_SIZES.get(vr)
        if header_size == 12:
            if pos + 12 > end:
                raise _corrupt()
            (length,) = _UINT32.unpack_from(data, pos + 8)
            pos += 12
        elif header_size == 8:
            pos += 8
        else:
            raise _unsupported("file meta element with an unknown VR")
        if length == UNDEFINED_LENGTH:
            raise _unsupported("undefined length in the file meta")
        if pos + length > end:
            raise _corrupt()
        if first is None:
            first = (tag, vr, length)
        if tag == t.TRANSFER_SYNTAX_UID:
            if vr != _UI_CODE:
                raise _unsupported("transfer syntax UID with another VR")
            # As pydicom's UID: trailing NUL padding off, then whitespace.
            transfer_syntax = data[pos : pos + length].decode("latin-1").rstrip("\0 ").strip()
            if "\\" in transfer_syntax:
                raise _unsupported("multi-valued transfer syntax UID")
        pos += length
    if pos < end and pos + 8 > end and data[pos : pos + 2] == b"\x02\x00":
        raise _corrupt()
    if first is not None:  # the group read whole and in order: its first element is pydicom's lowest tag
        _check_first_meta_element(*first)
    return transfer_syntax or None, pos


_NUMBER_SIZES = {
    _vr_code(vr.encode()): size
    for vr, size in (("US", 2), ("SS", 2), ("UL", 4), ("SL", 4), ("FL", 4), ("FD", 8), ("SV", 8), ("UV", 8))
}
_UN_CODE = _vr_code(b"UN")


def _check_first_meta_element(tag: int, vr: int, length: int) -> None:
    """pydicom converts the first file meta element to test the encoding (`_read_file_meta_info`): a binary
    number whose length is not a multiple of its size fails the whole read (BytesLengthException), a file the
    reference reader calls corrupt. An explicit UN takes the data dictionary's VR first."""
    if vr == _UN_CODE:
        from pydicom.datadict import dictionary_VR

        try:
            vr = _vr_code(dictionary_VR(tag)[:2].encode())
        except KeyError:
            raise _unsupported("file meta element of VR UN not in the data dictionary") from None
    size = _NUMBER_SIZES.get(vr)
    if size is not None and length % size:
        raise SRRejected(RejectionReason.CORRUPT, "file meta information: a number of the wrong length")
    if vr == _SQ_CODE:
        raise _unsupported("file meta element that is a sequence")


def _parse_top_level(data: bytes, pos: int, explicit: bool, command_set: bool = True) -> RawDataSet:
    end = len(data)
    if command_set:
        pos = _skip_command_set(data, pos)
    if pos + 6 <= end and _letters(data[pos + 4], data[pos + 5]) != explicit:
        # pydicom would switch encoding here (with a warning); not a guess this reader makes.
        raise _unsupported("data set encoding differs from the transfer syntax")
    return _walk(data, pos, explicit)


_ZERO_HEADER = bytes(8)


def _skip_command_set(data: bytes, pos: int) -> int:
    """Where the data set proper starts: pydicom first reads any group 0000 elements (a command set) as
    implicit VR whatever the transfer syntax (`filereader._read_command_set_elements`), until an element of
    another group or an Item Delimitation Item, whose header it consumes. None of them is kept here. A run
    of zero bytes (zero-filled storage, padding) is a run of empty (0000,0000) elements, skipped at once."""
    end = len(data)
    if pos + 8 > end:
        return pos  # the walk reports what is too short
    if data[pos : pos + 2] == b"\0\0" and _letters(data[pos + 4], data[pos + 5]):
        raise _unsupported("command set elements in explicit VR")
    start = pos
    while pos + 8 <= end:
        group, element, length = _IMPLICIT_HEADER.unpack_from(data, pos)
        if group << 16 | element == _ITEM_DELIMITATION_ITEM:
            # As the first element, its header is read as explicit VR if it looks so: 4 more bytes for a long VR.
            explicit = pos == start and _letters(data[pos + 4], data[pos + 5])
            if explicit and _EXPLICIT_HEADER_SIZES.get(length & 0xFFFF) == 12:
                if pos + 12 > end:
                    raise _corrupt()
                return pos + 12
            return pos + 8
        if group != 0:
            return pos
        if data[pos : pos + 8] == _ZERO_HEADER:
            run = end - pos - len(data[pos:end].lstrip(b"\0"))
            pos += run - run % 8
            continue
        if length == UNDEFINED_LENGTH:
            raise _unsupported("command set element of undefined length")
        if pos + 8 + length > end:
            raise _corrupt()
        pos += 8 + length
    return pos


def _python_scan(data: bytes, pos: int, explicit: bool) -> RawDataSet:
    """The top-level data set from `pos` to the end of `data`, walked in Python."""
    walk = _explicit_dataset if explicit else _implicit_dataset
    dataset, _ = walk(data, pos, len(data), False, True, 0)
    return dataset


def _overrun(needed: int, data: bytes, eager: bool) -> Exception:
    """An element or item needs bytes up to `needed` that its container does not have."""
    if eager and needed > len(data):
        return _corrupt()
    return _unsupported("length overruns its enclosing item or sequence")


def _explicit_dataset(
    data: bytes, pos: int, end: int, delimited: bool, eager: bool, depth: int
) -> tuple[RawDataSet, int]:
    """One data set in explicit VR LE from `pos` to `end`, or to its Item Delimitation Item if `delimited`,
    with every sequence and item inside it.

    `eager` says pydicom reads these bytes from the file itself at load time (top level, and undefined
    length sequences inside it), where a short read means truncation; inside a defined-length sequence
    it parses a copy of the value later, leniently, so an overrun there is left to it.

    Iterative rather than recursive: a TID 1500 content item is three or four nested data sets, and a
    Python call per data set and per sequence was a third of the parse time. The current container is
    either a data set (`in_sequence` false: `dataset`, `last_tag`) or a sequence (`items`), bounded by
    `end`/`delimited`/`eager`; `stack` holds the enclosing containers, alternating data set and sequence.
    """
    unpack_header = _EXPLICIT_HEADER.unpack_from
    unpack_item = _IMPLICIT_HEADER.unpack_from
    unpack_uint32 = _UINT32.unpack_from
    read_vr = _READ_VR_CODE
    header_sizes = _EXPLICIT_HEADER_SIZES
    sq = _SQ_CODE
    undefined = UNDEFINED_LENGTH
    max_stack = 2 * (MAX_DEPTH - depth)
    stack: list[tuple] = []
    dataset: RawDataSet = {}
    items: list[RawDataSet] = []
    last_tag = -1
    in_sequence = False
    while True:
        if in_sequence:
            if pos >= end:
                if delimited:
                    raise _overrun(end + 8, data, eager)
                finished, (dataset, end, delimited, eager, last_tag, store_as) = items, stack.pop()
                if store_as is not None:
                    dataset[store_as] = finished
                in_sequence = False
                continue
            if pos + 8 > end:
                raise _overrun(pos + 8, data, eager)
            group, element, length = unpack_item(data, pos)
            tag = group << 16 | element
            pos += 8
            if tag == _SEQUENCE_DELIMITATION_ITEM:
                # pydicom ends a sequence at this tag whatever its length, and a defined-length one reads no
                # further in its value.
                if not delimited:
                    pos = end
                    continue
                finished, (dataset, end, delimited, eager, last_tag, store_as) = items, stack.pop()
                if store_as is not None:
                    dataset[store_as] = finished
                in_sequence = False
            else:
                if tag != _ITEM:
                    raise _not_an_item(eager)
                stack.append((items, end, delimited, eager))
                if length != UNDEFINED_LENGTH:
                    item_end = pos + length
                    if item_end > end:
                        # Not truncation for pydicom: an item's length only bounds its loop, which also
                        # ends at an Item Delimitation Item or at the end of the data, without a word.
                        raise _unsupported("item length overruns its sequence")
                    end, delimited = item_end, False
                else:
                    delimited = True
                if (
                    pos + 6 <= end
                    and data[pos : pos + 4] != _ITEM_DELIMITATION_BYTES
                    and not _letters(data[pos + 4], data[pos + 5])
                ):
                    # pydicom reads an item whose first element has no VR letters as implicit VR, all of it
                    # (one that is only an Item Delimitation Item ends either way).
                    raise _unsupported("item in implicit VR inside explicit VR")
                dataset = {}
                last_tag = -1
                in_sequence = False
            continue

        if pos >= end:
            if delimited:
                raise _overrun(end + 8, data, eager)
            if not stack:
                return dataset, pos
            finished_item, (items, end, delimited, eager) = dataset, stack.pop()
            items.append(finished_item)
            in_sequence = True
            continue
        try:
            group, element, vr, length = unpack_header(data, pos)
        except struct_error:
            raise _overrun(pos + 8, data, eager) from None
        # A header that crosses `end` but not the end of the data fails below on its value's length.
        tag = group << 16 | element
        if group == 0xFFFE:
            if pos + 8 > end:
                raise _overrun(pos + 8, data, eager)
            if delimited and tag == _ITEM_DELIMITATION_ITEM:
                # pydicom ends the item here whatever the length, read as explicit VR: the header's low
                # length bytes read as a long VR take 4 more bytes.
                if header_sizes.get(vr) == 12:
                    if pos + 12 > end:
                        raise _overrun(pos + 12, data, eager)
                    pos += 4
                pos += 8
                if not stack:
                    return dataset, pos
                finished_item, (items, end, delimited, eager) = dataset, stack.pop()
                items.append(finished_item)
                in_sequence = True
                continue
            if tag == _ITEM_DELIMITATION_ITEM and not delimited and not stack and depth == 0:
                # pydicom ends the top-level data set at an Item Delimitation Item and reads nothing after
                # it; it reads the header as explicit VR first, with 4 more bytes after a long VR.
                if header_sizes.get(vr) == 12 and pos + 12 > end:
                    raise _overrun(pos + 12, data, eager)
                return dataset, end
            if tag == _ITEM_DELIMITATION_ITEM:
                # It ends a defined-length item early for pydicom, which then reads its next item from there.
                raise _unsupported("Item Delimitation Item inside a defined-length item")
            # Any other (FFFE,xxxx) tag is an element like any other for pydicom, and so it is here.
        if tag == 0 and data[pos : pos + 8] == _ZERO_HEADER:
            # Zero bytes (padding, zero-filled storage) are empty (0000,0000) elements in implicit VR for
            # pydicom: a run of them is skipped at once, as the C walker would one by one. Only within this
            # container: fewer than 8 zero bytes before its end are an element that overruns it, below.
            chunk = data[pos:end]
            run = len(chunk) - len(chunk.lstrip(b"\0"))
            if run >= 8:
                pos += run - run % 8
                last_tag = max(last_tag, 0)
                continue
        if tag == _SPECIFIC_CHARACTER_SET and last_tag >= tag:
            # pydicom reads undefined-length sequences met before a later one with the character set before.
            raise _unsupported("Specific Character Set out of order or repeated")
        if tag > last_tag:
            last_tag = tag
        # A tag out of order or repeated is read as pydicom does: its last occurrence is the element.
        header_size = header_sizes.get(vr)
        implicit_element = False
        if header_size == 8:
            pos += 8
        elif header_size == 12:
            if pos + 12 > end:
                raise _overrun(pos + 12, data, eager)
            (length,) = unpack_uint32(data, pos + 8)
            pos += 12
        elif not _LOWEST_VR <= ((vr & 0xFF) << 8 | vr >> 8) <= _HIGHEST_VR:
            # No VR letters: pydicom reads this element as implicit VR (a 4-byte length after the tag).
            (length,) = unpack_uint32(data, pos + 4)
            pos += 8
            implicit_element = True
        else:
            # A VR pydicom does not know has a 2-byte length, and fails only when its value is converted.
            if read_vr.get(tag) is not None:
                raise _unsupported("unknown VR")
            pos += 8
        wanted = read_vr.get(tag)
        if implicit_element:
            sequence = wanted == sq or (
                wanted is None and length == undefined and _is_sequence_tag(tag, data, pos, end)
            )
        else:
            sequence = vr == sq
            if sequence and wanted is not None and wanted != sq:
                raise _unsupported("VR differs from the data dictionary")
        if sequence and (wanted is not None or length == undefined):
            if len(stack) >= max_stack:
                raise _unsupported("nested too deeply")
            stack.append((dataset, end, delimited, eager, last_tag, tag if wanted is not None else None))
            items = []
            in_sequence = True
            if length != undefined:
                value_end = pos + length
                if value_end > end:
                    raise _overrun(value_end, data, eager)
                # pydicom parses a defined-length sequence later from a copy of its value, leniently.
                end, delimited, eager = value_end, False, False
            else:
                delimited = True
            continue
        # Past here: a value, or a defined-length sequence nothing reads, which pydicom never parses either.
        if length == undefined:
            if not implicit_element and vr in _ENCAPSULATED_VR_CODES and wanted is None:
                pos = _skip_encapsulated(data, pos, end)
                continue
            raise _unsupported("undefined length on a VR that cannot have it")
        value_end = pos + length
        if value_end > end:
            raise _overrun(value_end, data, eager)
        if wanted is not None:
            if wanted != vr and not implicit_element:
                raise _unsupported("VR differs from the data dictionary")
            dataset[tag] = value = data[pos:value_end]
            if tag == _SPECIFIC_CHARACTER_SET:
                _check_charset(value, eager)
        pos = value_end


def _implicit_dataset(
    data: bytes, pos: int, end: int, delimited: bool, eager: bool, depth: int
) -> tuple[RawDataSet, int]:
    """As `_explicit_dataset`, for implicit VR LE: the VR of a kept attribute comes from `tags.READ_VR`."""
    if depth > MAX_DEPTH:
        raise _unsupported("nested too deeply")
    dataset: RawDataSet = {}
    unpack_header = _IMPLICIT_HEADER.unpack_from
    read_vr = _READ_VR
    last_tag = -1
    while pos < end:
        if pos + 8 > end:
            raise _overrun(pos + 8, data, eager)
        group, element, length = unpack_header(data, pos)
        tag = group << 16 | element
        pos += 8
        if group == 0xFFFE:
            if delimited and tag == _ITEM_DELIMITATION_ITEM:
                return dataset, pos  # whatever its length, as pydicom
            if tag == _ITEM_DELIMITATION_ITEM and not delimited and depth == 0:
                return dataset, end  # pydicom ends the top-level data set there and reads nothing after it
            if tag == _ITEM_DELIMITATION_ITEM:
                raise _unsupported("Item Delimitation Item inside a defined-length item")  # as _explicit_dataset
            # Any other (FFFE,xxxx) tag is an element like any other for pydicom.
        if tag == _SPECIFIC_CHARACTER_SET and last_tag >= tag:
            raise _unsupported("Specific Character Set out of order or repeated")  # as _explicit_dataset
        if tag > last_tag:
            last_tag = tag
        wanted = read_vr.get(tag)
        if length == UNDEFINED_LENGTH:
            if wanted is None and not _is_sequence_tag(tag, data, pos, end):
                raise _unsupported("undefined length on an element that is not a sequence")
            if wanted is not None and wanted != _SQ:
                raise _unsupported("undefined length on an element that is not a sequence")
            items, pos = _implicit_sequence(data, pos, end, eager, True, depth)
            if wanted is not None:
                dataset[tag] = items
            continue
        value_end = pos + length
        if value_end > end:
            raise _overrun(value_end, data, eager)
        if wanted is not None:
            if wanted == _SQ:
                dataset[tag], _ = _implicit_sequence(data, pos, value_end, False, False, depth)
            else:
                dataset[tag] = value = data[pos:value_end]
                if tag == _SPECIFIC_CHARACTER_SET:
                    _check_charset(value, eager)
        pos = value_end
    if delimited:
        raise _overrun(end + 8, data, eager)
    return dataset, pos


def _implicit_sequence(
    data: bytes, pos: int, end: int, eager: bool, delimited: bool, depth: int
) -> tuple[list[RawDataSet], int]:
    """Items of an implicit VR sequence value: up to `end` (defined length) or to the Sequence
    Delimitation Item. (Explicit VR sequences are walked inside `_explicit_dataset`.)"""
    items: list[RawDataSet] = []
    append = items.append
    parse_dataset = _implicit_dataset
    unpack_header = _IMPLICIT_HEADER.unpack_from
    depth += 1
    while pos < end:
        if pos + 8 > end:
            raise _overrun(pos + 8, data, eager)
        group, element, length = unpack_header(data, pos)
        tag = group << 16 | element
        pos += 8
        if tag == _SEQUENCE_DELIMITATION_ITEM:
            # As in _explicit_dataset: the end of the sequence, whatever its length; in a defined-length one,
            # pydicom reads no further in its value.
            return items, pos if delimited else end
        if tag != _ITEM:
            raise _not_an_item(eager)
        if length == UNDEFINED_LENGTH:
            item, pos = parse_dataset(data, pos, end, True, eager, depth)
        else:
            item_end = pos + length
            if item_end > end:
                # Not truncation for pydicom: an item's length only bounds its loop, which also ends
                # at an Item Delimitation Item or at the end of the data, without a word.
                raise _unsupported("item length overruns its sequence")
            item, _ = parse_dataset(data, pos, item_end, False, eager, depth)
            pos = item_end
        append(item)
    if delimited:
        raise _overrun(end + 8, data, eager)
    return items, pos


def _skip_encapsulated(data: bytes, pos: int, end: int) -> int:
    """Skip encapsulated pixel data (PS3.5 A.4): items, then a Sequence Delimitation Item."""
    unpack_header = _IMPLICIT_HEADER.unpack_from
    while pos + 8 <= end:
        group, element, length = unpack_header(data, pos)
        tag = group << 16 | element
        pos += 8
        if tag == _SEQUENCE_DELIMITATION_ITEM:
            return pos
        if tag != _ITEM or length == UNDEFINED_LENGTH or pos + length > end:
            break
        pos += length
    # pydicom falls back to a byte search for the delimiter here; leave such files to it.
    raise _unsupported("encapsulated pixel data that is not well formed")


def _is_sequence_tag(tag: int, data: bytes, pos: int, end: int) -> bool:
    """Implicit VR, undefined length, a tag this reader does not keep: a sequence when the public data
    dictionary says so, or (private and unknown tags, as pydicom does) when an item follows."""
    sequence_tags = _dictionary_sequence_tags()
    if tag in sequence_tags:
        return True
    if tag in _dictionary_tags():
        return False
    return pos + 4 <= end and data[pos : pos + 4] == b"\xfe\xff\x00\xe0"


_SEQUENCE_TAGS: frozenset[int] | None = None
_ALL_TAGS: frozenset[int] | None = None


def _dictionary_sequence_tags() -> frozenset[int]:
    global _SEQUENCE_TAGS, _ALL_TAGS
    if _SEQUENCE_TAGS is None:
        # Only for undefined-length elements in implicit VR that the reader skips: rare, so the data
        # dictionary is loaded on first need.
        from pydicom.datadict import DicomDictionary

        _SEQUENCE_TAGS = frozenset(tag for tag, entry in DicomDictionary.items() if entry[0] == "SQ")
        _ALL_TAGS = frozenset(DicomDictionary)
    return _SEQUENCE_TAGS


def _dictionary_tags() -> frozenset[int]:
    _dictionary_sequence_tags()
    assert _ALL_TAGS is not None
    return _ALL_TAGS


# --- which walker runs ------------------------------------------------------------------------------------

ScannerName: TypeAlias = Literal["c", "python"]
_C_SCAN_VERSION = 7
"""The `_scan.VERSION` this module is written against: a stale in-place build is not used."""


def _load_c_scan() -> Callable[[bytes, int, bool], RawDataSet] | None:
    try:
        from . import _scan
    except ImportError:
        return None  # not built (no compiler at install time): the Python walker does the same work
    if getattr(_scan, "VERSION", None) != _C_SCAN_VERSION:
        warnings.warn(
            "sr2fhir_core.reading._scan is a stale build; using the pure-Python scanner (reinstall to rebuild it)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    scanner = _scan.Scanner(
        read_vr=_READ_VR,
        header_sizes=_EXPLICIT_HEADER_SIZES,
        encapsulated_vrs=_ENCAPSULATED_VR_CODES,
        shared_item_sequences=t.CODE_SEQUENCES,
        unsupported=FastReaderUnsupported,
        corrupt=_corrupt,
        is_sequence_tag=_is_sequence_tag,
        check_charset=_check_charset,
        max_depth=MAX_DEPTH,
    )
    return scanner.scan


_C_SCAN = _load_c_scan()
C_SCANNER_AVAILABLE = _C_SCAN is not None
"""Whether the C scanner is built and loadable (even when the environment asks for the Python one)."""
_PURE_PYTHON = os.environ.get("SR2FHIR_PURE_PYTHON", "") not in ("", "0")
SCANNER: ScannerName = "c" if _C_SCAN is not None and not _PURE_PYTHON else "python"
"""The scanner `parse` uses: "c" when the extension is built, unless SR2FHIR_PURE_PYTHON is set (not to 0)."""
_walk: Callable[[bytes, int, bool], RawDataSet] = _python_scan if _C_SCAN is None or _PURE_PYTHON else _C_SCAN


@contextmanager
def using_scanner(name: ScannerName) -> Iterator[None]:
    """Run `parse` with the named scanner inside the block (for tests and benchmarks; not thread safe)."""
    global _walk
    if name == "c":
        if _C_SCAN is None:
            raise RuntimeError("the C scanner is not built")
        chosen = _C_SCAN
    elif name == "python":
        chosen = _python_scan
    else:
        raise ValueError(f"unknown scanner {name!r}")
    previous, _walk = _walk, chosen
    try:
        yield
    finally:
        _walk = previous
