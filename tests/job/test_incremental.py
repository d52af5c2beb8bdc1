"""Incremental and idempotent runs on a generated lake: changed files have their rows replaced, killed runs
leave nothing behind twice, archives and path lists are inputs like any file; Delta and Parquet alike."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sr2fhir_core import map_sr

from .helpers import (
    TABLES,
    Killed,
    copy_lake,
    export_lines,
    kill_before_ledger,
    ledger,
    no_duplicate_keys,
    operations,
    run_job,
    table_files,
    table_rows,
    table_snapshot,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]


@pytest.mark.parametrize("table_format", ["delta", "parquet"])
def test_changed_file_rows_are_replaced_not_kept(
    spark: SparkSession, sample: Path, tmp_path: Path, table_format: str
) -> None:
    lake = copy_lake(sample, tmp_path)
    output = tmp_path / "out"
    first = run_job(spark, [lake], output, table_format=table_format)
    reports = [p for p in lake.rglob("*") if p.is_file() and ledger_status(spark, output, p, table_format) == "mapped"]
    changed, rejected = reports[0], reports[1]
    old_paths = {f"file:{changed}", f"file:{rejected}"}
    # One report becomes another (other SOP Instance UID, other measurements); one becomes garbage.
    changed.write_bytes(reports[2].read_bytes())
    rejected.write_bytes(b"not DICOM any more")
    os.utime(changed, (1_000_000_000, 1_000_000_000))
    added = lake / "new folder" / "copy %20 é, without extension"  # Spark URL-encodes some path forms
    added.parent.mkdir()
    added.write_bytes(reports[3].read_bytes())

    second = run_job(spark, [lake], output, table_format=table_format)
    assert second["files"] == {
        "found": first["files"]["found"] + 1,
        "unchanged": first["files"]["found"] - 2,
        "processed": 3,
    }
    after = table_snapshot(spark, output, table_format)
    no_duplicate_keys(after)
    rows = after["measurements"]
    by_path = Counter(r["source_path"] for r in rows)
    assert by_path[f"file:{rejected}"] == 0
    assert by_path[f"file:{changed}"] == by_path[f"file:{reports[2]}"] > 0
    assert by_path[f"file:{added}"] == by_path[f"file:{reports[3]}"]
    changed_uids = {r["sop_instance_uid"] for r in rows if r["source_path"] in old_paths}
    assert changed_uids == {r["sop_instance_uid"] for r in rows if r["source_path"] == f"file:{reports[2]}"}

    # A touched file (same bytes, new time) is mapped again, whatever characters its path holds.
    os.utime(added, (1_100_000_000, 1_100_000_000))
    third = run_job(spark, [lake], output, table_format=table_format)
    assert third["files"]["processed"] == 1 and third["documents"]["mapped"] == 1
    assert table_snapshot(spark, output, table_format) == after

    # The same tables as a fresh run over the lake as it is now.
    fresh = tmp_path / "fresh"
    run_job(spark, [lake], fresh, table_format=table_format)
    assert after == table_snapshot(spark, fresh, table_format)
    assert export_lines(second)["Observation"]


def ledger_status(spark: SparkSession, output: Path, path: Path, table_format: str) -> str | None:
    for row in ledger(spark, output, table_format):
        if row["source_path"] == f"file:{path}":
            return row["status"]
    return None


def test_new_files_are_appended_and_a_killed_append_is_undone(
    spark: SparkSession, sample: Path, tmp_path: Path
) -> None:
    lake = copy_lake(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output)
    reports = sorted(p for p in lake.rglob("*.dcm") if ledger_status(spark, output, p, "delta") == "mapped")
    commits = {name: len(operations(spark, output, name)) for name in TABLES}
    added = [lake / "arrived later" / f"{index}.dcm" for index in range(2)]
    added[0].parent.mkdir()
    for path, report in zip(added, reports, strict=False):
        path.write_bytes(report.read_bytes())

    # Only new files: the tables get an append, which a kill before the ledger commit leaves in place...
    with pytest.raises(Killed):
        run_job(spark, [lake], output, before_ledger=kill_before_ledger)
    for name in TABLES:
        assert operations(spark, output, name)[commits[name] :] == ["WRITE"], name
    new_paths = {f"file:{p}" for p in added}
    assert {r["source_path"] for r in table_rows(spark, output, "measurements")} >= new_paths
    # ...and the next run deletes before appending again: no duplicates, nothing lost.
    retry = run_job(spark, [lake], output)
    assert retry["files"]["processed"] == 2
    for name in TABLES:
        assert operations(spark, output, name)[commits[name] + 1 :] == ["DELETE", "WRITE"], name
    snapshot = table_snapshot(spark, output)
    no_duplicate_keys(snapshot)
    clean = tmp_path / "clean"
    run_job(spark, [lake], clean)
    assert snapshot == table_snapshot(spark, clean)

    # A changed file has rows to replace: a MERGE, even with a new file beside it.
    changed_time = reports[0].stat().st_mtime
    os.utime(reports[0], (2_000_000_000, 2_000_000_000))
    (lake / "arrived later" / "2.dcm").write_bytes(reports[1].read_bytes())
    # Killed after its MERGE: the new file's rows are in the tables, unknown to the ledger. The changed file
    # gets its old time back, which the ledger knows, but the killed run merged its rows: the next run maps both
    # again (`jobs/run/recovery.py`), and must merge the new file all the same.
    with pytest.raises(Killed):
        run_job(spark, [lake], output, before_ledger=kill_before_ledger)
    for name in TABLES:
        assert operations(spark, output, name)[-1] == "MERGE", name
    os.utime(reports[0], (changed_time, changed_time))
    assert run_job(spark, [lake], output)["files"]["processed"] == 2
    for name in TABLES:
        assert operations(spark, output, name)[-1] == "MERGE", name
    no_duplicate_keys(table_snapshot(spark, output))
    # Once a MERGE has committed, new files are appended again.
    (lake / "arrived later" / "3.dcm").write_bytes(reports[2].read_bytes())
    run_job(spark, [lake], output)
    for name in TABLES:
        assert operations(spark, output, name)[-1] == "WRITE", name
    snapshot = table_snapshot(spark, output)
    no_duplicate_keys(snapshot)
    fresh = tmp_path / "fresh"
    run_job(spark, [lake], fresh)
    assert snapshot == table_snapshot(spark, fresh)


@pytest.mark.parametrize("table_format", ["delta", "parquet"])
def test_killed_run_then_rerun_gives_no_duplicates_and_loses_nothing(
    spark: SparkSession, sample: Path, tmp_path: Path, table_format: str
) -> None:
    lake = copy_lake(sample, tmp_path)
    output = tmp_path / "out"
    with pytest.raises(Killed):
        run_job(spark, [lake], output, table_format=table_format, before_ledger=kill_before_ledger)
    assert not (output / "runs").exists()
    retry = run_job(spark, [lake], output, table_format=table_format)
    assert retry["files"]["processed"] == retry["files"]["found"]
    killed_exports = [d for d in (output / "fhir").iterdir() if d.name != retry["run_id"]]
    assert killed_exports == []  # the interrupted run's partial export is gone

    # Killed again in an incremental run: a changed file, then a retry.
    target = next(p for p in lake.rglob("*.dcm") if ledger_status(spark, output, p, table_format) == "mapped")
    target.write_bytes(target.read_bytes() + b"")  # same bytes, new modification time
    os.utime(target, (2_000_000_000, 2_000_000_000))
    with pytest.raises(Killed):
        run_job(spark, [lake], output, table_format=table_format, before_ledger=kill_before_ledger)
    again = run_job(spark, [lake], output, table_format=table_format)
    assert again["files"]["processed"] == 1

    clean = tmp_path / "clean"
    run_job(spark, [lake], clean, table_format=table_format)
    snapshot = table_snapshot(spark, output, table_format)
    no_duplicate_keys(snapshot)
    assert snapshot == table_snapshot(spark, clean, table_format)
    rows = ledger(spark, output, table_format)
    assert Counter(r["source_path"] for r in rows)[f"file:{target}"] == 2  # first run and the changed-file run
    assert {r["source_path"] for r in rows} == {r["source_path"] for r in ledger(spark, clean, table_format)}


def test_archives_path_lists_and_oversized_files(spark: SparkSession, sample: Path, tmp_path: Path) -> None:
    reports = [p for p in sorted(sample.rglob("*.dcm")) if map_sr(p).mapped][:3]
    lake = tmp_path / "lake"
    lake.mkdir()
    with zipfile.ZipFile(lake / "batch.zip", "w") as archive:
        archive.writestr("a/first.dcm", reports[0].read_bytes())
        archive.writestr("a/", b"")
        archive.writestr("notes.txt", b"hello")
        archive.writestr("blank.dcm", b"")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("second")
        info.size = len(data := reports[1].read_bytes())
        archive.addfile(info, io.BytesIO(data))
    (lake / "batch.tar.gz").write_bytes(buffer.getvalue())
    (lake / "broken.zip").write_bytes(buffer.getvalue()[:0] + b"PK\x03\x04 truncated")
    with zipfile.ZipFile(lake / "empty.zip", "w"):
        pass
    limit = max(p.stat().st_size for p in [*reports, *lake.iterdir()])  # archives are held to it too
    (lake / "huge.dcm").write_bytes(b"\0" * (limit + 1))
    listed = tmp_path / "elsewhere.dcm"
    listed.write_bytes(reports[2].read_bytes())
    # Zero-byte files (which Spark's scans drop) in a listed folder, below it, and listed themselves.
    zero_byte = [lake / "upload.dcm", lake / "nested" / "deeper" / "part", tmp_path / "listed-empty.dcm"]
    for path in zero_byte:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    path_list = tmp_path / "inputs.txt"
    path_list.write_text(f"# inputs\n{lake}\n\n{listed}\n{zero_byte[2]}\n")

    output = tmp_path / "out"
    settings = [f"input.max_file_bytes={limit}"]
    summary = run_job(spark, [], output, input_lists=[path_list], overrides=settings)
    rows = {r["source_path"].removeprefix("file:"): r for r in ledger(spark, output)}
    assert rows[f"{lake}/batch.zip!a/first.dcm"]["status"] == "mapped"
    assert rows[f"{lake}/batch.zip!notes.txt"]["reason"] == "not_dicom"
    assert rows[f"{lake}/batch.tar.gz!second"]["status"] == "mapped"
    assert rows[f"{lake}/broken.zip"]["reason"] == "archive_error"
    assert rows[f"{lake}/broken.zip"]["status"] == "failed"
    assert rows[f"{lake}/empty.zip"]["reason"] == "empty_archive"
    assert rows[f"{lake}/huge.dcm"]["reason"] == "too_large"
    assert rows[str(listed)]["status"] == "mapped"
    for source_path in [*map(str, zero_byte), f"{lake}/batch.zip!blank.dcm"]:
        row = rows[source_path]
        member = source_path.endswith("!blank.dcm")  # a member's size is its archive's
        assert (row["status"], row["reason"], row["size"] > 0) == ("rejected", "empty_file", member)
    assert len(rows) == 11
    assert summary["files"]["found"] == 9
    assert summary["by_reason"]["rejected/empty_file"] == 4
    assert {r["source_file"] for r in rows.values() if "!" in r["source_path"]} == {
        f"file:{lake}/batch.zip",
        f"file:{lake}/batch.tar.gz",
    }

    # Failed files are retried on the next run; the rest is skipped.
    again = run_job(spark, [], output, input_lists=[path_list], overrides=settings)
    assert again["files"]["processed"] == 1 and again["by_reason"] == {"failed/archive_error": 1}
    assert again["files"]["found"] == 9


def test_zero_byte_files_get_one_ledger_row_until_written_or_removed(
    spark: SparkSession, sample: Path, tmp_path: Path
) -> None:
    """A zero-byte file (a failed or unfinished upload) is rejected once, skipped while it stays as it is, mapped
    once written, and recorded as removed when deleted; the glob filter applies to it like to any file."""
    lake = copy_lake(sample, tmp_path)
    report = next(lake.rglob("sr-001.dcm")).read_bytes()
    top, nested, hidden = lake / "upload.dcm", lake / "site-a" / "late" / "part.dcm", lake / "_tmp" / "x.dcm"
    for path in (top, nested, hidden):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    output = tmp_path / "out"
    lake_files = sum(1 for p in lake.rglob("*") if p.is_file() and p != hidden)

    first = run_job(spark, [lake], output)
    rows = ledger(spark, output)
    zero_byte = {r["source_path"]: r for r in rows if r["reason"] == "empty_file"}
    assert set(zero_byte) == {f"file:{top}", f"file:{nested}"}
    assert all(r["status"] == "rejected" and r["size"] == 0 and r["source_file"] == p for p, r in zero_byte.items())
    assert first["files"]["found"] == first["files"]["processed"] == lake_files
    assert first["by_reason"]["rejected/empty_file"] == 2
    assert first["documents"]["rejected"] == sum(r["status"] == "rejected" for r in rows)

    second = run_job(spark, [lake], output)
    assert second["files"] == {"found": lake_files, "unchanged": lake_files, "processed": 0}
    assert len(ledger(spark, output)) == len(rows)

    nested.write_bytes(report)  # the upload completed
    top.unlink()
    third = run_job(spark, [lake], output)
    assert third["files"]["processed"] == 1 and third["documents"]["mapped"] == 1
    assert third["removed"] == {"files": 1, "inputs": 1}
    latest = {r["source_path"]: r for r in ledger(spark, output) if r["run_id"] == third["run_id"]}
    assert {p: (r["status"], r["reason"]) for p, r in latest.items()} == {
        f"file:{nested}": ("mapped", None),
        f"file:{top}": ("removed", "source_removed"),
    }
    assert f"file:{nested}" in table_files(spark, output)

    (lake / "site-b" / "zero.dcm").write_bytes(b"")
    (lake / "site-b" / "zero.txt").write_bytes(b"")
    fourth = run_job(spark, [lake], output, overrides=["input.path_glob_filter='*.dcm'"])
    assert fourth["files"]["processed"] == 1 and fourth["by_reason"] == {"rejected/empty_file": 1}
    assert {r["source_path"] for r in ledger(spark, output) if r["run_id"] == fourth["run_id"]} == {
        f"file:{lake}/site-b/zero.dcm"
    }


def test_file_states_take_each_files_latest_run_and_any_failed_member(spark: SparkSession, tmp_path: Path) -> None:
    """What an incremental run compares with: per stored file, its latest run's size, time and fingerprint, and
    whether any input of that run failed (an archive read half way: mapped members and a failed archive row)."""
    from datetime import datetime

    from jobs.sinks.ledger import SPEC as LEDGER_SPEC
    from jobs.sinks.ledger import Ledger
    from jobs.sinks.store import open_store
    from jobs.spark.fs import HadoopFS

    then, now = datetime(2026, 1, 1), datetime(2026, 2, 1)  # naive: they come back as they went in
    first, second = "20260101T000000000000Z-aaaaaa", "20260201T000000000000Z-bbbbbb"
    third = "20260301T000000000000Z-cccccc"
    rows = [
        # source_file, run_id, size, modification_time, mapping_fingerprint, status, reason
        ("a.tar.gz", first, 10, then, "f1", "failed", "corrupt"),
        ("a.tar.gz", second, 20, now, "f2", "mapped", None),  # latest run: a member mapped,
        ("a.tar.gz", second, 20, now, "f2", "failed", "corrupt"),  # then the archive's read error
        ("b.dcm", first, 30, then, "f1", "mapped", None),
        ("c.dcm", first, 40, then, "f1", "failed", "crashed"),  # a crash of c.dcm as it was then
        ("c.dcm", second, 41, now, "f2", "failed", "crashed"),  # two of c.dcm as it is now
        ("c.dcm", third, 41, now, "f2", "failed", "crashed"),
        ("d.dcm", first, 50, then, "f1", "failed", "quarantined"),
    ]
    uri = str(tmp_path / "documents")
    columns = ["source_file", "run_id", "size", "modification_time", "mapping_fingerprint", "status", "reason"]
    spark.createDataFrame(rows, columns).write.parquet(uri)
    fields = ["known_size", "known_modification_time", "known_fingerprint", "known_failed", "known_removed"]
    fields += ["known_run_id", "known_quarantined", "known_crashes"]

    def states() -> dict[str, tuple]:
        found = Ledger(open_store(spark, HadoopFS(spark), uri, LEDGER_SPEC, "parquet")).file_states().collect()
        return {r["source_file"]: tuple(r[name] for name in fields) for r in found}

    assert states() == {
        "a.tar.gz": (20, now, "f2", True, False, second, False, 0),
        "b.dcm": (30, then, "f1", False, False, first, False, 0),
        "c.dcm": (41, now, "f2", True, False, third, False, 2),
        "d.dcm": (50, then, "f1", True, False, first, True, 0),
    }

    # A ledger of a version before `reason`: read as one where nothing crashed or was quarantined.
    spark.createDataFrame([row[:-1] for row in rows], columns[:-1]).write.mode("overwrite").parquet(uri)
    assert states()["c.dcm"] == (41, now, "f2", True, False, third, False, 0)
    assert states()["d.dcm"] == (50, then, "f1", True, False, first, False, 0)


def _removed_rows(spark: SparkSession, output: Path, table_format: str = "delta") -> dict[str, dict]:
    return {r["source_path"]: r for r in ledger(spark, output, table_format) if r["status"] == "removed"}


def _with_archive(sample: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The sample lake plus a zip of two of its reports under site-b."""
    lake = copy_lake(sample, tmp_path)
    archive = lake / "site-b" / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name in ("sr-004.dcm", "sr-006.dcm"):
            zipped.writestr(f"members/{name}", next(lake.rglob(name)).read_bytes())
    return lake, archive


