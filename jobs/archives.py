"""The members of a zip or tar(.gz/.bz2/.xz) archive, read in a Python worker under limits that hold whatever the
archive claims about itself.

- **A member's bytes are counted as they inflate**, and reading stops one byte past `max_member_bytes`: a zip
  header that under-states a member's size cannot make the worker inflate it whole (a 1 MB zip can hold a
  "1,000-byte" member that inflates to 1 GiB).
- **The walk through an archive is bounded** by `max_archive_bytes` of inflated data, skipped members included (a
  10 MB zip can hold 40 zero-filled members of 250 MB each): past it, the archive's remaining members are not read.
- **Duplicate names** are legal in both formats; extracting the archive keeps the last member of a name (tar
  overwrites, and so do zip tools), so that one is the member `archive!name`, and each earlier one is recorded
  apart as `archive!name#<n>` (n: its 1-based occurrence) without being read. Every input's `source_path` is
  thus unique, which the tables' and the ledger's keys rely on.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import IO

DUPLICATE_SEPARATOR = "#"
_CHUNK = 1 << 20
"""Inflated bytes per read: `ZipExtFile.read()` of a whole member inflates all of it before it checks the size
its header declares, so members are read in bounded chunks."""
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError, OSError)
"""What inflating one zip member can raise: corrupt data, an unsupported method, an encrypted member."""


class Skipped(StrEnum):
    """Why a member was not read."""

    TOO_LARGE = "too_large"
    DUPLICATE = "duplicate_member"
    UNREADABLE = "corrupt_member"
    """A zip member that cannot be inflated (bad CRC, a size its header under-states, an unknown method, a
    password): the zip's other members are still read (its central directory names them)."""


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    """Its name in the archive; an earlier member of a repeated name gets `#<n>` appended."""
    data: bytes | None
    """Its bytes; None when it was not read (`skipped`)."""
    skipped: Skipped | None = None
    size: int = 0
    """The size its header declares."""
    error: str | None = None
    """For an unreadable member, the exception's type."""


class ArchiveTooLarge(Exception):
    """The archive inflates past `max_archive_bytes`; the members before it were given."""

    def __init__(self, members: int) -> None:
        super().__init__(f"inflates past input.max_archive_bytes after {members} members")
        self.members = members


def is_archive(head: bytes) -> bool:
    return (
        head.startswith((b"PK\x03\x04", b"PK\x05\x06"))  # zip (or an empty zip)
        or head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))  # gzip, bzip2, xz: compressed tar
        or head[257:262] == b"ustar"  # plain tar
    )


def members(content: bytes, *, max_member_bytes: int, max_archive_bytes: int) -> Iterator[Member]:
    """Each file member, in archive order. Raises `ArchiveTooLarge`, or the archive modules' errors for a corrupt
    or truncated archive (the members before the error were given)."""
    if content.startswith(b"PK"):
        yield from _zip_members(content, max_member_bytes, max_archive_bytes)
    else:
        yield from _tar_members(content, max_member_bytes, max_archive_bytes)


class _Budget:
    def __init__(self, limit: int) -> None:
        self.left, self.given = limit, 0

    def spend(self, inflated: int) -> None:
        self.left -= inflated
        if self.left < 0:
            raise ArchiveTooLarge(self.given)


def _occurrences(names: list[str]) -> Iterator[tuple[int, str, bool]]:
    """(index, name as recorded, whether it is the last of its name) of each name, in order."""
    total = Counter(names)
    seen: Counter[str] = Counter()
    for index, name in enumerate(names):
        seen[name] += 1
        last = seen[name] == total[name]
        yield index, name if last else f"{name}{DUPLICATE_SEPARATOR}{seen[name]}", last


def _zip_members(content: bytes, max_member: int, max_total: int) -> Iterator[Member]:
    budget = _Budget(max_total)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        for index, name, last in _occurrences([info.filename for info in infos]):
            info = infos[index]
            if not last:
                yield Member(name, None, Skipped.DUPLICATE, info.file_size)
            elif info.file_size > max_member:
                yield Member(name, None, Skipped.TOO_LARGE, info.file_size)
            else:
                try:
                    data = _read_bounded(archive.open(info), max_member, budget)
                except _MEMBER_ERRORS as exc:
                    yield Member(name, None, Skipped.UNREADABLE, info.file_size, type(exc).__name__)
                else:
                    skipped = Skipped.TOO_LARGE if data is None else None
                    yield Member(name, data, skipped, info.file_size)
            budget.given += 1


def _tar_members(content: bytes, max_member: int, max_total: int) -> Iterator[Member]:
    budget = _Budget(max_total)
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:*") as archive:
        # The headers first (a walk through the inflated stream, bounded like the reads), so that the last member
        # of a repeated name is known before any is given.
        files: list[tarfile.TarInfo] = []
        while (member := archive.next()) is not None:
            budget.spend(member.size if member.isfile() else 0)
            if member.isfile():
                files.append(member)
        budget.left = max_total  # the reads below are bounded by the sizes just walked
        for index, name, last in _occurrences([member.name for member in files]):
            member = files[index]
            if not last:
                yield Member(name, None, Skipped.DUPLICATE, member.size)
            elif member.size > max_member:
                yield Member(name, None, Skipped.TOO_LARGE, member.size)
            else:
                handle = archive.extractfile(member)
                data = b"" if handle is None else _read_bounded(handle, max_member, budget)
                yield Member(name, data, Skipped.TOO_LARGE if data is None else None, member.size)
            budget.given += 1


def _read_bounded(handle: IO[bytes], limit: int, budget: _Budget) -> bytes | None:
    """The stream's bytes, or None once more than `limit` have come out (nothing more is inflated)."""
    chunks: list[bytes] = []
    read = 0
    with handle:
        while chunk := handle.read(min(_CHUNK, limit + 1 - read)):
            read += len(chunk)
            budget.spend(len(chunk))
            if read > limit:
                return None
            chunks.append(chunk)
    return b"".join(chunks)
