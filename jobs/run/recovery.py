"""Files a killed run may have left rows of: carried forward until a committed run has reconciled them.

A run killed after its table commits (a Delta MERGE, or a Parquet rewrite) but before its ledger commit leaves
the tables holding its rows of files whose ledger state says otherwise: a file new to the ledger, or the old
version of a changed one. Mapping those files again replaces the rows, but only if the next run maps them: a file
deleted from the lake before then is not listed and (if new) unknown to the ledger, so its rows would stay
forever; a file restored to its old size and time looks unchanged, so the killed run's rows of the other content
would stay.

So the next start (`carry_forward`) writes the `source_file`s of each such run, read from its staged document
records, to `_reconcile/<killed-run-id>.json` under the output before it deletes the staging. Only complete
staging counts (`_SUCCESS`): the tables are written after it, so a run killed before has written none. Appended
runs are not carried: their rows are deleted outright (`recover`, by their run ids).

Every later run reconciles the carried files (`reconcile`) whatever the ledger says, where it can tell their fate:
  * listed: mapped again (its MERGE replaces their rows, so the run merges rather than appends);
  * gone (not listed, lying where the run looked by the rules of `removals.looked_at`, and not existing): in the
    MERGE scope with no new rows, like a removed file. One the ledger knows, whose latest rows are not `removed`,
    gets `removed` ledger rows; one the ledger never knew (or already records as removed) gets none: no committed
    run ever had rows of it, and none are left now. This holds under `removed_files: keep` too, since the rows
    such a file has are the killed run's, which no ledger row accounts for;
  * anything else (outside this run's inputs, or listed by a stale listing): kept for a later run.
After its ledger commit, a run writes what it kept as `_reconcile/<run-id>.json`, then deletes the lists it read
(`settle`). A run killed anywhere before that leaves the lists in place, and its own complete staging adds
another, so a second kill loses nothing. Each list is written under a temporary name and renamed, so a list is
whole or absent. A full refresh overwrites the tables and clears every list.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from .. import staging
from ..config import JobConfig
from ..sinks.ledger import Ledger
from ..sources.inputs import Inputs, Listed, listed_struct
from ..spark.fs import HadoopFS
from . import removals

log = logging.getLogger("sr2fhir")

FOLDER = "_reconcile"
"""Folder under --output with the lists of files to reconcile."""
_SUFFIX = ".json"
_PARTIAL = ".partial"


@dataclass(frozen=True)
class Pending:
    """The files to reconcile, and the lists they were read from."""

    files: frozenset[str] = frozenset()
    lists: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reconciliation:
    """What this run does with the pending files."""

    to_map: list[Listed] = field(default_factory=list)
    """The listed ones."""
    removed: list[tuple[str, str]] = field(default_factory=list)
    """(source_file, known_run_id) of the gone ones the ledger knows as present: they get `removed` rows."""
    purged: list[str] = field(default_factory=list)
    """The other gone ones: their rows go, with no ledger row."""
    kept: list[str] = field(default_factory=list)
    """The ones this run cannot judge: pending still."""

    @property
    def touched(self) -> bool:
        """Whether the run writes rows of pending files or deletes them: it must merge, never append."""
        return bool(self.to_map or self.removed or self.purged)

    def keeping(self, files: list[str]) -> Reconciliation:
        """The same, with those of these files it was to map kept pending instead (deleted before they were read)."""
        unread = {file.source_file for file in self.to_map} & set(files)
        if not unread:
            return self
        to_map = [file for file in self.to_map if file.source_file not in unread]
        return dataclasses.replace(self, to_map=to_map, kept=sorted({*self.kept, *unread}))

    def counts(self, pending: Pending) -> dict[str, int]:
        return {
            "pending": len(pending.files),
            "mapped": len(self.to_map),
            "deleted": len(self.removed) + len(self.purged),
            "kept": len(self.kept),
        }


def carry_forward(spark: SparkSession, fs: HadoopFS, root: str, run_id: str, staged: str) -> None:
    """Write the list of a killed run's files from its staging (which the caller deletes afterwards)."""
    target = f"{root}/{FOLDER}/{run_id}{_SUFFIX}"
    if not fs.exists(f"{staged}/{staging.COMPLETE}") or fs.exists(target):  # no table written, or carried already
        return
    records = staging.records(staging.read(spark, staged))
    files = [row["source_file"] for row in records.select("source_file").distinct().collect()]
    log.warning("run %s was killed after its staging: %d of its files will be reconciled", run_id, len(files))
    _write_list(fs, target, files)


