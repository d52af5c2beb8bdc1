"""Table maintenance (`jobs/maintenance.py`, `sr2fhir maintain`) on the output of several small incremental runs:
fewer files and the same rows after OPTIMIZE, replaced files gone after VACUUM, and the job still incremental
afterwards, with the tables a fresh run of the same lake writes. One sequence of runs, shared by the tests."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs import layout, maintenance
from jobs.config import load_config
from jobs.sinks import delta_maintenance
from jobs.spark.fs import HadoopFS

from .helpers import TABLES, operations, run_job, table_rows, table_snapshot

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]

RUNS = 3
ALL_TABLES = (*TABLES, "documents", "resources")
CATALOG_SCHEMA = "sr2fhir_maintenance"
"""`output.catalog_schema` of the runs: the session's catalog is shared by the worker's modules, hence a name of
this module's own."""


@dataclass
class Runs:
    lake: Path
    output: Path
    rows: dict[str, list[dict]]
    """Every table's rows after the runs (without run ids), ledger and index included."""


def snapshot(spark: SparkSession, output: Path) -> dict[str, list[dict]]:
    return {
        **table_snapshot(spark, output),
        "documents": table_rows(spark, output, "documents", drop=("run_id", "processed_at")),
        "resources": table_rows(spark, output, "resources"),
    }


def data_files(spark: SparkSession, output: Path, name: str) -> int:
    from delta.tables import DeltaTable

    return delta_maintenance.data_files(DeltaTable.forPath(spark, str(output / "tables" / name)))


def stored_files(output: Path, name: str) -> int:
    """Data files in the table's folder, current or not (not the log's checkpoints)."""
    return sum(1 for p in (output / "tables" / name).rglob("*.parquet") if "_delta_log" not in p.parts)


def maintain(spark: SparkSession, output: Path, *overrides: str) -> maintenance.Report:
    return maintenance.maintain(spark, load_config(output=str(output), overrides=list(overrides), need_inputs=False))


