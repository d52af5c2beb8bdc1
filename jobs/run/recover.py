"""Step 1, recover: undo or carry forward what killed runs left, before anything is listed.

A run in progress elsewhere would look killed: the output's lock (`output_lock`) keeps it from being one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import functions as F

from .. import staging
from ..layout import committed_runs
from ..sinks import index
from . import crashes, recovery
from .context import Run

log = logging.getLogger("sr2fhir")


@dataclass(frozen=True)
class Recovered:
    pending: recovery.Pending
    """Files of killed runs that merged, to reconcile (`recovery`)."""
    must_merge: bool
    """An older version's marker says the tables hold rows a killed MERGE left: merge, never append."""


def recover(run: Run) -> Recovered:
    """Finish or undo interrupted table swaps (Parquet); then remove staging folders, and the appended table rows
    and export folders of runs that never reached their ledger commit (their files are mapped again, so those rows
    and resources come again too). The files of killed runs that merged are carried forward (`recovery`)."""
    fs, layout = run.fs, run.layout
    for store in run.tables.all().values():
        store.recover()
    staged = [f.name for f in fs.list_dir(layout.staging_root) if f.is_dir]
    completed = committed_runs(fs, layout)
    unfinished = [f for f in fs.list_dir(layout.exports) if f.is_dir and f.name not in completed]
    if staged or unfinished:
        ledger = run.tables.ledger
        # A run killed between its ledger commit and its summary is complete: keep its rows and export. (A run
        # that maps commits its removed rows after its records; one that only removes, its export before them.)
        committed = (
            {r.run_id for r in ledger.read().select("run_id").distinct().collect()} if ledger.exists() else set()
        )
        # A run whose files were all new appended its rows rather than merging them, so they must go before those
        # files are mapped again. Its staging folder, marked before any table commit and deleted only here or
        # after its summary, says so.
        appended = sorted(name for name in staged if name not in committed and fs.exists(layout.append_marker(name)))
        if appended:
            log.warning("deleting the rows of interrupted runs from the tables: %s", ", ".join(appended))
            # `run_id` has file statistics: only the files those runs wrote are read.
            for store in run.tables.research.values():
                store.delete_where(F.col("run_id").isin(appended))
        for name in staged:  # a run that merged (or rewrote Parquet tables): its files are reconciled later
            if name not in committed and name not in appended:
                recovery.carry_forward(run.spark, fs, layout.root, name, layout.staging(name))
        for folder in unfinished:
            if folder.name not in committed:
                log.warning("removing the export of an interrupted run: %s", folder.name)
                fs.delete(folder.uri)
    fs.delete(layout.staging_root)
    _ledger_deaths(run)
    return Recovered(pending=recovery.read_pending(fs, layout.root), must_merge=fs.exists(layout.merge_marker))


def _ledger_deaths(run: Run) -> None:
    """The inputs runs died mapping alone (their markers left behind) are ledgered failed/crashed, each under a run
    id of its own just after the dead run's (which committed nothing): the crash counts towards the input's
    quarantine whatever this run does."""
    markers = crashes.leftover_markers(run.fs, run.layout)
    if markers and not run.tables.ledger.exists() and not run.tables.index.exists():
        # The first rows of a ledger come with the index's start, as a first run's do: the index then covers the
        # lake, and later runs export deletions (`Deletions.of`).
        run.tables.index.append(index.empty_entries(run.spark))
    for uri, marker in markers:
        log.warning("a run died while it mapped an input alone (%s): ledgered failed/crashed", marker.run_id)
        died = crashes.records(run.spark, [(marker.file, crashes.CRASHED, crashes.DEATH_MESSAGE)])
        run.tables.ledger.write(
            staging.records(died),
            run_id=f"{marker.run_id}~crashed",
            processed_at=run.started,
            fingerprint=run.fingerprint,
            replace=False,
        )
        run.fs.delete(uri)
