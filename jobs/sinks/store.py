"""One contract for every table the job writes (research tables, ledger, resource index), with a Delta and a
Parquet implementation; `open_store` picks one by the output's table format, so nothing else asks which it is.

Delta commits each write atomically and keeps replaced files for time travel until VACUUM. Parquet has no
transactions: every change rewrites the table whole into `<table>.next` and swaps it in (`<table>.previous` while
swapping); `recover` finishes or undoes a swap a killed run left.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ..config import TABLE_FORMATS, MaintenanceConfig
from ..spark.fs import HadoopFS
from .delta_maintenance import AUTO_COMPACT, OPTIMIZE_WRITE, STATS_PROPERTY, TableReport
from .identifying import IDENTIFYING_COLUMNS

log = logging.getLogger("sr2fhir")


@dataclass(frozen=True)
class TableSpec:
    """What a table is, whatever its format."""

    name: str
    key: tuple[str, ...] = ()
    """Columns that identify a row, for `merge`."""
    scope: str = "source_file"
    """The column `merge` and `remove_files` select the replaced rows by: the stored file."""
    partition_by: tuple[str, ...] = ()
    delta_partition_by: tuple[str, ...] = ()
    """Partition columns of a Delta table only, after `partition_by` (a Parquet table of this spec has none: its
    Parquet outputs were written unpartitioned, and a folder cannot mix layouts)."""
    generated: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Columns computed from others on every write: name → (SQL type, SQL expression)."""
    stats_columns: tuple[str, ...] = ()
    """Delta: the columns with file statistics (data skipping), instead of Delta's first 32."""
    optimize_write: bool = False
    """Delta: shuffle rows by partition before writing (one file per partition and write)."""
    zorder_by: str | None = None
    """Delta: the column `sr2fhir maintain` Z-orders the table by (None: bin-packing only); it needs statistics."""

    def __post_init__(self) -> None:
        leaking = set(self.stats_columns) & IDENTIFYING_COLUMNS
        assert not leaking, f"{self.name}: file statistics would copy identifying values into the log: {leaking}"
        assert self.zorder_by is None or self.zorder_by in self.stats_columns, f"{self.name}: Z-order needs stats"


class TableStore(ABC):
    """A table at `uri`: exists / read / append / overwrite / merge / remove_files / delete / recover / maintain."""

    format: ClassVar[str]

    def __init__(self, spark: SparkSession, fs: HadoopFS, uri: str, spec: TableSpec, *, auto_compact: bool) -> None:
        self.spark, self.fs, self.uri, self.spec, self.auto_compact = spark, fs, uri, spec, auto_compact

    @abstractmethod
    def exists(self) -> bool: ...

    def read(self) -> DataFrame:
        """The table as the job wrote it (never read a Delta folder as Parquet: it holds replaced files too)."""
        return self.spark.read.format(self.format).load(self.uri)

    @abstractmethod
    def append(self, rows: DataFrame) -> None:
        """Add rows (creating the table first if absent)."""

    @abstractmethod
    def overwrite(self, rows: DataFrame) -> None:
        """Replace every row (a full refresh)."""

    @abstractmethod
    def merge(self, rows: DataFrame, scope: DataFrame) -> None:
        """Replace the rows of the files in `scope` (a `spec.scope` column) by `rows`, in one commit: rows with a
        key already there update it, new ones are inserted, and the scope's old rows without a new one are
        deleted (a file gone from the lake is in the scope with no new rows)."""

    def remove_files(self, scope: DataFrame) -> None:
        """Delete every row of the files in `scope` (its `spec.scope` column)."""
        self.delete_matching(scope.select(self.spec.scope), (self.spec.scope,))

    @abstractmethod
    def delete_matching(self, keys: DataFrame, on: Sequence[str], *, prune: Column | None = None) -> None:
        """Delete the rows whose `on` columns match a row of `keys`, in one commit. `prune`, a predicate of
        literals every such row meets, lets a store read only the files that can hold them."""

    @abstractmethod
    def delete_where(self, condition: Column) -> None:
        """Delete the rows that meet `condition`, in one commit."""

    @abstractmethod
    def recover(self) -> None:
        """Undo what a write killed half way left, if the format can be left so."""

    @abstractmethod
    def maintain(self, settings: MaintenanceConfig) -> TableReport | None:
        """Compact (and VACUUM) the table between runs (`sr2fhir maintain`); None when the format needs none."""


