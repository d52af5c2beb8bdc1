"""FHIR deletions in the bulk export: a run exports, in its manifest's `deleted` array, the resources that no file
still in the lake produces, after its changed files are mapped again and its removed files are gone. The oracle is
the core itself: the resources map_sr gives for the lake before the run, less those it gives for the lake after."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobs.sinks import ndjson
from jobs.sources.inputs import Inputs
from sr2fhir_core import map_sr

from .helpers import Killed, kill_before_ledger, ledger, run_job

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = [pytest.mark.spark]

Key = tuple[str, str]


def _lake(sample: Path, tmp_path: Path) -> Path:
    """The sample lake, with sr-004 stored twice (one SR, two files: the same resource ids)."""
    lake = tmp_path / "lake"
    shutil.copytree(sample, lake)
    copy = lake / "site-b" / "copies" / "sr-004-copy.dcm"
    copy.parent.mkdir()
    copy.write_bytes(_report(lake, "sr-004").read_bytes())
    return lake


def _report(lake: Path, name: str) -> Path:
    return next(p for p in lake.rglob("*") if p.stem == name)


def _produced(lake: Path) -> dict[Key, set[str]]:
    """(type, id) → the files whose mapping gives it, for the lake as it is."""
    owners: dict[Key, set[str]] = {}
    for path in sorted(p for p in lake.rglob("*") if p.is_file()):
        for resource in map_sr(path).resources:
            owners.setdefault((resource["resourceType"], resource["id"]), set()).add(path.name)
    return owners


def _drop_last_measurement(path: Path) -> None:
    """Rewrite the SR without the last NUM item of its first container that ends with one: no other item moves,
    so only that measurement's Observation goes."""
    import pydicom

    dataset = pydicom.dcmread(path)

    def container(items):  # the first container, depth first, whose last item is a measurement
        for item in items:
            if "ContentSequence" in item and (found := container(item.ContentSequence)) is not None:
                return found
        return items if items and items[-1].ValueType == "NUM" else None

    items = container(dataset.ContentSequence)
    assert items is not None
    del items[-1]
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    path.write_bytes(buffer.getvalue())


def _manifest(summary: dict) -> dict:
    return json.loads(Path(summary["fhir"]["manifest"].removeprefix("file://")).read_text())


def _deleted(summary: dict) -> list[Key]:
    """The DELETEs of a run's export, in file and line order, after checking the Bulk Data form."""
    from fhir.resources.bundle import Bundle

    manifest = _manifest(summary)
    assert list(manifest) == [
        "transactionTime",
        "request",
        "requiresAccessToken",
        "output",
        "deleted",
        "error",
        "extension",
    ]
    assert manifest["extension"] == {"fhirVersion": "5.0.0"}
    keys: list[Key] = []
    for entry in manifest["deleted"]:
        assert entry["type"] == "Bundle" and entry["url"].startswith("file://")
        lines = Path(entry["url"].removeprefix("file://")).read_text().splitlines()
        assert entry["count"] == len(lines) > 0
        for line in lines:
            bundle = json.loads(line)
            Bundle.model_validate(bundle)
            assert bundle["type"] == "transaction" and bundle["entry"]
            for item in bundle["entry"]:
                assert item["request"]["method"] == "DELETE"
                resource_type, resource_id = item["request"]["url"].split("/")
                keys.append((resource_type, resource_id))
    assert len(keys) == len(set(keys))
    assert sum(summary["deleted"].values()) == len(keys)
    return keys


def _deleted_files(summary: dict) -> dict[str, bytes]:
    directory = Path(summary["fhir"]["directory"].removeprefix("file://"))
    return {p.name: p.read_bytes() for p in sorted(directory.glob("deleted.*.ndjson"))}


def _index(spark: SparkSession, output: Path, table_format: str = "delta") -> list[tuple]:
    rows = spark.read.format(table_format).load(str(output / "tables" / "resources")).collect()
    return sorted((r["source_file"], r["resource_type"], r["resource_id"], r["run_id"]) for r in rows)


