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
table's keys); if it is killed before its ledger commit, the next run deletes its rows first (`run.recover`).

Parquet has no transactions: the table is rewritten as a whole into a sibling folder and swapped in
(`store.ParquetStore`).

Files gone from the lake (`incremental.removed_files: delete`) are in the MERGE's scope with no new rows, so
their rows go in the same commit; a run that maps nothing deletes them with `remove_files`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import staging
from ..config import JobConfig
from ..spark.fs import HadoopFS
from .store import TableSpec, TableStore, open_store

TABLES = staging.TABLES
KEY = ("source_path", "observation_id")
SCOPE = "source_file"
PARTITION_COLUMN = "study_year"
PARTITION_EXPRESSION = "YEAR(study_date)"
STATS_COLUMNS = (
    "run_id",
    "content_sha256",
    "finding_code",
    "finding_site_code",
    "measurement_code",
    "evaluation_code",
)
"""Columns with Delta file statistics (data skipping): the run (deleting a killed run's rows), the input
(`content_sha256`, what `sr2fhir maintain` Z-orders by, so that an input's rows share few files) and the codes a
table is queried by. Never an identifying column (`identifying.IDENTIFYING_COLUMNS`): statistics copy each
file's minimum and maximum values into the Delta log. Not Delta's default of the first 32 columns either:
collecting statistics is per row (docs/design/performance.md). Period selection has the `study_year` partition."""


def spec(name: str, partition_by: tuple[str, ...]) -> TableSpec:
    """A research table: study_year, when it partitions the table, is generated from study_date (Delta then
    derives a partition filter from any filter on study_date, and fills the column on every write)."""
    generated = {PARTITION_COLUMN: ("INT", PARTITION_EXPRESSION)} if PARTITION_COLUMN in partition_by else {}
    return TableSpec(
        name=name,
        key=KEY,
        scope=SCOPE,
        partition_by=partition_by,
        generated=generated,
        stats_columns=STATS_COLUMNS,
        optimize_write=True,  # one file per year and write instead of one per task and year
        zorder_by="content_sha256",  # an input's rows together: a MERGE rewrites few files per changed input
    )


def stores(spark: SparkSession, fs: HadoopFS, uris: dict[str, str], config: JobConfig) -> dict[str, TableStore]:
    """The research tables of an output, by name."""
    return {
        name: open_store(
            spark,
            fs,
            uris[name],
            spec(name, config.out.partition_by),
            config.out.table_format,
            auto_compact=config.maintenance.auto_compact,
        )
        for name in TABLES
    }


def table_rows(staged: DataFrame, table: str, run_id: str) -> DataFrame:
    """The table's rows of this run, from the staged rows of its kind (Parquet reads only their columns)."""
    return staging.table_rows(staged, table).withColumn("run_id", F.lit(run_id))
