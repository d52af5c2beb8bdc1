"""FHIR NDJSON: `fhir/<run-id>/<Type>.<nnnnn>.ndjson`, each resource type in as many files as its count needs
(`fhir.max_resources_per_file` resources at most per file), and `manifest.json` in the FHIR Bulk Data export
manifest form (one output entry per file, with its own count), so a server's bulk `$import` or any bulk-data
client reads it as is. Files are numbered from 00000 within their type, whatever their number.

Resources are deduplicated by (type, id) with DataFrame operations (no collect of resources): shared resources
(Patient, ImagingStudy, ServiceRequest, Practitioner, Devices) come from many SRs with one id; when two SRs give
one id slightly different content, the lexicographically smallest JSON wins, so re-runs write the same bytes.

Which file a resource goes to depends on its type and id alone: its fine bucket is pmod(xxhash64(id), 4096), its
file bucket that fine bucket modulo the type's bucket count, ceil(distinct ids / bound). Within a bucket lines
are sorted by id; a bucket that hashing made larger than the bound is cut into consecutive files of the bound.
The counts per type and fine bucket come first, from the type and id columns alone (one small collect of at most
types x 4,096 numbers), so every file's count is known before it is written, and the JSON is shuffled once.

Deletions (resources no file in the lake produces any more, `index.deletions`) go in the manifest's `deleted`
array, as the Bulk Data Access IG has them: `deleted.<nnnnn>.ndjson` files of `Bundle`s of type `transaction`,
each entry a `DELETE` of `<Type>/<id>`. Entries are in a fixed order, `DELETE_ORDER` (what references a resource
goes before it, for servers that check references on delete), then by id; at most `DELETES_PER_BUNDLE` per
Bundle. An R4 export (`mapping.fhir_version: r4`) leaves out deletions of resource types R4 lacks (an R5 run's
ImagingSelections, which the R4 run writes as Basic resources of the same ids): an R4 server has no such type.

The manifest's `extension` object (the Bulk Data IG reserves the name for server-specific content) names the FHIR
version of the files, `fhirVersion` (5.0.0 or 4.0.1), as a CapabilityStatement would: the manifest has no field
of its own for it.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sr2fhir_core import R5_ONLY_TYPES, FhirVersion

from .. import staging
from ..spark.fs import HadoopFS

MANIFEST = "manifest.json"
FINE_BUCKETS = 4096
"""Hash buckets the counts are taken in. A type's file buckets are unions of them (fine bucket modulo the
bucket count), so their counts are exact sums; beyond 4,096 buckets of a type (409.6 million resources at the
default bound) the buckets are cut into more files instead."""

DELETED = "deleted"
DELETES_PER_BUNDLE = 1000
"""Entries per deletion Bundle: a server runs each Bundle as one transaction, so bounded ones stay light."""
DELETE_ORDER = (
    "Observation",
    "ImagingSelection",
    "Basic",
    "BodyStructure",
    "ImagingStudy",
    "ServiceRequest",
    "Device",
    "Practitioner",
    "Patient",
)
"""The order deletions go in, a referencing resource before what it references: Observations reference the
others, ImagingSelections (R4: Basic) their BodyStructures and ImagingStudy, an ImagingStudy its ServiceRequest,
and nearly everything the Patient. Other types go first. References between resources of one type (an Observation
group's members) are not ordered: they are by id."""

FHIR_RELEASES = {FhirVersion.R5: "5.0.0", FhirVersion.R4: "4.0.1"}
"""The manifest's `extension.fhirVersion` per `mapping.fhir_version`."""

_PART = re.compile(r"^part-\d+-.*\.c(\d+)(?:\.txt)?$")
"""A Spark text part file; its `cNNN` counter orders the files one task cut a bucket into."""


@dataclass(frozen=True)
class Export:
    directory: str
    manifest: dict
    counts: dict[str, int]
    """Resources written per type (distinct ids)."""
    counts_before_dedup: dict[str, int]
    """Resources the run's inputs gave per type, copies of one id included."""
    deleted: dict[str, int]
    """Deletions exported per type."""


@dataclass(frozen=True)
class Plan:
    """How many file buckets each type gets, and how many resources each of its files holds, in file order."""

    buckets: dict[str, int]
    files: dict[str, list[tuple[int, int]]]
    """Per type: (bucket, resources) of each file, in the order of the files' numbers."""


def _fine_bucket() -> Column:
    return F.pmod(F.xxhash64("id"), F.lit(FINE_BUCKETS))


def resource_counts(staged: DataFrame) -> tuple[dict[str, dict[int, int]], dict[str, int]]:
    """(distinct ids per type and fine bucket, resources per type with copies), from the type and id columns."""
    per_id = staging.resources(staged).groupBy("resource_type", "id").agg(F.count(F.lit(1)).alias("copies"))
    rows = (
        per_id.groupBy("resource_type", _fine_bucket().alias("fine"))
        .agg(F.count(F.lit(1)).alias("ids"), F.sum("copies").alias("copies"))
        .collect()
    )
    ids: dict[str, dict[int, int]] = defaultdict(dict)
    copies: dict[str, int] = defaultdict(int)
    for row in rows:
        ids[row["resource_type"]][int(row["fine"])] = int(row["ids"])
        copies[row["resource_type"]] += int(row["copies"])
    return dict(ids), dict(copies)


def plan_files(fine_counts: dict[str, dict[int, int]], max_per_file: int) -> Plan:
    """Bucket counts and the files they make, from the distinct ids per type and fine bucket."""
    buckets: dict[str, int] = {}
    files: dict[str, list[tuple[int, int]]] = {}
    for resource_type in sorted(fine_counts):
        fine = fine_counts[resource_type]
        n = min(max(math.ceil(sum(fine.values()) / max_per_file), 1), FINE_BUCKETS)
        per_bucket = [0] * n
        for bucket, count in fine.items():
            per_bucket[bucket % n] += count
        buckets[resource_type] = n
        files[resource_type] = [
            (bucket, min(max_per_file, count - start))
            for bucket, count in enumerate(per_bucket)
            for start in range(0, count, max_per_file)
        ]
    return Plan(buckets=buckets, files=files)


def unique_resources(staged: DataFrame, buckets: dict[str, int]) -> DataFrame:
    """(resource_type, bucket, id, json), one row per (type, id): the smallest JSON of its copies, sorted by type,
    bucket and id within partitions, each (type, bucket) in one partition. One shuffle of the JSON: the
    aggregation by (type, bucket, id) needs no other exchange after the partitioning by (type, bucket), and its
    sort is the order the files are written in. As many partitions as buckets (not spark.sql.shuffle.partitions):
    a task writes about one file's worth, whatever the size of the run."""
    counts = F.create_map(*(x for t, n in sorted(buckets.items()) for x in (F.lit(t), F.lit(n))))
    bucket = F.pmod(_fine_bucket(), counts[F.col("resource_type")]).cast("int")
    return (
        staging.resources(staged)
        .withColumn("bucket", bucket)
        .repartition(sum(buckets.values()), "resource_type", "bucket")
        .groupBy("resource_type", "bucket", "id")
        .agg(F.min("json").alias("json"))
        .sortWithinPartitions("resource_type", "bucket", "id")
    )


def file_name(resource_type: str, number: int) -> str:
    return f"{resource_type}.{number:05d}.ndjson"


def deletion_bundles(deleted: list[tuple[str, str]]) -> list[bytes]:
    """NDJSON lines: transaction Bundles deleting (type, id) pairs, in `DELETE_ORDER`, then by type and id."""
    rank = {t: i for i, t in enumerate(DELETE_ORDER, start=1)}  # other types: 0
    ordered = sorted(deleted, key=lambda key: (rank.get(key[0], 0), key))
    return [
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"request": {"method": "DELETE", "url": f"{t}/{i}"}}
                    for t, i in ordered[start : start + DELETES_PER_BUNDLE]
                ],
            },
            separators=(",", ":"),
        ).encode()
        for start in range(0, len(ordered), DELETES_PER_BUNDLE)
    ]