def test_changed_and_removed_files_export_the_deletions_of_what_no_file_produces(
    spark: SparkSession, sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(sample, tmp_path)
    output = tmp_path / "out"
    first = run_job(spark, [lake], output)
    assert _deleted(first) == [] and first["deleted"] == {}
    produced = _produced(lake)
    assert {path.rsplit("/", 1)[-1] for path, *_ in _index(spark, output)} == {
        name for owners in produced.values() for name in owners
    }

    # One report loses a measurement; a report sharing its Patient, ImagingStudy and ServiceRequest with sr-007
    # goes; one of the two copies of sr-004 goes.
    changed = _report(lake, "sr-003")
    _drop_last_measurement(changed)
    _report(lake, "sr-001").unlink()
    (lake / "site-b" / "copies" / "sr-004-copy.dcm").unlink()
    now = _produced(lake)
    second = run_job(spark, [lake], output)
    deleted = _deleted(second)
    assert set(deleted) == produced.keys() - now.keys()
    assert second["removed"]["files"] == 2 and second["files"]["processed"] == 1
    dropped = [key for key in deleted if produced[key] == {"sr-003.dcm"}]
    assert len(dropped) == 1 and dropped[0][0] == "Observation"
    shared = [key for key, owners in produced.items() if owners == {"sr-001.dcm", "sr-007.dcm"}]
    assert {t for t, _ in shared} == {"ImagingStudy", "ServiceRequest"}
    assert not set(shared) & set(deleted)  # sr-007 still has them
    assert all("sr-004.dcm" not in produced[key] for key in deleted)  # its other copy is still there
    assert {t for t, _ in deleted} == {"Observation", "BodyStructure", "ImagingSelection", "Device", "Practitioner"}
    # Entries in their fixed order: what references a resource before it (the Practitioner after the Devices).
    types = [t for t, _ in deleted]
    assert types == sorted(types, key=ndjson.DELETE_ORDER.index)

    # A run that only removes files writes an export all the same: sr-007 takes the study's shared resources with
    # it; its Patient stays while SR000005 has it.
    _report(lake, "sr-007").unlink()
    before, now = now, _produced(lake)
    third = run_job(spark, [lake], output)
    assert third["files"]["processed"] == 0 and third["removed"]["files"] == 1
    assert set(_deleted(third)) == before.keys() - now.keys()
    assert set(shared) <= set(_deleted(third))
    patient = next(key for key, owners in produced.items() if key[0] == "Patient" and "sr-007.dcm" in owners)
    assert patient in now and patient not in _deleted(third)

    # Files deleted after the listing, before the map step reads them (a changed file and a new one): the run goes
    # on without them and leaves their ledger rows and index entries as they were; the next run finds the changed
    # one removed and exports its deletions (had the index lost its entries, it would export none).
    _drop_last_measurement(_report(lake, "sr-002"))
    new = lake / "site-b" / "incoming" / "sr-new.dcm"
    new.write_bytes(_report(lake, "sr-008").read_bytes())
    vanishing = [_report(lake, "sr-002"), new]
    with_content = Inputs.with_content

    def delete_then_read(self: Inputs, *args: Any, **kwargs: Any) -> DataFrame:
        for path in vanishing:
            path.unlink()
        return with_content(self, *args, **kwargs)

    monkeypatch.setattr(Inputs, "with_content", delete_then_read)
    known = sorted((row["source_file"], row["run_id"]) for row in ledger(spark, output))
    entries = _index(spark, output)
    fourth = run_job(spark, [lake], output)
    monkeypatch.undo()
    assert fourth["vanished"] == 2 and fourth["files"]["processed"] == 0
    assert sorted((row["source_file"], row["run_id"]) for row in ledger(spark, output)) == known
    assert _index(spark, output) == entries and _deleted(fourth) == []
    before, now = now, _produced(lake)
    fifth = run_job(spark, [lake], output)
    assert fifth["removed"]["files"] == 1 and fifth["files"]["processed"] == 0 and fifth["vanished"] == 0
    assert set(_deleted(fifth)) == before.keys() - now.keys() != set()

    # Nothing changed: no export, no deletions. The index holds the current entries only (superseded ones pruned).
    assert run_job(spark, [lake], output)["fhir"] is None
    indexed = {(t, i) for _, t, i, _ in _index(spark, output)}
    assert indexed == now.keys()

    # A full refresh rebuilds the index and still exports what went since, against the old one.
    _report(lake, "SR000005").unlink()
    before, now = now, _produced(lake)
    refresh = run_job(spark, [lake], output, full_refresh=True)
    assert set(_deleted(refresh)) == before.keys() - now.keys()
    assert patient in set(_deleted(refresh))
    assert {run for *_, run in _index(spark, output)} == {refresh["run_id"]}


def test_a_run_killed_after_its_sinks_changes_no_deletion(spark: SparkSession, sample: Path, tmp_path: Path) -> None:
    """Killed after the sinks (the index appended, the export written): the next run exports the deletions a clean
    run would, to the byte. Parquet tables and index (the other test runs Delta)."""
    lake = _lake(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output, table_format="parquet")
    produced = _produced(lake)
    _drop_last_measurement(_report(lake, "sr-003"))
    _report(lake, "sr-001").unlink()
    expected = sorted(produced.keys() - _produced(lake).keys())
    with pytest.raises(Killed):
        run_job(spark, [lake], output, table_format="parquet", before_ledger=kill_before_ledger)
    retry = run_job(spark, [lake], output, table_format="parquet")
    assert sorted(_deleted(retry)) == expected
    assert _deleted_files(retry) == {"deleted.00000.ndjson": b"\n".join(ndjson.deletion_bundles(expected)) + b"\n"}

    # The killed run's index entries stay, ignored; the committed runs' are the lake's current ones.
    committed = {row["run_id"] for row in ledger(spark, output, "parquet")}
    entries = _index(spark, output, "parquet")
    assert {run for *_, run in entries} - committed  # the killed run's
    current = {(t, i) for _, t, i, run in entries if run in committed}
    assert current == _produced(lake).keys()


def test_a_report_also_stored_in_an_archive_keeps_its_resources(
    spark: SparkSession, sample: Path, tmp_path: Path
) -> None:
    """A per-SR resource can only come from a file holding its SOP instance: the lookup finds such files in the
    ledger, archives included (their members' rows). Removing the loose copy of a report that an archive also
    holds deletes nothing; removing the archive then deletes what only it produced."""
    import zipfile

    lake = tmp_path / "lake"
    shutil.copytree(sample, lake)
    report = _report(lake, "sr-004")
    archive = lake / "site-b" / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("exported/sr-004.dcm", report.read_bytes())
    output = tmp_path / "out"
    run_job(spark, [lake], output)
    before = _produced(lake)  # the archive's member gives what the loose copy gives
    own = {key for key, owners in before.items() if owners == {"sr-004.dcm"}}
    assert {t for t, _ in own} >= {"Observation", "ImagingSelection"}

    report.unlink()
    second = run_job(spark, [lake], output)
    assert second["removed"]["files"] == 1 and second["deleted"] == {}

    archive.unlink()
    third = run_job(spark, [lake], output)
    assert third["removed"]["files"] == 1
    assert set(_deleted(third)) == before.keys() - _produced(lake).keys() >= own
