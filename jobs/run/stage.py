"""Step 3, map and stage: the selected files through the Mapper (mapInArrow), once, into `_staging/<run-id>`
(`jobs/staging.py`), so every sink reads the mapping's output instead of mapping again, and only its own rows; then
what the run mapped, from the staged document records."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.accumulators import Accumulator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import staging
from ..mapping import Mapper, MapperSettings
from ..sinks.tables import SCOPE
from ..sources.inputs import Listed
from ..spark.fs import HadoopFS
from .context import Run
from .select import Plan, single_row

log = logging.getLogger("sr2fhir")


@dataclass(frozen=True)
class Staged:
    rows: DataFrame
    """The staged rows (`staging.OUTPUT_SCHEMA`); each sink reads its kind's rows and columns only."""
    records: DataFrame
    """The document records, cached: small (one per input), read by the statistics, the scope and the ledger."""
    statistics: dict
    vanished: int
    """Selected files deleted before they were read."""
    scope: DataFrame
    """(source_file) of every file the run maps or removes: the tables' rows it replaces or deletes."""

    def release(self) -> None:
        self.records.unpersist()


def map_inputs(run: Run, plan: Plan) -> tuple[Staged, Plan]:
    """Map the plan's files into staging; returns what was staged, and the plan without the files that vanished."""
    spark, config = run.spark, run.config
    settings = MapperSettings(
        options=config.mapping,
        max_file_bytes=config.input.file_limit,
        max_archive_bytes=config.input.max_archive_bytes,
    )
    with run.steps("map"), Progress(spark, config.out.progress_interval_seconds) as progress:
        content = plan.inputs.with_content(plan.todo, scratch=run.layout.selection(run.run_id))
        mapped = content.mapInArrow(Mapper(settings, progress.callback()), staging.spark_schema())
        staging.write(mapped, run.staging)
    rows = staging.read(spark, run.staging)
    records = staging.records(rows).persist()
    try:
        with run.steps("statistics"):
            stats = statistics(records)
        vanished: list[str] = []
        if plan.todo is not None and stats["files"] != len(plan.todo):
            vanished = _vanished(run.fs, plan.todo, records)
            log.warning("run %s: %d selected files were deleted before they were read", run.run_id, len(vanished))
            plan = plan.without(vanished)
        scope = records.select(SCOPE).distinct()
        if plan.gone is not None:
            # Files gone from the lake leave the tables in the same MERGE (or rewrite) as the re-mapped files' old
            # rows: their scope has no new rows.
            scope = scope.unionByName(plan.gone).distinct()
    except BaseException:
        records.unpersist()
        raise
    return Staged(rows, records, stats, len(vanished), scope), plan


def statistics(records: DataFrame) -> dict:
    """What the run mapped, from the staged document records."""
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
    files = single_row(records.select(F.countDistinct("source_file").alias("n")))["n"]
    return {"files": int(files), "totals": totals, "by_reason": dict(sorted(by_reason.items()))}


def _vanished(fs: HadoopFS, todo: list[Listed], records: DataFrame) -> list[str]:
    """The selected files the map step did not read, which must be gone: the scans skip files deleted since the
    listing (`sources.inputs._binary_files`). Any other shortfall is a defect, raised. Only when files are
    missing: it collects the read files' paths."""
    read = {row["source_file"] for row in records.select("source_file").distinct().collect()}
    missing = sorted(file.source_file for file in todo if file.source_file not in read)
    if still_there := sum(fs.exists(file) for file in missing):
        raise RuntimeError(f"{len(todo)} files were selected for mapping, {len(read)} read and {still_there} not read")
    return missing


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
