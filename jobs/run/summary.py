"""Step 6, summary: `runs/<run-id>.json`, written last (a run has one once it has committed), then the staging
removed. Run summaries get shared: the configuration in them is without secrets."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import pyspark

from ..mapping import WORKER_FIELDS, WorkerKey
from ..sinks import index, ndjson, tables
from ..sinks.ledger import SPEC as LEDGER_SPEC
from .context import Run
from .select import Plan
from .stage import NO_TOTALS, Staged

log = logging.getLogger("sr2fhir")


def finish(run: Run, plan: Plan, staged: Staged | None, export: ndjson.Export | None, removed: dict[str, int]) -> dict:
    """Write the run summary, remove the staging, and return the summary."""
    fs, layout, config = run.fs, run.layout, run.config
    elapsed = time.monotonic() - run.clock
    stats = staged.statistics if staged is not None else None
    processed = stats["files"] if stats else 0
    found = plan.found if plan.found >= 0 or stats is None else stats["files"]
    totals = stats["totals"] if stats else NO_TOTALS
    workers = mapping_workers(staged.workers if staged is not None else {}, run.run_id)
    summary = {
        "run_id": run.run_id,
        "started": run.started.isoformat(),
        "inputs": list(config.inputs),
        "input_lists": list(config.input_lists),
        "output": fs.url(layout.root),
        "table_format": run.table_format,
        "full_refresh": run.replace,
        "mapping_fingerprint": run.fingerprint,
        "options": {"mapping": config.mapping.as_dict(), "configuration": redacted(config.raw)},
        "versions": versions(),
        "removed": removed,
        "reconciled": plan.reconciliation.counts(plan.recovered.pending),
        "vanished": staged.vanished if staged is not None else 0,
        "limits": {
            "max_file_bytes": config.input.max_file_bytes,
            "max_archive_bytes": config.input.max_archive_bytes,
            "max_seconds_per_input": config.input.max_seconds_per_input,
        },
        "finished": datetime.now(UTC).isoformat(),
        "elapsed_seconds": round(elapsed, 3),
        "files": {"found": found, "unchanged": found - processed, "processed": processed},
        "documents": {k: totals[k] for k in ("inputs", "mapped", "rejected", "failed")},
        "by_reason": stats["by_reason"] if stats else {},
        "files_per_second": round(processed / elapsed, 2) if elapsed else None,
        "inputs_per_second": round(totals["inputs"] / elapsed, 2) if elapsed else None,
        "rows": {name: totals[name] for name in tables.TABLES},
        "unmapped_items": {"items": totals["unmapped_items"], "inputs": totals["with_unmapped_items"]},
        "readers": readers(workers),
        "mapping_workers": workers,
        "resources": dict(sorted(export.counts.items())) if export else {},
        "resources_before_dedup": export.counts_before_dedup if export and staged is not None else {},
        "deleted": export.deleted if export else {},
        "fhir": {"directory": fs.url(export.directory), "manifest": fs.url(f"{export.directory}/{ndjson.MANIFEST}")}
        if export
        else None,
        "tables": {name: fs.url(layout.table(name)) for name in (*tables.TABLES, LEDGER_SPEC.name, index.NAME)},
        "step_seconds": run.steps.seconds,
    }
    fs.write_bytes(layout.summary(run.run_id), json.dumps(summary, indent=2, default=str).encode() + b"\n")
    fs.delete(layout.staging_root)  # one run at a time per output: all of it is this run's
    docs = summary["documents"]
    log.info(
        "run %s done in %.1f s: %d files found, %d unchanged, %d inputs mapped %d / rejected %d / failed %d",
        run.run_id,
        elapsed,
        found,
        found - processed,
        docs["inputs"],
        docs["mapped"],
        docs["rejected"],
        docs["failed"],
    )
    return summary


FALLBACK_WARNING = (
    "run %s: %d of %d inputs were read without the C reader on %s (sr2fhir_core's C extensions did not load"
    " there: a package on --py-files cannot carry them), about 1.5 times slower; install sr2fhir in the executors'"
    " Python environment (docs/job.md, Shipping the package)"
)


def mapping_workers(counts: dict[WorkerKey, int] | None, run_id: str) -> list[dict] | None:
    """Inputs mapped per Python worker, each with where it ran and the reader code it ran (`mapping.this_worker`),
    ordered by host, interpreter and pid; a warning when any of them ran without the C reader. None: not known."""
    if counts is None:
        return None
    workers: list[dict[str, Any]] = [
        {**dict(zip(WORKER_FIELDS, key, strict=True)), "inputs": n} for key, n in counts.items()
    ]
    workers.sort(key=lambda w: (w["host"], w["python"], w["pid"]))
    slow = [w for w in workers if w["reader"] != "c"]
    if slow:
        hosts = ", ".join(sorted({w["host"] for w in slow}))
        log.warning(FALLBACK_WARNING, run_id, sum(w["inputs"] for w in slow), sum(w["inputs"] for w in workers), hosts)
    return workers


def readers(workers: list[dict] | None) -> dict[str, int] | None:
    """Inputs mapped per reader code ("c", "python", "mixed"); None: not known (no accumulators on the session)."""
    if workers is None:
        return None
    totals: dict[str, int] = {}
    for worker in workers:
        totals[worker["reader"]] = totals.get(worker["reader"], 0) + worker["inputs"]
    return dict(sorted(totals.items()))


_SECRET_WORDS = ("secret", "password", "token", "access.key", "credential", "sas", "account.key")


def redacted(tree: object, key: str = "") -> object:
    """The configuration without secrets (S3 keys, SAS tokens, ...)."""
    if isinstance(tree, dict):
        return {k: redacted(v, str(k)) for k, v in tree.items()}
    if any(word in key.lower() for word in _SECRET_WORDS) and "provider" not in key.lower():
        return "***"
    return tree


def versions() -> dict[str, str | None]:
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
