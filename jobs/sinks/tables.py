"""The research tables (`measurements`, `qualitative_evaluations`): Delta Lake by default, Parquet on request.

Rows are the core's (`TABLE_SCHEMAS`) plus job columns: `source_file` (the stored file; for archive
members the archive), `content_sha256` (of the input's bytes), `run_id` (the run that wrote the row) and
`study_year` (the partition column).

Replacing, not adding: a run maps only new or changed files, and every row of a re-mapped file must be
replaced by the new rows, including rows the new mapping no longer produces (a changed file may have other
measurements, or be rejected now). Delta does this in one atomic MERGE keyed on (source_path,
observation_id): new rows update or insert, and the old rows of the re-mapped files that have no new row
are deleted. A run killed before or during the MERGE leaves the table at its previous version; the files
are not in the ledger yet, so the next run maps them again and the MERGE is a no-op for rows already there
(`recovery` makes sure it does, even for a file deleted or restored to its old size and time in between).
A run whose files are all new to the ledger has nothing to replace and appends instead (a MERGE reads the whole
table's keys); if it is killed before its ledger commit, the next run deletes its rows first (`delete_runs`).

Parquet has no transactions: the table is rewritten as a whole into a sibling folder and swapped in.

Files gone from the lake (`incremental.removed_files: delete`) are in the MERGE's scope with no new rows, so
their rows go in the same commit; a run that maps nothing deletes them with `remove_files`.
"""

from __future__ import annotations

import logging

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import mapping
from ..fs import HadoopFS

log = logging.getLogger("sr2fhir")

TABLES = mapping.TABLES
KEY = ("source_path", "observation_id")
SCOPE = "source_file"
PARTITION_COLUMN = "study_year"
PARTITION_EXPRESSION = "YEAR(study_date)"
AUTO_COMPACT = "delta.autoOptimize.autoCompact"
"""Delta table property: after a commit, compact the small files of the partitions it wrote (`jobs/maintenance`)."""
STATS_PROPERTY = "delta.dataSkippingStatsColumns"
"""Delta table property: the columns with file statistics (`STATS_COLUMNS`), comma-separated."""
STATS_COLUMNS = (
    "study_date",
    "patient_id",
    "study_instance_uid",
    "sop_instance_uid",
    "source_file",
    "source_path",
    "run_id",
    "finding_code",
    "measurement_code",
    "evaluation_code",
)
"""Columns with Delta file statistics (data skipping): cohort, patient, study and report selection, the MERGE
scope's and key's file (`source_file` is also what `sr2fhir maintain` Z-orders by), the run (deleting a killed
run's rows) and the codes a table is queried by."""


def table_rows(staged: DataFrame, table: str, run_id: str) -> DataFrame:
    """The table's rows of this run, from the staged rows of its kind (Parquet reads only their columns)."""
    rows = staged.where(F.col("kind") == table)
    return rows.select(f"{table}.*", SCOPE, "content_sha256", F.lit(run_id).alias("run_id"))


def write_delta(
    spark: SparkSession,
    fs: HadoopFS,
    uri: str,
    rows: DataFrame,
    scope: DataFrame,
    *,
    partition_by: tuple[str, ...],
    replace: bool,
    merge: bool = True,
    auto_compact: bool = False,
) -> None:
    """One commit: overwrite (full refresh), append (a table never written to, or `merge` false: no file in
    `scope` has rows in the table) or MERGE (incremental)."""
    from delta.tables import DeltaTable

    created = _create_delta(spark, fs, uri, rows, partition_by, auto_compact)
    if replace:
        rows.write.format("delta").mode("overwrite").save(uri)
        return
    if created or not merge or not _written(fs, uri):
        rows.write.format("delta").mode("append").save(uri)
        return
    target = DeltaTable.forPath(spark, uri)
    new_keys = rows.select(*KEY)
    old_keys = target.toDF().select(*KEY, SCOPE).join(scope, SCOPE, "left_semi").drop(SCOPE)
    deletions = old_keys.join(new_keys, list(KEY), "left_anti").withColumn("_delete", F.lit(True))
    source = rows.withColumn("_delete", F.lit(False)).unionByName(deletions, allowMissingColumns=True)
    values: dict[str, str | Column] = {c: f"s.`{c}`" for c in rows.columns}
    condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in KEY)
    (
        target.alias("t")
        .merge(source.alias("s"), condition)
        .whenMatchedDelete(condition="s._delete")
        .whenMatchedUpdate(set=values)
        .whenNotMatchedInsert(condition="NOT s._delete", values=values)
        .execute()
    )


def _written(fs: HadoopFS, uri: str) -> bool:
    """Whether any commit after the table's creation (version 0) exists: the log's file names are fixed by
    the Delta protocol, and listing them is far cheaper than reading the table's state."""
    return any(
        f.name.endswith(".json") and f.name[:20].isdigit() and int(f.name[:20]) > 0
        for f in fs.list_dir(f"{uri}/_delta_log")
    )


