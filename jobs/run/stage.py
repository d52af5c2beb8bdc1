"""Step 3, map and stage: the selected files through the Mapper (mapInArrow), once, into `_staging/<run-id>`
(`jobs/staging.py`), so every sink reads the mapping's output instead of mapping again, and only its own rows; then
what the run mapped, from the staged document records."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.accumulators import Accumulator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import staging, stopping
from ..errors import JobError
from ..mapping import Mapper, MapperSettings, WorkerCounts, WorkerKey
from ..sinks.tables import SCOPE
from ..sources.inputs import Listed, listed_struct
from ..spark.fs import HadoopFS
from . import crashes
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
    workers: dict[WorkerKey, int] | None
    """Inputs mapped per Python worker (its host, pid, interpreter, package folder and reader code), as its tasks
    reported them; None on a session without accumulators (Spark Connect)."""

    def release(self) -> None:
        self.records.unpersist()


def map_inputs(run: Run, plan: Plan) -> tuple[Staged, Plan]:
    """Map the plan's files into staging; returns what was staged, and the plan without the files that vanished."""
    spark, config = run.spark, run.config
    settings = MapperSettings(
        options=config.mapping,
        max_file_bytes=config.input.file_limit,
        max_archive_bytes=config.input.max_archive_bytes,
        max_seconds_per_input=config.input.max_seconds_per_input,
    )
    workers = _worker_counts(spark)
    with run.steps("map"), Progress(spark, config.out.progress_interval_seconds) as progress:
        _Mapping(run, plan, Mapper(settings, progress.callback(), workers.add if workers is not None else None)).all()
    run.fs.write_bytes(f"{run.staging}/{staging.COMPLETE}", b"")
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
    counts = dict(workers.value) if workers is not None else None
    return Staged(rows, records, stats, len(vanished), scope, counts), plan


def _worker_counts(spark: SparkSession) -> Accumulator[dict[WorkerKey, int]] | None:
    """Where the inputs are mapped, counted as tasks finish; None on Spark Connect (no accumulators)."""
    try:
        return spark.sparkContext.accumulator({}, WorkerCounts())
    except Exception:
        return None


class _Mapping:
    """The map step's Spark jobs, each writing a part of the staging folder: the inputs mapped alone, one job each
    behind a marker, then the others in one job, cut in halves down to the input that crashes it if a worker dies
    (`crashes`); then the document records of the inputs not mapped (crashed, quarantined)."""

    def __init__(self, run: Run, plan: Plan, mapper: Mapper) -> None:
        self.run, self.plan, self.mapper = run, plan, mapper
        self.parts = 0
        self.mapped = 0
        self.not_mapped: list[tuple[Listed, str, str]] = []
        self.crash: BaseException | None = None

    def all(self) -> None:
        plan, run = self.plan, self.run
        for file in plan.isolated:
            crashes.mark(run.fs, run.layout, run.run_id, file)
            if self._map_or_split([file]):
                crashes.unmark(run.fs, run.layout, run.run_id)
        held = {file.file_key for file in plan.isolated} | {file.file_key for file, _ in plan.quarantine}
        if plan.todo is None:
            if not self._map(None, exclude=plan.isolated):
                everything = [Listed(*r[0]) for r in plan.inputs.files.select(listed_struct()).collect()]
                self._map_or_split([file for file in everything if file.file_key not in held])
        elif rest := [file for file in plan.todo if file.file_key not in held]:
            self._map_or_split(rest)
        for file, count in plan.quarantine:
            message = crashes.QUARANTINE_MESSAGE.format(n=count)
            self.not_mapped.append((file, crashes.QUARANTINED, message))
            log.warning("run %s: an input is quarantined after %d crashes of the mapping", run.run_id, count)
        if self.not_mapped:
            staging.write(crashes.records(run.spark, self.not_mapped), self._next_part())

    def _map_or_split(self, files: list[Listed]) -> bool:
        """Map these files, halving them where a worker dies; False when one of them crashed it."""
        if self._map(files):
            return True
        if len(files) == 1:
            log.warning("run %s: an input crashed the mapping's worker: ledgered failed/crashed", self.run.run_id)
            self.not_mapped.append((files[0], crashes.CRASHED, crashes.CRASH_MESSAGE))
            pinned = sum(reason == crashes.CRASHED for _, reason, _ in self.not_mapped)
            if pinned >= crashes.GIVE_UP_AFTER and not self.mapped:
                raise RuntimeError(
                    f"the mapping's workers died on each of the {pinned} inputs tried alone, and mapped none: not an"
                    " input's doing (a broken Python environment on the executors?)"
                ) from self.crash
            return False
        middle = len(files) // 2
        first = self._map_or_split(files[:middle])
        return self._map_or_split(files[middle:]) and first

    def _map(self, files: list[Listed] | None, exclude: list[Listed] | None = None) -> bool:
        """Map these files (None: all but `exclude`) into a new part; False when a worker died on one of them."""
        run = self.run
        part = self._next_part()
        scratch = f"{run.layout.selection(run.run_id)}-{self.parts}"
        content = self.plan.inputs.with_content(files, scratch=scratch, exclude=exclude or ())
        try:
            staging.write(content.mapInArrow(self.mapper, staging.spark_schema()), part)
        except Exception as exc:
            if (missing := _missing_package(exc)) is not None:
                raise ExecutorsLackPackage(_lack_message(run.spark, missing)) from exc
            if stopping.requested() or not crashes.worker_crash(exc):
                raise
            log.warning("run %s: a worker died in a map job: mapping its inputs in halves", run.run_id)
            self.crash = exc
            run.fs.delete(part)
            return False
        self.mapped += 1
        return True

    def _next_part(self) -> str:
        self.parts += 1
        return f"{self.run.staging}/part-{self.parts:05d}"


