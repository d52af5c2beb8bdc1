"""FHIR NDJSON: `fhir/<run-id>/<Type>.ndjson`, one file per resource type, and `manifest.json` in the
FHIR Bulk Data export manifest form, so a server's bulk `$import` or any bulk-data client reads it as is.

Resources are deduplicated by (type, id) with DataFrame operations (no collect): shared resources
(Patient, ImagingStudy, ServiceRequest, Practitioner, Devices) come from many SRs with one id; when two
SRs give one id slightly different content, the lexicographically smallest JSON wins, so re-runs write the
same bytes. Lines are sorted by id within each file for the same reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..fs import HadoopFS
from ..mapping import RESOURCE

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Export:
    directory: str
    manifest: dict
    counts: dict[str, int]
    """Resources written per type (distinct ids)."""
    counts_before_dedup: dict[str, int]
    """Resources the run's inputs gave per type, copies of one id included."""


def resources(staged: DataFrame) -> DataFrame:
    """(resource_type, id, json): every resource of the run, copies included."""
    return staged.where(F.col("kind") == RESOURCE).select(f"{RESOURCE}.*")


def unique_resources(staged: DataFrame) -> DataFrame:
    """(resource_type, id, json) sorted by type and id within partitions, one partition per type (hash-
    partitioned by type), one row per id: the smallest JSON of its copies. One shuffle of the JSON: the
    aggregation by (type, id) needs no other exchange after the partitioning by type, and its sort by (type,
    id) is the order the files are written in."""
    return (
        resources(staged)
        .repartition("resource_type")
        .groupBy("resource_type", "id")
        .agg(F.min("json").alias("json"))
        .sortWithinPartitions("resource_type", "id")
    )


def resource_counts(staged: DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """(distinct ids per type, resources per type with copies), from the type and id columns alone."""
    per_id = resources(staged).groupBy("resource_type", "id").agg(F.count(F.lit(1)).alias("copies"))
    rows = per_id.groupBy("resource_type").agg(F.count(F.lit(1)).alias("ids"), F.sum("copies").alias("copies"))
    collected = sorted(rows.collect(), key=lambda r: r["resource_type"])
    return (
        {r["resource_type"]: int(r["ids"]) for r in collected},
        {r["resource_type"]: int(r["copies"]) for r in collected},
    )


def write_ndjson(staged: DataFrame, fs: HadoopFS, directory: str, *, transaction_time: str, request: str) -> Export:
    """Write the run's resources, one file per type, and the manifest."""
    parts = f"{directory}/_parts"
    (
        unique_resources(staged)
        .select("resource_type", F.col("json").alias("value"))
        .write.mode("overwrite")
        .partitionBy("resource_type")
        .text(parts)
    )
    counts, before_dedup = resource_counts(staged)
    output = []
    for resource_type in sorted(counts):
        files = [f for f in fs.list(f"{parts}/resource_type={resource_type}") if f.name.startswith("part-")]
        if len(files) != 1:
            raise RuntimeError(f"expected one NDJSON part for {resource_type}, found {len(files)}")
        target = f"{directory}/{resource_type}.ndjson"
        fs.rename(files[0].uri, target)
        output.append({"type": resource_type, "url": fs.url(target), "count": counts[resource_type]})
    fs.delete(parts)
    manifest = {
        "transactionTime": transaction_time,
        "request": request,
        "requiresAccessToken": False,
        "output": output,
        "error": [],
    }
    fs.write_bytes(f"{directory}/{MANIFEST}", json.dumps(manifest, indent=2).encode() + b"\n")
    return Export(directory=directory, manifest=manifest, counts=counts, counts_before_dedup=before_dedup)
