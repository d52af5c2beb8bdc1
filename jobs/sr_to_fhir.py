"""The job: configuration → session → sources → mapping → sinks → run summary.

    spark-submit jobs/sr_to_fhir.py --input URI [URI...] --output URI [options]   (same flags as `sr2fhir run`)

Order of work, chosen for kill safety:
  1. list inputs; with a ledger, keep only new, changed or failed files (metadata only, no bytes read), and
     find the files gone from the lake (`removals`): their rows leave the tables in step 4's MERGEs and they
     are recorded in step 5 (a run with nothing to map does both at once);
  2. map them once (mapInArrow) into `_staging/<run-id>` (Parquet, one row per document record, resource or
     table row), so every sink reads the mapping output instead of mapping again, and only its own rows;
  3. run statistics from the (cached) document records; 4. tables (one Delta commit each), the resource index
     (appended) and FHIR NDJSON + manifest (with the deletions, from the index's committed entries), side by
     side; 5. the ledger (the commit point of the run), then the index entries this run superseded are pruned;
     6. `runs/<run-id>.json`, 7. staging removed.
A run killed before step 5 is invisible to the next one, which maps the same files again: the MERGE makes
the tables come out the same, and the killed run's partial export folder is removed. Its files stay pending
until a committed run has mapped them again or deleted the rows of those gone since (`recovery`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import queue
import secrets
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

if not __package__:  # run as a file (spark-submit jobs/sr_to_fhir.py): make `jobs` importable from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyspark
from pyspark.accumulators import Accumulator
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from jobs import output_lock, recovery, removals, stopping
from jobs.config import JobConfig
from jobs.fs import HadoopFS
from jobs.mapping import OUTPUT_SCHEMA, RECORD, Mapper, MapperSettings
from jobs.session import apply_runtime_settings
from jobs.sinks import index, ndjson, tables
from jobs.sinks.ledger import Ledger
from jobs.sources import Inputs, Listed, listed_struct, open_inputs

log = logging.getLogger("sr2fhir")


@dataclass(frozen=True)
class Layout:
    """Where everything goes under --output."""

    root: str

    @property
    def exports(self) -> str:
        """The folder of the runs' FHIR exports, one folder each."""
        return f"{self.root}/fhir"

    def fhir(self, run_id: str) -> str:
        return f"{self.exports}/{run_id}"

    def table(self, name: str) -> str:
        return f"{self.root}/tables/{name}"

    @property
    def ledger(self) -> str:
        return self.table("documents")

    @property
    def summaries(self) -> str:
        """The folder of the run summaries: a run has one once it has committed."""
        return f"{self.root}/runs"

    def summary(self, run_id: str) -> str:
        return f"{self.summaries}/{run_id}.json"

    def staging(self, run_id: str) -> str:
        return f"{self.root}/_staging/{run_id}"

    def selection(self, run_id: str) -> str:
        """The log the content scan of the run's selected files is made from (`Inputs.with_content`): beside the
        staging folder, which its write replaces, and removed with it."""
        return f"{self.root}/_staging/{run_id}.selected"

    @property
    def index(self) -> str:
        return self.table(index.NAME)


APPEND_MARKER = "_appends"
"""File in a run's staging folder: the run appends its table rows (`_cleanup` deletes them if it is killed)."""
MERGE_MARKER = "_merge_next"
"""Empty file under --output, written by earlier versions after a killed MERGE: runs merge instead of appending
until one that merged has committed. Now `recovery` lists the killed run's files instead; an existing marker is
still honoured."""


