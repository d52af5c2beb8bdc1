"""`sr2fhir maintain`: keep the Delta tables of an output fast and their storage bounded after many runs.

Every incremental run adds at least one file per table (per `study_year` partition for the research tables) and
every MERGE rewrites files, leaving the replaced ones on storage for time travel. So each table is compacted
(OPTIMIZE, Z-ordered by the column its reads select by) and vacuumed (`TableStore.maintain`,
jobs/sinks/delta_maintenance.py). A resource index written before it was partitioned by resource type is first
rewritten partitioned (one commit), so that each run that looks for deletions reads less of it
(docs/design/incremental.md).

Before the tables, with `maintenance.export_retention_days` set, the FHIR exports (`fhir/<run-id>/`) of committed
runs that started longer ago than that are deleted (Parquet outputs too): they are there for a FHIR server's
bulk import, and each holds a copy of what its run mapped.

A VACUUM retention under Delta's default of 7 days is refused unless the session turns Delta's safety check
`spark.databricks.delta.retentionDurationCheck.enabled` off; the job never turns it off.

OPTIMIZE commits change no rows (`dataChange` false), so the job's next incremental run reads the same table;
run it between runs: a MERGE concurrent with an OPTIMIZE of the same files fails one of them (Delta's conflict
check), and the output's lock keeps `maintain` and `run` apart. Parquet tables are rewritten whole by each run
and need none of this.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pyspark.sql import SparkSession

from . import output_lock, stopping
from .config import JobConfig
from .errors import MaintenanceError
from .layout import Layout, committed_runs, run_started
from .run.context import OutputTables
from .sinks.delta_maintenance import TableReport
from .spark.fs import HadoopFS

log = logging.getLogger("sr2fhir")

SAFE_RETENTION_HOURS = 168
"""Delta's default `delta.deletedFileRetentionDuration` (one week), below which its safety check refuses VACUUM."""
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


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
        return _maintain(spark, config, fs, Layout(output))


def _maintain(spark: SparkSession, config: JobConfig, fs: HadoopFS, layout: Layout) -> Report:
    hours = config.maintenance.vacuum_retention_hours
    if (
        config.out.table_format == "delta"
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
        exports = remove_old_exports(fs, layout, days=days, now=datetime.now(UTC))
        log.info("maintain exports: %d removed, %d kept", exports.removed, exports.kept)
    reports: dict[str, TableReport] = {}
    for name, store in OutputTables.open(spark, fs, layout, config).all().items():
        stopping.check()  # asked to stop (SIGTERM): the tables done so far stay done
        report = store.maintain(config.maintenance)
        if report is not None:
            reports[name] = report
            log.info("maintain %s: %s", name, report.as_dict())
    if not reports:
        log.info("no table to maintain (no Delta table under the output: Parquet tables are rewritten by each run)")
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
