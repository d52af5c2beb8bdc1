"""`sr2fhir maintain`: keep the Delta tables of an output fast and their storage bounded after many runs.

Every incremental run adds at least one file per table (per `study_year` partition for the research tables) and
every MERGE rewrites files, leaving the replaced ones on storage for time travel. Per table, in this order:

1. table properties: `delta.autoOptimize.autoCompact` as `maintenance.auto_compact` says, and file statistics on
   the Z-order column (tables written before `source_file` had statistics get them for the files written from
   now on; OPTIMIZE ZORDER rewrites the others);
2. OPTIMIZE: small files bin-packed into large ones, or with `maintenance.zorder`, every file of the table
   rewritten sorted (Z-ordered) by the column its reads select by (`ZORDER_BY`), so that a per-report lookup
   reads a few files rather than all, and the incremental MERGE scans few large files instead of many small ones;
3. VACUUM with `maintenance.vacuum_retention_hours`: files no table version of that age still needs are deleted.
   Delta 4 takes the retention from the table property `delta.deletedFileRetentionDuration` (a VACUUM's own
   retention other than 0 is ignored), so step 1 sets that property, which also bounds time travel. A retention
   under Delta's default of 7 days is refused unless the session turns Delta's safety check
   `spark.databricks.delta.retentionDurationCheck.enabled` off; the job never turns it off.

A resource index written before it was partitioned by resource type is first rewritten partitioned (one commit;
`jobs/sinks/index.py` says what that saves each run that looks for deletions).

Before the tables, with `maintenance.export_retention_days` set, the FHIR exports (`fhir/<run-id>/`) of committed
runs that started longer ago than that are deleted (Parquet outputs too): they are there for a FHIR server's
bulk import, and each holds a copy of what its run mapped.

OPTIMIZE commits change no rows (`dataChange` false), so the job's next incremental run reads the same table;
run it between runs: a MERGE concurrent with an OPTIMIZE of the same files fails one of them (Delta's conflict
check), and a scheduled run that fails maps the same files next time. Parquet tables are rewritten whole by each
run and need none of this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyspark.sql import SparkSession

from . import output_lock, stopping
from .config import JobConfig
from .fs import HadoopFS
from .sinks import index, tables
from .sr_to_fhir import Layout, committed_runs, run_started

log = logging.getLogger("sr2fhir")

AUTO_COMPACT = tables.AUTO_COMPACT
STATS_PROPERTY = tables.STATS_PROPERTY
RETENTION = "delta.deletedFileRetentionDuration"
SAFE_RETENTION_HOURS = 168
"""Delta's default `delta.deletedFileRetentionDuration` (one week), below which its safety check refuses VACUUM."""
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


class MaintenanceError(RuntimeError):
    pass


ZORDER_BY: dict[str, str | None] = {
    # The MERGE's scope and key's file, and what a per-report lookup names.
    "measurements": tables.SCOPE,
    "qualitative_evaluations": tables.SCOPE,
    # Read whole by every run (each file's latest state): bin-packing is what helps, a sort order does not.
    "documents": None,
    # Deletions and the prune read the entries of a few runs by a literal filter on run_id.
    index.NAME: "run_id",
}
"""The tables `maintain` keeps, each with the column OPTIMIZE Z-orders it by (None: bin-packing only)."""


@dataclass(frozen=True, slots=True)
class TableReport:
    table: str
    files_before: int
    """Data files in the table's current version, before OPTIMIZE."""
    files_after: int
    """... and after it."""
    stored_before: int
    """Parquet files in the table's folder (current, replaced and failed writes' files), before VACUUM ..."""
    stored_after: int
    """... and after it."""
    optimize_seconds: float
    vacuum_seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "files_before": self.files_before,
            "files_after": self.files_after,
            "stored_before": self.stored_before,
            "stored_after": self.stored_after,
            "optimize_seconds": self.optimize_seconds,
            "vacuum_seconds": self.vacuum_seconds,
        }


