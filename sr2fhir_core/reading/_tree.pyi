"""Types of the C content-tree builder (`_tree.c`); `fast_reader`'s `_children` and `_evidence` are its
specification."""

from ..content import ContentItem
from ..document import EvidenceInstance
from .fast_parser import RawDataSet
from .fast_values import Encodings

VERSION: int
"""Bumped with every change of behaviour: `fast_reader` uses a build of the version it is written against."""
KIND_CONTAINER: int
KIND_NUM: int
KIND_CODE: int
KIND_UID_VALUE: int
KIND_TEXT_VALUE: int
KIND_REFERENCE: int
KIND_PYTHON: int
TAG_NAMES: tuple[str, ...]
"""The tags the builder reads, by their names in `reading.tags`."""
FALLBACK_NAMES: tuple[str, ...]
"""The Python functions the builder calls where it leaves the work to Python."""

class Builder:
    """A builder configured once with `fast_reader`'s tables, caches, classes and Python fallbacks
    (`fast_reader._c_tree_tables`)."""

    def __init__(self, **tables: object) -> None: ...
    def children(
        self, content: list[RawDataSet], position: tuple[int, ...], encodings: Encodings, /
    ) -> tuple[ContentItem, ...]: ...
    def evidence(self, dataset: RawDataSet, encodings: Encodings, /) -> tuple[EvidenceInstance, ...]: ...