def test_removed_files_leave_the_tables_only_when_a_listed_folder_shows_them_gone(
    spark: SparkSession, sample: Path, tmp_path: Path
) -> None:
    lake, archive = _with_archive(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output)
    before = table_snapshot(spark, output)
    first, second = next(lake.rglob("sr-001.dcm")), next(lake.rglob("sr-002.dcm"))  # under site-a, site-b
    first_bytes = first.read_bytes()
    first.unlink()
    second.unlink()
    assert {f"file:{first}", f"file:{second}", f"file:{archive}"} <= table_files(spark, output)

    # A run given another part of the lake removes nothing outside it.
    partial = run_job(spark, [lake / "site-a"], output)
    assert partial["removed"] == {"files": 1, "inputs": 1}
    assert f"file:{first}" not in table_files(spark, output)
    assert {f"file:{second}", f"file:{archive}"} <= table_files(spark, output)

    # A narrower glob filter: files it does not match are not looked at (SR000005 exists, the zip does not).
    archive.unlink()
    narrower = run_job(spark, [lake], output, overrides=["input.path_glob_filter='*.dcm'"])
    assert narrower["removed"] == {"files": 1, "inputs": 1}
    assert f"file:{second}" not in table_files(spark, output)
    assert f"file:{archive}" in table_files(spark, output)

    kept = run_job(spark, [lake], output, overrides=["incremental.removed_files=keep"])
    assert kept["removed"] == {"files": 0, "inputs": 0}
    assert f"file:{archive}" in table_files(spark, output)

    # The archive goes with both its members; each removed input keeps its report's identifiers.
    full = run_job(spark, [lake], output)
    assert full["removed"] == {"files": 1, "inputs": 2}
    removed = _removed_rows(spark, output)
    assert set(removed) == {
        f"file:{first}",
        f"file:{second}",
        f"file:{archive}!members/sr-004.dcm",
        f"file:{archive}!members/sr-006.dcm",
    }
    mapped_before = {r["source_path"]: r for r in ledger(spark, output) if r["status"] == "mapped"}
    for path, row in removed.items():
        assert row["reason"] == "source_removed" and row["size"] is None
        assert row["sop_instance_uid"] == mapped_before[path]["sop_instance_uid"] is not None
    gone = {f"file:{first}", f"file:{second}", f"file:{archive}"}
    after = table_snapshot(spark, output)
    for name in TABLES:
        assert after[name] == [r for r in before[name] if r["source_file"] not in gone], name

    again = run_job(spark, [lake], output)
    assert again["removed"] == {"files": 0, "inputs": 0} and again["files"]["processed"] == 0

    # A removed file that comes back is mapped again, to the rows it had; another goes in the same run (its rows
    # leave in the MERGE that writes the mapped file's rows).
    first.write_bytes(first_bytes)
    third = next(lake.rglob("sr-003.dcm"))
    third.unlink()
    back = run_job(spark, [lake], output)
    assert back["files"]["processed"] == 1 and back["removed"] == {"files": 1, "inputs": 1}
    restored = table_snapshot(spark, output)
    now_gone = (gone - {f"file:{first}"}) | {f"file:{third}"}
    for name in TABLES:
        assert restored[name] == [r for r in before[name] if r["source_file"] not in now_gone], name
    assert any(r["source_file"] == f"file:{third}" for r in before["measurements"])  # it had rows to lose
    assert f"file:{third}" in _removed_rows(spark, output)