@dataclass(frozen=True, slots=True)
class ExportReport:
    removed: int
    """Export folders deleted: those of committed runs that started before the cutoff."""
    kept: int
    """The other folders under `fhir/`: younger runs', and killed runs' (the job's next start removes them)."""


@dataclass(frozen=True, slots=True)
class Report:
    tables: dict[str, TableReport] = field(default_factory=dict)
    """By table name: the Delta tables found (none for Parquet output)."""
    exports: ExportReport | None = None
    """None when `maintenance.export_retention_days` is null."""

    def as_dict(self) -> dict[str, object]:
        return {
            "tables": {name: report.as_dict() for name, report in self.tables.items()},
            "exports": None if self.exports is None else {"removed": self.exports.removed, "kept": self.exports.kept},
        }


def table_uris(output: str) -> dict[str, str]:
    """The Delta tables under an output, by name."""
    return {name: Layout(output).table(name) for name in ZORDER_BY}


def maintain(spark: SparkSession, config: JobConfig) -> Report:
    """Delete old FHIR exports if configured, then OPTIMIZE (and VACUUM) every Delta table of `config.output`;
    returns what each held before and after."""
    fs = HadoopFS(spark)
    output = fs.qualify(config.output)
    lock = (
        output_lock.holding(fs, output, "maintain", expiry_seconds=config.out.lock_expiry_seconds)
        if fs.exists(output)
        else nullcontext()  # nothing to maintain, and no folder made for a lock
    )
    with lock:
        return _maintain(spark, config, fs, output)


def _maintain(spark: SparkSession, config: JobConfig, fs: HadoopFS, output: str) -> Report:
    delta = config.out.table_format == "delta"
    hours = config.maintenance.vacuum_retention_hours
    if (
        delta
        and hours is not None
        and hours < SAFE_RETENTION_HOURS
        and spark.conf.get(RETENTION_CHECK, "true") != "false"
    ):
        raise MaintenanceError(
            f"maintenance.vacuum_retention_hours {hours} is under Delta's safe minimum of {SAFE_RETENTION_HOURS}: a"
            f" run or query older than that could lose files it reads (set {RETENTION_CHECK}=false to allow it)"
        )
    exports = None
    if (days := config.maintenance.export_retention_days) is not None:
        exports = remove_old_exports(fs, Layout(output), days=days, now=datetime.now(UTC))
        log.info("maintain exports: %d removed, %d kept", exports.removed, exports.kept)
    if not delta:
        log.info("Parquet tables are rewritten whole by each run: no table to maintain")
        return Report(exports=exports)
    reports: dict[str, TableReport] = {}
    for name, uri in table_uris(output).items():
        stopping.check()  # asked to stop (SIGTERM): the tables done so far stay done
        if not fs.exists(f"{uri}/_delta_log"):
            continue
        if name == index.NAME and index.relayout(spark, uri):
            log.info("maintain %s: partitioned by %s (written before it was)", name, index.PARTITION_BY)
        reports[name] = maintain_table(spark, fs, name, uri, config)
        log.info("maintain %s: %s", name, reports[name].as_dict())
    return Report(tables=reports, exports=exports)


def remove_old_exports(fs: HadoopFS, layout: Layout, *, days: int, now: datetime) -> ExportReport:
    """Delete the export folders of committed runs (those with a run summary) that started more than `days` days
    before `now` (from the run id). A folder without a summary is a killed run's, which the job's next start
    removes, or that of a run under way: left alone, as is anything not named like a run."""
    cutoff = now - timedelta(days=days)
    committed = committed_runs(fs, layout)
    removed = kept = 0
    for folder in sorted(fs.list_dir(layout.exports), key=lambda status: status.name):
        started = run_started(folder.name)
        if folder.is_dir and folder.name in committed and started is not None and started < cutoff:
            fs.delete(folder.uri)
            removed += 1
        else:
            kept += 1
    return ExportReport(removed=removed, kept=kept)