def new_run_id(now: datetime) -> str:
    """Sortable by start time (the ledger's 'latest run' relies on it), unique by a random suffix."""
    return f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def run_started(run_id: str) -> datetime | None:
    """When a run started, from its id (`new_run_id`); None for a name that is not a run id."""
    try:
        return datetime.strptime(run_id.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def committed_runs(fs: HadoopFS, layout: Layout) -> set[str]:
    """The ids of the runs that have committed: those with a run summary (written last)."""
    return {status.name.removesuffix(".json") for status in fs.list_dir(layout.summaries)}


def mapping_fingerprint(config: JobConfig) -> str:
    """Identity of the mapping: a file mapped with other options is mapped again."""
    return hashlib.sha256(json.dumps(config.mapping.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


class Steps:
    """Seconds per step of the run, for the summary."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        stopping.check()  # a run asked to stop (SIGTERM) ends between its steps
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0) + time.monotonic() - started, 3)


class Progress:
    """A driver thread logging inputs mapped so far (a Spark accumulator, updated per Arrow batch as tasks
    finish) every `interval` seconds while the mapping runs."""

    def __init__(self, spark: SparkSession, interval: float) -> None:
        self.interval = interval
        self.accumulator: Accumulator[int] | None = None
        if interval > 0:
            try:
                self.accumulator = spark.sparkContext.accumulator(0)
            except Exception:  # Spark Connect has no accumulators: no progress lines then
                log.info("no live progress on this session (no SparkContext)")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def callback(self) -> Callable[[int], None] | None:
        accumulator = self.accumulator
        return None if accumulator is None else accumulator.add

    def __enter__(self) -> Progress:
        if self.accumulator is not None:
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="sr2fhir-progress", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        accumulator = self.accumulator
        assert accumulator is not None, "__enter__ starts this thread only with an accumulator"
        while not self._stop.wait(self.interval):
            done = accumulator.value
            elapsed = time.monotonic() - self._started
            log.info("mapping: %d inputs done in %.0f s (%.1f/s)", done, elapsed, done / elapsed if elapsed else 0)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass(frozen=True)
class Selection:
    """What a run maps and removes, decided from the listing and the ledger (metadata only)."""

    found: int
    """Files listed; -1 when everything is mapped (the count then comes from the mapping)."""
    todo: list[Listed] | None
    """The files to map, or None for all."""
    removed: DataFrame | None = None
    """(source_file, known_run_id) of the files gone from the lake, whose rows go (`removals`)."""
    new_files_only: bool = False
    """Whether every file to map is new to the ledger: the tables then have no rows of theirs to replace, and a
    run that also removes nothing appends instead of merging (`tables.write_delta`)."""
    remapped: tuple[tuple[str, str], ...] = ()
    """(source_file, latest ledger run) of the files to map that the ledger knows: their exported resources are
    the candidates for deletion (`index.deletions`), with the removed files'."""


def _select_files(
    spark: SparkSession, fs: HadoopFS, inputs: Inputs, ledger: Ledger, config: JobConfig, fingerprint: str
) -> Selection:
    """Which listed files to map and which known files are gone, from sizes, times and the ledger alone."""
    files = inputs.files
    if config.full_refresh or not ledger.exists():
        return Selection(found=-1, todo=None)
    known = ledger.file_states()
    # A removed file that comes back has null size and time in its latest rows, so it is mapped again.
    unchanged = (
        (F.col("size") == F.col("known_size"))
        & (F.col("modification_time") == F.col("known_modification_time"))
        & (F.col("known_fingerprint") == fingerprint)
    )
    if config.incremental.retry_failed:
        unchanged = unchanged & ~F.col("known_failed")
    gone = removals.candidates(spark, fs, config) if config.incremental.removed_files == "delete" else None
    if gone is None:
        joined = files.join(F.broadcast(known), "source_file", "left")
        gone = F.lit(False)
    else:  # known files missing from the listing too: one pass over both decides what to map and what went
        joined = files.join(known, "source_file", "full_outer")
    to_map = F.col("file_key").isNotNull() & ~F.coalesce(unchanged, F.lit(False))
    row = _single_row(
        joined.agg(
            F.count("file_key").alias("found"),
            F.collect_list(F.when(to_map, listed_struct())).alias("todo"),
            F.collect_list(F.when(gone, F.struct("source_file", "known_run_id"))).alias("gone"),
            F.collect_list(
                F.when(to_map & F.col("known_run_id").isNotNull(), F.struct("source_file", "known_run_id"))
            ).alias("remapped"),
        )
    )
    found, todo = int(row["found"]), [Listed(*file) for file in row["todo"]]
    removed = removals.confirmed(spark, fs, [(r["source_file"], r["known_run_id"]) for r in row["gone"]])
    return Selection(
        found=found,
        todo=None if len(todo) == found else todo,
        removed=removed,
        new_files_only=not row["remapped"],
        remapped=tuple((r["source_file"], r["known_run_id"]) for r in row["remapped"]),
    )


def _single_row(aggregate: DataFrame) -> Row:
    """The row of an aggregate without grouping, which Spark always returns exactly one of (even over no rows)."""
    row = aggregate.first()
    assert row is not None, "an ungrouped aggregate has one row"
    return row


def _statistics(records: DataFrame) -> dict:
    """What the run mapped, from the staged document records (one small row per input)."""
    by_reason: dict[str, int] = {}
    totals = {"inputs": 0, "mapped": 0, "rejected": 0, "failed": 0, "measurements": 0, "qualitative_evaluations": 0}
    for row in (
        records.groupBy("status", "reason")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("measurements").alias("measurements"),
            F.sum("qualitative_evaluations").alias("qualitative_evaluations"),
        )
        .collect()
    ):
        totals["inputs"] += row["n"]
        totals[row["status"]] += row["n"]
        totals["measurements"] += row["measurements"] or 0
        totals["qualitative_evaluations"] += row["qualitative_evaluations"] or 0
        if row["reason"]:
            key = f"{row['status']}/{row['reason']}"
            by_reason[key] = by_reason.get(key, 0) + row["n"]
    files = _single_row(records.select(F.countDistinct("source_file").alias("n")))["n"]
    return {"files": int(files), "totals": totals, "by_reason": dict(sorted(by_reason.items()))}


def _vanished(fs: HadoopFS, todo: list[Listed], records: DataFrame) -> list[str]:
    """The selected files the map step did not read, which must be gone: the scans skip files deleted since the
    listing (`sources._binary_files`). Any other shortfall is a defect, raised. Only when files are missing: it
    collects the read files' paths."""
    read = {row["source_file"] for row in records.select("source_file").distinct().collect()}
    missing = sorted(file.source_file for file in todo if file.source_file not in read)
    if still_there := sum(fs.exists(file) for file in missing):
        raise RuntimeError(f"{len(todo)} files were selected for mapping, {len(read)} read and {still_there} not read")
    return missing


def _side_by_side(spark: SparkSession, tag: str, calls: dict[str, Callable[[], object]]) -> dict[str, object]:
    """Run independent steps in threads (each mostly Spark jobs and their latency) and return their results.
    The first failure cancels the other steps' Spark jobs (all tagged `tag`) and is raised once they have
    stopped, or after a minute at most: a failed run ends, it never waits on its own leftovers. The threads
    are daemons, so none keeps the process alive."""
    context = spark.sparkContext
    outcomes: queue.Queue = queue.Queue()

    def call(name: str, function: Callable[[], object]) -> None:
        try:
            context.addJobTag(tag)  # thread-local: every job this thread starts carries it
            outcomes.put((name, function(), None))
        except BaseException as exc:
            outcomes.put((name, None, exc))

    for name, function in calls.items():
        threading.Thread(target=call, args=(name, function), name=f"sr2fhir-{name}", daemon=True).start()
    results: dict[str, object] = {}
    failure: BaseException | None = None
    deadline = None
    for _ in calls:
        try:
            name, value, error = outcomes.get(timeout=None if deadline is None else max(deadline - time.monotonic(), 0))
        except queue.Empty:
            break
        if error is not None and failure is None:
            failure = error
            context.cancelJobsWithTag(tag)
            deadline = time.monotonic() + 60
        results[name] = value
    if failure is not None:
        raise failure
    return results


def _cleanup(spark: SparkSession, fs: HadoopFS, layout: Layout, ledger: Ledger) -> recovery.Pending:
    """Remove what killed runs left: staging folders, and the appended table rows and export folders of runs that
    never reached their ledger commit (their files are mapped again, so those rows and resources come again
    too). The files of killed runs that merged are carried forward (`recovery`): returns all files pending. A run
    in progress elsewhere would look killed: the output's lock (`output_lock`) keeps it from being one."""
    staged = [f.name for f in fs.list_dir(f"{layout.root}/_staging") if f.is_dir]
    completed = committed_runs(fs, layout)
    unfinished = [f for f in fs.list_dir(layout.exports) if f.is_dir and f.name not in completed]
    if staged or unfinished:
        # A run killed between its ledger commit and its summary is complete: keep its rows and export. (A run
        # that maps commits its removed rows after its records; one that only removes, its export before them.)
        committed = (
            {r.run_id for r in ledger.read().select("run_id").distinct().collect()} if ledger.exists() else set()
        )
        # A run whose files were all new appended its rows rather than merging them, so they must go before those
        # files are mapped again. Its staging folder, marked before any table commit and deleted only here or
        # after its summary, says so.
        appended = sorted(
            name for name in staged if name not in committed and fs.exists(f"{layout.staging(name)}/{APPEND_MARKER}")
        )
        for name in tables.TABLES if appended else ():
            tables.delete_runs(spark, fs, layout.table(name), appended)
        for name in staged:  # a run that merged (or rewrote Parquet tables): its files are reconciled later
            if name not in committed and name not in appended:
                recovery.carry_forward(spark, fs, layout.root, name, layout.staging(name), _spark_schema())
        for folder in unfinished:
            if folder.name not in committed:
                log.warning("removing the export of an interrupted run: %s", folder.name)
                fs.delete(folder.uri)
    fs.delete(f"{layout.root}/_staging")
    return recovery.read_pending(fs, layout.root)


def run(spark: SparkSession, config: JobConfig, *, before_ledger: Callable[[], None] | None = None) -> dict:
    """Run the job on a session; returns the run summary (also written to runs/<run-id>.json). Holds the output's
    lock meanwhile (`output_lock`: `OutputBusy` when another job holds it).
    `before_ledger` is a test hook called after the tables and the export, before the ledger commit."""
    apply_runtime_settings(spark, config.spark)
    fs = HadoopFS(spark)
    layout = Layout(fs.qualify(config.output))
    with output_lock.holding(fs, layout.root, "run", expiry_seconds=config.out.lock_expiry_seconds) as lock:
        return _run(spark, config, fs, layout, lock, before_ledger)


def _run(
    spark: SparkSession,
    config: JobConfig,
    fs: HadoopFS,
    layout: Layout,
    lock: output_lock.OutputLock,
    before_ledger: Callable[[], None] | None,
) -> dict:
    started = datetime.now(UTC)
    clock = time.monotonic()
    run_id = new_run_id(started)
    step = Steps()
    table_format = config.out.table_format
    fingerprint = mapping_fingerprint(config)
    ledger = Ledger(spark, fs, layout.ledger, table_format, auto_compact=config.maintenance.auto_compact)
    replace = config.full_refresh
    log.info(
        "run %s: %s → %s (%s%s)",
        run_id,
        ", ".join(config.inputs + config.input_lists),
        layout.root,
        table_format,
        ", full refresh" if replace else "",
    )

    with step("recover"):
        pending = _cleanup(spark, fs, layout, ledger)
        must_merge = fs.exists(f"{layout.root}/{MERGE_MARKER}")
        if table_format == "parquet":
            for name in (*tables.TABLES, index.NAME):
                tables.recover_parquet(fs, layout.table(name))

    with step("list"):
        inputs = open_inputs(spark, config)
        selection = _select_files(spark, fs, inputs, ledger, config, fingerprint)
    reconciliation = recovery.Reconciliation()
    if pending.files:  # only after a kill
        with step("reconcile"):
            reconciliation = recovery.reconcile(spark, fs, inputs, ledger, config, pending)
    found, todo = selection.found, selection.todo
    if todo is not None and reconciliation.to_map:  # mapped whatever the ledger says; one entry a file
        todo = sorted({file.file_key: file for file in (*todo, *reconciliation.to_map)}.values())
    summary: dict = {
        "run_id": run_id,
        "started": started.isoformat(),
        "inputs": list(config.inputs),
        "input_lists": list(config.input_lists),
        "output": fs.url(layout.root),
        "table_format": table_format,
        "full_refresh": replace,
        "mapping_fingerprint": fingerprint,
        "options": {"mapping": config.mapping.as_dict(), "configuration": _redacted(config.raw)},
        "versions": _versions(),
        "removed": {"files": 0, "inputs": 0},
        "reconciled": reconciliation.counts(pending),
        "vanished": 0,
    }
    removed = _with_pending_removed(spark, selection.removed, reconciliation)
    # Everything whose rows go without new ones: removed files, and pending files gone without a ledger row.
    gone = removed.select(tables.SCOPE) if removed is not None else None
    if reconciliation.purged:
        purged = spark.createDataFrame([(f,) for f in reconciliation.purged], f"{tables.SCOPE} string")
        gone = purged if gone is None else gone.unionByName(purged)
    # A pending file gone without a ledger row was never exported (its killed run's export was removed), so only
    # the removed files' resources can be deleted; a pending file mapped again replaces no committed entry.
    deletions = _Deletions.of(spark, fs, layout, ledger, selection.remapped, removed, table_format, replace=replace)
    write_export = functools.partial(
        ndjson.write_ndjson,
        fs=fs,
        directory=layout.fhir(run_id),
        max_per_file=config.fhir.max_resources_per_file,
        transaction_time=started.isoformat().replace("+00:00", "Z"),
        request=fs.url(layout.summary(run_id)),
    )
    if todo == []:
        export = None
        if gone is not None:
            lock.confirm()
            with step("remove"):
                if removed is not None:
                    # The export (its deletions) before the ledger's removed rows: a run killed in between leaves
                    # an uncommitted export folder, which the next start removes, and the next run finds the same
                    # files.
                    with step("deletions"):
                        deleted = deletions.find(produced=None, scope=gone)
                    export = write_export(None, deleted=deleted)
                summary["removed"] = _remove(
                    spark, fs, layout, ledger, removed, gone, config, fingerprint, run_id, started
                )
                deletions.prune(run_id)
        recovery.settle(fs, layout.root, run_id, pending, reconciliation)
        log.info("run %s: all %d files unchanged since their last run; nothing to map", run_id, found)
        return _finish(fs, layout, summary, clock, step, found=found, stats=None, export=export)

    staging = layout.staging(run_id)
    settings = MapperSettings(options=config.mapping, max_file_bytes=config.input.max_file_bytes)
    with step("map"), Progress(spark, config.out.progress_interval_seconds) as progress:
        content = inputs.with_content(todo, scratch=layout.selection(run_id))
        mapped = content.mapInArrow(Mapper(settings, progress.callback()), _spark_schema())
        write_staging(mapped, staging)
    # Staged rows are long (mapping.OUTPUT_SCHEMA): each sink reads its kind's rows and columns only. The
    # document records are small (one per input) and read by the statistics, the MERGE scope and the
    # ledger: cached once.
    staged = spark.read.schema(_spark_schema()).parquet(staging)
    records = staged.where(F.col("kind") == RECORD).select("source_file", "content_sha256", f"{RECORD}.*").persist()
    try:
        with step("statistics"):
            stats = _statistics(records)
        if found < 0:
            found = stats["files"]
        if todo is not None and stats["files"] != len(todo):
            # Files deleted since the listing: their ledger, table and index rows stay as they are, and the next
            # run finds them removed (pending ones stay pending).
            vanished = _vanished(fs, todo, records)
            log.warning("run %s: %d selected files were deleted before they were read", run_id, len(vanished))
            summary["vanished"] = len(vanished)
            deletions = deletions.without(vanished)
            reconciliation = reconciliation.keeping(vanished)
            summary["reconciled"] = reconciliation.counts(pending)
        scope = records.select(tables.SCOPE).distinct()
        if removed is not None:
            removed = removed.persist()
        if gone is not None:
            # Files gone from the lake leave the tables in the same MERGE (or rewrite) as the re-mapped files'
            # old rows: their scope has no new rows.
            scope = scope.unionByName(gone).distinct()

        # Rows of new files replace nothing: append them, a commit that costs the same whatever the table's size,
        # where a MERGE reads the whole table's keys. A killed append is undone by the next run's `_cleanup`.
        append = (
            table_format == "delta"
            and selection.new_files_only
            and gone is None
            and not reconciliation.touched
            and not must_merge
        )
        if append:
            fs.write_bytes(f"{staging}/{APPEND_MARKER}", b"")

        def write_table(name: str) -> None:
            rows = tables.table_rows(staged, name, run_id)
            uri, partition_by = layout.table(name), config.out.partition_by
            with step(f"table {name}"):
                if table_format == "delta":
                    tables.write_delta(
                        spark,
                        fs,
                        uri,
                        rows,
                        scope,
                        partition_by=partition_by,
                        replace=replace,
                        merge=not append,
                        auto_compact=config.maintenance.auto_compact,
                    )
                else:
                    tables.write_parquet(spark, fs, uri, rows, scope, partition_by=partition_by, replace=replace)

        def write_fhir() -> ndjson.Export:
            with step("fhir"):
                with step("deletions"):
                    produced = index.index_rows(staged, run_id).select(*index.KEY)
                    deleted = deletions.find(produced=produced, scope=None if replace else scope)
                return write_export(staged, deleted=deleted)

        def write_index() -> None:
            with step("index"):
                index.append(
                    spark,
                    fs,
                    layout.index,
                    index.index_rows(staged, run_id),
                    table_format,
                    auto_compact=config.maintenance.auto_compact,
                )

        # The sinks are independent Spark jobs, each mostly latency (planning, Delta log, commits): side by
        # side. All must succeed before the ledger commit.
        sink_calls: dict[str, Callable[[], object]] = {
            "fhir": write_fhir,
            **{name: functools.partial(write_table, name) for name in tables.TABLES},
        }
        if deletions.indexed:
            sink_calls["index"] = write_index
        lock.confirm()
        with step("sinks"):
            sinks = _side_by_side(spark, f"sr2fhir-{run_id}", sink_calls)
        export = typing.cast(ndjson.Export, sinks["fhir"])
        stats["resources_before_dedup"] = export.counts_before_dedup
        log.info(
            "run %s: mapped %d inputs from %d files; tables and export written",
            run_id,
            stats["totals"]["inputs"],
            stats["files"],
        )
        if before_ledger is not None:
            before_ledger()
        lock.confirm()  # the tables took this run's rows; the ledger commit makes them its own
        with step("ledger"):
            ledger.write(records, run_id=run_id, processed_at=started, fingerprint=fingerprint, replace=replace)
            if removed is not None:  # after the records: a run killed in between finds the same files gone again
                summary["removed"] = _record_removed(ledger, removed, fingerprint, run_id, started)
        recovery.settle(fs, layout.root, run_id, pending, reconciliation)
        if not append:  # it merged (or replaced): the old marker's meaning is met
            fs.delete(f"{layout.root}/{MERGE_MARKER}")
        with step("index prune"):
            deletions.prune(run_id)
    finally:
        records.unpersist()
        if removed is not None:
            removed.unpersist()
    return _finish(fs, layout, summary, clock, step, found=found, stats=stats, export=export)


def _with_pending_removed(
    spark: SparkSession, removed: DataFrame | None, reconciliation: recovery.Reconciliation
) -> DataFrame | None:
    """The removed files, with the gone pending files that get `removed` ledger rows (a file can be both)."""
    if not reconciliation.removed:
        return removed
    more = spark.createDataFrame(reconciliation.removed, "source_file string, known_run_id string")
    return more if removed is None else removed.unionByName(more).distinct()


@dataclass
class _Deletions:
    """What the run's deletions are computed from (`index.deletions`), and the index entries they supersede."""

    spark: SparkSession
    fs: HadoopFS
    layout: Layout
    ledger: Ledger
    table_format: str
    replace: bool
    indexed: bool
    """Whether the index covers the lake's files (started with the ledger): only then is it written and read."""
    origins: DataFrame | None
    """(source_file, run_id): the files re-mapped or removed, with their latest ledger run (full refresh: all)."""

    @classmethod
    def of(
        cls,
        spark: SparkSession,
        fs: HadoopFS,
        layout: Layout,
        ledger: Ledger,
        remapped: tuple[tuple[str, str], ...],
        removed: DataFrame | None,
        table_format: str,
        *,
        replace: bool,
    ) -> _Deletions:
        has_index = index.exists(fs, layout.index, table_format)
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
        indexed = has_index or not has_ledger or replace
        return cls(spark, fs, layout, ledger, table_format, replace, indexed, origins)

    def without(self, files: list[str]) -> _Deletions:
        """The same, leaving these files' exported resources and index entries alone (selected, but deleted before
        they were read: their ledger rows still hold the run the entries are of)."""
        if self.origins is None or not files:
            return self
        gone = self.spark.createDataFrame([(file,) for file in files], "source_file string")
        return dataclasses.replace(self, origins=self.origins.join(gone, "source_file", "left_anti"))

    def find(self, *, produced: DataFrame | None, scope: DataFrame | None) -> list[tuple[str, str]]:
        if self.origins is None:  # a first run, or only new files: nothing exported before can go
            return []
        entries = index.read(self.spark, self.layout.index, self.table_format)
        found = index.deletions(self.spark, entries, self.ledger.read(), self.origins, produced=produced, scope=scope)
        log.info("%d FHIR resources no file produces any more: exported as deletions", len(found))
        return found

    def prune(self, run_id: str) -> None:
        """After the ledger commit: the entries this run superseded go (a full refresh keeps its own only). A run
        with nothing to look for (a first run, only new files) leaves the index as it is: no extra commit."""
        if self.replace:  # a full refresh always writes the index
            index.prune(self.spark, self.fs, self.layout.index, self.table_format, run_id=run_id, superseded=None)
        elif self.origins is not None:
            index.prune(
                self.spark, self.fs, self.layout.index, self.table_format, run_id=run_id, superseded=self.origins
            )


def _remove(
    spark: SparkSession,
    fs: HadoopFS,
    layout: Layout,
    ledger: Ledger,
    removed: DataFrame | None,
    gone: DataFrame,
    config: JobConfig,
    fingerprint: str,
    run_id: str,
    started: datetime,
) -> dict[str, int]:
    """A run that maps nothing: delete the rows of the `gone` files, then record the `removed` ones in the ledger
    (a run that maps does both in its table MERGEs and its ledger commit). A run killed in between finds the same
    files gone next time, and deleting again is a no-op."""
    gone = gone.persist()
    try:
        for name in tables.TABLES:
            tables.remove_files(
                spark,
                fs,
                layout.table(name),
                gone,
                table_format=config.out.table_format,
                partition_by=config.out.partition_by,
            )
        if removed is None:  # only pending files, which the ledger does not hold as present
            return {"files": 0, "inputs": 0}
        return _record_removed(ledger, removed, fingerprint, run_id, started)
    finally:
        gone.unpersist()


def _record_removed(
    ledger: Ledger, removed: DataFrame, fingerprint: str, run_id: str, started: datetime
) -> dict[str, int]:
    files = removed.count()
    inputs = ledger.write_removed(
        removed,
        run_id=run_id,
        processed_at=started,
        fingerprint=fingerprint,
        message="the file is no longer in the lake: its rows were deleted from the tables",
    )
    log.info("run %s: %d files gone from the lake (%d inputs): their rows deleted", run_id, files, inputs)
    return {"files": files, "inputs": inputs}


def write_staging(mapped: DataFrame, uri: str) -> None:
    """The map step's output as Parquet. Staging is written once, read once per sink, then deleted: dictionary
    encoding (smaller files, faster re-reads) does not pay back its hashing of every string value (JVM CPU of
    the staging write ~0.56 -> ~0.40 ms/file, benchmarks/FINDINGS.md)."""
    mapped.write.mode("overwrite").option("parquet.enable.dictionary", "false").parquet(uri)


def _finish(
    fs: HadoopFS, layout: Layout, summary: dict, clock: float, step: Steps, *, found: int, stats, export
) -> dict:
    elapsed = time.monotonic() - clock
    processed = stats["files"] if stats else 0
    totals = (
        stats["totals"]
        if stats
        else {"inputs": 0, "mapped": 0, "rejected": 0, "failed": 0, "measurements": 0, "qualitative_evaluations": 0}
    )
    summary.update(
        {
            "finished": datetime.now(UTC).isoformat(),
            "elapsed_seconds": round(elapsed, 3),
            "files": {"found": found, "unchanged": found - processed, "processed": processed},
            "documents": {k: totals[k] for k in ("inputs", "mapped", "rejected", "failed")},
            "by_reason": stats["by_reason"] if stats else {},
            "files_per_second": round(processed / elapsed, 2) if elapsed else None,
            "inputs_per_second": round(totals["inputs"] / elapsed, 2) if elapsed else None,
            "rows": {name: totals[name] for name in tables.TABLES},
            "resources": dict(sorted(export.counts.items())) if export else {},
            "resources_before_dedup": stats["resources_before_dedup"] if stats else {},
            "deleted": export.deleted if export else {},
            "fhir": {"directory": fs.url(export.directory), "manifest": fs.url(f"{export.directory}/{ndjson.MANIFEST}")}
            if export
            else None,
            "tables": {name: fs.url(layout.table(name)) for name in (*tables.TABLES, "documents", index.NAME)},
            "step_seconds": step.seconds,
        }
    )
    fs.write_bytes(layout.summary(summary["run_id"]), json.dumps(summary, indent=2, default=str).encode() + b"\n")
    fs.delete(f"{layout.root}/_staging")  # one run at a time per output: all of it is this run's
    docs = summary["documents"]
    log.info(
        "run %s done in %.1f s: %d files found, %d unchanged, %d inputs mapped %d / rejected %d / failed %d",
        summary["run_id"],
        elapsed,
        found,
        found - processed,
        docs["inputs"],
        docs["mapped"],
        docs["rejected"],
        docs["failed"],
    )
    return summary


_SECRET_WORDS = ("secret", "password", "token", "access.key", "credential", "sas", "account.key")


def _redacted(tree: object, key: str = "") -> object:
    """The configuration without secrets (S3 keys, SAS tokens, ...): run summaries get shared."""
    if isinstance(tree, dict):
        return {k: _redacted(v, str(k)) for k, v in tree.items()}
    if any(word in key.lower() for word in _SECRET_WORDS) and "provider" not in key.lower():
        return "***"
    return tree


def _spark_schema():
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(OUTPUT_SCHEMA)


def _versions() -> dict[str, str | None]:
    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "sr2fhir": version("sr2fhir"),
        "pyspark": pyspark.__version__,
        "delta-spark": version("delta-spark"),
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    """spark-submit entry: the `sr2fhir run` flags."""
    from jobs.cli import main as cli_main

    return cli_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
