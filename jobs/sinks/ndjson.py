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
from ..mapping import RESOURCES_COLUMN

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Export:
    directory: str
    manifest: dict
    counts: dict[str, int]


def unique_resources(staged: DataFrame) -> DataFrame:
    """(resource_type, id, json): one row per resource id, the smallest JSON of its copies."""
    resources = staged.select(F.explode(RESOURCES_COLUMN).alias("r")).select("r.*")
    return resources.groupBy("resource_type", "id").agg(F.min("json").alias("json"))


def write_ndjson(staged: DataFrame, fs: HadoopFS, directory: str, *, transaction_time: str, request: str) -> Export:
    """Write the run's resources, one file per type, and the manifest."""
    parts = f"{directory}/_parts"
    # Hash-partitioning by type sends each type to one task: one file per type, whatever the volume.
    (
        unique_resources(staged)
        .repartition("resource_type")
        .sortWithinPartitions("resource_type", "id")
        .select("resource_type", F.col("json").alias("value"))
        .write.mode("overwrite")
        .partitionBy("resource_type")
        .text(parts)
    )
    # Counts for the manifest: distinct ids per type, from the id and type fields alone (Parquet reads
    # only those nested columns), which is far less than reading the NDJSON back.
    ids = staged.select(F.explode(RESOURCES_COLUMN).alias("r")).select("r.resource_type", "r.id")
    counts = {
        row["resource_type"]: int(row["n"])
        for row in ids.groupBy("resource_type").agg(F.countDistinct("id").alias("n")).collect()
    }
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
    return Export(directory=directory, manifest=manifest, counts=counts)