def test_removed_files_in_parquet_tables_and_a_run_killed_between_tables_and_ledger(
    spark: SparkSession, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobs.sinks.ledger import Ledger

    lake, archive = _with_archive(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output, table_format="parquet")
    before = table_snapshot(spark, output, "parquet")
    report = next(lake.rglob("sr-003.dcm"))
    report.unlink()
    archive.unlink()
    gone = {f"file:{report}", f"file:{archive}"}

    def kill_removal(*args: object, **kwargs: object) -> int:
        raise Killed("simulated kill after the removal's table commits, before its ledger rows")

    with monkeypatch.context() as patch:
        patch.setattr(Ledger, "write_removed", kill_removal)
        with pytest.raises(Killed):
            run_job(spark, [lake], output, table_format="parquet")
    assert _removed_rows(spark, output, "parquet") == {}
    assert not table_files(spark, output, "parquet") & gone  # the rows went before the kill

    summary = run_job(spark, [lake], output, table_format="parquet")  # the same files are found gone again
    assert summary["removed"] == {"files": 2, "inputs": 3}
    after = table_snapshot(spark, output, "parquet")
    for name in TABLES:
        assert after[name] == [r for r in before[name] if r["source_file"] not in gone], name
    assert len(_removed_rows(spark, output, "parquet")) == 3

    # A run that removes a file, maps a changed one and is killed before its ledger commit: the next start
    # removes its export, and the next run records the removal.
    next(lake.rglob("sr-004.dcm")).unlink()
    changed = next(lake.rglob("sr-006.dcm"))
    os.utime(changed, (2_000_000_000, 2_000_000_000))
    with pytest.raises(Killed):
        run_job(spark, [lake], output, table_format="parquet", before_ledger=kill_before_ledger)
    unfinished = {d.name for d in (output / "fhir").iterdir()} - {summary["run_id"]}
    assert len(unfinished) == 2  # the first run's export and the killed one's
    retry = run_job(spark, [lake], output, table_format="parquet")  # finds sr-004 gone again: nothing recorded it
    assert retry["removed"] == {"files": 1, "inputs": 1} and retry["files"]["processed"] == 1
    exports = {d.name for d in (output / "fhir").iterdir()}
    assert retry["run_id"] in exports and not exports & (unfinished - {p.stem for p in (output / "runs").iterdir()})
