"""The reference reader: pydicom parses the bytes, this module turns the data set into the content tree.

pydicom is lenient where a lake job must not be: it returns a shortened data set for a truncated file
without a word. So this reader also checks that every element it reads arrived whole, and turns pydicom's
end-of-file warnings into a `corrupt` rejection.

The fast reader (`fast_reader`) must agree with this one on every input, so where pydicom was too lenient
or let an exception escape, this reader was made stricter rather than the fast one looser (each place
says so): a partial element header after the last element, a value cut short by the end of the data, a
truncated file meta, a sequence holding something other than items, and parse errors pydicom raises as
OSError, struct.error, zlib.error, NotImplementedError or BytesLengthException.
"""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator, MutableSequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import BinaryIO

import pydicom
import pydicom.filereader
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.valuerep import AMBIGUOUS_VR, EXPLICIT_VR_LENGTH_32, VR, PersonName

from .. import deadline
from ..content import (
    ByReferenceItem,
    Code,
    CodeItem,
    CommonFields,
    CompositeItem,
    ContainerItem,
    ContentItem,
    DateItem,
    DateTimeItem,
    ImageItem,
    NumItem,
    PNameItem,
    RelationshipType,
    Scoord3DItem,
    ScoordItem,
    SopReference,
    TableItem,
    TcoordItem,
    TextItem,
    TimeItem,
    UidRefItem,
    UnknownItem,
    WaveformItem,
)
from ..document import EvidenceInstance, SRDocument
from ..errors import RejectionReason, SRRejected
from .header import build_document, sr_sop_class_uid
from .tags import (
    CODE_MEANING,
    CODE_VALUE,
    CODING_SCHEME_DESIGNATOR,
    CODING_SCHEME_VERSION,
    CONCEPT_CODE_SEQUENCE,
    CONCEPT_NAME_CODE_SEQUENCE,
    CONTENT_SEQUENCE,
    CONTENT_TEMPLATE_SEQUENCE,
    CONTINUITY_OF_CONTENT,
    CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
    DATE,
    DATETIME,
    FLOATING_POINT_VALUE,
    GRAPHIC_DATA,
    GRAPHIC_TYPE,
    LONG_CODE_VALUE,
    MAPPING_RESOURCE,
    MEASURED_VALUE_SEQUENCE,
    MEASUREMENT_UNITS_CODE_SEQUENCE,
    NUMERIC_VALUE,
    NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE,
    OBSERVATION_DATETIME,
    OBSERVATION_UID,
    PERSON_NAME,
    PERTINENT_OTHER_EVIDENCE_SEQUENCE,
    READ_VR,
    REFERENCED_CONTENT_ITEM_IDENTIFIER,
    REFERENCED_DATETIME,
    REFERENCED_FRAME_NUMBER,
    REFERENCED_FRAME_OF_REFERENCE_UID,
    REFERENCED_SAMPLE_POSITIONS,
    REFERENCED_SEGMENT_NUMBER,
    REFERENCED_SERIES_SEQUENCE,
    REFERENCED_SOP_CLASS_UID,
    REFERENCED_SOP_INSTANCE_UID,
    REFERENCED_SOP_SEQUENCE,
    REFERENCED_TIME_OFFSETS,
    REFERENCED_WAVEFORM_CHANNELS,
    RELATIONSHIP_TYPE,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SPECIFIC_CHARACTER_SET,
    STUDY_INSTANCE_UID,
    TEMPLATE_IDENTIFIER,
    TEMPORAL_RANGE_TYPE,
    TEXT_VALUE,
    TIME,
    UID,
    URN_CODE_VALUE,
    VALUE_TYPE,
)
from .transfer_syntaxes import DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, check_transfer_syntax

# Tags as ints (tags.py, shared with the fast reader): tag access is about twice as fast as keyword access in
# pydicom.

_SEQUENCE_OR_CHARSET = frozenset(tag for tag, vr in READ_VR.items() if vr == b"SQ") | {SPECIFIC_CHARACTER_SET}
"""Tags `_convert` leaves to `Dataset.__getitem__`."""

_EOF_WARNING_PREFIXES = ("End of file reached before delimiter", "Unexpected end of file")
"""pydicom's own truncation warnings. Matched at the start only: other warnings quote element values, and
a value that happens to contain "EOF" must not reject the document (the fast reader would not)."""