class DeltaStore(TableStore):
    format = "delta"

    def exists(self) -> bool:
        return self.fs.exists(f"{self.uri}/_delta_log")

    def _table(self):
        from delta.tables import DeltaTable

        return DeltaTable.forPath(self.spark, self.uri)

    def create(self, rows: DataFrame) -> bool:
        """Create the table if absent, with the spec's layout and properties; True when created."""
        from delta.tables import DeltaTable

        if self.exists():
            return False
        spec = self.spec
        builder = DeltaTable.createIfNotExists(self.spark).location(self.uri).addColumns(rows.schema)
        for name, (sql_type, expression) in spec.generated.items():
            builder = builder.addColumn(name, sql_type, generatedAlwaysAs=expression)
        builder = builder.partitionedBy(*spec.partition_by, *spec.delta_partition_by)
        if spec.optimize_write:
            builder = builder.property(OPTIMIZE_WRITE, "true")
        if self.auto_compact:
            builder = builder.property(AUTO_COMPACT, "true")
        if spec.stats_columns:
            stats = [c for c in spec.stats_columns if c in rows.columns]
            builder = builder.property(STATS_PROPERTY, ",".join(stats))
        builder.execute()
        return True

    def append(self, rows: DataFrame) -> None:
        self.create(rows)
        # mergeSchema: a table written by an older version gains the columns a newer one adds (nullable).
        rows.write.format("delta").mode("append").option("mergeSchema", "true").save(self.uri)

    def overwrite(self, rows: DataFrame) -> None:
        self.create(rows)
        rows.write.format("delta").mode("overwrite").option("mergeSchema", "true").save(self.uri)

    def merge(self, rows: DataFrame, scope: DataFrame) -> None:
        if self.create(rows) or not self._written():  # nothing to replace: an append costs no read of the table
            rows.write.format("delta").mode("append").option("mergeSchema", "true").save(self.uri)
            return
        key, scope_column = list(self.spec.key), self.spec.scope
        target = self._table()
        new_keys = rows.select(*key)
        old_keys = target.toDF().select(*key, scope_column).join(scope, scope_column, "left_semi").drop(scope_column)
        deletions = old_keys.join(new_keys, key, "left_anti").withColumn("_delete", F.lit(True))
        source = rows.withColumn("_delete", F.lit(False)).unionByName(deletions, allowMissingColumns=True)
        values: dict[str, str | Column] = {c: f"s.`{c}`" for c in rows.columns}
        condition = " AND ".join(f"t.`{k}` = s.`{k}`" for k in key)
        (
            target.alias("t")
            .merge(source.alias("s"), condition)
            .withSchemaEvolution()  # new columns of a newer version join the table (older rows: null)
            .whenMatchedDelete(condition="s._delete")
            .whenMatchedUpdate(set=values)
            .whenNotMatchedInsert(condition="NOT s._delete", values=values)
            .execute()
        )

    def _written(self) -> bool:
        """Whether any commit after the table's creation (version 0) exists: the log's file names are fixed by
        the Delta protocol, and listing them is far cheaper than reading the table's state."""
        return any(
            f.name.endswith(".json") and f.name[:20].isdigit() and int(f.name[:20]) > 0
            for f in self.fs.list_dir(f"{self.uri}/_delta_log")
        )

    def delete_matching(self, keys: DataFrame, on: Sequence[str], *, prune: Column | None = None) -> None:
        if not self.exists():
            return
        # A MERGE rather than delete(isin(...)): the keys can be many, and a join scales where a predicate of
        # literals does not; `prune`, on the target's columns, is what Delta's statistics skip files by.
        condition = F.expr(" AND ".join(f"t.`{c}` = s.`{c}`" for c in on))
        if prune is not None:
            condition = prune & condition
        self._table().alias("t").merge(keys.alias("s"), condition).whenMatchedDelete().execute()

    def delete_where(self, condition: Column) -> None:
        if self.exists():
            self._table().delete(condition)

    def recover(self) -> None:
        """Nothing: a Delta commit is atomic, and a killed write's files are never part of a version."""

    def maintain(self, settings: MaintenanceConfig) -> TableReport | None:
        """A table written before its spec partitioned it (the resource index before it was partitioned by type)
        is laid out again first; then its properties are set, and it is compacted and vacuumed."""
        from .delta_maintenance import maintain_table, relayout

        if not self.exists():
            return None
        spec = self.spec
        if spec.delta_partition_by:
            partition_by = (*spec.partition_by, *spec.delta_partition_by)
            if relayout(self.spark, self.uri, partition_by, spec.stats_columns):
                log.info("maintain %s: partitioned by %s (written before it was)", spec.name, ", ".join(partition_by))
        return maintain_table(self.spark, self.fs, spec.name, self.uri, settings, spec.zorder_by, spec.stats_columns)


