"""The SR content tree, as the project's own typed values (PS3.3 C.17.3 "SR Document Content").

Everything above the reading layer sees only these classes, never a pydicom object, so a faster reader can
replace pydicom without touching the mapping. Values are kept as DICOM gives them (DS numbers as strings,
DA/TM/DT unparsed) so that nothing is lost or rounded before the mapping decides what to do with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, NamedTuple, TypedDict


class RelationshipType(StrEnum):
    """Relationship Type (0040,A010)."""

    CONTAINS = "CONTAINS"
    HAS_PROPERTIES = "HAS PROPERTIES"
    HAS_OBS_CONTEXT = "HAS OBS CONTEXT"
    HAS_ACQ_CONTEXT = "HAS ACQ CONTEXT"
    INFERRED_FROM = "INFERRED FROM"
    SELECTED_FROM = "SELECTED FROM"
    HAS_CONCEPT_MOD = "HAS CONCEPT MOD"
    UNKNOWN = "UNKNOWN"
    """Any other value: kept rather than failing the document, and never matched by a template rule."""

    @classmethod
    def parse(cls, value: str | None) -> RelationshipType | None:
        if value is None:
            return None
        try:
            return cls(value.strip().upper())
        except ValueError:
            return cls.UNKNOWN


class ValueType(StrEnum):
    """Value Type (0040,A040)."""

    CONTAINER = "CONTAINER"
    NUM = "NUM"
    CODE = "CODE"
    TEXT = "TEXT"
    UIDREF = "UIDREF"
    PNAME = "PNAME"
    DATE = "DATE"
    TIME = "TIME"
    DATETIME = "DATETIME"
    SCOORD = "SCOORD"
    SCOORD3D = "SCOORD3D"
    TCOORD = "TCOORD"
    IMAGE = "IMAGE"
    COMPOSITE = "COMPOSITE"
    WAVEFORM = "WAVEFORM"
    TABLE = "TABLE"
    BY_REFERENCE = "(by reference)"
    UNKNOWN = "(unknown)"


class Code(NamedTuple):
    """A coded concept: one item of a Code Sequence (PS3.3 Table 8.8-1).

    A named tuple rather than a dataclass: codes are the keys of every lookup and cache in the mapping,
    and a tuple hashes and compares in C.
    """

    value: str
    scheme: str
    meaning: str = ""
    scheme_version: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the concept; the meaning is only a display and often varies between producers."""
        return (self.scheme, self.value)

    def __str__(self) -> str:
        return f"({self.value}, {self.scheme}, {self.meaning!r})"


@dataclass(frozen=True, slots=True)
class SopReference:
    """One item of a Referenced SOP Sequence (0008,1199) of an IMAGE, COMPOSITE or WAVEFORM item."""

    sop_class_uid: str
    sop_instance_uid: str
    frame_numbers: tuple[int, ...] = ()
    segment_numbers: tuple[int, ...] = ()


# Content items are not frozen: a frozen dataclass's __init__ sets each field through object.__setattr__,
# which made construction ~3x slower (1.6 µs vs 0.5 µs for a NumItem), and readers build one per content
# item (4,602 in one radiomics report). Treat them as immutable all the same: nothing assigns to a field
# after a reader returns. They compare by value (eq=True, which the reader differential test relies on)
# and, being mutable, are not hashable; `Code` and `SopReference` stay frozen and hashable.
@dataclass(slots=True, kw_only=True, eq=True)
class ContentItem:
    """Attributes common to every content item (PS3.3 Table C.17-3/C.17-4)."""

    value_type: ClassVar[ValueType] = ValueType.UNKNOWN

    position: tuple[int, ...]
    """1-based path from the root, as in Referenced Content Item Identifier (0040,DB73): the root is (1,)."""
    relationship: RelationshipType | None
    concept: Code | None = None
    observation_uid: str | None = None
    observation_datetime: str | None = None
    children: tuple[ContentItem, ...] = ()

    @property
    def position_text(self) -> str:
        return ".".join(str(p) for p in self.position)


class CommonFields(TypedDict):
    """The `ContentItem` fields every Value Type has, as keyword arguments: what readers gather before they know
    which item class to build."""

    position: tuple[int, ...]
    relationship: RelationshipType | None
    concept: Code | None
    observation_uid: str | None
    observation_datetime: str | None
    children: tuple[ContentItem, ...]


@dataclass(slots=True, kw_only=True, eq=True)
class ContainerItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.CONTAINER
    continuity: str | None = None
    template_id: str | None = None
    mapping_resource: str | None = None


