"""The resource index `tables/resources`: which FHIR resources (type, id) each stored file's mapping produced, so
a run can tell which exported resources no file in the lake produces any more and export their deletion.

Rows: `source_file`, `resource_type`, `resource_id`, `run_id`. Every run appends the resources of the files it
mapped, one row per (file, type, id). A file's current entries are its rows of its latest ledger run: rows of a
run the ledger never committed (a killed run) or of an older run of the file are ignored by every read, so
writing the index needs no marker and no commit order beyond "before the ledger". A run that looked for
deletions deletes the entries it superseded after its ledger commit (`prune`); a killed run's entries, and those
of a run killed before its prune, stay and are ignored, until a full refresh keeps only its own.

Deletions of a run: the candidates are the current entries of the files it re-maps or finds removed (`origins`,
each with its latest ledger run). A candidate is deleted when, after the run, no file produces it: not this run's
mapping, and no current entry of a file outside the run's scope. Shared resources (Patient, ImagingStudy,
ServiceRequest, Devices, Practitioner) and per-SR ones of a report stored twice live on while one file has them.

Looking for other files that hold a candidate reads part of the index instead of all of it: a per-SR resource's
id is made from its report's SOP Instance UID (`sr2fhir_core.fhir.ids.DOCUMENT_SCOPED_TYPES`), so only files whose
ledger rows name an origin's SOP instance can hold one (usually none: their entries are read by run), and a Delta
index is partitioned by `resource_type`, so the shared resources' holders come from the shared types' partitions,
a minority of the rows (docs/design/incremental.md). An index written before it was partitioned is read whole
until `sr2fhir maintain` lays it out again (`delta_maintenance.relayout`); a Parquet index is not partitioned.

The index covers the lake only when it was started with the ledger (a first run or a full refresh): an output
written before the index existed gets it from its next `--full-refresh`, and exports no deletions until then
(an index missing the older files' resources would delete resources they still produce).
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sr2fhir_core import DOCUMENT_SCOPED_TYPES

from .. import staging
from .store import TableSpec, TableStore

log = logging.getLogger("sr2fhir")

NAME = "resources"
KEY = ("resource_type", "resource_id")
PARTITION_BY = "resource_type"
SPEC = TableSpec(
    name=NAME,
    delta_partition_by=(PARTITION_BY,),  # the lookup of shared resources' holders reads their types' folders only
    # `run_id` prunes the candidates' read to the files their runs wrote (each run appends its own files);
    # `resource_id` is what the joins select by (the partition column needs none, and Delta refuses it).
    stats_columns=("run_id", "resource_id"),
    zorder_by="run_id",  # deletions and the prune read the entries of a few runs by a literal filter on run_id
)
STATS_COLUMNS = SPEC.stats_columns


ENTRY_SCHEMA = "source_file string, resource_type string, resource_id string, run_id string"


def empty_entries(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], ENTRY_SCHEMA)


def index_rows(staged: DataFrame, run_id: str) -> DataFrame:
    """This run's entries, one per (file, type, id), from the staged resource rows."""
    return staging.resource_keys(staged).distinct().withColumn("run_id", F.lit(run_id))