def maintain_table(spark: SparkSession, fs: HadoopFS, name: str, uri: str, config: JobConfig) -> TableReport:
    from delta.tables import DeltaTable

    settings = config.maintenance
    table = DeltaTable.forPath(spark, uri)
    zorder_by = ZORDER_BY[name] if settings.zorder else None
    set_properties(
        spark,
        table,
        uri,
        auto_compact=settings.auto_compact,
        stats_column=zorder_by,
        retention_hours=settings.vacuum_retention_hours,
    )
    files_before = data_files(table)
    started = time.monotonic()
    optimizer = table.optimize()
    if zorder_by is None:
        optimizer.executeCompaction()
    else:
        optimizer.executeZOrderBy(zorder_by)
    optimize_seconds = time.monotonic() - started
    files_after = data_files(table)
    stored_before = stored_files(fs, uri)
    started = time.monotonic()
    if settings.vacuum_retention_hours is not None:
        with _listing_parallelism(spark):
            # The retention is the table property set above: Delta 4 ignores a VACUUM's own retention other
            # than 0, with a console warning, so none is given.
            table.vacuum()
    vacuum_seconds = time.monotonic() - started
    return TableReport(
        table=name,
        files_before=files_before,
        files_after=files_after,
        stored_before=stored_before,
        stored_after=stored_files(fs, uri) if settings.vacuum_retention_hours is not None else stored_before,
        optimize_seconds=round(optimize_seconds, 3),
        vacuum_seconds=round(vacuum_seconds, 3),
    )


LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


@contextmanager
def _listing_parallelism(spark: SparkSession) -> Iterator[None]:
    """VACUUM lists the table's folders in this many tasks (Spark's default 10,000: ~45 s of empty tasks per
    table on two cores, measured): one per core instead; each task lists several folders."""
    previous = spark.conf.get(LISTING_PARALLELISM, None)
    spark.conf.set(LISTING_PARALLELISM, str(max(spark.sparkContext.defaultParallelism, 1)))
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(LISTING_PARALLELISM)
        else:
            spark.conf.set(LISTING_PARALLELISM, previous)


def set_properties(
    spark: SparkSession,
    table,
    uri: str,
    *,
    auto_compact: bool,
    stats_column: str | None,
    retention_hours: int | None,
) -> None:
    """One ALTER TABLE for the properties that differ from what maintenance wants (none: no commit)."""
    properties: dict[str, str] = dict(table.detail().select("properties").first()["properties"] or {})
    wanted: dict[str, str] = {}
    if properties.get(AUTO_COMPACT, "false") != str(auto_compact).lower():
        wanted[AUTO_COMPACT] = str(auto_compact).lower()
    stats = properties.get(STATS_PROPERTY)
    # Z-ordering needs statistics on its column: a table that names its statistics columns must name it too
    # (one without the property has statistics on its first 32 columns).
    if stats_column is not None and stats is not None and stats_column not in stats.split(","):
        wanted[STATS_PROPERTY] = f"{stats},{stats_column}"
    if retention_hours is not None and properties.get(RETENTION) != f"interval {retention_hours} hours":
        wanted[RETENTION] = f"interval {retention_hours} hours"
    if wanted:
        assignments = ", ".join(f"'{key}' = '{value}'" for key, value in sorted(wanted.items()))
        spark.sql(f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES ({assignments})")


def data_files(table) -> int:
    """Files in the table's current version."""
    return int(table.detail().select("numFiles").first()["numFiles"])


def stored_files(fs: HadoopFS, uri: str) -> int:
    """Parquet files in the table's folder, whether the current version has them or not."""
    return sum(1 for f in fs.list_files(uri) if f.name.endswith(".parquet") and "/_delta_log/" not in f.uri)
