"""Every kind of bad input of issue 17 in one lake: a run over it ledgers each input with a reason and maps the
good ones; a second run, with the archive touched, maps the archive again and changes nothing else."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_poison_inputs import _with_charset, _with_numeric_value

from sr2fhir_synth import random_spec, write_sr

from .helpers import ledger, no_duplicate_keys, run_job, table_snapshot

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

MAX_FILE = 2 << 20
MAX_ARCHIVE = 8 << 20


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _zip_bomb() -> bytes:
    """A small zip whose one member inflates past `MAX_ARCHIVE`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.dcm", bytes(MAX_ARCHIVE + (1 << 20)))
    return buffer.getvalue()


def _poison_lake(root: Path) -> dict[str, tuple[str, str | None]]:
    """The lake, and each input's expected (status, reason) by the end of its source path."""
    root.mkdir()
    report = [write_sr(random_spec(seed)) for seed in range(4)]
    files: dict[str, bytes] = {
        "good-1.dcm": report[0],
        "good-2.dcm": report[1],
        "nul-in-charset.dcm": _with_charset(report[2], b"ISO_IR\x00100"),
        "number-1e400.dcm": _with_numeric_value("1e400"),
        "empty.dcm": b"",
        "zeros.bin": bytes(MAX_FILE - 1),
        "too-large.dcm": report[3] + bytes(MAX_FILE),
        "notes.txt": b"not a report at all\n" * 100,
        "bomb.zip": _zip_bomb(),
        "duplicates.tar": _tar([("a.dcm", report[0]), ("a.dcm", report[1]), ("b.dcm", report[2])]),
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return {
        "good-1.dcm": ("mapped", None),
        "good-2.dcm": ("mapped", None),
        "nul-in-charset.dcm": ("rejected", "corrupt"),
        "number-1e400.dcm": ("mapped", None),
        "empty.dcm": ("rejected", "empty_file"),
        "zeros.bin": ("rejected", "not_dicom"),
        "too-large.dcm": ("rejected", "too_large"),
        "notes.txt": ("rejected", "not_dicom"),
        "bomb.zip": ("rejected", "too_large"),
        # tar's rule: the last member of a name wins; the earlier one is ledgered, not mapped.
        "duplicates.tar!a.dcm": ("mapped", None),
        "duplicates.tar!b.dcm": ("mapped", None),
    }


def _latest(spark: SparkSession, output: Path) -> dict[str, list[tuple[str, str | None]]]:
    """(status, reason) of each source path in its latest run, by path relative to the lake."""
    rows = ledger(spark, output)
    latest: dict[str, str] = {}
    for row in rows:
        latest[row["source_file"]] = max(latest.get(row["source_file"], ""), row["run_id"])
    result: dict[str, list[tuple[str, str | None]]] = {}
    for row in rows:
        if row["run_id"] == latest[row["source_file"]]:
            key = row["source_path"].split("/lake/", 1)[1]
            result.setdefault(key, []).append((row["status"], row["reason"]))
    return result


def test_a_lake_of_every_poison_input_maps_twice_without_failing(spark: SparkSession, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    expected = _poison_lake(lake)
    output = tmp_path / "out"
    settings = [f"input.max_file_bytes={MAX_FILE}", f"input.max_archive_bytes={MAX_ARCHIVE}"]
    first = run_job(spark, [lake], output, overrides=settings)
    latest = _latest(spark, output)
    for path, outcome in expected.items():
        matches = [v for k, v in latest.items() if k == path or k.startswith(path + "!")]
        assert matches and outcome in matches[0], (path, latest)
    assert all(reason for outcomes in latest.values() for status, reason in outcomes if status != "mapped")
    duplicates = [v for k, v in latest.items() if k.startswith("duplicates.tar")]
    assert ("rejected", "duplicate_member") in [o for outcomes in duplicates for o in outcomes]
    assert first["documents"]["inputs"] == sum(len(v) for v in latest.values())
    before = table_snapshot(spark, output)
    no_duplicate_keys(before)

    archive = lake / "duplicates.tar"
    os.utime(archive, (2_000_000_000, 2_000_000_000))
    second = run_job(spark, [lake], output, overrides=settings)
    assert second["files"]["processed"] == 1  # the touched archive alone
    assert table_snapshot(spark, output) == before
    assert _latest(spark, output) == latest
