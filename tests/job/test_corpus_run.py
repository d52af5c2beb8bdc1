"""`sr2fhir run` over all of the shared corpus (TID 1500 reports, negatives, JSON and Markdown files, nested
folders): every file in the ledger with the core's verdict, tables equal to the core's rows, valid FHIR,
then a re-run that maps nothing and a full refresh that gives the same tables."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sr2fhir_core import map_sr

from .helpers import export_files, export_lines, ledger, run_job, table_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.corpus]

MAX_RESOURCES_PER_FILE = 100_000
"""The configured default (conf/sr2fhir.yaml)."""


@pytest.fixture(scope="module")
def runs(spark: SparkSession, corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    output = tmp_path_factory.mktemp("corpus-out")
    first = run_job(spark, [corpus_dir], output)
    snapshot = {name: table_rows(spark, output, name) for name in ("measurements", "qualitative_evaluations")}
    ledger_first = ledger(spark, output)
    second = run_job(spark, [corpus_dir], output)
    after_second = {name: table_rows(spark, output, name) for name in snapshot}
    ledger_second = ledger(spark, output)
    refresh = run_job(spark, [corpus_dir], output, full_refresh=True)
    after_refresh = {name: table_rows(spark, output, name) for name in snapshot}
    return {
        "output": output,
        "first": first,
        "second": second,
        "refresh": refresh,
        "snapshot": snapshot,
        "after_second": after_second,
        "after_refresh": after_refresh,
        "ledger_first": ledger_first,
        "ledger_second": ledger_second,
    }


def _corpus_files(corpus_dir: Path) -> list[Path]:
    return sorted(p for p in corpus_dir.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def test_ledger_has_one_row_per_file_with_the_cores_status(runs: dict, corpus_dir: Path) -> None:
    rows = {Path(r["source_path"].removeprefix("file:")): r for r in runs["ledger_first"]}
    files = _corpus_files(corpus_dir)
    assert len(runs["ledger_first"]) == len(files)
    assert sorted(rows) == files
    for path in files:
        record = map_sr(path).record
        row = rows[path]
        assert (row["status"], row["reason"], row["sop_instance_uid"]) == (
            record.status.value,
            record.reason,
            record.sop_instance_uid,
        ), path
        assert row["measurements"] == record.measurements
        assert row["size"] == path.stat().st_size
    assert runs["first"]["files"] == {"found": len(files), "unchanged": 0, "processed": len(files)}
    assert runs["first"]["documents"]["mapped"] == sum(r["status"] == "mapped" for r in rows.values())


def test_measurements_match_the_core_per_file(runs: dict, corpus_dir: Path) -> None:
    by_path: dict[str, list[dict]] = {}
    for row in runs["snapshot"]["measurements"]:
        by_path.setdefault(row["source_path"], []).append(row)
    for path in _corpus_files(corpus_dir):
        expected = map_sr(path, source_path=f"file:{path}").rows["measurements"]
        got = by_path.get(f"file:{path}", [])
        assert len(got) == len(expected), path
        want = {(r["sop_instance_uid"], r["observation_id"], r["value_text"], r["measurement_code"]) for r in expected}
        have = {(r["sop_instance_uid"], r["observation_id"], r["value_text"], r["measurement_code"]) for r in got}
        assert have == want, path
        for row in got:
            assert row["study_year"] == (row["study_date"].year if row["study_date"] else None)


def test_tables_read_back_with_deltalake(runs: dict) -> None:
    deltalake = pytest.importorskip("deltalake")
    for name in ("measurements", "qualitative_evaluations", "documents"):
        arrow = deltalake.DeltaTable(str(runs["output"] / "tables" / name)).to_pyarrow_table()
        expected = len(runs["snapshot"][name]) if name in runs["snapshot"] else len(runs["ledger_first"])
        assert arrow.num_rows == expected
    documents = deltalake.DeltaTable(str(runs["output"] / "tables" / "documents")).to_pyarrow_table()
    assert str(documents.schema.field("modification_time").type).startswith("timestamp[us")


def test_every_ndjson_line_is_valid_fhir_r5_and_the_manifest_counts_them(runs: dict) -> None:
    fhir = pytest.importorskip("fhir.resources")
    summary = runs["first"]
    manifest = json.loads(Path(summary["fhir"]["manifest"].removeprefix("file://")).read_text())
    assert set(manifest) >= {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["error"] == [] and manifest["requiresAccessToken"] is False
    lines = export_lines(summary)
    files = export_files(summary)
    counts: Counter[str] = Counter()
    for entry in manifest["output"]:
        name = Path(entry["url"]).name
        assert name.startswith(f"{entry['type']}.") and name.endswith(".ndjson")
        assert entry["count"] == len(files[name]) <= MAX_RESOURCES_PER_FILE
        ids = [json.loads(line)["id"] for line in files[name]]
        assert ids == sorted(ids), name
        counts[entry["type"]] += entry["count"]
    assert counts == {t: len(v) for t, v in lines.items()} == summary["resources"]
    for resource_type, type_lines in lines.items():
        model = fhir.get_fhir_model_class(resource_type)
        ids = [json.loads(line)["id"] for line in type_lines]
        assert len(ids) == len(set(ids)), resource_type
        for line in type_lines:
            resource = model.model_validate(json.loads(line))
            assert resource.get_resource_type() == resource_type


def test_second_run_maps_nothing_and_changes_nothing(runs: dict) -> None:
    second = runs["second"]
    assert second["files"]["processed"] == 0
    assert second["files"]["unchanged"] == second["files"]["found"] == runs["first"]["files"]["found"]
    assert second["fhir"] is None
    assert runs["after_second"] == runs["snapshot"]
    assert len(runs["ledger_second"]) == len(runs["ledger_first"])


def test_full_refresh_gives_identical_tables_and_export(runs: dict) -> None:
    assert runs["refresh"]["files"]["processed"] == runs["first"]["files"]["found"]
    assert runs["after_refresh"] == runs["snapshot"]
    assert export_lines(runs["refresh"]) == export_lines(runs["first"])
    assert Counter(r["status"] for r in runs["ledger_first"]) == Counter(
        {"mapped": runs["first"]["documents"]["mapped"], "rejected": runs["first"]["documents"]["rejected"]}
    )
