"""Archive members under limits that hold whatever an archive claims (jobs/archives.py): duplicate names, members
whose headers under-state what they inflate to, archives that inflate past their budget. Every archive is built
here; a child process with an address-space limit shows that memory stays bounded."""

from __future__ import annotations

import io
import multiprocessing
import resource
import struct
import tarfile
import warnings
import zipfile

import pytest

from jobs.archives import ArchiveTooLarge, Member, Skipped, members

MB = 1 << 20


def _zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": legal, and what the test is about
        with zipfile.ZipFile(buffer, "w", method) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def _tar(entries: list[tuple[str, bytes]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _all(content: bytes, member: int = 10 * MB, total: int = 100 * MB) -> list[Member]:
    return list(members(content, max_member_bytes=member, max_archive_bytes=total))


@pytest.mark.parametrize("build", [_zip, _tar, lambda e: _tar(e, "w")], ids=["zip", "tar.gz", "tar"])
def test_the_last_member_of_a_name_is_read_and_earlier_ones_are_named_apart(build) -> None:
    found = _all(build([("a.dcm", b"first"), ("b.dcm", b"other"), ("a.dcm", b"second"), ("a.dcm", b"third")]))
    assert [(m.name, m.data, m.skipped) for m in found] == [
        ("a.dcm#1", None, Skipped.DUPLICATE),
        ("b.dcm", b"other", None),
        ("a.dcm#2", None, Skipped.DUPLICATE),
        ("a.dcm", b"third", None),
    ]
    assert len({m.name for m in found}) == len(found)


@pytest.mark.parametrize("build", [_zip, _tar], ids=["zip", "tar.gz"])
def test_a_member_over_the_limit_is_not_read(build) -> None:
    found = _all(build([("big", b"\0" * (2 * MB)), ("small", b"x")]), member=MB)
    assert [(m.name, m.data, m.skipped) for m in found] == [("big", None, Skipped.TOO_LARGE), ("small", b"x", None)]


def _understated_zip(real: int, declared: int) -> bytes:
    """A zip whose one member inflates to `real` bytes while both its headers say `declared`."""
    data = bytearray(_zip([("m.dcm", b"\0" * real), ("after.dcm", b"kept")]))
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, declared)  # uncompressed size, central directory
    struct.pack_into("<I", data, 22, declared)  # uncompressed size, local header
    return bytes(data)


def test_a_member_whose_header_understates_its_size_is_not_inflated_and_the_rest_are_read() -> None:
    found = _all(_understated_zip(real=64 * MB, declared=1000), member=MB)
    assert [(m.name, m.skipped, m.error) for m in found] == [
        ("m.dcm", Skipped.UNREADABLE, "BadZipFile"),
        ("after.dcm", None, None),
    ]
    assert found[1].data == b"kept"


def _peak_bytes_reading(content: bytes, queue) -> None:
    # An address-space limit well under what inflating the member whole would take.
    resource.setrlimit(resource.RLIMIT_AS, (600 * MB, 600 * MB))
    try:
        names = [m.name for m in members(content, max_member_bytes=MB, max_archive_bytes=4 << 30)]
        queue.put(("ok", names))
    except MemoryError:
        queue.put(("memory", []))


def test_inflating_stays_bounded_in_memory_whatever_a_header_says() -> None:
    """A 1 GiB member declared as 1,000 bytes: read whole, zipfile would inflate all of it at once."""
    content = _understated_zip(real=1 << 30, declared=1000)
    assert len(content) < 2 * MB
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_peak_bytes_reading, args=(content, queue))
    process.start()
    outcome = queue.get(timeout=120)
    process.join(timeout=60)
    assert outcome == ("ok", ["m.dcm", "after.dcm"])


@pytest.mark.parametrize("build", [_zip, _tar], ids=["zip", "tar.gz"])
def test_an_archive_that_inflates_past_its_budget_stops_there(build) -> None:
    entries = [(f"zeros-{i}", b"\0" * (3 * MB)) for i in range(5)]
    found: list[str] = []
    with pytest.raises(ArchiveTooLarge) as stopped:
        for member in members(build(entries), max_member_bytes=4 * MB, max_archive_bytes=7 * MB):
            found.append(member.name)
    assert "after" in str(stopped.value)
    assert len(found) == stopped.value.members < 5