@dataclass(slots=True, kw_only=True, eq=True)
class NumItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.NUM
    numeric_value: str | None = None
    """Numeric Value (0040,A30A) exactly as written (DS); None when the Measured Value Sequence is empty."""
    float_value: float | None = None
    """Floating Point Value (0040,A161), when the producer gave one beside the DS."""
    unit: Code | None = None
    qualifier: Code | None = None
    """Numeric Value Qualifier (0040,A301): NaN, infinity, measurement failure (CID 42)."""


@dataclass(slots=True, kw_only=True, eq=True)
class CodeItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.CODE
    value: Code | None = None


@dataclass(slots=True, kw_only=True, eq=True)
class TextItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.TEXT
    value: str = ""


@dataclass(slots=True, kw_only=True, eq=True)
class UidRefItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.UIDREF
    value: str = ""


@dataclass(slots=True, kw_only=True, eq=True)
class PNameItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.PNAME
    value: str = ""


@dataclass(slots=True, kw_only=True, eq=True)
class DateItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.DATE
    value: str = ""


@dataclass(slots=True, kw_only=True, eq=True)
class TimeItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.TIME
    value: str = ""


@dataclass(slots=True, kw_only=True, eq=True)
class DateTimeItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.DATETIME
    value: str = ""


@dataclass(slots=True, kw_only=True, eq=True)
class ScoordItem(ContentItem):
    """2D spatial coordinates in the pixel space of the IMAGE item(s) it is SELECTED FROM."""

    value_type: ClassVar[ValueType] = ValueType.SCOORD
    graphic_type: str = ""
    graphic_data: tuple[float, ...] = ()


@dataclass(slots=True, kw_only=True, eq=True)
class Scoord3DItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.SCOORD3D
    graphic_type: str = ""
    graphic_data: tuple[float, ...] = ()
    frame_of_reference_uid: str | None = None


@dataclass(slots=True, kw_only=True, eq=True)
class TcoordItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.TCOORD
    temporal_range_type: str = ""
    sample_positions: tuple[int, ...] = ()
    time_offsets: tuple[float, ...] = ()
    datetimes: tuple[str, ...] = ()


@dataclass(slots=True, kw_only=True, eq=True)
class ImageItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.IMAGE
    reference: SopReference | None = None
    """None when the producer wrote an empty Referenced SOP Sequence (seen in dcmjs output)."""


@dataclass(slots=True, kw_only=True, eq=True)
class CompositeItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.COMPOSITE
    reference: SopReference | None = None


@dataclass(slots=True, kw_only=True, eq=True)
class WaveformItem(ContentItem):
    value_type: ClassVar[ValueType] = ValueType.WAVEFORM
    reference: SopReference | None = None
    channels: tuple[int, ...] = ()


@dataclass(slots=True, kw_only=True, eq=True)
class TableItem(ContentItem):
    """TABLE (added to DICOM in 2021): kept as an opaque node; no TID 1500 rule uses it."""

    value_type: ClassVar[ValueType] = ValueType.TABLE


@dataclass(slots=True, kw_only=True, eq=True)
class ByReferenceItem(ContentItem):
    """A by-reference relationship (PS3.3 C.17.3.2.5): points at another item instead of holding one."""

    value_type: ClassVar[ValueType] = ValueType.BY_REFERENCE
    referenced_position: tuple[int, ...] = ()


@dataclass(slots=True, kw_only=True, eq=True)
class UnknownItem(ContentItem):
    """A Value Type this project does not know; kept so positions and counts stay true."""

    value_type: ClassVar[ValueType] = ValueType.UNKNOWN
    raw_value_type: str = ""


ITEM_CLASSES: dict[str, type[ContentItem]] = {
    cls.value_type.value: cls
    for cls in (
        ContainerItem,
        NumItem,
        CodeItem,
        TextItem,
        UidRefItem,
        PNameItem,
        DateItem,
        TimeItem,
        DateTimeItem,
        ScoordItem,
        Scoord3DItem,
        TcoordItem,
        ImageItem,
        CompositeItem,
        WaveformItem,
        TableItem,
    )
}
"""Value Type (0040,A040) text → item class; readers use it to build the right node."""


def iter_tree(item: ContentItem):
    """Depth-first, document order, the item itself first."""
    stack = [item]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))


def count_items(item: ContentItem) -> int:
    """Items in the tree; the order does not matter, so no generator and no reversal (3x faster than
    counting `iter_tree`: every mapped document is counted for its record)."""
    count = 0
    stack = [item]
    while stack:
        count += 1
        stack.extend(stack.pop().children)
    return count
