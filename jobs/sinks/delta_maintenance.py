"""OPTIMIZE and VACUUM of one Delta table (`DeltaStore.maintain`, run by `sr2fhir maintain`, jobs/maintenance.py).

1. table properties: `delta.autoOptimize.autoCompact` as `maintenance.auto_compact` says, and file statistics on
   the Z-order column (tables written before that column had statistics get them for the files written from now
   on; OPTIMIZE ZORDER rewrites the others);
2. OPTIMIZE: small files bin-packed into large ones, or with `maintenance.zorder`, every file of the table
   rewritten sorted (Z-ordered) by the column its reads select by (`TableSpec.zorder_by`);
3. VACUUM with `maintenance.vacuum_retention_hours`: files no table version of that age still needs are deleted.
   Delta 4 takes the retention from the table property `delta.deletedFileRetentionDuration` (a VACUUM's own
   retention other than 0 is ignored), so step 1 sets that property, which also bounds time travel.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import SparkSession

from ..config import MaintenanceConfig
from ..spark.fs import HadoopFS

AUTO_COMPACT = "delta.autoOptimize.autoCompact"
"""Table property: after a commit, compact the small files of the partitions it wrote."""
OPTIMIZE_WRITE = "delta.autoOptimize.optimizeWrite"
"""Table property: rows are shuffled by partition before a write, one file per partition and write."""
STATS_PROPERTY = "delta.dataSkippingStatsColumns"
"""Table property: the columns with file statistics, comma-separated."""
RETENTION = "delta.deletedFileRetentionDuration"


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


def relayout(spark: SparkSession, uri: str, partition_by: tuple[str, ...], stats_columns: tuple[str, ...]) -> bool:
    """Partition a table written before it was partitioned so (the same rows, in an overwrite commit after a
    property commit); False when it already is."""
    from delta.tables import DeltaTable

    detail = DeltaTable.forPath(spark, uri).detail().first()
    if detail is not None and list(detail["partitionColumns"]) == list(partition_by):
        return False
    # Older tables may have statistics on a column that is now a partition column, which Delta refuses.
    spark.sql(f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES ('{STATS_PROPERTY}' = '{','.join(stats_columns)}')")
    rows = spark.read.format("delta").load(uri)
    rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy(*partition_by).save(uri)
    return True


def maintain_table(
    spark: SparkSession,
    fs: HadoopFS,
    name: str,
    uri: str,
    settings: MaintenanceConfig,
    zorder_column: str | None,
    stats_columns: tuple[str, ...],
) -> TableReport:
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, uri)
    zorder_by = zorder_column if settings.zorder else None
    set_properties(
        spark,
        table,
        uri,
        auto_compact=settings.auto_compact,
        stats_columns=stats_columns,
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
    """VACUUM lists the table's folders in this many tasks: one per core, each listing several folders, instead of
    Spark's default 10,000, mostly empty tasks that cost more than the listing (docs/design/maintenance.md)."""
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
    stats_columns: tuple[str, ...],
    retention_hours: int | None,
) -> None:
    """One ALTER TABLE for the properties that differ from what maintenance wants (none: no commit)."""
    properties: dict[str, str] = dict(table.detail().select("properties").first()["properties"] or {})
    wanted: dict[str, str] = {}
    if properties.get(AUTO_COMPACT, "false") != str(auto_compact).lower():
        wanted[AUTO_COMPACT] = str(auto_compact).lower()
    # The spec's statistics columns, whatever the table had: older versions took statistics on identifying columns
    # (`identifying.IDENTIFYING_COLUMNS`), or on the first 32. Files written from now on, and every file OPTIMIZE
    # rewrites, carry only these.
    columns = set(table.toDF().columns)
    stats = ",".join(c for c in stats_columns if c in columns)
    if stats and properties.get(STATS_PROPERTY) != stats:
        wanted[STATS_PROPERTY] = stats
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
