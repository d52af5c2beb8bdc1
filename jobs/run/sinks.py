"""Step 4, sinks: the research tables (one commit each), the resource index (appended) and the FHIR NDJSON export
with its manifest and deletions, side by side; all must succeed before the ledger commit."""

from __future__ import annotations

import functools
import logging
import typing
from collections.abc import Callable

from ..sinks import index, ndjson, tables
from .context import Run
from .execution import side_by_side
from .select import Plan
from .stage import Staged

log = logging.getLogger("sr2fhir")


def exporter(run: Run) -> Callable[..., ndjson.Export]:
    """`write(staged_rows_or_None, deleted=...)`: the run's FHIR export folder."""
    return functools.partial(
        ndjson.write_ndjson,
        fs=run.fs,
        directory=run.layout.fhir(run.run_id),
        max_per_file=run.config.fhir.max_resources_per_file,
        transaction_time=run.started.isoformat().replace("+00:00", "Z"),
        request=run.fs.url(run.layout.summary(run.run_id)),
        url_for=export_urls(run.layout.root, run.config.fhir.export_url_base),
        fhir_version=run.config.mapping.fhir_version,
    )


def export_urls(root: str, base: str | None) -> Callable[[str], str] | None:
    """The manifest's URL of a file under the output `root`: `base` plus its path under the root (what an
    importing server fetches: the output served over https, or its bucket), or None for the files' own URLs."""
    if base is None:
        return None
    prefix = root.rstrip("/") + "/"

    def url(target: str) -> str:
        if not target.startswith(prefix):
            raise ValueError("an export file outside the output folder")
        return f"{base}/{target.removeprefix(prefix)}"

    return url


def write_sinks(run: Run, plan: Plan, staged: Staged) -> ndjson.Export:
    if plan.appends:  # marked before any table commit: the next start deletes the rows if this run is killed
        run.fs.write_bytes(run.layout.append_marker(run.run_id), b"")

    def write_table(name: str) -> None:
        store = run.tables.research[name]
        rows = tables.table_rows(staged.rows, name, run.run_id)
        with run.steps(f"table {name}"):
            if run.replace:
                store.overwrite(rows)
            elif plan.appends:
                store.append(rows)
            else:
                store.merge(rows, staged.scope)

    def write_fhir() -> ndjson.Export:
        with run.steps("fhir"):
            with run.steps("deletions"):
                produced = index.index_rows(staged.rows, run.run_id).select(*index.KEY)
                deleted = plan.deletions.find(produced=produced, scope=None if run.replace else staged.scope)
            return exporter(run)(staged.rows, deleted=deleted)

    def write_index() -> None:
        with run.steps("index"):
            run.tables.index.append(index.index_rows(staged.rows, run.run_id))

    # Independent Spark jobs, each mostly latency (planning, Delta log, commits): side by side.
    calls: dict[str, Callable[[], object]] = {
        "fhir": write_fhir,
        **{name: functools.partial(write_table, name) for name in tables.TABLES},
    }
    if plan.deletions.indexed:
        calls["index"] = write_index
    run.lock.confirm()
    with run.steps("sinks"):
        results = side_by_side(run.spark, f"sr2fhir-{run.run_id}", calls)
    export = typing.cast(ndjson.Export, results["fhir"])
    log.info(
        "run %s: mapped %d inputs from %d files; tables and export written",
        run.run_id,
        staged.statistics["totals"]["inputs"],
        staged.statistics["files"],
    )
    return export


def remove_only(run: Run, plan: Plan) -> ndjson.Export | None:
    """A run that maps nothing but finds files gone: their FHIR deletions exported, then their rows deleted from
    the research tables. Returns the export (None when only pending files, never exported, went)."""
    gone = plan.gone
    assert gone is not None, "called for a run that removes"
    export = None
    if plan.removed is not None:
        # The export (its deletions) before the ledger's removed rows: a run killed in between leaves an
        # uncommitted export folder, which the next start removes, and the next run finds the same files.
        with run.steps("deletions"):
            deleted = plan.deletions.find(produced=None, scope=gone)
        export = exporter(run)(None, deleted=deleted)
    gone = gone.persist()
    try:
        for store in run.tables.research.values():
            store.remove_files(gone)
    finally:
        gone.unpersist()
    return export
