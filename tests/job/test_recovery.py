"""Runs killed after their table commits, before their ledger commit: their files are carried forward
(`jobs/run/recovery.py`) until a committed run has reconciled them, so no orphan or stale row is left whatever
happens to those files in between: deleted, or restored to the size and time the ledger knows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sr2fhir_core import map_sr

from .helpers import (
    TABLES,
    Killed,
    copy_lake,
    kill_before_ledger,
    ledger,
    no_duplicate_keys,
    operations,
    run_job,
    table_files,
    table_snapshot,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]


def _reports(lake: Path) -> list[Path]:
    """The lake's reports that map, in a fixed order."""
    return sorted(p for p in lake.rglob("*.dcm") if map_sr(p).mapped)


def _pending(output: Path) -> set[str]:
    folder = output / "_reconcile"
    lists = sorted(folder.glob("*.json")) if folder.exists() else []
    return {file for path in lists for file in json.loads(path.read_text())["files"]}


def _merge_killed(spark: SparkSession, lake: Path, output: Path, table_format: str) -> None:
    with pytest.raises(Killed):
        run_job(spark, [lake], output, table_format=table_format, before_ledger=kill_before_ledger)
    if table_format == "delta":  # the hole needs table commits: a MERGE, not an append (which is undone)
        for name in TABLES:
            assert operations(spark, output, name)[-1] == "MERGE", name


def _as_clean_run(spark: SparkSession, lake: Path, output: Path, tmp_path: Path, table_format: str) -> None:
    """The tables hold what a first run over the lake as it is now writes, once per key."""
    snapshot = table_snapshot(spark, output, table_format)
    no_duplicate_keys(snapshot)
    clean = tmp_path / "clean"
    run_job(spark, [lake], clean, table_format=table_format)
    assert snapshot == table_snapshot(spark, clean, table_format)


@pytest.mark.parametrize("table_format", ["delta", "parquet"])
def test_a_new_file_merged_by_a_killed_run_then_deleted_leaves_no_rows(
    spark: SparkSession, sample: Path, tmp_path: Path, table_format: str
) -> None:
    lake = copy_lake(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output, table_format=table_format)
    reports = _reports(lake)
    added = lake / "arrived later" / "new.dcm"
    added.parent.mkdir()
    added.write_bytes(reports[0].read_bytes())
    os.utime(reports[1], (2_000_000_000, 2_000_000_000))  # a changed file beside it: the run merges
    _merge_killed(spark, lake, output, table_format)
    assert f"file:{added}" in table_files(spark, output, table_format)  # the killed run's rows are in
    added.unlink()

    summary = run_job(spark, [lake], output, table_format=table_format)
    assert f"file:{added}" not in table_files(spark, output, table_format)
    assert summary["reconciled"] == {"pending": 2, "mapped": 1, "deleted": 1, "kept": 0}
    assert summary["files"]["processed"] == 1 and summary["removed"] == {"files": 0, "inputs": 0}
    assert f"file:{added}" not in {r["source_file"] for r in ledger(spark, output, table_format)}  # never committed
    assert _pending(output) == set()
    _as_clean_run(spark, lake, output, tmp_path, table_format)


@pytest.mark.parametrize("table_format", ["delta", "parquet"])
def test_a_changed_file_merged_by_a_killed_run_then_restored_is_mapped_again(
    spark: SparkSession, sample: Path, tmp_path: Path, table_format: str
) -> None:
    lake = copy_lake(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output, table_format=table_format)
    reports = _reports(lake)
    target = reports[0]
    original, stat = target.read_bytes(), target.stat()
    target.write_bytes(reports[1].read_bytes())  # another report: other SOP Instance UID, other rows
    _merge_killed(spark, lake, output, table_format)
    # A restore from backup: the old bytes, size and time, which the ledger holds as already mapped.
    target.write_bytes(original)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size

    summary = run_job(spark, [lake], output, table_format=table_format)
    _as_clean_run(spark, lake, output, tmp_path, table_format)
    assert summary["files"]["processed"] == 1 and summary["reconciled"]["mapped"] == 1