def _create_delta(
    spark: SparkSession, fs: HadoopFS, uri: str, rows: DataFrame, partition_by: tuple[str, ...], auto_compact: bool
) -> bool:
    """Create the table if absent (True when created), with study_year generated from study_date: Delta
    then derives a partition filter from any filter on study_date, and fills the column on every write."""
    from delta.tables import DeltaTable

    if fs.exists(f"{uri}/_delta_log"):
        return False
    builder = DeltaTable.createIfNotExists(spark).location(uri).addColumns(rows.schema)
    if PARTITION_COLUMN in partition_by:
        builder = builder.addColumn(PARTITION_COLUMN, "INT", generatedAlwaysAs=PARTITION_EXPRESSION)
    # Optimized writes: Delta shuffles rows by partition before writing, one file per year per write
    # instead of one per task and year.
    builder = builder.partitionedBy(*partition_by).property("delta.autoOptimize.optimizeWrite", "true")
    if auto_compact:
        builder = builder.property(AUTO_COMPACT, "true")
    # File statistics (min, max, nulls) only for the columns queries and joins select by, not Delta's default of
    # the first 32 columns: collecting them is per row, ~0.3-0.5 ms of JVM CPU per SR file for all 32.
    stats = [c for c in STATS_COLUMNS if c in rows.columns]
    builder.property(STATS_PROPERTY, ",".join(stats)).execute()
    return True


def write_parquet(
    spark: SparkSession,
    fs: HadoopFS,
    uri: str,
    rows: DataFrame,
    scope: DataFrame,
    *,
    partition_by: tuple[str, ...],
    replace: bool,
) -> None:
    """Rewrite the table: its rows of files not re-mapped, plus the new rows, into `<uri>.next`, then swap.
    A run killed before the swap leaves the old table; `recover_parquet` finishes an interrupted swap."""
    if PARTITION_COLUMN in partition_by:
        rows = rows.withColumn(PARTITION_COLUMN, F.expr(PARTITION_EXPRESSION))
    recover_parquet(fs, uri)
    if not replace and fs.exists(uri):
        kept = spark.read.schema(rows.schema).parquet(uri).join(scope, SCOPE, "left_anti")
        rows = kept.unionByName(rows)
    _swap_in(fs, uri, rows, partition_by)


def _swap_in(fs: HadoopFS, uri: str, rows: DataFrame, partition_by: tuple[str, ...]) -> None:
    staging, previous = f"{uri}.next", f"{uri}.previous"
    rows.write.mode("overwrite").partitionBy(*partition_by).parquet(staging)
    if fs.exists(uri):
        fs.rename(uri, previous)
    fs.rename(staging, uri)
    fs.delete(previous)


def remove_files(
    spark: SparkSession,
    fs: HadoopFS,
    uri: str,
    removed: DataFrame,
    *,
    table_format: str,
    partition_by: tuple[str, ...],
) -> None:
    """Delete every row of the files in `removed` (its `source_file` column): one commit, or one swap."""
    if table_format == "delta":
        from delta.tables import DeltaTable

        if not fs.exists(f"{uri}/_delta_log"):
            return
        # A MERGE rather than delete(isin(...)): the list of files can be long, and a join scales where a
        # predicate of literals does not.
        target = DeltaTable.forPath(spark, uri)
        target.alias("t").merge(
            removed.select(SCOPE).alias("s"), f"t.`{SCOPE}` = s.`{SCOPE}`"
        ).whenMatchedDelete().execute()
        return
    if not fs.exists(uri):  # (an interrupted swap was recovered when the run started)
        return
    kept = spark.read.parquet(uri).join(F.broadcast(removed.select(SCOPE)), SCOPE, "left_anti")
    _swap_in(fs, uri, kept, partition_by)


def delete_runs(spark: SparkSession, fs: HadoopFS, uri: str, run_ids: list[str]) -> None:
    """Delete the rows a Delta table holds of these runs (killed before their ledger commit): `run_id` has file
    statistics, so only the files those runs wrote are read."""
    from delta.tables import DeltaTable

    if not fs.exists(f"{uri}/_delta_log"):
        return
    log.warning("deleting the rows of interrupted runs from %s: %s", uri, ", ".join(run_ids))
    DeltaTable.forPath(spark, uri).delete(F.col("run_id").isin(run_ids))


def recover_parquet(fs: HadoopFS, uri: str) -> None:
    """Undo what a killed swap left: a missing table comes back from `.previous`; a stale `.next` goes."""
    previous = f"{uri}.previous"
    if not fs.exists(uri) and fs.exists(previous):
        log.warning("restoring %s from an interrupted run", uri)
        fs.rename(previous, uri)
    fs.delete(previous)
    fs.delete(f"{uri}.next")


def read_table(spark: SparkSession, uri: str, table_format: str) -> DataFrame:
    """A table as the job wrote it. Never read a Delta folder as Parquet: it holds replaced files too."""
    return spark.read.format(table_format).load(uri)