def exported_deletions(deleted: list[tuple[str, str]], fhir_version: FhirVersion) -> list[tuple[str, str]]:
    """The deletions an export of `fhir_version` carries: an R4 server has no R5-only resource type to delete
    from (an R5 run's ImagingSelections; the R4 run that replaced them wrote Basic resources of the same ids)."""
    if fhir_version is FhirVersion.R4:
        return [(t, i) for t, i in deleted if t not in R5_ONLY_TYPES]
    return deleted


def write_ndjson(
    staged: DataFrame | None,
    fs: HadoopFS,
    directory: str,
    *,
    max_per_file: int,
    transaction_time: str,
    request: str,
    deleted: list[tuple[str, str]] | None = None,
    url_for: Callable[[str], str] | None = None,
    fhir_version: FhirVersion = FhirVersion.R5,
) -> Export:
    """Write the run's resources in files of at most `max_per_file` lines, one type per file, the deletions
    (`staged` None: a run that only removes files), and the manifest, whose `url`s are `url_for(file)` (default:
    the file's own URL)."""
    url = url_for or fs.url
    deleted = exported_deletions(deleted or [], fhir_version)
    fine_counts, before_dedup = resource_counts(staged) if staged is not None else ({}, {})
    plan = plan_files(fine_counts, max_per_file)
    parts = f"{directory}/_parts"
    if staged is not None and plan.buckets:  # a run of rejected inputs only has no resource: an empty manifest
        (
            unique_resources(staged, plan.buckets)
            .select("resource_type", "bucket", F.col("json").alias("value"))
            .write.mode("overwrite")
            .option("maxRecordsPerFile", max_per_file)
            .partitionBy("resource_type", "bucket")
            .text(parts)
        )
    written = _part_files(fs, parts)
    output = []
    for resource_type, files in plan.files.items():
        per_bucket = written.get(resource_type, {})
        found = sorted((bucket, len(uris)) for bucket, uris in per_bucket.items())
        expected = sorted(Counter(bucket for bucket, _ in files).items())
        if found != expected:
            raise RuntimeError(f"{resource_type}: expected NDJSON parts per bucket {expected}, found {found}")
        chunk: Counter[int] = Counter()  # parts of each bucket renamed so far
        for number, (bucket, count) in enumerate(files):
            target = f"{directory}/{file_name(resource_type, number)}"
            fs.rename(per_bucket[bucket][chunk[bucket]], target)
            chunk[bucket] += 1
            output.append({"type": resource_type, "url": url(target), "count": count})
    fs.delete(parts)
    bundles = deletion_bundles(deleted or [])
    deleted_files = []
    for number, start in enumerate(range(0, len(bundles), max_per_file)):
        target = f"{directory}/{DELETED}.{number:05d}.ndjson"
        lines = bundles[start : start + max_per_file]
        fs.write_bytes(target, b"\n".join(lines) + b"\n")
        deleted_files.append({"type": "Bundle", "url": url(target), "count": len(lines)})
    manifest = {
        "transactionTime": transaction_time,
        "request": request,
        "requiresAccessToken": False,
        "output": output,
        "deleted": deleted_files,
        "error": [],
        "extension": {"fhirVersion": FHIR_RELEASES[fhir_version]},
    }
    fs.write_bytes(f"{directory}/{MANIFEST}", json.dumps(manifest, indent=2).encode() + b"\n")
    counts = {t: sum(fine.values()) for t, fine in sorted(fine_counts.items())}
    return Export(
        directory=directory,
        manifest=manifest,
        counts=counts,
        counts_before_dedup=before_dedup,
        deleted=dict(sorted(Counter(t for t, _ in deleted or []).items())),
    )


def _part_files(fs: HadoopFS, parts: str) -> dict[str, dict[int, list[str]]]:
    """Part files under `resource_type=<T>/bucket=<b>/`, per type and bucket, in the order their task wrote
    them (one listing of the whole tree: one request per 1,000 files on an object store)."""
    found: dict[str, dict[int, list[tuple[int, str]]]] = defaultdict(lambda: defaultdict(list))
    for status in fs.list_files(parts):
        match = _PART.match(status.name)
        if match is None:
            continue
        bucket_dir = status.uri.rsplit("/", 2)[-2]
        type_dir = status.uri.rsplit("/", 3)[-3]
        resource_type = type_dir.removeprefix("resource_type=")
        bucket = int(bucket_dir.removeprefix("bucket="))
        found[resource_type][bucket].append((int(match.group(1)), status.uri))
    return {t: {b: [uri for _, uri in sorted(files)] for b, files in per.items()} for t, per in found.items()}
