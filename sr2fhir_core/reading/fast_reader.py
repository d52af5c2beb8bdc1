"""The fast reader: Part 10 bytes → `SRDocument` without pydicom's data model.

`fast_parser` walks the bytes once and keeps only the attributes in `tags.READ_VR`; this module builds the
same `SRDocument` the reference reader (`pydicom_reader`) builds, accessor for accessor, with the value
semantics of `fast_values`: the content tree here, the rest in `header` from the same accessors (`_RawSource`),
as for the reference reader. It raises `SRRejected` only for what the reference reader is known to reject
the same way (truncation where pydicom reads eagerly, not an SR document), and `FastReaderUnsupported`
for anything else unusual, which `reading.read_document` answers with the reference reader.

The content tree (`_children` and the builders) and the evidence list (`_evidence`) exist twice: here in
Python, which is their specification, and in C (`_tree.c`, built when a compiler is there), configured from
this module's tables and caches and calling its Python functions for everything but the traversal, the
cache hits and the construction of the items. `TREE_BUILDER` says which one runs; `SR2FHIR_PURE_PYTHON=1`
makes it the Python one. Both give equal documents and the same exceptions
(`tests/test_reader_differential.py`, `tests/test_tree.py`).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Literal, Protocol, TypeAlias

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
from . import fast_values as v
from . import tags as t
from .fast_parser import FastReaderUnsupported, RawDataSet, parse
from .header import build_document, sr_sop_class_uid
from .transfer_syntaxes import check_transfer_syntax

__all__ = ["TREE_BUILDER", "FastReaderUnsupported", "read_document", "using_tree_builder"]

Encodings = v.Encodings
_READ_VR = t.READ_VR


def read_document(data: bytes) -> SRDocument:
    """Parse Part 10 bytes into an `SRDocument`; `SRRejected` for bad input the reference reader rejects
    the same way, `FastReaderUnsupported` when the reference reader has to decide."""
    parsed = parse(data)
    dataset = parsed.dataset
    if not parsed.has_preamble and t.SOP_CLASS_UID not in dataset:
        raise SRRejected(RejectionReason.NOT_DICOM, "no DICOM preamble and no SOP Class UID")
    encodings = _encodings(dataset, v.DEFAULT_ENCODINGS)
    source = _RawSource(dataset, encodings)
    sop_class_uid = sr_sop_class_uid(source)
    check_transfer_syntax(parsed.transfer_syntax)
    return build_document(
        source,
        sop_class_uid,
        children=lambda: _root_children(dataset, encodings),
        evidence=lambda: _build_evidence(dataset, encodings),  # the builder in use when called
    )


# --- accessors, as in the reference reader ------------------------------------------------------------
#
# A parsed value is `bytes`, or `list[RawDataSet]` for a sequence; which one a tag holds follows from its VR,
# which the type cannot say. The accessors and the content-tree hot path pass values on unchecked (the
# `type: ignore[arg-type]` and kin below) rather than pay an isinstance() or cast() call per value.


def _encodings(dataset: RawDataSet, parent: Encodings) -> Encodings:
    """An item's own Specific Character Set wins over its parent's (as pydicom's Dataset._character_set)."""
    raw = dataset.get(t.SPECIFIC_CHARACTER_SET)
    if raw is None:
        return parent
    return v.encodings_for(raw)  # type: ignore[arg-type]


def _text_ascii(raw: bytes, encodings: Encodings) -> str | None:
    return v.ascii_text(raw)


def _text_coded(raw: bytes, encodings: Encodings) -> str | None:
    return v.coded_text(raw)


def _text_uid(raw: bytes, encodings: Encodings) -> str | None:
    return v.uid_text(raw)


def _text_url(raw: bytes, encodings: Encodings) -> str | None:
    return v.url_text(raw)


def _text_ds(raw: bytes, encodings: Encodings) -> str | None:
    return v.ds_text(raw)


def _text_is(raw: bytes, encodings: Encodings) -> str | None:
    return v.is_text(raw)


def _text_pn(raw: bytes, encodings: Encodings) -> str | None:
    return v.person_name(raw, encodings) or None


_TEXT_BY_VR = {
    b"AS": _text_ascii,
    b"CS": _text_coded,
    b"DA": _text_ascii,
    b"DT": _text_ascii,
    b"TM": _text_ascii,
    b"UI": _text_uid,
    b"UR": _text_url,
    b"SH": v.multi_text,
    b"LO": v.multi_text,
    b"UC": v.multi_text,
    b"ST": v.single_text,
    b"LT": v.single_text,
    b"UT": v.single_text,
    b"DS": _text_ds,
    b"IS": _text_is,
    b"PN": _text_pn,
}
"""VR → `_text` of the reference reader for that VR (value converter, then join and strip)."""


_TEXT_BY_TAG = {tag: _TEXT_BY_VR[vr] for tag, vr in _READ_VR.items() if vr in _TEXT_BY_VR}


def _text(dataset: RawDataSet, tag: int, encodings: Encodings) -> str | None:
    raw = dataset.get(tag)
    if raw is None:
        return None
    return _TEXT_BY_TAG[tag](raw, encodings)  # type: ignore[arg-type]


def _texts(dataset: RawDataSet, tag: int, encodings: Encodings) -> tuple[str, ...]:
    raw = dataset.get(tag)
    if raw is None:
        return ()
    if _READ_VR[tag] in (b"CS", b"DT"):
        return v.ascii_texts(raw)  # type: ignore[arg-type]
    return v.multi_texts(raw, encodings)  # type: ignore[arg-type]


def _ints(dataset: RawDataSet, tag: int) -> tuple[int, ...]:
    raw = dataset.get(tag)
    if not raw:
        return ()
    vr = _READ_VR[tag]
    if vr == b"IS":
        return v.is_ints(raw)  # type: ignore[arg-type]
    return v.binary_numbers(raw, vr)  # type: ignore[arg-type, return-value]


def _floats(dataset: RawDataSet, tag: int) -> tuple[float, ...]:
    raw = dataset.get(tag)
    if not raw:
        return ()
    vr = _READ_VR[tag]
    if vr == b"DS":
        return v.ds_floats(raw)  # type: ignore[arg-type]
    return v.binary_numbers(raw, vr)  # type: ignore[arg-type]


def _person_name(dataset: RawDataSet, tag: int, encodings: Encodings) -> str:
    """The reference reader's `_person_name`: "" when absent."""
    raw = dataset.get(tag)
    if raw is None:
        return ""
    return v.person_name(raw, encodings)  # type: ignore[arg-type]


def _sequence(dataset: RawDataSet, tag: int) -> list[RawDataSet]:
    return dataset.get(tag) or []  # type: ignore[return-value]


def _first(dataset: RawDataSet, tag: int) -> RawDataSet | None:
    items = dataset.get(tag)
    return items[0] if items else None  # type: ignore[return-value]


# --- content tree -------------------------------------------------------------------------------------
#
# The hot path: one call of `_content_item` per content item (thousands in a radiomics report), so the
# accessors above are inlined here (`item.get` and the value function the accessor would pick for the
# tag's VR), and each builder gets the common attributes as arguments instead of a dict to unpack. Values
# are evaluated in the reference reader's order, so that the first value that fails fails in both.


_CODE_CACHE: dict[tuple, Code | None] = {}
_CODE_CACHE_LIMIT = 20_000
_CODE_TAGS = (
    t.CODE_VALUE,
    t.CODING_SCHEME_DESIGNATOR,
    t.CODE_MEANING,
    t.CODING_SCHEME_VERSION,
    t.LONG_CODE_VALUE,
    t.URN_CODE_VALUE,
    t.SPECIFIC_CHARACTER_SET,
)
"""Every attribute of a Code Sequence item that `_decode_code` reads: together, the item's cache key."""
_CODE_VALUE = t.CODE_VALUE
_CODING_SCHEME_DESIGNATOR = t.CODING_SCHEME_DESIGNATOR
_CODE_MEANING = t.CODE_MEANING


def _code(item: RawDataSet, encodings: Encodings) -> Code | None:
    """A Code Sequence item. Reports repeat the same few codes (units, concept names) thousands of times,
    and `Code` is immutable, so one instance per distinct raw encoding is shared. Most items hold exactly
    Code Value, Coding Scheme Designator and Code Meaning: their key is those three values (a shorter
    tuple, so it never equals the full key of an item with other attributes)."""
    if len(item) == 3:
        value = item.get(_CODE_VALUE)
        designator = item.get(_CODING_SCHEME_DESIGNATOR)
        meaning = item.get(_CODE_MEANING)
        if value is None or designator is None or meaning is None:
            key: tuple = (encodings, *map(item.get, _CODE_TAGS))
        else:
            key = (encodings, value, designator, meaning)
    else:
        key = (encodings, *map(item.get, _CODE_TAGS))
    try:
        return _CODE_CACHE[key]
    except KeyError:
        pass
    code = _decode_code(item, encodings)
    if len(_CODE_CACHE) >= _CODE_CACHE_LIMIT:
        _CODE_CACHE.clear()
    _CODE_CACHE[key] = code
    return code


def _decode_code(item: RawDataSet, encodings: Encodings) -> Code | None:
    encodings = _encodings(item, encodings)
    value = (
        _text(item, t.CODE_VALUE, encodings)
        or _text(item, t.LONG_CODE_VALUE, encodings)
        or _text(item, t.URN_CODE_VALUE, encodings)
    )
    scheme = _text(item, t.CODING_SCHEME_DESIGNATOR, encodings)
    if value is None:
        return None
    return Code(
        value=value,
        scheme=scheme or "",
        meaning=_text(item, t.CODE_MEANING, encodings) or "",
        scheme_version=_text(item, t.CODING_SCHEME_VERSION, encodings),
    )


def _sop_reference(item: RawDataSet, encodings: Encodings) -> SopReference | None:
    reference = _first(item, t.REFERENCED_SOP_SEQUENCE)
    if reference is None:
        return None
    encodings = _encodings(reference, encodings)
    sop_class = _text(reference, t.REFERENCED_SOP_CLASS_UID, encodings)
    sop_instance = _text(reference, t.REFERENCED_SOP_INSTANCE_UID, encodings)
    if sop_instance is None:
        return None
    return SopReference(
        sop_class_uid=sop_class or "",
        sop_instance_uid=sop_instance,
        frame_numbers=_ints(reference, t.REFERENCED_FRAME_NUMBER),
        segment_numbers=_ints(reference, t.REFERENCED_SEGMENT_NUMBER),
    )


# Builders: (item, encodings, position, relationship, concept, observation_uid, observation_datetime,
# children) → the item of one Value Type.

Position = tuple[int, ...]
Children = tuple[ContentItem, ...]


def _container(
    item: RawDataSet,
    encodings: Encodings,
    position: Position,
    relationship: RelationshipType | None,
    concept: Code | None,
    observation_uid: str | None,
    observation_datetime: str | None,
    children: Children,
) -> ContentItem:
    template = _first(item, t.CONTENT_TEMPLATE_SEQUENCE)
    template_encodings = _encodings(template, encodings) if template else encodings
    return ContainerItem(
        position=position,
        relationship=relationship,
        concept=concept,
        observation_uid=observation_uid,
        observation_datetime=observation_datetime,
        children=children,
        continuity=_text(item, t.CONTINUITY_OF_CONTENT, encodings),
        template_id=_text(template, t.TEMPLATE_IDENTIFIER, template_encodings) if template else None,
        mapping_resource=_text(template, t.MAPPING_RESOURCE, template_encodings) if template else None,
    )


_MEASURED_VALUE_SEQUENCE = t.MEASURED_VALUE_SEQUENCE
_NUMERIC_VALUE = t.NUMERIC_VALUE
_FLOATING_POINT_VALUE = t.FLOATING_POINT_VALUE
_MEASUREMENT_UNITS_CODE_SEQUENCE = t.MEASUREMENT_UNITS_CODE_SEQUENCE
_NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE = t.NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE
_SPECIFIC_CHARACTER_SET = t.SPECIFIC_CHARACTER_SET


def _num(
    item: RawDataSet,
    encodings: Encodings,
    position: Position,
    relationship: RelationshipType | None,
    concept: Code | None,
    observation_uid: str | None,
    observation_datetime: str | None,
    children: Children,
) -> ContentItem:
    measured_values = item.get(_MEASURED_VALUE_SEQUENCE)
    measured: RawDataSet | None = measured_values[0] if measured_values else None  # type: ignore[assignment]
    qualifiers = item.get(_NUMERIC_VALUE_QUALIFIER_CODE_SEQUENCE)
    if measured:
        charset = measured.get(_SPECIFIC_CHARACTER_SET)
        measured_encodings = encodings if charset is None else v.encodings_for(charset)  # type: ignore[arg-type]
        numeric_raw = measured.get(_NUMERIC_VALUE)
        float_raw = measured.get(_FLOATING_POINT_VALUE)
        units = measured.get(_MEASUREMENT_UNITS_CODE_SEQUENCE)
        return NumItem(
            position=position,
            relationship=relationship,
            concept=concept,
            observation_uid=observation_uid,
            observation_datetime=observation_datetime,
            children=children,
            numeric_value=None if numeric_raw is None else v.ds_text(numeric_raw),  # type: ignore[arg-type]
            float_value=v.first_float64(float_raw) if float_raw else None,  # type: ignore[arg-type]
            unit=_code(units[0], measured_encodings) if units else None,  # type: ignore[arg-type]
            qualifier=_code(qualifiers[0], encodings) if qualifiers else None,  # type: ignore[arg-type]
        )
    return NumItem(
        position=position,
        relationship=relationship,
        concept=concept,
        observation_uid=observation_uid,
        observation_datetime=observation_datetime,
        children=children,
        qualifier=_code(qualifiers[0], encodings) if qualifiers else None,  # type: ignore[arg-type]
    )


_CONCEPT_CODE_SEQUENCE = t.CONCEPT_CODE_SEQUENCE


def _code_item(
    item: RawDataSet,
    encodings: Encodings,
    position: Position,
    relationship: RelationshipType | None,
    concept: Code | None,
    observation_uid: str | None,
    observation_datetime: str | None,
    children: Children,
) -> ContentItem:
    values = item.get(_CONCEPT_CODE_SEQUENCE)
    return CodeItem(
        position=position,
        relationship=relationship,
        concept=concept,
        observation_uid=observation_uid,
        observation_datetime=observation_datetime,
        children=children,
        value=_code(values[0], encodings) if values else None,  # type: ignore[arg-type]
    )


def _value_item(cls: type[ContentItem], tag: int):
    """TEXT, UIDREF, DATE, TIME, DATETIME: one value attribute, "" when absent."""
    text = _TEXT_BY_TAG[tag]

    def build(
        item: RawDataSet,
        encodings: Encodings,
        position: Position,
        relationship: RelationshipType | None,
        concept: Code | None,
        observation_uid: str | None,
        observation_datetime: str | None,
        children: Children,
    ) -> ContentItem:
        raw = item.get(tag)
        return cls(
            position=position,  # type: ignore[call-arg]
            relationship=relationship,
            concept=concept,
            observation_uid=observation_uid,
            observation_datetime=observation_datetime,
            children=children,
            value=(None if raw is None else text(raw, encodings)) or "",  # type: ignore[arg-type]
        )

    return build


def _reference_item(cls: type[ContentItem]):
    """IMAGE, COMPOSITE: the first item of the Referenced SOP Sequence."""

    def build(
        item: RawDataSet,
        encodings: Encodings,
        position: Position,
        relationship: RelationshipType | None,
        concept: Code | None,
        observation_uid: str | None,
        observation_datetime: str | None,
        children: Children,
    ) -> ContentItem:
        return cls(
            position=position,  # type: ignore[call-arg]
            relationship=relationship,
            concept=concept,
            observation_uid=observation_uid,
            observation_datetime=observation_datetime,
            children=children,
            reference=_sop_reference(item, encodings),
        )

    return build


def _rare_item(
    build_values: Callable[[RawDataSet, CommonFields, Encodings], ContentItem],
) -> Callable[..., ContentItem]:
    """Value Types no TID 1500 report carries in bulk: built from the common attributes as a dict."""

    def build(
        item: RawDataSet,
        encodings: Encodings,
        position: Position,
        relationship: RelationshipType | None,
        concept: Code | None,
        observation_uid: str | None,
        observation_datetime: str | None,
        children: Children,
    ) -> ContentItem:
        common: CommonFields = {
            "position": position,
            "relationship": relationship,
            "concept": concept,
            "observation_uid": observation_uid,
            "observation_datetime": observation_datetime,
            "children": children,
        }
        return build_values(item, common, encodings)

    return build


@_rare_item
def _pname(item: RawDataSet, common: CommonFields, encodings: Encodings) -> ContentItem:
    return PNameItem(**common, value=_person_name(item, t.PERSON_NAME, encodings))


@_rare_item
def _scoord(item: RawDataSet, common: CommonFields, encodings: Encodings) -> ContentItem:
    return ScoordItem(
        **common,
        graphic_type=(_text(item, t.GRAPHIC_TYPE, encodings) or "").upper(),
        graphic_data=_floats(item, t.GRAPHIC_DATA),
    )


@_rare_item
def _scoord3d(item: RawDataSet, common: CommonFields, encodings: Encodings) -> ContentItem:
    return Scoord3DItem(
        **common,
        graphic_type=(_text(item, t.GRAPHIC_TYPE, encodings) or "").upper(),
        graphic_data=_floats(item, t.GRAPHIC_DATA),
        frame_of_reference_uid=_text(item, t.REFERENCED_FRAME_OF_REFERENCE_UID, encodings),
    )


@_rare_item
def _tcoord(item: RawDataSet, common: CommonFields, encodings: Encodings) -> ContentItem:
    return TcoordItem(
        **common,
        temporal_range_type=(_text(item, t.TEMPORAL_RANGE_TYPE, encodings) or "").upper(),
        sample_positions=_ints(item, t.REFERENCED_SAMPLE_POSITIONS),
        time_offsets=_floats(item, t.REFERENCED_TIME_OFFSETS),
        datetimes=_texts(item, t.REFERENCED_DATETIME, encodings),
    )


@_rare_item
def _waveform(item: RawDataSet, common: CommonFields, encodings: Encodings) -> ContentItem:
    reference_item = _first(item, t.REFERENCED_SOP_SEQUENCE)
    return WaveformItem(
        **common,
        reference=_sop_reference(item, encodings),
        channels=_ints(reference_item, t.REFERENCED_WAVEFORM_CHANNELS) if reference_item else (),
    )


@_rare_item
def _table(item: RawDataSet, common: CommonFields, encodings: Encodings) -> ContentItem:
    return TableItem(**common)


_BUILDERS = {
    "CONTAINER": _container,
    "NUM": _num,
    "CODE": _code_item,
    "TEXT": _value_item(TextItem, t.TEXT_VALUE),
    "UIDREF": _value_item(UidRefItem, t.UID),
    "PNAME": _pname,
    "DATE": _value_item(DateItem, t.DATE),
    "TIME": _value_item(TimeItem, t.TIME),
    "DATETIME": _value_item(DateTimeItem, t.DATETIME),
    "SCOORD": _scoord,
    "SCOORD3D": _scoord3d,
    "TCOORD": _tcoord,
    "IMAGE": _reference_item(ImageItem),
    "COMPOSITE": _reference_item(CompositeItem),
    "WAVEFORM": _waveform,
    "TABLE": _table,
}
"""Value Type → builder of the item."""


def _padded(text: str) -> bytes:
    """A CS value as written: even length, space padded (PS3.5 6.2)."""
    return (text + " " * (len(text) % 2)).encode()


_RELATIONSHIPS = {
    **{relationship.value.encode(): relationship for relationship in RelationshipType},
    **{_padded(relationship.value): relationship for relationship in RelationshipType},
}
"""Relationship Type as written → the enum, without decoding; anything else goes through `parse`."""
_VALUE_TYPES = {
    **{value_type.encode(): value_type for value_type in _BUILDERS},
    **{_padded(value_type): value_type for value_type in _BUILDERS},
}
"""Value Type as written → the text the reference reader compares, without decoding."""

_RELATIONSHIP_TYPE = t.RELATIONSHIP_TYPE
_VALUE_TYPE = t.VALUE_TYPE
_REFERENCED_CONTENT_ITEM_IDENTIFIER = t.REFERENCED_CONTENT_ITEM_IDENTIFIER
_CONCEPT_NAME_CODE_SEQUENCE = t.CONCEPT_NAME_CODE_SEQUENCE
_OBSERVATION_UID = t.OBSERVATION_UID
_OBSERVATION_DATETIME = t.OBSERVATION_DATETIME
_CONTENT_SEQUENCE = t.CONTENT_SEQUENCE
_uid_text = v.uid_text
_ascii_text = v.ascii_text
_encodings_for = v.encodings_for


def _relationship_fallback(raw: bytes) -> RelationshipType | None:
    """A Relationship Type not written as one of `_RELATIONSHIPS`' keys."""
    return RelationshipType.parse(_ascii_text(raw))


def _value_type_fallback(raw: bytes | None) -> str:
    """The Value Type text the reference reader compares, for a value not written as one of `_VALUE_TYPES`'."""
    return (v.coded_text(raw) or "").upper() if raw is not None else ""


def _content_item(item: RawDataSet, position: Position, parent: Encodings) -> ContentItem:
    get = item.get
    charset = get(_SPECIFIC_CHARACTER_SET)
    # An item's own Specific Character Set wins over its parent's (as pydicom's Dataset._character_set).
    encodings = parent if charset is None else _encodings_for(charset)  # type: ignore[arg-type]
    relationship_raw = get(_RELATIONSHIP_TYPE)
    relationship = _RELATIONSHIPS.get(relationship_raw)  # type: ignore[arg-type]
    if relationship is None and relationship_raw is not None:
        relationship = _relationship_fallback(relationship_raw)  # type: ignore[arg-type]
    value_type_raw = get(_VALUE_TYPE)
    # The reference reader tests the raw values: an empty UL has no value, an empty CS has "".
    if value_type_raw is None and get(_REFERENCED_CONTENT_ITEM_IDENTIFIER):
        return ByReferenceItem(
            position=position,
            relationship=relationship,
            referenced_position=_ints(item, t.REFERENCED_CONTENT_ITEM_IDENTIFIER),
        )
    value_type = _VALUE_TYPES.get(value_type_raw)  # type: ignore[arg-type]
    if value_type is None:
        value_type = _value_type_fallback(value_type_raw)  # type: ignore[arg-type]
    concepts = get(_CONCEPT_NAME_CODE_SEQUENCE)
    concept = _code(concepts[0], encodings) if concepts else None  # type: ignore[arg-type]
    raw = get(_OBSERVATION_UID)
    observation_uid = None if raw is None else _uid_text(raw)  # type: ignore[arg-type]
    raw = get(_OBSERVATION_DATETIME)
    observation_datetime = None if raw is None else _ascii_text(raw)  # type: ignore[arg-type]
    content = get(_CONTENT_SEQUENCE)
    children = _children(content, position, encodings) if content else ()  # type: ignore[arg-type]
    builder = _BUILDERS.get(value_type)
    if builder is None:
        return UnknownItem(
            position=position,
            relationship=relationship,
            concept=concept,
            observation_uid=observation_uid,
            observation_datetime=observation_datetime,
            children=children,
            raw_value_type=value_type,
        )
    return builder(item, encodings, position, relationship, concept, observation_uid, observation_datetime, children)


def _children(content: list[RawDataSet], position: Position, encodings: Encodings) -> Children:
    build = _content_item
    return tuple([build(child, (*position, index), encodings) for index, child in enumerate(content, start=1)])


# --- header -------------------------------------------------------------------------------------------


class _RawSource:
    """A raw data set and the character set it is read in, as the `HeaderSource` `header.build_document`
    reads the header from (once per document: the content tree does not go through it)."""

    __slots__ = ("dataset", "encodings")

    def __init__(self, dataset: RawDataSet, encodings: Encodings) -> None:
        self.dataset = dataset
        self.encodings = encodings

    def text(self, tag: int) -> str | None:
        raw = self.dataset.get(tag)  # `_text`, inlined: the header reads some 40 values per document
        return None if raw is None else _TEXT_BY_TAG[tag](raw, self.encodings)  # type: ignore[arg-type]

    def texts(self, tag: int) -> tuple[str, ...]:
        return _texts(self.dataset, tag, self.encodings)

    def code(self, tag: int) -> Code | None:
        items = self.dataset.get(tag)
        return _code(items[0], self.encodings) if items else None  # type: ignore[arg-type]

    def first(self, tag: int) -> _RawSource | None:
        item = _first(self.dataset, tag)
        return None if item is None else _RawSource(item, _encodings(item, self.encodings))

    def items(self, tag: int) -> list[_RawSource]:
        return [_RawSource(item, _encodings(item, self.encodings)) for item in _sequence(self.dataset, tag)]


# --- what the header leaves to this reader: the evidence list and the root's content items ----------------


_EVIDENCE_SEQUENCES = (t.CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE, t.PERTINENT_OTHER_EVIDENCE_SEQUENCE)


def _evidence(dataset: RawDataSet, encodings: Encodings) -> tuple[EvidenceInstance, ...]:
    instances = []
    for sequence_tag in _EVIDENCE_SEQUENCES:
        for study in _sequence(dataset, sequence_tag):
            study_encodings = _encodings(study, encodings)
            study_uid = _text(study, t.STUDY_INSTANCE_UID, study_encodings)
            for series in _sequence(study, t.REFERENCED_SERIES_SEQUENCE):
                series_encodings = _encodings(series, study_encodings)
                series_uid = _text(series, t.SERIES_INSTANCE_UID, series_encodings)
                for instance in _sequence(series, t.REFERENCED_SOP_SEQUENCE):
                    instance_encodings = _encodings(instance, series_encodings)
                    sop_instance = _text(instance, t.REFERENCED_SOP_INSTANCE_UID, instance_encodings)
                    if sop_instance is None:
                        continue
                    instances.append(
                        EvidenceInstance(
                            study_instance_uid=study_uid,
                            series_instance_uid=series_uid,
                            sop_class_uid=(_text(instance, t.REFERENCED_SOP_CLASS_UID, instance_encodings) or ""),
                            sop_instance_uid=sop_instance,
                        )
                    )
    return tuple(instances)


def _root_children(dataset: RawDataSet, encodings: Encodings) -> Children:
    content = dataset.get(t.CONTENT_SEQUENCE)
    if not content:
        return ()
    # The C builder takes the list the scanner makes; anything else (never seen) is the Python one's to fail on.
    build = _build_children if type(content) is list else _children
    return build(content, (1,), encodings)  # type: ignore[arg-type]


# --- which content-tree builder runs ------------------------------------------------------------------
#
# `_children` above, with `_content_item` and the builders, is the specification; `_tree.c` builds the same
# items from the same raw data sets in C. It is configured from the tables and caches here and in
# `fast_values`, and calls the Python functions for everything it does not do itself, so each value's
# semantics stay in one place.

TreeBuilderName: TypeAlias = Literal["c", "python"]
_C_TREE_VERSION = 1
"""The `_tree.VERSION` this module is written against: a stale in-place build is not used."""


class _TreeBuilder(Protocol):
    """What `_tree.Builder` offers: `_children` and `_evidence`, in C."""

    def children(self, content: list[RawDataSet], position: Position, encodings: Encodings, /) -> Children: ...

    def evidence(self, dataset: RawDataSet, encodings: Encodings, /) -> tuple[EvidenceInstance, ...]: ...


def _load_c_tree() -> _TreeBuilder | None:
    try:
        from . import _tree
    except ImportError:
        return None  # not built (no compiler at install time): `_children` does the same work
    if getattr(_tree, "VERSION", None) != _C_TREE_VERSION:
        warnings.warn(
            "sr2fhir_core.reading._tree is a stale build; using the Python content-tree builder "
            "(reinstall to rebuild it)",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    builder: _TreeBuilder = _tree.Builder(**_c_tree_tables(_tree))
    return builder


def _c_tree_tables(_tree: ModuleType) -> dict[str, object]:
    """What `_tree.Builder` is configured with: this module's tables, caches, classes and Python fallbacks."""
    # The C builder reads these values as the Python builders do, with the cached functions below.
    assert all(_TEXT_BY_TAG[tag] is _text_coded for tag in _C_TREE_CODED_TAGS)
    assert all(_TEXT_BY_TAG[tag] is _text_uid for tag in _C_TREE_UID_TAGS)
    kinds: dict[str, tuple[int, type | None, int | None, Callable[..., object] | None]] = {
        "CONTAINER": (_tree.KIND_CONTAINER, ContainerItem, None, None),
        "NUM": (_tree.KIND_NUM, NumItem, None, None),
        "CODE": (_tree.KIND_CODE, CodeItem, None, None),
        "UIDREF": (_tree.KIND_UID_VALUE, UidRefItem, t.UID, None),
        **{
            value_type: (_tree.KIND_TEXT_VALUE, cls, tag, _TEXT_BY_TAG[tag])
            for value_type, cls, tag in (
                ("TEXT", TextItem, t.TEXT_VALUE),
                ("DATE", DateItem, t.DATE),
                ("TIME", TimeItem, t.TIME),
                ("DATETIME", DateTimeItem, t.DATETIME),
            )
        },
        "IMAGE": (_tree.KIND_REFERENCE, ImageItem, None, None),
        "COMPOSITE": (_tree.KIND_REFERENCE, CompositeItem, None, None),
    }
    kinds.update(
        (value_type, (_tree.KIND_PYTHON, None, None, builder))
        for value_type, builder in _BUILDERS.items()
        if value_type not in kinds
    )
    return dict(
        tags={name: getattr(t, name) for name in _tree.TAG_NAMES},
        fallbacks={
            "content_item": _content_item,
            "encodings_for": v.encodings_for,
            "relationship": _relationship_fallback,
            "value_type": _value_type_fallback,
            "code": _code,
            "uid_text": v.uid_text,
            "coded_text": v.coded_text,
            "ascii_text": v.ascii_text,
            "ds_text": v.ds_text,
            "first_float64": v.first_float64,
            "ints": _ints,
            "evidence": _evidence,
        },
        code_tags=_CODE_TAGS,
        code_cache=_CODE_CACHE,
        uid_cache=v._UID_CACHE,
        ascii_cache=v._ASCII_CACHE,
        relationships=_RELATIONSHIPS,
        value_types=_VALUE_TYPES,
        kinds=kinds,
        by_reference=ByReferenceItem,
        unknown=UnknownItem,
        sop_reference=SopReference,
        evidence_instance=EvidenceInstance,
        layouts={cls: _layout(cls) for cls in (*_C_TREE_CLASSES, *(spec[1] for spec in kinds.values() if spec[1]))},
        required=dataclasses.MISSING,
    )


_C_TREE_CLASSES = (ByReferenceItem, UnknownItem, SopReference, EvidenceInstance)


def _layout(cls: type) -> tuple[tuple[str, object], ...]:
    """A class's fields in order with their defaults, for the C builder to set its slots as `__init__` would.
    Only plain slotted dataclasses qualify: every slot a field with a plain default (or none), nothing run
    after the fields are set."""
    fields = dataclasses.fields(cls)
    slots = {slot for klass in cls.__mro__ for slot in getattr(klass, "__slots__", ())}
    if (
        hasattr(cls, "__post_init__")
        or slots != {field.name for field in fields}
        or any(not field.init or field.default_factory is not dataclasses.MISSING for field in fields)
    ):
        raise TypeError(f"{cls.__name__} is not a plain slotted dataclass: the C builder cannot set its fields")
    return tuple((field.name, field.default) for field in fields)


_C_TREE_CODED_TAGS = (t.CONTINUITY_OF_CONTENT, t.TEMPLATE_IDENTIFIER, t.MAPPING_RESOURCE)
_C_TREE_UID_TAGS = (
    t.OBSERVATION_UID,
    t.UID,
    t.REFERENCED_SOP_CLASS_UID,
    t.REFERENCED_SOP_INSTANCE_UID,
    t.STUDY_INSTANCE_UID,
    t.SERIES_INSTANCE_UID,
)
_C_TREE = _load_c_tree()
C_TREE_BUILDER_AVAILABLE = _C_TREE is not None
"""Whether the C content-tree builder is built and loadable (even when the environment asks for Python)."""
_PURE_PYTHON = os.environ.get("SR2FHIR_PURE_PYTHON", "") not in ("", "0")
TREE_BUILDER: TreeBuilderName = "c" if _C_TREE is not None and not _PURE_PYTHON else "python"
"""The content-tree builder `read_document` uses (content items and the evidence list): "c" when the extension
is built, unless SR2FHIR_PURE_PYTHON is set (not to 0)."""
_build_children: Callable[[list[RawDataSet], Position, Encodings], Children] = _children
_build_evidence: Callable[[RawDataSet, Encodings], tuple[EvidenceInstance, ...]] = _evidence
if TREE_BUILDER == "c" and _C_TREE is not None:
    _build_children, _build_evidence = _C_TREE.children, _C_TREE.evidence


@contextmanager
def using_tree_builder(name: TreeBuilderName) -> Iterator[None]:
    """Build content trees with the named builder inside the block (for tests and benchmarks; not thread
    safe)."""
    global _build_children, _build_evidence
    if name == "c":
        if _C_TREE is None:
            raise RuntimeError("the C content-tree builder is not built")
        chosen = (_C_TREE.children, _C_TREE.evidence)
    elif name == "python":
        chosen = (_children, _evidence)
    else:
        raise ValueError(f"unknown tree builder {name!r}")
    previous = (_build_children, _build_evidence)
    _build_children, _build_evidence = chosen
    try:
        yield
    finally:
        _build_children, _build_evidence = previous