class ParquetStore(TableStore):
    format = "parquet"

    @property
    def _next(self) -> str:
        return f"{self.uri}.next"

    @property
    def _previous(self) -> str:
        return f"{self.uri}.previous"

    def exists(self) -> bool:
        return self.fs.exists(self.uri)

    def read(self) -> DataFrame:
        # Part files appended by different versions can differ in columns: read their union.
        return self.spark.read.option("mergeSchema", "true").parquet(self.uri)

    def _with_generated(self, rows: DataFrame) -> DataFrame:
        for name, (_, expression) in self.spec.generated.items():
            rows = rows.withColumn(name, F.expr(expression))
        return rows

    def append(self, rows: DataFrame) -> None:
        """Parquet appends are new part files beside the old ones: no swap, nothing for a killed run to leave but
        part files, which Spark's commit protocol keeps out of the folder until the write commits."""
        self._with_generated(rows).write.mode("append").partitionBy(*self.spec.partition_by).parquet(self.uri)

    def overwrite(self, rows: DataFrame) -> None:
        self._swap_in(self._with_generated(rows))

    def merge(self, rows: DataFrame, scope: DataFrame) -> None:
        """The table's rows of files outside the scope, plus the new rows, rewritten and swapped in."""
        rows = self._with_generated(rows)
        self.recover()
        if self.exists():
            kept = self.spark.read.schema(rows.schema).parquet(self.uri).join(scope, self.spec.scope, "left_anti")
            rows = kept.unionByName(rows)
        self._swap_in(rows)

    def remove_files(self, scope: DataFrame) -> None:
        if self.exists():  # (an interrupted swap was recovered when the run started)
            kept = self.read().join(F.broadcast(scope.select(self.spec.scope)), self.spec.scope, "left_anti")
            self._swap_in(kept)

    def delete_matching(self, keys: DataFrame, on: Sequence[str], *, prune: Column | None = None) -> None:
        if self.exists():
            self._swap_in(self.read().join(keys, list(on), "left_anti"))

    def delete_where(self, condition: Column) -> None:
        if self.exists():
            self._swap_in(self.read().where(~condition))

    def _swap_in(self, rows: DataFrame) -> None:
        rows.write.mode("overwrite").partitionBy(*self.spec.partition_by).parquet(self._next)
        if self.exists():
            self.fs.rename(self.uri, self._previous)
        self.fs.rename(self._next, self.uri)
        self.fs.delete(self._previous)

    def maintain(self, settings: MaintenanceConfig) -> TableReport | None:
        return None  # every change rewrites it whole

    def recover(self) -> None:
        """A missing table comes back from `.previous`; a stale `.next` goes."""
        if not self.exists() and self.fs.exists(self._previous):
            log.warning("restoring %s from an interrupted run", self.uri)
            self.fs.rename(self._previous, self.uri)
        self.fs.delete(self._previous)
        self.fs.delete(self._next)


STORES: dict[str, type[TableStore]] = {"delta": DeltaStore, "parquet": ParquetStore}
assert set(STORES) == set(TABLE_FORMATS)


def open_store(
    spark: SparkSession, fs: HadoopFS, uri: str, spec: TableSpec, table_format: str, *, auto_compact: bool = False
) -> TableStore:
    return STORES[table_format](spark, fs, uri, spec, auto_compact=auto_compact)