def deletions(
    spark: SparkSession,
    index: DataFrame,
    ledger: DataFrame,
    origins: DataFrame,
    *,
    produced: DataFrame | None,
    scope: DataFrame | None,
) -> list[tuple[str, str]]:
    """(resource_type, resource_id) of the resources to delete, sorted (collected on the driver: proportional to
    the touched files).

    `origins`: (source_file, run_id) of the files the run re-maps or removes, with their latest ledger run.
    `produced`: (resource_type, resource_id) of this run's mapping. `scope`: (source_file) of every file the
    run maps or removes; None when the run replaces everything (a full refresh), so no other file counts."""
    run_ids = [r["run_id"] for r in origins.select("run_id").distinct().collect()]
    if not run_ids:
        return []
    # A literal filter on run_id, which Delta's statistics turn into file pruning; the join keeps each file's
    # rows of its own latest run. (No broadcast hint: a full refresh's origins are every file of the ledger.)
    old = index.where(F.col("run_id").isin(run_ids)).join(origins, ["source_file", "run_id"], "left_semi")
    candidates = old.select(*KEY).distinct()
    if produced is not None:
        candidates = candidates.join(produced, list(KEY), "left_anti")
    if scope is None:
        return _collect(candidates)
    candidates = candidates.persist()
    if candidates.isEmpty():  # the run produced every one again (files re-exported unchanged): nothing to look up
        candidates.unpersist()
        return []
    # Other files that have a candidate, with any run: current only if it is the file's latest ledger run. Read
    # twice (their files' latest runs, then their entries of those runs): cached, so the index is read once.
    others = _holders(spark, index, ledger, origins, run_ids, candidates, scope).persist()
    try:
        files = others.select("source_file").distinct()
        latest = (
            ledger.join(files, "source_file", "left_semi").groupBy("source_file").agg(F.max("run_id").alias("run_id"))
        )
        live = others.join(latest, ["source_file", "run_id"], "left_semi").select(*KEY)
        return _collect(candidates.join(live, list(KEY), "left_anti"))
    finally:
        others.unpersist()
        candidates.unpersist()


def _holders(
    spark: SparkSession,
    index: DataFrame,
    ledger: DataFrame,
    origins: DataFrame,
    run_ids: list[str],
    candidates: DataFrame,
    scope: DataFrame,
) -> DataFrame:
    """Index entries of files outside `scope`, of any run, that hold a candidate: the shared types' from their
    partitions, and the per-SR types' from the files whose ledger rows name an origin's SOP instance."""
    scoped = F.col("resource_type").isin(*sorted(DOCUMENT_SCOPED_TYPES))
    shared = index.where(~scoped).join(candidates.where(~scoped), list(KEY), "left_semi")
    shared = shared.join(scope, "source_file", "left_anti")
    sop_instances = (
        ledger.where(F.col("run_id").isin(run_ids) & F.col("sop_instance_uid").isNotNull())
        .join(origins, ["source_file", "run_id"], "left_semi")
        .select("sop_instance_uid")
        .distinct()
    )
    # Reports stored twice (copies, an archive holding a file of the lake): their (file, run) pairs, usually none.
    twins = (
        ledger.join(F.broadcast(sop_instances), "sop_instance_uid", "left_semi")
        .join(scope, "source_file", "left_anti")
        .select("source_file", "run_id")
        .distinct()
        .collect()
    )
    if not twins:
        return shared
    per_sr = (
        index.where(F.col("run_id").isin(sorted({r["run_id"] for r in twins})) & scoped)
        .join(
            spark.createDataFrame(sorted(twins), "source_file string, run_id string"),
            ["source_file", "run_id"],
            "left_semi",
        )
        .join(candidates.where(scoped), list(KEY), "left_semi")
    )
    return shared.unionByName(per_sr)


def _collect(keys: DataFrame) -> list[tuple[str, str]]:
    return sorted((r["resource_type"], r["resource_id"]) for r in keys.collect())


def prune(store: TableStore, *, run_id: str, superseded: DataFrame | None) -> None:
    """After the ledger commit, delete the entries this run superseded: those of `superseded`'s (source_file,
    run_id) pairs (the files it mapped or removed, with their previous latest run), or with `superseded` None (a
    full refresh) every entry of another run. One commit (Delta), which reads only those runs' files: a literal
    filter on `run_id`, which has statistics."""
    if not store.exists():
        return
    if superseded is None:
        store.delete_where(F.col("run_id") != run_id)
        return
    run_ids = [r["run_id"] for r in superseded.select("run_id").distinct().collect()]
    store.delete_matching(superseded, ("run_id", "source_file"), prune=F.col("t.run_id").isin(run_ids))
