"""The FHIR deletions of a run: the exported resources no file in the lake produces any more (`index.deletions`),
looked up among those of the files it re-maps or removes, and the index entries the run supersedes."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..sinks import index

if TYPE_CHECKING:
    from .context import OutputTables

log = logging.getLogger("sr2fhir")


@dataclass(frozen=True)
class Deletions:
    spark: SparkSession
    tables: OutputTables
    replace: bool
    """A full refresh: every file is re-mapped, and nothing outside the run counts."""
    indexed: bool
    """Whether the index covers the lake's files (started with the ledger): only then is it written and read."""
    origins: DataFrame | None
    """(source_file, run_id): the files re-mapped or removed, with their latest ledger run (full refresh: all)."""

    @classmethod
    def of(
        cls,
        spark: SparkSession,
        tables: OutputTables,
        remapped: tuple[tuple[str, str], ...],
        removed: DataFrame | None,
        *,
        replace: bool,
    ) -> Deletions:
        has_index = tables.index.exists()
        ledger = tables.ledger
        has_ledger = ledger.exists()
        origins: DataFrame | None = None
        if has_index and has_ledger:
            if replace:
                origins = ledger.file_states().select("source_file", F.col("known_run_id").alias("run_id"))
            else:
                pairs = list(remapped)
                if removed is not None:
                    pairs += [(r["source_file"], r["known_run_id"]) for r in removed.collect()]
                if pairs:
                    origins = spark.createDataFrame(sorted(pairs), "source_file string, run_id string")
        elif has_ledger:
            log.warning(
                "no resource index under the output (written before it existed): %s",
                "it starts now, and later runs export deletions"
                if replace
                else "no FHIR deletions are exported until a --full-refresh starts it",
            )
        return cls(spark, tables, replace, indexed=has_index or not has_ledger or replace, origins=origins)

    def without(self, files: list[str]) -> Deletions:
        """The same, leaving these files' exported resources and index entries alone (selected, but deleted before
        they were read: their ledger rows still hold the run the entries are of)."""
        if self.origins is None or not files:
            return self
        gone = self.spark.createDataFrame([(file,) for file in files], "source_file string")
        return dataclasses.replace(self, origins=self.origins.join(gone, "source_file", "left_anti"))

    def find(self, *, produced: DataFrame | None, scope: DataFrame | None) -> list[tuple[str, str]]:
        if self.origins is None:  # a first run, or only new files: nothing exported before can go
            return []
        entries = self.tables.index.read()
        found = index.deletions(
            self.spark, entries, self.tables.ledger.read(), self.origins, produced=produced, scope=scope
        )
        log.info("%d FHIR resources no file produces any more: exported as deletions", len(found))
        return found

    def prune(self, run_id: str) -> None:
        """After the ledger commit: the entries this run superseded go (a full refresh keeps its own only). A run
        with nothing to look for (a first run, only new files) leaves the index as it is: no extra commit."""
        if self.replace:  # a full refresh always writes the index
            index.prune(self.tables.index, run_id=run_id, superseded=None)
        elif self.origins is not None:
            index.prune(self.tables.index, run_id=run_id, superseded=self.origins)