_UNREADABLE = (
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    # Stricter than before, for agreement with the fast reader: pydicom lets these escape for broken
    # structure (OSError "No tag to read" in a truncated sequence, struct.error for a partial length,
    # zlib.error for a truncated deflated data set, NotImplementedError for an unknown VR,
    # BytesLengthException for a binary value of the wrong length); they are bad input, not defects.
    OSError,
    struct.error,
    zlib.error,
    NotImplementedError,
    BytesLengthException,
)


class _NotAnItem(OSError):
    """A sequence holds something other than an item where this reader reads (`_read_sequence_item`)."""


_ITEM_TAGS = {True: (b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0"), False: (b"\xff\xfe\xe0\x00", b"\xff\xfe\xe0\xdd")}
"""Item and Sequence Delimitation Item tags as bytes, by `is_little_endian`."""

_reading = ContextVar("sr2fhir_pydicom_reading", default=False)
"""True while this reader reads: `_read_sequence_item` is strict then, and pydicom as it is otherwise."""

_pydicom_read_sequence_item = pydicom.filereader.read_sequence_item


def _read_sequence_item(
    fp: BinaryIO, is_implicit_VR: bool, is_little_endian: bool, encoding: str | MutableSequence[str], offset: int = 0
) -> Dataset | None:
    """pydicom's `read_sequence_item`, refusing what is not an item while this reader reads (PS3.5 7.5: an
    item starts with the Item tag). Stricter than pydicom, for agreement with the fast reader and for bounded
    cost: pydicom reads any 8 bytes there as an item header, so a run of zeros becomes one empty data set
    per 8 bytes (about 60 µs each, 8 s per MB)."""
    if _reading.get():
        start = fp.tell()
        tag = fp.read(4)
        fp.seek(start)
        if len(tag) == 4 and tag not in _ITEM_TAGS[is_little_endian]:
            raise _NotAnItem("a sequence holds something other than an item")
    return _pydicom_read_sequence_item(fp, is_implicit_VR, is_little_endian, encoding, offset)


# pydicom's `read_sequence` finds the item reader by this module-level name; the replacement behaves as
# pydicom's own outside `_reading`.
pydicom.filereader.read_sequence_item = _read_sequence_item


@contextmanager
def _strict_items() -> Iterator[None]:
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def _unreadable(part: str, exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _NotAnItem) else f"unreadable {part} ({type(exc).__name__})"


class _ShortReadRecorder(io.BytesIO):
    """Notes a partial element header and a value cut short. pydicom ends a data set silently when fewer
    than the 8 bytes of a header remain; for a file that is truncation (or trailing garbage), and the fast
    reader says so. A value read short is truncation too: `_check_complete` finds it in the data set, except
    where pydicom put another element of the same tag over it (a command set element, read apart).

    Also the mapping's deadline, at every read: once it has passed, the input seems to end there (pydicom
    turns any exception raised inside some reads into its own, so none is raised here) and `timed_out` says
    why; `_parse` then raises `MappingTimeout` whatever pydicom made of the end."""

    partial_header = False
    short_value = False
    timed_out = False

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.deadline = deadline.current()

    def read(self, size: int | None = -1, /) -> bytes:
        if self.deadline is not None and (self.timed_out or time.monotonic() > self.deadline):
            self.timed_out = True
            return b""
        start = self.tell()
        chunk = super().read(size)
        if size is not None and 0 < len(chunk) < size:
            if size == 8:
                self.partial_header = True
            elif start > 0:  # not the preamble, which a short bare data set need not have
                self.short_value = True
        return chunk


def read_document(data: bytes) -> SRDocument:
    """Parse Part 10 bytes (or a bare data set) into an `SRDocument`; raise `SRRejected` for bad input."""
    with _strict_items():
        dataset = _parse(data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                document = _document(dataset)
            except SRRejected:
                raise
            except _UNREADABLE as exc:
                raise SRRejected(RejectionReason.CORRUPT, _unreadable("data set", exc)) from exc
    _raise_on_eof_warnings(caught)
    return document


def _parse(data: bytes) -> Dataset:
    has_preamble = len(data) >= 132 and data[128:132] == b"DICM"
    source = _ShortReadRecorder(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = pydicom.dcmread(source, force=not has_preamble)
        except InvalidDicomError as exc:
            if source.timed_out:
                raise deadline.MappingTimeout from None
            raise SRRejected(RejectionReason.NOT_DICOM, "no DICOM preamble or data set") from exc
        except _UNREADABLE as exc:
            if source.timed_out:
                raise deadline.MappingTimeout from None
            if not has_preamble:
                raise SRRejected(RejectionReason.NOT_DICOM, "no DICOM preamble or data set") from exc
            raise SRRejected(RejectionReason.CORRUPT, _unreadable("header", exc)) from exc
    if source.timed_out:
        raise deadline.MappingTimeout
    if not has_preamble and SOP_CLASS_UID not in dataset:
        raise SRRejected(RejectionReason.NOT_DICOM, "no DICOM preamble and no SOP Class UID")
    if has_preamble and len(dataset.file_meta) == 0:
        raise SRRejected(RejectionReason.CORRUPT, "file meta information missing or truncated")
    _raise_on_eof_warnings(caught)
    if source.partial_header:
        raise SRRejected(RejectionReason.CORRUPT, "truncated: partial element header at the end of the data")
    if source.short_value:
        raise SRRejected(RejectionReason.CORRUPT, "truncated: end of data before the end of an element")
    _check_meta_complete(dataset.file_meta, data)
    _check_complete(dataset)
    _check_charset_complete(dataset, data)
    return dataset


def _raise_on_eof_warnings(caught: Iterable[warnings.WarningMessage]) -> None:
    for warning in caught:
        if str(warning.message).startswith(_EOF_WARNING_PREFIXES):
            raise SRRejected(RejectionReason.CORRUPT, "truncated: end of data before the end of an element")


def _check_complete(dataset: Dataset) -> None:
    """pydicom keeps a short read as a short value; a value shorter than its length means truncation.

    The elements as stored (what `get_item(keep_deferred=True)` returns, without a call per element), not
    `elements()`: that converts elements whose value is None (left so by pydicom's end-of-file handling),
    which can raise for a broken VR.
    """
    for element in dataset._dict.values():
        if type(element) is RawDataElement and element.length not in (0, 0xFFFFFFFF):
            value = element.value
            if value is None or (isinstance(value, bytes) and len(value) != element.length):
                raise SRRejected(RejectionReason.CORRUPT, f"truncated in element {element.tag}")


def _check_meta_complete(file_meta: Dataset, data: bytes) -> None:
    """Stricter than before, for agreement with the fast reader: a file cut inside its file meta read as
    "not an SR" (an empty data set) instead of "corrupt"."""
    _check_complete(file_meta)
    tags = file_meta.keys()  # not iteration over the data set, which converts
    for tag in tags:
        element = file_meta.get_item(tag, keep_deferred=True)
        if isinstance(element, RawDataElement) or element.file_tell is None:
            continue
        # pydicom converts the first meta element (to test its encoding) and the transfer syntax, which drops
        # their lengths: read back from their headers (always explicit VR LE, PS3.10 7.1).
        length = _header_length(data, element.file_tell, tag, implicit=False)
        if length is not None and element.file_tell + length > len(data):
            raise SRRejected(RejectionReason.CORRUPT, "truncated in the file meta information")


def _check_charset_complete(dataset: Dataset, data: bytes) -> None:
    """Stricter than before, for agreement with the fast reader: pydicom converts the top-level Specific
    Character Set while it loads (to learn the data set's encoding), which drops the element's length, so
    `_check_complete` cannot see that value cut short by the end of the file (it read as "not an SR"). The
    length is read back from the header before the value, in the bytes pydicom read (not for a deflated
    data set, which it reads from an inflated copy; nor big endian, whose tags differ)."""
    element = dataset.get_item(SPECIFIC_CHARACTER_SET, keep_deferred=True)
    if element is None or isinstance(element, RawDataElement) or element.file_tell is None:
        return
    syntax = dataset.file_meta.get("TransferSyntaxUID") if dataset.file_meta else None
    if syntax is not None and str(syntax) == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return
    length = _header_length(
        data, element.file_tell, SPECIFIC_CHARACTER_SET, implicit=bool(dataset.original_encoding[0])
    )
    if length is not None and element.file_tell + length > len(data):
        raise SRRejected(RejectionReason.CORRUPT, "truncated: end of data before the end of an element")


def _header_length(data: bytes, start: int, tag: int, implicit: bool) -> int | None:
    """The length in the header of the element of `tag` whose value starts at `start`, read as pydicom read
    it: the header's form follows from its bytes (the VR as written, not the one conversion gave it: an
    explicit UN becomes its dictionary VR). None when no header of that tag ends there."""
    tag_bytes = tag.to_bytes(4, "big")
    tag_bytes = tag_bytes[1::-1] + tag_bytes[:1:-1]  # little-endian group, then element
    long_vr = data[start - 8 : start - 6].decode("latin-1") in EXPLICIT_VR_LENGTH_32
    if not implicit and data[start - 12 : start - 8] == tag_bytes and long_vr:
        return int.from_bytes(data[start - 4 : start], "little")
    if data[start - 8 : start - 4] == tag_bytes:
        short = not implicit and b"AA" <= data[start - 4 : start - 2] <= b"ZZ"  # pydicom's test for an explicit VR
        return int.from_bytes(data[start - 2 : start] if short else data[start - 4 : start], "little")
    return None


def _get(dataset: Dataset, tag: int):
    """`dataset.get(tag).value`, without its cost where nothing is converted: a missing element (which
    `get` finds by catching a KeyError) and one already converted are read from the data set's dict."""
    element = dataset._dict.get(tag)  # type: ignore[call-overload]  # keyed by BaseTag, an int: equal hashes
    if element is None:
        return None
    if type(element) is RawDataElement:
        element = _convert(dataset, tag, element)
    return element.value


def _convert(dataset: Dataset, tag: int, raw: RawDataElement) -> DataElement:
    """`dataset[tag]` for a raw element: pydicom's conversion with the data set's character set, kept in the
    data set. Done here for the plain values this reader reads, as `Dataset.__getitem__` does for them (it
    costs as much again in tag normalisation, re-entry and checks that do not apply: private creators, pixel
    data); everything else is `Dataset.__getitem__`'s (sequences, the character set itself, deferred values,
    ambiguous VRs)."""
    if raw.VR == VR.SQ or raw.value is None or tag in _SEQUENCE_OR_CHARSET:
        return dataset[tag]
    element = convert_raw_data_element(
        raw, encoding=dataset.original_character_set or dataset._character_set, ds=dataset
    )
    if element.VR == VR.SQ or element.VR in AMBIGUOUS_VR:
        return dataset[tag]  # converted again by pydicom's own path, which knows what to do with it
    dataset._dict[raw.tag] = element
    return element


def _text(dataset: Dataset, tag: int) -> str | None:
    value = _get(dataset, tag)
    if value is None:
        return None
    if isinstance(value, MultiValue | list):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _texts(dataset: Dataset, tag: int) -> tuple[str, ...]:
    value = _get(dataset, tag)
    if value is None or value == "":
        return ()
    if isinstance(value, MultiValue | list):
        return tuple(str(v).strip() for v in value)
    return (str(value).strip(),)


def _ints(dataset: Dataset, tag: int) -> tuple[int, ...]:
    value = _get(dataset, tag)
    if value is None or value == "" or value == b"":
        return ()
    if isinstance(value, MultiValue | list | tuple):
        return tuple(int(v) for v in value)
    return (int(value),)


def _floats(dataset: Dataset, tag: int) -> tuple[float, ...]:
    value = _get(dataset, tag)
    if value is None or value == "" or value == b"":
        return ()
    if isinstance(value, MultiValue | list | tuple):
        return tuple(float(v) for v in value)
    return (float(value),)


def _sequence(dataset: Dataset, tag: int) -> list[Dataset]:
    value = _get(dataset, tag)
    if not value:
        return []
    for item in value:
        _check_complete(item)
    return list(value)


def _first(dataset: Dataset, tag: int) -> Dataset | None:
    items = _sequence(dataset, tag)
    return items[0] if items else None


def _code(item: Dataset | None) -> Code | None:
    if item is None:
        return None
    value = _text(item, CODE_VALUE) or _text(item, LONG_CODE_VALUE) or _text(item, URN_CODE_VALUE)
    scheme = _text(item, CODING_SCHEME_DESIGNATOR)
    if value is None:
        return None
    code = Code(
        value=value,
        scheme=scheme or "",
        meaning=_text(item, CODE_MEANING) or "",
        scheme_version=_text(item, CODING_SCHEME_VERSION),
    )
    # Equal codes as one object, as the fast reader's are: the mapping's lookups keyed by codes then hash
    # strings whose hashes are already known (a third of its time on a radiomics report otherwise).
    shared = _CODES.get(code)
    if shared is None:
        if len(_CODES) >= _CODES_LIMIT:
            _CODES.clear()
        shared = _CODES[code] = code
    return shared


_CODES: dict[Code, Code] = {}
_CODES_LIMIT = 20_000


def _sop_reference(item: Dataset) -> SopReference | None:
    reference = _first(item, REFERENCED_SOP_SEQUENCE)
    if reference is None:
        return None
    sop_class = _text(reference, REFERENCED_SOP_CLASS_UID)
    sop_instance = _text(reference, REFERENCED_SOP_INSTANCE_UID)
    if sop_instance is None:
        return None
    return SopReference(
        sop_class_uid=sop_class or "",
        sop_instance_uid=sop_instance,
        frame_numbers=_ints(reference, REFERENCED_FRAME_NUMBER),
        segment_numbers=_ints(reference, REFERENCED_SEGMENT_NUMBER),
    )


def _content_item(item: Dataset, position: tuple[int, ...]) -> ContentItem:
    deadline.check()
    relationship = RelationshipType.parse(_text(item, RELATIONSHIP_TYPE))
    referenced = _get(item, REFERENCED_CONTENT_ITEM_IDENTIFIER)
    if referenced is not None and _get(item, VALUE_TYPE) is None:
        return ByReferenceItem(
            position=position,
            relationship=relationship,
            referenced_position=_ints(item, REFERENCED_CONTENT_ITEM_IDENTIFIER),
        )
    value_type = (_text(item, VALUE_TYPE) or "").upper()
    common: CommonFields = {
        "position": position,
        "relationship": relationship,
        "concept": _code(_first(item, CONCEPT_NAME_CODE_SEQUENCE)),
        "observation_uid": _text(item, OBSERVATION_UID),
        "observation_datetime": _text(item, OBSERVATION_DATETIME),
        "children": _children(item, position),
    }
    match value_type:
        case "CONTAINER":
            template = _first(item, CONTENT_TEMPLATE_SEQUENCE)
            return ContainerItem(
                **common,
                continuity=_text(item, CONTINUITY_OF_CONTENT),
                template_id=_text(template, TEMPLATE_IDENTIFIER) if template else None,
                mapping_resource=_text(template, MAPPING_RESOURCE) if template else None,
            )
        case "NUM":
            measured = _first(item, MEASURED_VALUE_SEQUENCE)
            float_values = _floats(measured, FLOATING_POINT_VALUE) if measured else ()
            return NumItem(
                **common,
                numeric_value=_text(measured, NUMERIC_VALUE) if measured else None,
                float_value=float_values[0] if float_values else None,
                unit=_code(_first(measured, MEASUREMENT_UNITS_CODE_SEQUENCE)) if measured else None,
                qualifier=_code(_first(item, NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE)),
            )
        case "CODE":
            return CodeItem(**common, value=_code(_first(item, CONCEPT_CODE_SEQUENCE)))
        case "TEXT":
            return TextItem(**common, value=_text(item, TEXT_VALUE) or "")
        case "UIDREF":
            return UidRefItem(**common, value=_text(item, UID) or "")
        case "PNAME":
            return PNameItem(**common, value=_person_name(_get(item, PERSON_NAME)))
        case "DATE":
            return DateItem(**common, value=_text(item, DATE) or "")
        case "TIME":
            return TimeItem(**common, value=_text(item, TIME) or "")
        case "DATETIME":
            return DateTimeItem(**common, value=_text(item, DATETIME) or "")
        case "SCOORD":
            return ScoordItem(
                **common,
                graphic_type=(_text(item, GRAPHIC_TYPE) or "").upper(),
                graphic_data=_floats(item, GRAPHIC_DATA),
            )
        case "SCOORD3D":
            return Scoord3DItem(
                **common,
                graphic_type=(_text(item, GRAPHIC_TYPE) or "").upper(),
                graphic_data=_floats(item, GRAPHIC_DATA),
                frame_of_reference_uid=_text(item, REFERENCED_FRAME_OF_REFERENCE_UID),
            )
        case "TCOORD":
            return TcoordItem(
                **common,
                temporal_range_type=(_text(item, TEMPORAL_RANGE_TYPE) or "").upper(),
                sample_positions=_ints(item, REFERENCED_SAMPLE_POSITIONS),
                time_offsets=_floats(item, REFERENCED_TIME_OFFSETS),
                datetimes=_texts(item, REFERENCED_DATETIME),
            )
        case "IMAGE":
            return ImageItem(**common, reference=_sop_reference(item))
        case "COMPOSITE":
            return CompositeItem(**common, reference=_sop_reference(item))
        case "WAVEFORM":
            reference_item = _first(item, REFERENCED_SOP_SEQUENCE)
            return WaveformItem(
                **common,
                reference=_sop_reference(item),
                channels=_ints(reference_item, REFERENCED_WAVEFORM_CHANNELS) if reference_item else (),
            )
        case "TABLE":
            return TableItem(**common)
        case _:
            return UnknownItem(**common, raw_value_type=value_type)


def _children(item: Dataset, position: tuple[int, ...]) -> tuple[ContentItem, ...]:
    return tuple(
        _content_item(child, (*position, index))
        for index, child in enumerate(_sequence(item, CONTENT_SEQUENCE), start=1)
    )


def _person_name(value) -> str:
    if value is None:
        return ""
    if isinstance(value, PersonName):
        return str(value).strip()
    if isinstance(value, MultiValue | list):
        return "\\".join(str(v) for v in value).strip()
    return str(value).strip()


class _DatasetSource:
    """A pydicom data set as the `HeaderSource` `header.build_document` reads the header from."""

    __slots__ = ("dataset",)

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def text(self, tag: int) -> str | None:
        return _text(self.dataset, tag)

    def texts(self, tag: int) -> tuple[str, ...]:
        return _texts(self.dataset, tag)

    def code(self, tag: int) -> Code | None:
        return _code(_first(self.dataset, tag))

    def first(self, tag: int) -> _DatasetSource | None:
        item = _first(self.dataset, tag)
        return None if item is None else _DatasetSource(item)

    def items(self, tag: int) -> list[_DatasetSource]:
        return [_DatasetSource(item) for item in _sequence(self.dataset, tag)]


def _evidence(dataset: Dataset) -> tuple[EvidenceInstance, ...]:
    instances = []
    for sequence_tag in (CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE, PERTINENT_OTHER_EVIDENCE_SEQUENCE):
        for study in _sequence(dataset, sequence_tag):
            study_uid = _text(study, STUDY_INSTANCE_UID)
            for series in _sequence(study, REFERENCED_SERIES_SEQUENCE):
                series_uid = _text(series, SERIES_INSTANCE_UID)
                for instance in _sequence(series, REFERENCED_SOP_SEQUENCE):
                    sop_instance = _text(instance, REFERENCED_SOP_INSTANCE_UID)
                    if sop_instance is None:
                        continue
                    instances.append(
                        EvidenceInstance(
                            study_instance_uid=study_uid,
                            series_instance_uid=series_uid,
                            sop_class_uid=_text(instance, REFERENCED_SOP_CLASS_UID) or "",
                            sop_instance_uid=sop_instance,
                        )
                    )
    return tuple(instances)


def _document(dataset: Dataset) -> SRDocument:
    source = _DatasetSource(dataset)
    sop_class_uid = sr_sop_class_uid(source)
    transfer_syntax = dataset.file_meta.get("TransferSyntaxUID") if dataset.file_meta else None
    check_transfer_syntax(str(transfer_syntax) if transfer_syntax else None)
    return build_document(
        source,
        sop_class_uid,
        children=lambda: _children(dataset, (1,)),
        evidence=lambda: _evidence(dataset),
    )