def read_pending(fs: HadoopFS, root: str) -> Pending:
    """The union of the lists (one listing of a folder that is usually absent)."""
    files: set[str] = set()
    lists = []
    for status in sorted(fs.list_dir(f"{root}/{FOLDER}"), key=lambda s: s.name):
        if status.name.endswith(_PARTIAL):  # a write killed before its rename: its sources are still there
            fs.delete(status.uri)
        elif status.name.endswith(_SUFFIX) and not status.name.startswith("."):
            files.update(json.loads(fs.read_bytes(status.uri))["files"])
            lists.append(status.uri)
    return Pending(files=frozenset(files), lists=tuple(lists))


def reconcile(
    spark: SparkSession, fs: HadoopFS, inputs: Inputs, ledger: Ledger, config: JobConfig, pending: Pending
) -> Reconciliation:
    """Sort the pending files into mapped, gone and kept. Costs nothing without pending files; with them, one
    join of the listing with them, one `exists` per pending file not listed where the run looked, and for those
    gone one read of their ledger rows."""
    if not pending.files or config.full_refresh:  # a full refresh maps everything and overwrites the tables
        return Reconciliation()
    wanted = spark.createDataFrame([(f,) for f in sorted(pending.files)], "source_file string")
    listed = {
        row["source_file"]: Listed(*row["file"])
        for row in inputs.files.join(F.broadcast(wanted), "source_file", "left_semi")
        .select("source_file", listed_struct().alias("file"))
        .collect()
    }
    unlisted = sorted(pending.files - listed.keys())
    looked = removals.looked_at(spark, fs, config)
    gone: list[str] = []
    if unlisted and looked is not None:
        where = spark.createDataFrame([(f,) for f in unlisted], "source_file string").where(looked)
        gone = sorted(row["source_file"] for row in where.collect() if not fs.exists(row["source_file"]))
    removed: list[tuple[str, str]] = []
    if gone and ledger.exists():  # the ledger rows of these files alone
        frame = spark.createDataFrame([(f,) for f in gone], "source_file string")
        removed = sorted(
            (row["source_file"], row["known_run_id"])
            for row in ledger.file_states(only=frame).collect()
            if not row["known_removed"]
        )
    return Reconciliation(
        to_map=sorted(listed.values()),
        removed=removed,
        purged=sorted(set(gone) - {file for file, _ in removed}),
        kept=sorted(set(unlisted) - set(gone)),
    )


def settle(fs: HadoopFS, root: str, run_id: str, pending: Pending, reconciliation: Reconciliation) -> None:
    """After the run's ledger commit: what it kept becomes its own list, then the lists it read go."""
    if not pending.lists or (pending.files and set(reconciliation.kept) == pending.files):
        return
    if reconciliation.kept:
        _write_list(fs, f"{root}/{FOLDER}/{run_id}{_SUFFIX}", reconciliation.kept)
    for uri in pending.lists:
        fs.delete(uri)


def _write_list(fs: HadoopFS, uri: str, files: list[str]) -> None:
    """Whole or absent: written under another name, then renamed (one request on HDFS and local disks; on an
    object store the copy appears only when complete)."""
    partial = f"{uri}{_PARTIAL}"
    fs.write_bytes(partial, json.dumps({"files": sorted(files)}, indent=0).encode() + b"\n")
    fs.rename(partial, uri)