def test_the_pending_files_survive_further_kills_and_runs_over_other_folders(
    spark: SparkSession, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.run import select

    lake = copy_lake(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output)
    reports = _reports(lake)
    added = lake / "arrived later" / "new.dcm"
    added.parent.mkdir()
    added.write_bytes(reports[0].read_bytes())
    target = reports[1]
    original, stat = target.read_bytes(), target.stat()
    target.write_bytes(reports[2].read_bytes())
    _merge_killed(spark, lake, output, "delta")
    carried = {f"file:{added}", f"file:{target}"}

    # Killed again right after recovery: the killed run's staging is gone, its files are listed under the output.
    def killed_listing(*args: object, **kwargs: object) -> None:
        raise Killed("simulated kill after recovery")

    with monkeypatch.context() as patch:
        patch.setattr(select, "_select_files", killed_listing)
        with pytest.raises(Killed):
            run_job(spark, [lake], output)
    assert not (output / "_staging").exists() and _pending(output) == carried

    # A run over another folder judges none of them: it keeps them, and appends its new file (no pending file's
    # rows are written); killed, then committed.
    other = lake / "other site"
    other.mkdir()
    (other / "x.dcm").write_bytes(reports[3].read_bytes())
    with pytest.raises(Killed):
        run_job(spark, [other], output, before_ledger=kill_before_ledger)
    assert _pending(output) == carried
    partial = run_job(spark, [other], output)
    assert partial["reconciled"] == {"pending": 2, "mapped": 0, "deleted": 0, "kept": 2}
    for name in TABLES:
        assert operations(spark, output, name)[-1] == "WRITE", name
    assert _pending(output) == carried

    # Only then: the new file deleted, the changed one restored. One run over the lake reconciles both.
    added.unlink()
    target.write_bytes(original)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    summary = run_job(spark, [lake], output)
    assert summary["reconciled"] == {"pending": 2, "mapped": 1, "deleted": 1, "kept": 0}
    assert _pending(output) == set()
    _as_clean_run(spark, lake, output, tmp_path, "delta")


def test_a_no_op_run_after_a_committed_recovery_does_nothing_more(
    spark: SparkSession, sample: Path, tmp_path: Path
) -> None:
    lake = copy_lake(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output)
    reports = _reports(lake)
    os.utime(reports[0], (2_000_000_000, 2_000_000_000))
    _merge_killed(spark, lake, output, "delta")
    recovered = run_job(spark, [lake], output)
    assert recovered["reconciled"] == {"pending": 1, "mapped": 1, "deleted": 0, "kept": 0}
    assert not list((output / "_reconcile").iterdir())
    commits = {name: len(operations(spark, output, name)) for name in TABLES}
    ledger_rows = len(ledger(spark, output))

    again = run_job(spark, [lake], output)
    assert again["files"]["processed"] == 0
    assert again["reconciled"] == {"pending": 0, "mapped": 0, "deleted": 0, "kept": 0}
    assert {name: len(operations(spark, output, name)) for name in TABLES} == commits
    assert len(ledger(spark, output)) == ledger_rows
    # New files are appended again.
    (lake / "arrived later").mkdir()
    (lake / "arrived later" / "new.dcm").write_bytes(reports[1].read_bytes())
    run_job(spark, [lake], output)
    for name in TABLES:
        assert operations(spark, output, name)[-1] == "WRITE", name

    # The empty marker of earlier versions still means: merge until a merging run commits.
    (output / "_merge_next").write_bytes(b"")
    (lake / "arrived later" / "newer.dcm").write_bytes(reports[2].read_bytes())
    run_job(spark, [lake], output)
    for name in TABLES:
        assert operations(spark, output, name)[-1] == "MERGE", name
    assert not (output / "_merge_next").exists()

    # A full refresh rewrites every table: it clears the pending files without looking at them.
    os.utime(reports[0], (2_100_000_000, 2_100_000_000))
    _merge_killed(spark, lake, output, "delta")
    refreshed = run_job(spark, [lake], output, full_refresh=True)
    assert refreshed["reconciled"] == {"pending": 1, "mapped": 0, "deleted": 0, "kept": 0}
    assert _pending(output) == set() and not list((output / "_reconcile").iterdir())
