"""Step 2, select: list the inputs and decide, from sizes, times and the ledger alone (no byte read), which files
to map and which known files are gone from the lake (`removals`); add the pending files of killed runs
(`recovery.reconcile`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from ..sinks.tables import SCOPE
from ..sources.inputs import Inputs, Listed, listed_struct, open_inputs
from . import recovery, removals
from .context import Run
from .deletions import Deletions
from .recover import Recovered


@dataclass(frozen=True)
class Plan:
    """What a run maps, removes and deletes."""

    inputs: Inputs
    found: int
    """Files listed; -1 when everything is mapped (the count then comes from the mapping)."""
    todo: list[Listed] | None
    """The files this run maps or records, or None for all the listed ones."""
    isolated: list[Listed]
    """Of those, the ones mapped alone, each in its own job behind a marker (`crashes`): they crashed before, or
    are larger than what the session's memory always maps."""
    quarantine: list[tuple[Listed, int]]
    """Of those, the ones not mapped because they crashed the mapping this many times (`crashes`)."""
    removed: DataFrame | None
    """(source_file, known_run_id) of the files gone from the lake that get `removed` ledger rows."""
    gone: DataFrame | None
    """(source_file) of everything whose rows go without new ones: the removed files, and pending files gone
    without a ledger row."""
    new_files_only: bool
    """Whether every file to map is new to the ledger: the tables have no rows of theirs to replace."""
    recovered: Recovered
    reconciliation: recovery.Reconciliation
    deletions: Deletions

    @property
    def nothing_to_map(self) -> bool:
        return self.todo == []

    @property
    def appends(self) -> bool:
        """Rows of new files replace nothing: they are appended, a commit that costs the same whatever the table's
        size, where a MERGE reads the whole table's keys. A killed append is undone by the next start."""
        return (
            self.new_files_only
            and self.gone is None
            and not self.reconciliation.touched
            and not self.recovered.must_merge
        )

    def without(self, vanished: list[str]) -> Plan:
        """The same, leaving alone the selected files deleted before they were read: their ledger, table and
        index rows stay as they are, and the next run finds them removed (pending ones stay pending)."""
        return dataclasses.replace(
            self, deletions=self.deletions.without(vanished), reconciliation=self.reconciliation.keeping(vanished)
        )


@dataclass(frozen=True)
class _Selection:
    found: int
    todo: list[tuple[Listed, int]] | None
    """The files to map with the crashes the ledger counts for them as they are now, or None for all."""
    removed: DataFrame | None = None
    new_files_only: bool = False
    remapped: tuple[tuple[str, str], ...] = ()
    """(source_file, latest ledger run) of the files to map that the ledger knows: their exported resources are
    the candidates for deletion (`index.deletions`), with the removed files'."""


def plan(run: Run, recovered: Recovered) -> Plan:
    with run.steps("list"):
        inputs = open_inputs(run.spark, run.config)
        selection = _select_files(run, inputs)
    reconciliation = recovery.Reconciliation()
    pending = recovered.pending
    if pending.files:  # only after a kill
        with run.steps("reconcile"):
            reconciliation = recovery.reconcile(run.spark, run.fs, inputs, run.tables.ledger, run.config, pending)
    crashes = {file.file_key: n for file, n in selection.todo or ()}
    todo = None if selection.todo is None else [file for file, _ in selection.todo]
    if todo is not None and reconciliation.to_map:  # mapped whatever the ledger says; one entry a file
        todo = sorted({file.file_key: file for file in (*todo, *reconciliation.to_map)}.values())
    isolated, quarantine = _isolate(run, inputs, todo, crashes)
    removed = _with_pending_removed(run.spark, selection.removed, reconciliation)
    gone = removed.select(SCOPE) if removed is not None else None
    if reconciliation.purged:
        purged = run.spark.createDataFrame([(f,) for f in reconciliation.purged], f"{SCOPE} string")
        gone = purged if gone is None else gone.unionByName(purged)
    # A pending file gone without a ledger row was never exported (its killed run's export was removed), so only
    # the removed files' resources can be deleted; a pending file mapped again replaces no committed entry.
    deletions = Deletions.of(run.spark, run.tables, selection.remapped, removed, replace=run.replace)
    return Plan(
        inputs=inputs,
        found=selection.found,
        todo=todo,
        isolated=isolated,
        quarantine=quarantine,
        removed=removed,
        gone=gone,
        new_files_only=selection.new_files_only,
        recovered=recovered,
        reconciliation=reconciliation,
        deletions=deletions,
    )


