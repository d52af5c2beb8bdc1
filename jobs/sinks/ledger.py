"""The ledger `tables/documents`: one row per input (file or archive member) each run maps, saying what
happened to it. It is written last: a run killed earlier has no ledger rows, so its files count as not yet
mapped and the next run maps them again (the tables' MERGE makes that harmless).

It is also the job's memory for incremental runs: a stored file is skipped while its size, modification
time and the mapping options equal those of its latest ledger rows (and, with retry_failed, none of them
failed). A file gone from the lake gets `removed` rows (`incremental.removed_files: delete`): one per input
its latest run recorded, with that input's identifiers, so what left the tables can be traced to its report.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_type
from pyspark.sql.types import DataType

from ..staging import INPUT_FIELDS, RECORD_FIELDS
from .store import TableSpec, TableStore

REMOVED = "removed"
"""`status` of a ledger row saying that its file is gone from the lake and its rows from the tables."""
REMOVED_REASON = "source_removed"
CRASHED = "crashed"
"""`reason` of a failed row: the input crashed the mapping (`run.crashes`)."""
QUARANTINED = "quarantined"
"""`reason` of a failed row: the input crashed the mapping too often and is left out (`run.crashes`)."""
_KEPT_ON_REMOVAL = ("source_file", "source_path", "sop_instance_uid", "sop_class_uid", "study_instance_uid")
"""Columns a removed row copies from the input's latest row: which report went."""

COLUMNS = [
    "run_id",
    "processed_at",
    *(f.name for f in INPUT_FIELDS),
    "mapping_fingerprint",
    *(f.name for f in RECORD_FIELDS),
]


_COLUMN_TYPES: dict[str, DataType] = {
    field.name: from_arrow_type(field.type) for field in (*INPUT_FIELDS, *RECORD_FIELDS)
}
"""Spark type of each input and record column, for the rows of a ledger that does not have it yet."""

SPEC = TableSpec(name="documents", stats_columns=("run_id", "status", "reason"))
"""Read whole by every run (each file's latest state): bin-packing is what maintenance gives it, not a sort order."""


class Ledger:
    def __init__(self, store: TableStore) -> None:
        self.store = store

    def exists(self) -> bool:
        return self.store.exists()

    def read(self) -> DataFrame:
        return self.store.read()

    def file_states(self, only: DataFrame | None = None) -> DataFrame:
        """Per stored file, what its latest run saw: size, modification time, mapping fingerprint, whether any of
        its inputs failed or it is quarantined, and how often it crashed the mapping as it is now (same size and
        time). Run ids sort by time. One aggregation over the ledger: each value is taken from the row with the
        largest (run_id, ...) struct, and an archive's members, which share their run, compare by `failed` last,
        so one failed member makes the file's latest state failed; crashes are counted beside it. `only` (a
        `source_file` column) restricts it to a few files."""
        latest = F.max(
            F.struct(
                "run_id",
                (F.col("status") == "failed").alias("failed"),
                (F.col("status") == REMOVED).alias("removed"),
                "size",
                "modification_time",
                "mapping_fingerprint",
                F.coalesce(F.col("reason") == QUARANTINED, F.lit(False)).alias("quarantined"),
            )
        )
        rows = self.read()
        if "reason" not in rows.columns:  # a ledger of a version before reasons: no file crashed or was quarantined
            rows = rows.withColumn("reason", F.lit(None).cast("string"))
        if only is not None:
            rows = rows.join(F.broadcast(only.select("source_file")), "source_file", "left_semi")
        states = (
            rows.groupBy("source_file")
            .agg(latest.alias("latest"))
            .select(
                "source_file",
                F.col("latest.size").alias("known_size"),
                F.col("latest.modification_time").alias("known_modification_time"),
                F.col("latest.mapping_fingerprint").alias("known_fingerprint"),
                F.col("latest.failed").alias("known_failed"),
                F.col("latest.removed").alias("known_removed"),
                F.col("latest.run_id").alias("known_run_id"),
                F.col("latest.quarantined").alias("known_quarantined"),
            )
        )
        # Crash rows are rare (`reason` has file statistics: a scan of them skips the other files). Counted per
        # version of a file (size, time): a changed file starts again from none.
        crashes = (
            rows.where(F.col("reason") == CRASHED)
            .groupBy("source_file", F.col("size").alias("known_size"), F.col("modification_time").alias("mtime"))
            .agg(F.count(F.lit(1)).cast("int").alias("known_crashes"))
            .withColumnRenamed("mtime", "known_modification_time")
        )
        version = ["source_file", "known_size", "known_modification_time"]
        return states.join(F.broadcast(crashes), version, "left").withColumn(
            "known_crashes", F.coalesce(F.col("known_crashes"), F.lit(0))
        )

    def write_removed(
        self, removed: DataFrame, *, run_id: str, processed_at: datetime, fingerprint: str, message: str
    ) -> int:
        """Append a `removed` row for each input that the latest run of a removed file recorded; `removed` has
        `source_file` and `known_run_id` (from `file_states`). Returns the rows written."""
        latest = self.read().join(
            F.broadcast(removed.select("source_file", F.col("known_run_id").alias("run_id"))),
            ["source_file", "run_id"],
        )
        values = {
            **{name: F.col(name) for name in _KEPT_ON_REMOVAL},
            "run_id": F.lit(run_id),
            "processed_at": F.lit(processed_at),
            "mapping_fingerprint": F.lit(fingerprint),
            "status": F.lit(REMOVED),
            "reason": F.lit(REMOVED_REASON),
            "message": F.lit(message),
        }
        # A ledger written by an older version lacks the newer record columns (`unmapped_items`): null there.
        types = {field.name: field.dataType for field in latest.schema.fields}
        columns = [
            values.get(name, F.lit(None)).cast(types[name] if name in types else _COLUMN_TYPES[name]).alias(name)
            for name in COLUMNS
        ]
        rows = latest.select(*columns).dropDuplicates(["source_path"]).persist()
        try:
            written = rows.count()
            self.store.append(rows)
        finally:
            rows.unpersist()
        return written

    def write(
        self, records: DataFrame, *, run_id: str, processed_at: datetime, fingerprint: str, replace: bool
    ) -> None:
        """Append (or, on a full refresh, replace with) one row per input of `records`: the staged document
        records, with the input columns (`staging.INPUT_FIELDS`) and the record's (`staging.RECORD_FIELDS`)."""
        rows = records.select(
            F.lit(run_id).alias("run_id"),
            F.lit(processed_at).cast("timestamp").alias("processed_at"),
            *(f.name for f in INPUT_FIELDS),
            F.lit(fingerprint).alias("mapping_fingerprint"),
            *(f.name for f in RECORD_FIELDS),
        )
        if replace:
            self.store.overwrite(rows)
        else:
            self.store.append(rows)
