"""A data lake that is not a mock: moto's S3 server on loopback, SRs uploaded with boto3, and the job reading
them through s3a:// (hadoop-aws). The tables come out the same as from local disk, paths aside."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from .helpers import export_lines, ledger, run_job, table_rows

pytestmark = [pytest.mark.spark, pytest.mark.corpus, pytest.mark.xdist_group("spark")]

BUCKET = "lake"
SUBSET = ("dcmjs", "dcmqi-generated", "highdicom-repo", "negative", "hl7-dicom-sr-ig")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    server_module = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


def _s3_settings(endpoint: str) -> list[str]:
    prefix = "spark.settings.spark.hadoop.fs.s3a"
    return [
        f"{prefix}.endpoint={endpoint}",
        f"{prefix}.endpoint.region=us-east-1",
        f"{prefix}.path.style.access=true",
        f"{prefix}.connection.ssl.enabled=false",
        f"{prefix}.access.key=testing",
        f"{prefix}.secret.key=testing",
        f"{prefix}.aws.credentials.provider=org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    ]


def _relative(rows: list[dict], prefix: str) -> list[dict]:
    for row in rows:
        for column in ("source_path", "source_file"):
            row[column] = row[column].removeprefix(prefix)
    return rows


def test_reading_the_corpus_from_s3_gives_the_same_tables_as_from_disk(spark, s3_endpoint, corpus_dir: Path,
                                                                       tmp_path: Path) -> None:
    endpoint, client = s3_endpoint
    local = tmp_path / "local-lake"
    for folder in SUBSET:
        for path in sorted((corpus_dir / folder).rglob("*")):
            if path.is_file():
                key = f"corpus/{path.relative_to(corpus_dir)}"
                client.upload_file(str(path), BUCKET, key)
                (local / path.relative_to(corpus_dir)).parent.mkdir(parents=True, exist_ok=True)
                (local / path.relative_to(corpus_dir)).write_bytes(path.read_bytes())

    from_s3 = tmp_path / "from-s3"
    summary = run_job(spark, [f"s3a://{BUCKET}/corpus/"], from_s3, overrides=_s3_settings(endpoint))
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
