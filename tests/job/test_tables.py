"""Delta table properties the job sets at creation: file statistics only for the selection columns, never for an
identifying one, on new tables and (by `sr2fhir maintain`) on tables written by older versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs.config import load_config
from jobs.maintenance import maintain
from jobs.sinks.delta_maintenance import STATS_PROPERTY
from jobs.sinks.identifying import IDENTIFYING_COLUMNS
from jobs.sinks.tables import STATS_COLUMNS
from sr2fhir_synth import write_sample_corpus

from .helpers import run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

from delta.tables import DeltaTable

pytestmark = [pytest.mark.spark]


def test_delta_file_statistics_cover_the_selection_columns_only(spark: SparkSession, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_sample_corpus(lake, count=4)
    run_job(spark, [lake], tmp_path / "out")
    for name in ("measurements", "qualitative_evaluations"):
        log = tmp_path / "out" / "tables" / name / "_delta_log"
        actions = [json.loads(line) for f in sorted(log.glob("*.json")) for line in f.read_text().splitlines()]
        adds = [a["add"] for a in actions if "add" in a]
        expected = {c for c in STATS_COLUMNS if c in spark.read.format("delta").load(str(log.parent)).columns}
        assert {"run_id", "content_sha256", "finding_code"} < expected < set(STATS_COLUMNS)
        assert adds, name
        for add in adds:
            stats = json.loads(add["stats"])
            assert stats["numRecords"] > 0
            assert set(stats["nullCount"]) == expected, name
            assert set(stats["minValues"]) <= expected and {"run_id", "content_sha256"} <= set(stats["minValues"])


def _identifying_values(spark: SparkSession, output: Path) -> set[str]:
    """Every identifying value the tables hold (the long ones: a short one like "1" could be anything)."""
    values: set[str] = set()
    for name in ("measurements", "qualitative_evaluations", "documents"):
        table = spark.read.format("delta").load(str(output / "tables" / name))
        for column in sorted(IDENTIFYING_COLUMNS & set(table.columns)):
            values |= {str(r[0]) for r in table.select(column).distinct().collect() if r[0] is not None}
    return {v for v in values if len(v) >= 6}


def _log_text(output: Path) -> str:
    return "\n".join(f.read_text() for f in sorted((output / "tables").glob("*/_delta_log/*.json")))


def test_no_identifying_value_reaches_a_delta_log(spark: SparkSession, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_sample_corpus(lake, count=4)
    output = tmp_path / "out"
    run_job(spark, [lake], output)
    values = _identifying_values(spark, output)
    assert any(v.startswith("file:") for v in values) and len(values) > 20  # patient ids, dates, UIDs, paths
    text = _log_text(output)
    assert [v for v in values if v in text] == []


def test_maintain_takes_statistics_off_identifying_columns_of_older_tables(spark: SparkSession, tmp_path: Path) -> None:
    """Tables written by versions that kept statistics on patient_id, study_date, paths and UIDs: `sr2fhir maintain`
    sets the property to the spec's columns, and its OPTIMIZE rewrites every file without those statistics."""
    lake = tmp_path / "lake"
    write_sample_corpus(lake, count=4)
    output = tmp_path / "out"
    run_job(spark, [lake], output)
    old = ("study_date", "patient_id", "study_instance_uid", "sop_instance_uid", "source_file", "source_path", "run_id")
    for name in ("measurements", "qualitative_evaluations", "documents", "resources"):
        uri = output / "tables" / name
        columns = ",".join(c for c in old if c in spark.read.format("delta").load(str(uri)).columns)
        spark.sql(f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES ('{STATS_PROPERTY}' = '{columns}')")
    (lake / "more").mkdir()
    write_sample_corpus(lake / "more", count=2)
    run_job(spark, [lake], output)  # files written with the old statistics
    assert any(v in _log_text(output) for v in _identifying_values(spark, output))
    config = load_config(output=str(output), need_inputs=False, overrides=["maintenance.vacuum_retention_hours=null"])
    maintain(spark, config)
    for name in ("measurements", "qualitative_evaluations", "documents", "resources"):
        uri = output / "tables" / name
        properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{uri}`").collect()}
        assert not set(properties[STATS_PROPERTY].split(",")) & IDENTIFYING_COLUMNS, name
        # The current version's files all carry the new statistics (OPTIMIZE rewrote them).
        current = spark.sql(f"DESCRIBE DETAIL delta.`{uri}`").first()
        assert current is not None and current["numFiles"] >= 1
        snapshot = DeltaTable.forPath(spark, str(uri)).toDF().inputFiles()
        stats = _current_stats(uri, {Path(f).name for f in snapshot})
        assert stats and all(not set(s.get("minValues", {})) & IDENTIFYING_COLUMNS for s in stats), name


def _current_stats(table: Path, files: set[str]) -> list[dict]:
    """The statistics the log holds for these data files (their latest `add`)."""
    found: dict[str, dict] = {}
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            add = json.loads(line).get("add")
            if add and Path(add["path"]).name in files and add.get("stats"):
                found[Path(add["path"]).name] = json.loads(add["stats"])
    return list(found.values())