@pytest.fixture(scope="module")
def runs(spark: SparkSession, sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The sample lake arriving over RUNS runs (a few files each), auto compaction off so that files pile up."""
    work = tmp_path_factory.mktemp("maintenance")
    lake, output = work / "lake", work / "out"
    files = sorted(p for p in sample.rglob("*") if p.is_file())
    for number in range(RUNS):
        for path in files[number::RUNS]:
            target = lake / path.relative_to(sample)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        overrides = ["maintenance.auto_compact=false", f"output.catalog_schema={CATALOG_SCHEMA}"]
        summary = run_job(spark, [lake], output, overrides=overrides)
        assert summary["files"]["processed"] == len(files[number::RUNS])
    return Runs(lake, output, snapshot(spark, output))


def test_every_run_registers_the_tables_in_the_catalog_once(spark: SparkSession, runs: Runs) -> None:
    """`output.catalog_schema`: after the runs, each Delta table is an external table of the schema at the output's
    folder, and a query by name reads its rows. The shared session's catalog is Spark's in-memory one; the same
    statements against a Hive metastore are tests/job/test_sample_and_notebook.py's."""
    from jobs.errors import CatalogError
    from jobs.run.catalog import register_tables, table_location

    fs = HadoopFS(spark)
    tables = {name: fs.qualify(str(runs.output / "tables" / name)) for name in ALL_TABLES}
    assert {t.name for t in spark.catalog.listTables(CATALOG_SCHEMA)} == set(ALL_TABLES)
    for name in ALL_TABLES:
        assert table_location(spark, f"{CATALOG_SCHEMA}.{name}") == tables[name]
        assert spark.catalog.getTable(f"{CATALOG_SCHEMA}.{name}").tableType == "EXTERNAL"
        drop = ("run_id", "processed_at") if name == "documents" else ("run_id",)
        rows = spark.sql(f"SELECT * FROM {CATALOG_SCHEMA}.{name}").drop(*drop).collect()
        assert sorted(rows_as_json(rows)) == sorted(rows_as_json(runs.rows[name])), name
    assert register_tables(spark, fs, CATALOG_SCHEMA, tables) == []  # a later run registers nothing new
    elsewhere = {"measurements": fs.qualify(str(runs.output / "other-output" / "measurements"))}
    with pytest.raises(CatalogError, match=f"{CATALOG_SCHEMA}.measurements is already registered at"):
        register_tables(spark, fs, CATALOG_SCHEMA, elsewhere)


def rows_as_json(rows: list) -> list[str]:
    as_dicts = (r if isinstance(r, dict) else r.asDict(recursive=True) for r in rows)
    return [json.dumps(r, sort_keys=True, default=str) for r in as_dicts]


def test_maintain_compacts_then_vacuums_and_the_job_goes_on(spark: SparkSession, runs: Runs, tmp_path: Path) -> None:
    output = runs.output
    before = {name: data_files(spark, output, name) for name in ALL_TABLES}
    assert all(before[name] >= RUNS for name in ALL_TABLES), before  # at least one file per run and table

    # A research table of an older version kept statistics on `source_file` (a lake path, often identifying) and
    # none on `content_sha256`; maintenance sets the current statistics columns back.
    measurements = output / "tables" / "measurements"
    stats = delta_maintenance.STATS_PROPERTY

    def statistics_columns() -> str:
        return spark.sql(f"SHOW TBLPROPERTIES delta.`{measurements}`").where(f"key = '{stats}'").collect()[0]["value"]

    current = statistics_columns()
    assert "source_file" not in current.split(",") and "content_sha256" in current.split(",")
    legacy = ",".join(["source_file", *(column for column in current.split(",") if column != "content_sha256")])
    spark.sql(f"ALTER TABLE delta.`{measurements}` SET TBLPROPERTIES ('{stats}' = '{legacy}')")

    # The default retention (7 days) keeps every replaced file: time travel to the runs still works.
    reports = maintain(spark, output).tables
    assert statistics_columns() == current
    assert set(reports) == set(ALL_TABLES)
    for name in ALL_TABLES:
        after = data_files(spark, output, name)
        assert after < before[name], name
        assert reports[name].files_before == before[name] and reports[name].files_after == after
        assert reports[name].stored_after == reports[name].stored_before == stored_files(output, name)
        assert stored_files(output, name) >= before[name] + after, name
        assert "OPTIMIZE" in operations(spark, output, name), name
    assert snapshot(spark, output) == runs.rows
    for name in TABLES:  # research tables partitioned by year: at most one file per year after OPTIMIZE
        years = {r["study_year"] for r in runs.rows[name]}
        assert data_files(spark, output, name) <= len(years), name
    research = f"{output}/tables/measurements"
    assert spark.read.format("delta").option("versionAsOf", 1).load(research).count() > 0

    # A resource index written before it was partitioned by type (older versions) is partitioned again by the
    # next maintain (the VACUUM below), with the same rows and statistics columns.
    index_uri = str(output / "tables" / "resources")

    def index_layout() -> tuple[list[str], str]:
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{index_uri}`").first()
        assert detail is not None
        return list(detail["partitionColumns"]), detail["properties"][stats]

    partitioned = index_layout()
    assert partitioned == (["resource_type"], "run_id,resource_id")
    rows = spark.read.format("delta").load(index_uri)
    rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(index_uri)
    legacy_index = "run_id,source_file,resource_type,resource_id"
    spark.sql(f"ALTER TABLE delta.`{index_uri}` SET TBLPROPERTIES ('{stats}' = '{legacy_index}')")
    assert index_layout() == ([], legacy_index)

    # A retention under Delta's week is refused while its safety check is on...
    with pytest.raises(maintenance.MaintenanceError, match="safe minimum"):
        maintain(spark, output, "maintenance.vacuum_retention_hours=0")
    # ... and with it off (tests only), every file the current versions do not hold goes.
    spark.conf.set(maintenance.RETENTION_CHECK, "false")
    try:
        maintain(spark, output, "maintenance.vacuum_retention_hours=0")
    finally:
        spark.conf.unset(maintenance.RETENTION_CHECK)
    for name in ALL_TABLES:
        assert stored_files(output, name) == data_files(spark, output, name), name
    assert snapshot(spark, output) == runs.rows
    assert index_layout() == partitioned
    with pytest.raises(Exception, match=r"(?i)versionAsOf|retention|not found|does not exist|FileNotFound|vacuum"):
        spark.read.format("delta").option("versionAsOf", 1).load(research).collect()

    # The job goes on incrementally: a changed report and a new one, then the tables equal a fresh run's.
    lake = runs.lake
    reports_in_lake = sorted(p for p in lake.rglob("*") if p.is_file())
    changed = reports_in_lake[0]
    changed.write_bytes(reports_in_lake[1].read_bytes())
    (lake / "arrived late.dcm").write_bytes(reports_in_lake[2].read_bytes())
    commits = len(operations(spark, output, "measurements"))
    summary = run_job(spark, [lake], output)
    assert summary["files"]["processed"] == 2
    assert operations(spark, output, "measurements")[commits:][0] == "MERGE"  # (auto compaction may follow)
    fresh = tmp_path / "fresh"
    run_job(spark, [lake], fresh)
    assert table_snapshot(spark, output) == table_snapshot(spark, fresh)

    # FHIR exports: with export_retention_days (default null: kept), a committed run's goes once it started that
    # long ago. A folder without a run summary (a killed run's) and one not named like a run stay.
    runs_ids = sorted(path.stem for path in (output / "runs").glob("*.json"))
    assert sorted(path.name for path in (output / "fhir").iterdir()) == runs_ids and len(runs_ids) == RUNS + 1
    killed, other = output / "fhir" / "20000101T000000000000Z-0a0b0c", output / "fhir" / "notes"
    for folder in (killed, other):
        folder.mkdir()
        (folder / "manifest.json").write_text("{}")
    third_started = layout.run_started(runs_ids[2])
    assert third_started is not None
    exports = maintenance.remove_old_exports(
        HadoopFS(spark), layout.Layout(output.as_uri()), days=1, now=third_started + timedelta(days=1)
    )
    assert (exports.removed, exports.kept) == (2, RUNS + 1 - 2 + 2)
    assert sorted(path.name for path in (output / "fhir").iterdir()) == sorted([*runs_ids[2:], killed.name, "notes"])
    settings = ("maintenance.vacuum_retention_hours=null", "maintenance.zorder=false")  # bin-packing: nothing to do
    report = maintain(spark, output, "maintenance.export_retention_days=0", *settings)
    assert report.exports == maintenance.ExportReport(removed=RUNS + 1 - 2, kept=2)
    assert sorted(path.name for path in (output / "fhir").iterdir()) == sorted([killed.name, "notes"])
    assert sorted(path.stem for path in (output / "runs").glob("*.json")) == runs_ids


def test_auto_compaction_bounds_the_files_of_incremental_runs(
    spark: SparkSession, sample: Path, tmp_path: Path
) -> None:
    """With auto compaction, Delta compacts a partition after a commit once it holds `minNumFiles` small files: 2
    here instead of Delta's 50, so that a few runs show it."""
    lake, output = tmp_path / "lake", tmp_path / "out"
    lake.mkdir()
    report = next(p for p in sorted(sample.rglob("*.dcm")) if "truncated" not in p.name and "basic" not in p.name)
    minimum = "spark.databricks.delta.autoCompact.minNumFiles"
    spark.conf.set(minimum, "2")
    try:
        for number in range(3):  # copies of one report: one year, so each run adds a file to the same partition
            shutil.copy2(report, lake / f"copy-{number}.dcm")
            run_job(spark, [lake], output, overrides=["maintenance.auto_compact=true"])
    finally:
        spark.conf.unset(minimum)
    for name in ("measurements", "documents", "resources"):
        assert "OPTIMIZE" in operations(spark, output, name), name
    # Three runs of one file each: without compaction three files per partition (the index has one per type).
    assert data_files(spark, output, "measurements") < 3 and data_files(spark, output, "documents") < 3
    index = spark.read.format("delta").load(str(output / "tables" / "resources"))
    assert data_files(spark, output, "resources") < 3 * index.select("resource_type").distinct().count()
    fresh = tmp_path / "fresh"
    run_job(spark, [lake], fresh)
    assert table_snapshot(spark, output) == table_snapshot(spark, fresh)


def test_parquet_output_needs_no_maintenance(spark: SparkSession, tmp_path: Path) -> None:
    report = maintain(spark, tmp_path / "out", "output.table_format=parquet")
    assert report.tables == {} and report.exports is None
