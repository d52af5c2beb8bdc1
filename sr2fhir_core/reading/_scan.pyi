"""Types of the C element walker (`_scan.c`); `fast_parser`'s Python walker is its specification."""

from collections.abc import Callable, Collection, Mapping

from .fast_parser import RawDataSet

VERSION: int
"""Bumped with every change of behaviour: `fast_parser` uses a build of the version it is written against."""

class Scanner:
    """A walker configured once with `fast_parser`'s tables and signals."""

    def __init__(
        self,
        *,
        read_vr: Mapping[int, object],
        header_sizes: Mapping[int, int],
        encapsulated_vrs: Collection[int],
        shared_item_sequences: Collection[int],
        unsupported: type[Exception],
        corrupt: Callable[..., Exception],
        is_sequence_tag: Callable[[int, bytes, int, int], bool],
        check_charset: Callable[[bytes, bool], None],
        max_depth: int,
    ) -> None: ...
    def scan(self, data: bytes | bytearray | memoryview, pos: int, explicit: bool, /) -> RawDataSet:
        """The top-level data set of `data` from byte `pos`, in explicit or implicit VR little endian."""
