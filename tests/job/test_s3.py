"""A data lake that is not a mock: moto's S3 server on loopback, SRs uploaded with boto3, and the job reading
them through s3a:// (hadoop-aws). The tables come out the same as from local disk, paths aside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobs import output_lock
from jobs.spark.fs import HadoopFS

from .helpers import BUCKET, export_lines, ledger, run_job, s3_settings, table, table_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.corpus]

SUBSET = ("dcmjs", "dcmqi-generated", "highdicom-repo", "negative", "hl7-dicom-sr-ig")


def _relative(rows: list[dict], prefix: str) -> list[dict]:
    for row in rows:
        for column in ("source_path", "source_file"):
            row[column] = row[column].removeprefix(prefix)
    return rows


@pytest.fixture(scope="module")
def uploaded(s3_endpoint: tuple[str, Any], corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Part of the corpus in the bucket under corpus/, and the same files on local disk."""
    _, client = s3_endpoint
    local = tmp_path_factory.mktemp("local-lake")
    for folder in SUBSET:
        for path in sorted((corpus_dir / folder).rglob("*")):
            if path.is_file():
                client.upload_file(str(path), BUCKET, f"corpus/{path.relative_to(corpus_dir)}")
                (local / path.relative_to(corpus_dir)).parent.mkdir(parents=True, exist_ok=True)
                (local / path.relative_to(corpus_dir)).write_bytes(path.read_bytes())
    return local


def test_reading_the_corpus_from_s3_gives_the_same_tables_as_from_disk(
    spark: SparkSession, s3_endpoint: tuple[str, Any], uploaded: Path, tmp_path: Path
) -> None:
    endpoint, _ = s3_endpoint
    local = uploaded

    from_s3 = tmp_path / "from-s3"
    summary = run_job(spark, [f"s3a://{BUCKET}/corpus/"], from_s3, overrides=s3_settings(endpoint))
    from_disk = tmp_path / "from-disk"
    run_job(spark, [local], from_disk)

    # Spark's listing skips hidden files (.origin.txt here) on every file system alike.
    visible = [p for p in local.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))]
    assert summary["files"]["found"] == len(visible)
    for name in ("measurements", "qualitative_evaluations"):
        s3_rows = _relative(table_rows(spark, from_s3, name, drop=("run_id",)), f"s3a://{BUCKET}/corpus/")
        disk_rows = _relative(table_rows(spark, from_disk, name, drop=("run_id",)), f"file:{local}/")
        key = lambda r: (r["source_path"], r["observation_id"])  # noqa: E731
        assert sorted(s3_rows, key=key) == sorted(disk_rows, key=key)
    s3_ledger = {r["source_path"].removeprefix(f"s3a://{BUCKET}/corpus/"): r["status"] for r in ledger(spark, from_s3)}
    disk_ledger = {r["source_path"].removeprefix(f"file:{local}/"): r["status"] for r in ledger(spark, from_disk)}
    assert s3_ledger == disk_ledger
    assert export_lines(summary) == export_lines(run_job(spark, [local], tmp_path / "again"))
    settings = summary["options"]["configuration"]["spark"]["settings"]
    assert settings["spark.hadoop.fs.s3a.secret.key"] == settings["spark.hadoop.fs.s3a.access.key"] == "***"


def test_writing_the_output_to_s3(
    spark: SparkSession, s3_endpoint: tuple[str, Any], uploaded: Path, tmp_path: Path
) -> None:
    """Delta tables, NDJSON (renamed part files), manifest and run summary on the object store too."""
    endpoint, client = s3_endpoint
    output = f"s3a://{BUCKET}/out"
    summary = run_job(spark, [uploaded], output, overrides=s3_settings(endpoint))
    on_disk = tmp_path / "disk"
    run_job(spark, [uploaded], on_disk)
    for name in ("measurements", "qualitative_evaluations"):
        s3_rows = spark.read.format("delta").load(f"{output}/tables/{name}").drop("run_id").collect()
        assert sorted(map(repr, s3_rows)) == sorted(map(repr, table(spark, on_disk, name).drop("run_id").collect()))
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="out/")["Contents"]}
    run = summary["run_id"]
    assert f"out/runs/{run}.json" in keys and f"out/fhir/{run}/manifest.json" in keys
    manifest = json.loads(client.get_object(Bucket=BUCKET, Key=f"out/fhir/{run}/manifest.json")["Body"].read())
    numbers: dict[str, int] = {}
    for entry in manifest["output"]:
        number = numbers.get(entry["type"], 0)
        numbers[entry["type"]] = number + 1
        assert entry["url"] == f"{output}/fhir/{run}/{entry['type']}.{number:05d}.ndjson"
        body = client.get_object(Bucket=BUCKET, Key=entry["url"].removeprefix(f"s3a://{BUCKET}/"))["Body"].read()
        assert len(body.splitlines()) == entry["count"]
    assert sum(e["count"] for e in manifest["output"]) == sum(summary["resources"].values())
    assert not any("/_parts/" in k or "/_staging/" in k for k in keys)
    assert not any(output_lock.NAME in k for k in keys)  # the lock and its clock probes are gone
    # While another job holds the output (its lock an object of the bucket), a run is refused.
    with output_lock.holding(HadoopFS(spark), output, "maintain", expiry_seconds=600):
        assert client.head_object(Bucket=BUCKET, Key=f"out/{output_lock.NAME}")["ContentLength"] > 0
        with pytest.raises(output_lock.OutputBusy, match="`sr2fhir maintain` on"):
            run_job(spark, [uploaded], output, overrides=s3_settings(endpoint))
    again = run_job(spark, [uploaded], output, overrides=s3_settings(endpoint))
    assert again["files"]["processed"] == 0
