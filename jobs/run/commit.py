"""Step 5, commit: the ledger rows of the run's inputs and of the files gone from the lake. The ledger is the
commit point: a run killed before it is invisible to the next one, which maps the same files again (the tables'
MERGE makes that harmless); after it, the pending files it settled and the index entries it superseded go."""

from __future__ import annotations

import logging

from . import crashes, recovery
from .context import Run
from .select import Plan
from .stage import Staged

log = logging.getLogger("sr2fhir")

REMOVED_MESSAGE = "the file is no longer in the lake: its rows were deleted from the tables"


def commit(run: Run, plan: Plan, staged: Staged) -> dict[str, int]:
    """The ledger commit of a run that mapped; returns the removed files and inputs it recorded."""
    run.lock.confirm()  # the tables took this run's rows; the ledger commit makes them its own
    with run.steps("ledger"):
        run.tables.ledger.write(
            staged.records,
            run_id=run.run_id,
            processed_at=run.started,
            fingerprint=run.fingerprint,
            replace=run.replace,
        )
        removed = record_removed(run, plan)  # after the records: a run killed in between finds them gone again
    recovery.settle(run.fs, run.layout.root, run.run_id, plan.recovered.pending, plan.reconciliation)
    crashes.unmark(run.fs, run.layout, run.run_id)  # what became of the input it marks is in the ledger now
    if not plan.appends:  # it merged (or replaced): the old marker's meaning is met
        run.fs.delete(run.layout.merge_marker)
    with run.steps("index prune"):
        plan.deletions.prune(run.run_id)
    return removed


def record_removed(run: Run, plan: Plan) -> dict[str, int]:
    """`removed` ledger rows for the files gone from the lake (none for pending files the ledger never had)."""
    if plan.removed is None:
        return {"files": 0, "inputs": 0}
    files = plan.removed.count()
    inputs = run.tables.ledger.write_removed(
        plan.removed,
        run_id=run.run_id,
        processed_at=run.started,
        fingerprint=run.fingerprint,
        message=REMOVED_MESSAGE,
    )
    log.info("run %s: %d files gone from the lake (%d inputs): their rows deleted", run.run_id, files, inputs)
    return {"files": files, "inputs": inputs}