def _select_files(run: Run, inputs: Inputs) -> _Selection:
    """Which listed files to map and which known files are gone."""
    spark, config, ledger = run.spark, run.config, run.tables.ledger
    files = inputs.files
    if config.full_refresh or not ledger.exists():
        return _Selection(found=-1, todo=None)
    known = ledger.file_states()
    # A removed file that comes back has null size and time in its latest rows, so it is mapped again.
    same_version = (F.col("size") == F.col("known_size")) & (
        F.col("modification_time") == F.col("known_modification_time")
    )
    unchanged = same_version & (F.col("known_fingerprint") == run.fingerprint)
    if config.incremental.retry_failed:
        unchanged = unchanged & ~F.col("known_failed")
    if not config.retry_quarantined:  # left out while it stays as it was quarantined
        unchanged = F.coalesce(unchanged, F.lit(False)) | F.coalesce(
            same_version & F.col("known_quarantined"), F.lit(False)
        )
    gone = removals.candidates(spark, run.fs, config) if config.incremental.removed_files == "delete" else None
    if gone is None:
        joined = files.join(F.broadcast(known), "source_file", "left")
        gone = F.lit(False)
    else:  # known files missing from the listing too: one pass over both decides what to map and what went
        joined = files.join(known, "source_file", "full_outer")
    to_map = F.col("file_key").isNotNull() & ~F.coalesce(unchanged, F.lit(False))
    row = single_row(
        joined.agg(
            F.count("file_key").alias("found"),
            F.collect_list(
                F.when(
                    to_map, F.struct(listed_struct().alias("file"), F.coalesce("known_crashes", F.lit(0)).alias("n"))
                )
            ).alias("todo"),
            F.collect_list(F.when(gone, F.struct("source_file", "known_run_id"))).alias("gone"),
            F.collect_list(
                F.when(to_map & F.col("known_run_id").isNotNull(), F.struct("source_file", "known_run_id"))
            ).alias("remapped"),
        )
    )
    found, todo = int(row["found"]), [(Listed(*entry["file"]), int(entry["n"])) for entry in row["todo"]]
    removed = removals.confirmed(spark, run.fs, [(r["source_file"], r["known_run_id"]) for r in row["gone"]])
    return _Selection(
        found=found,
        # Everything to map is read through the inputs' relation, unless some files crashed the mapping before: they
        # are mapped alone or quarantined, which takes the list.
        todo=None if len(todo) == found and not any(n for _, n in todo) else todo,
        removed=removed,
        new_files_only=not row["remapped"],
        remapped=tuple((r["source_file"], r["known_run_id"]) for r in row["remapped"]),
    )


def _isolate(
    run: Run, inputs: Inputs, todo: list[Listed] | None, crashes: dict[str, int]
) -> tuple[list[Listed], list[tuple[Listed, int]]]:
    """(mapped alone, quarantined) among the files to map (`crashes`): those that crashed before, unless they
    crashed too often; and those over what the session's memory always maps (only a configured
    `input.max_file_bytes` over `auto` lets such a file be read)."""
    quarantine_after = run.config.incremental.quarantine_after
    quarantine = (
        []
        if run.config.retry_quarantined
        else [
            (file, crashes[file.file_key]) for file in todo or () if crashes.get(file.file_key, 0) >= quarantine_after
        ]
    )
    held = {file.file_key for file, _ in quarantine}
    isolated = [file for file in todo or () if file.file_key not in held and crashes.get(file.file_key, 0) > 0]
    safe, limit = run.safe_input_bytes, run.config.input.file_limit
    if limit > safe:  # files the session may not hold in memory: one at a time, behind a marker
        big = (F.col("size") > safe) & (F.col("size") <= limit)
        if todo is None:
            large = [Listed(*r[0]) for r in inputs.files.where(big).select(listed_struct()).collect()]
        else:
            large = [file for file in todo if safe < file.size <= limit and file.file_key not in held]
        isolated = sorted({file.file_key: file for file in (*isolated, *large)}.values())
    return isolated, quarantine


def single_row(aggregate: DataFrame) -> Row:
    """The row of an aggregate without grouping, which Spark always returns exactly one of (even over no rows)."""
    row = aggregate.first()
    assert row is not None, "an ungrouped aggregate has one row"
    return row


def _with_pending_removed(
    spark: SparkSession, removed: DataFrame | None, reconciliation: recovery.Reconciliation
) -> DataFrame | None:
    """The removed files, with the gone pending files that get `removed` ledger rows (a file can be both)."""
    if not reconciliation.removed:
        return removed
    more = spark.createDataFrame(reconciliation.removed, "source_file string, known_run_id string")
    return more if removed is None else removed.unionByName(more).distinct()