class ExecutorsLackPackage(JobError):
    """The executors' Python cannot import the job: sr2fhir is not installed there, or shipped in a form PySpark
    does not put on their path."""


_MISSING_MODULE = re.compile(r"No module named '((?:jobs|sr2fhir_core)[\w.]*)'")


def _missing_package(exc: BaseException) -> str | None:
    """The module of this package that a Python worker could not import, if that is why a map job failed."""
    match = _MISSING_MODULE.search(str(exc))
    return match.group(1) if match else None


def _lack_message(spark: SparkSession, module: str) -> str:
    """What failed and how to ship the package (docs/job.md, Shipping the package)."""
    try:
        py_files = spark.sparkContext.getConf().get("spark.submit.pyFiles") or ""
    except Exception:  # Spark Connect: no SparkContext
        py_files = ""
    wheels = [name.rsplit("/", 1)[-1] for name in py_files.split(",") if name.lower().endswith(".whl")]
    why = (
        f"--py-files names the wheel {', '.join(wheels)}, which PySpark does not put on the executors' path (only"
        " .zip, .egg and .jar files)"
        if wheels
        else "sr2fhir is neither installed in their Python environment nor shipped to them"
    )
    return (
        f"the executors cannot import the job (No module named '{module}'): {why}. Install the wheel in a packed"
        " Python environment shipped with --archives env.tar.gz#env and PYSPARK_PYTHON=./env/bin/python, or in"
        " the executors' image (docs/job.md, Shipping the package); a wheel renamed .zip on --py-files works"
        " without the C reader (slower)"
    )


NO_TOTALS = {
    "inputs": 0,
    "mapped": 0,
    "rejected": 0,
    "failed": 0,
    "measurements": 0,
    "qualitative_evaluations": 0,
    "unmapped_items": 0,
    "with_unmapped_items": 0,
}
"""The run's counts: inputs by status, table rows, and content items no output carries (and in how many
inputs: the `unmapped_content` warnings say which)."""


def statistics(records: DataFrame) -> dict:
    """What the run mapped, from the staged document records."""
    by_reason: dict[str, int] = {}
    totals = dict(NO_TOTALS)
    for row in (
        records.groupBy("status", "reason")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("measurements").alias("measurements"),
            F.sum("qualitative_evaluations").alias("qualitative_evaluations"),
            F.sum("unmapped_items").alias("unmapped_items"),
            F.count(F.when(F.col("unmapped_items") > 0, 1)).alias("with_unmapped_items"),
        )
        .collect()
    ):
        totals["inputs"] += row["n"]
        totals[row["status"]] += row["n"]
        for name in ("measurements", "qualitative_evaluations", "unmapped_items", "with_unmapped_items"):
            totals[name] += row[name] or 0
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
