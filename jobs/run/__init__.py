"""`sr2fhir run`: a run is this list of steps, in an order chosen for kill safety.

  1. recover   what killed runs left (`recover`, `recovery`);
  2. select    list the inputs; with a ledger, keep only new, changed or failed files (metadata only, no byte read),
               and find the files gone from the lake (`select`, `removals`);
  3. stage     map the selected files once into `_staging/<run-id>`, and count what was mapped (`stage`);
  4. sinks     research tables, resource index and FHIR NDJSON + manifest (with deletions), side by side
               (`sinks`); a run with nothing to map only removes the gone files' rows and exports their deletions;
  5. commit    the ledger, the run's commit point; then pending files settled, superseded index entries pruned
               (`commit`);
  6. summary   `runs/<run-id>.json`, and the staging removed (`summary`);
  7. catalog   with `output.catalog_schema`, the Delta tables registered in the session's catalog (`catalog`).

A run killed before step 5 is invisible to the next one, which maps the same files again: the MERGE makes the
tables come out the same, and the killed run's partial export folder is removed. Its files stay pending until a
committed run has mapped them again or deleted the rows of those gone since (`recovery`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from pyspark.sql import SparkSession

from .. import limits, output_lock
from ..config import JobConfig
from ..layout import Layout
from ..spark.fs import HadoopFS
from ..spark.session import apply_runtime_settings
from . import catalog, commit, executors, recover, recovery, select, sinks, stage, summary
from .context import OutputTables, Run

log = logging.getLogger("sr2fhir")


def run(spark: SparkSession, config: JobConfig, *, before_ledger: Callable[[], None] | None = None) -> dict:
    """Run the job on a session; returns the run summary (also written to runs/<run-id>.json). Holds the output's
    lock meanwhile (`OutputBusy` when another job holds it). `before_ledger` is a test hook called after the
    sinks, before the ledger commit."""
    apply_runtime_settings(spark, config.spark, umask=config.out.umask)
    memory = limits.session_memory(spark)
    config = with_limits(config, memory)
    fs = HadoopFS(spark)
    layout = Layout(fs.qualify(config.output))
    with output_lock.holding(fs, layout.root, "run", expiry_seconds=config.out.lock_expiry_seconds) as lock:
        tables = OutputTables.open(spark, fs, layout, config)
        job = Run(spark, fs, config, layout, lock, tables, safe_input_bytes=memory.max_input_bytes)
        log.info(
            "run %s: %s → %s (%s%s)",
            job.run_id,
            ", ".join(config.inputs + config.input_lists),
            layout.root,
            job.table_format,
            ", full refresh" if job.replace else "",
        )
        with executors.failing_without_executors(spark, config.spark.no_executor_timeout_seconds):
            done = _steps(job, before_ledger)
            catalog.register(job)
        return done


def with_limits(config: JobConfig, memory: limits.Memory) -> JobConfig:
    """The configuration with `input.max_file_bytes` resolved for this session (`auto`: what its memory allows)."""
    resolved = limits.max_file_bytes(config.input.max_file_bytes, memory)
    return dataclasses.replace(config, input=dataclasses.replace(config.input, max_file_bytes=resolved))


def _steps(run: Run, before_ledger: Callable[[], None] | None) -> dict:
    with run.steps("recover"):
        recovered = recover.recover(run)
    plan = select.plan(run, recovered)

    if plan.nothing_to_map:
        export, removed = None, {"files": 0, "inputs": 0}
        if plan.gone is not None:
            run.lock.confirm()
            with run.steps("remove"):
                export = sinks.remove_only(run, plan)
                removed = commit.record_removed(run, plan)
                plan.deletions.prune(run.run_id)
        recovery.settle(run.fs, run.layout.root, run.run_id, recovered.pending, plan.reconciliation)
        log.info("run %s: all %d files unchanged since their last run; nothing to map", run.run_id, plan.found)
        return summary.finish(run, plan, None, export, removed)

    staged, plan = stage.map_inputs(run, plan)
    if plan.removed is not None:
        plan.removed.persist()
    try:
        export = sinks.write_sinks(run, plan, staged)
        if before_ledger is not None:
            before_ledger()
        removed = commit.commit(run, plan, staged)
    finally:
        staged.release()
        if plan.removed is not None:
            plan.removed.unpersist()
    return summary.finish(run, plan, staged, export, removed)
