"""The job as users deploy it: spark-submit (and `sr2fhir run` with the master set) on a Spark standalone cluster of
two workers, executors running a packed Python environment built from a wheel of this checkout (not the driver's),
input and output on the loopback S3 server. The outputs must equal a local[2] run's; a worker killed mid-run
leaves a run that completed on the other or failed cleanly, and the next run's outputs exact.

Its cost and what it checks: docs/job.md, Shipping the package."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from job.helpers import run_job, s3_settings

from jobs import output_lock
from jobs.config import load_config
from jobs.spark.jars import JarCache, cache_dir, session_jars
from sr2fhir_core import READER_CODE
from sr2fhir_synth import write_sample_corpus

from .conftest import BUCKET, REPO_ROOT, Cluster, Shipped, spark_home

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark, pytest.mark.cluster]

REPORTS = 30
"""Generated reports in the lake (plus the generator's three bad inputs): two read tasks, one per executor."""
LAKE = f"s3a://{BUCKET}/lake/"
RUN_SECONDS = 600
DELTA_SESSION = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}
JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseParallelGC -XX:ReservedCodeCacheSize=240m"
CLUSTER_SETTINGS = {
    # One executor of 1 core per worker; the default 1 GiB per executor would not leave room on a 1 GiB worker.
    "spark.executor.memory": "512m",
    "spark.executor.cores": "1",
    "spark.driver.memory": "1g",
    # Runs of seconds on 2 shared cores: C1 only and the parallel collector, as a local session's JVM
    # (conf/sr2fhir.yaml, spark.driver.extraJavaOptions).
    "spark.driver.extraJavaOptions": JAVA_OPTIONS,
    "spark.executor.extraJavaOptions": JAVA_OPTIONS,
    "spark.ui.enabled": "false",
    # Tasks start once both executors are there: the lake's two read tasks go one to each, and a killed worker
    # leaves one behind.
    "spark.scheduler.minRegisteredResourcesRatio": "1.0",
    "spark.scheduler.maxRegisteredResourcesWaitingTime": "300s",
}
NOT_COMPARED = ("run_id", "processed_at")
"""Columns that name a run or its time: everything else of every table must be equal."""


def _s3_conf(endpoint: str) -> dict[str, str]:
    return dict(setting.removeprefix("spark.settings.").split("=", 1) for setting in s3_settings(endpoint))


@pytest.fixture(scope="module")
def lake(s3_endpoint: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory) -> int:
    """The generated lake in the bucket under lake/; returns its number of files."""
    _, client = s3_endpoint
    client.create_bucket(Bucket=BUCKET)
    local = tmp_path_factory.mktemp("cluster-lake")
    files = write_sample_corpus(local, count=REPORTS)
    for path in files:
        client.upload_file(str(path), BUCKET, f"lake/{path.relative_to(local).as_posix()}")
    return len(files)


@pytest.fixture(scope="module")
def local_run(spark: SparkSession, s3_endpoint: tuple[str, Any], lake: int) -> dict:
    """The same lake mapped by a local[2] session (this process's), into the same bucket."""
    endpoint, _ = s3_endpoint
    return run_job(spark, [LAKE], f"s3a://{BUCKET}/local", overrides=s3_settings(endpoint))


@dataclass(frozen=True)
class Outputs:
    rows: dict[str, Counter]
    lines: dict[str, Counter]


@pytest.fixture(scope="module")
def local_outputs(spark: SparkSession, s3_endpoint: tuple[str, Any], local_run: dict) -> Outputs:
    """What the local[2] run wrote, read once for the tests that compare with it."""
    _, client = s3_endpoint
    print(f"local[2] run: {local_run['elapsed_seconds']} s, {local_run['step_seconds']}")
    return Outputs(_rows(spark, f"s3a://{BUCKET}/local"), _ndjson(client, local_run))


def _jars() -> str:
    """The Delta and hadoop-aws jars, as a local session resolves them (jobs/spark/jars.py), for --jars."""
    config = load_config(inputs=["unused"], output="unused").spark
    cache = JarCache.for_packages(
        cache_dir(config.jar_cache_dir), [config.delta_package, config.s3_package], config.jar_excludes
    )
    return session_jars(cache, config.settings)


def _driver_environment(scratch: Path) -> dict[str, str]:
    """The driver runs this interpreter; the executors the shipped environment, unpacked as ./env in their
    working folder. `scratch`: the driver's local folder."""
    return {
        **os.environ,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYSPARK_PYTHON": "./env/bin/python",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(scratch),
    }


def spark_submit(cluster: Cluster, shipped: Shipped, endpoint: str, output: str) -> list[str]:
    """The documented spark-submit route (docs/job.md, Shipping the package)."""
    conf = {**DELTA_SESSION, **CLUSTER_SETTINGS, **_s3_conf(endpoint)}
    return [
        str(spark_home() / "bin" / "spark-submit"),
        "--master",
        cluster.master,
        "--archives",
        f"{shipped.environment}#env",
        "--jars",
        _jars(),
        *(item for key, value in conf.items() for item in ("--conf", f"{key}={value}")),
        str(REPO_ROOT / "jobs" / "sr_to_fhir.py"),
        "--input",
        LAKE,
        "--output",
        output,
        "--set",
        "output.progress_interval_seconds=0",
    ]


def sr2fhir_run(cluster: Cluster, shipped: Shipped, endpoint: str, output: str) -> list[str]:
    """The `sr2fhir run` route: the job starts its session itself, with the cluster's master."""
    settings = {"spark.archives": f"{shipped.environment}#env", **CLUSTER_SETTINGS}
    return [
        sys.executable,
        "-m",
        "jobs.cli",
        "run",
        "--input",
        LAKE,
        "--output",
        output,
        "--set",
        f"spark.master={cluster.master}",
        "--set",
        "output.progress_interval_seconds=0",
        *(item for key, value in settings.items() for item in ("--set", f"spark.settings.{key}={value}")),
        *(item for setting in s3_settings(endpoint) for item in ("--set", setting)),
    ]


def _summary(client: Any, output: str) -> dict:
    """The latest run summary of an output on the bucket."""
    prefix = f"{output.removeprefix(f's3a://{BUCKET}/')}/runs/"
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"])
    return json.loads(client.get_object(Bucket=BUCKET, Key=keys[-1])["Body"].read())


def _rows(spark: SparkSession, output: str) -> dict[str, Counter]:
    """Every table's rows (research tables, ledger, resource index) as a multiset, without run names and times."""
    tables = ("measurements", "qualitative_evaluations", "documents", "resources")
    found = {}
    for name in tables:
        df = spark.read.format("delta").load(f"{output}/tables/{name}")
        df = df.drop(*(c for c in NOT_COMPARED if c in df.columns))
        found[name] = Counter(json.dumps(r.asDict(recursive=True), sort_keys=True, default=str) for r in df.collect())
    return found


def _ndjson(client: Any, summary: dict) -> dict[str, Counter]:
    """A run's FHIR export: its lines per resource type, as multisets (their order follows the partitioning)."""
    manifest_key = summary["fhir"]["manifest"].removeprefix(f"s3a://{BUCKET}/")
    manifest = json.loads(client.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    lines: dict[str, Counter] = {}
    for entry in manifest["output"]:
        body = client.get_object(Bucket=BUCKET, Key=entry["url"].removeprefix(f"s3a://{BUCKET}/"))["Body"].read()
        lines.setdefault(entry["type"], Counter()).update(body.decode().splitlines())
    return lines


def _ids(lines: dict[str, Counter]) -> dict[str, set[str]]:
    return {kind: {json.loads(line)["id"] for line in counter} for kind, counter in lines.items()}


def _remove_archive_copies(shipped: Shipped, before: set[Path]) -> None:
    """A driver that `sr2fhir run` started keeps a copy of the archive in a /tmp/spark-<uuid> folder of its own
    after it exits (not one of the driver's local folders): the copies of this test's archive made since `before`
    are removed. Other Spark processes (tests running beside this one) make and remove such folders too: one gone
    while it is looked at is not this test's."""
    size = shipped.environment.stat().st_size
    for folder in set(Path(tempfile.gettempdir()).glob("spark-*")) - before:
        copy = folder / shipped.environment.name
        with contextlib.suppress(FileNotFoundError):
            if [p.name for p in folder.iterdir()] == [copy.name] and copy.stat().st_size == size:
                shutil.rmtree(folder)


def _run(command: list[str], log: Path) -> tuple[int, str]:
    with log.open("wb") as out:
        done = subprocess.run(
            command, env=_driver_environment(log.parent), stdout=out, stderr=subprocess.STDOUT, timeout=RUN_SECONDS
        )
    return done.returncode, log.read_text(errors="replace")


def _assert_shipped(summary: dict, lake_files: int) -> None:
    """The executors ran the shipped environment with the C reader, not this process's Python or checkout."""
    workers = summary["mapping_workers"]
    assert summary["readers"] == {"c": summary["documents"]["inputs"]}, workers
    assert sum(w["inputs"] for w in workers) == summary["documents"]["inputs"] >= lake_files
    for worker in workers:
        assert worker["python"].endswith("/env/bin/python") and worker["python"] != sys.executable, worker
        assert worker["package"].startswith(worker["python"].removesuffix("bin/python")), worker
        assert not worker["package"].startswith(str(REPO_ROOT)), worker


def test_spark_submit_on_a_standalone_cluster_gives_the_local_outputs(
    cluster: Cluster,
    shipped: Shipped,
    s3_endpoint: tuple[str, Any],
    lake: int,
    local_run: dict,
    local_outputs: Outputs,
    spark: SparkSession,
    tmp_path: Path,
) -> None:
    endpoint, client = s3_endpoint
    output = f"s3a://{BUCKET}/submitted"
    started = time.monotonic()
    status, log = _run(spark_submit(cluster, shipped, endpoint, output), tmp_path / "submit.log")
    assert status == 0, log[-5000:]
    seconds = time.monotonic() - started
    summary = _summary(client, output)
    _assert_shipped(summary, lake)
    # Both executors mapped: the lake is read in two tasks, one per 1-core executor.
    assert len({w["python"] for w in summary["mapping_workers"]}) == 2, summary["mapping_workers"]
    assert summary["documents"] == local_run["documents"] and summary["rows"] == local_run["rows"]
    # A local session's workers run this interpreter and this checkout, with its reader.
    assert local_run["readers"] == {READER_CODE: local_run["documents"]["inputs"]}
    assert {w["python"] for w in local_run["mapping_workers"]} == {sys.executable}
    assert _rows(spark, output) == local_outputs.rows
    lines = _ndjson(client, summary)
    assert _ids(lines) == _ids(local_outputs.lines)
    assert lines == local_outputs.lines
    print(f"spark-submit run on the cluster: {seconds:.1f} s, {summary['step_seconds']}")


def test_a_worker_killed_mid_run(
    cluster: Cluster,
    shipped: Shipped,
    s3_endpoint: tuple[str, Any],
    lake: int,
    local_run: dict,
    local_outputs: Outputs,
    spark: SparkSession,
    tmp_path: Path,
) -> None:
    """`sr2fhir run` with the cluster's master; one worker (its executor and Python workers) killed as soon as it
    runs a task. Either the run completes on the other worker (Spark retries the lost tasks) or it fails cleanly:
    its message, exit 1, the lock released, and the next run's outputs are exact."""
    endpoint, client = s3_endpoint
    output = f"s3a://{BUCKET}/killed"
    log = tmp_path / "killed.log"
    earlier = cluster.executor_logs()
    scratch = set(Path(tempfile.gettempdir()).glob("spark-*"))
    with log.open("wb") as out:
        run = subprocess.Popen(
            sr2fhir_run(cluster, shipped, endpoint, output),
            env=_driver_environment(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + RUN_SECONDS
        while (busy := cluster.running_task(earlier)) is None and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert busy is not None, f"no executor ran a task: {log.read_text(errors='replace')[-5000:]}"
        cluster.kill_worker(busy)
        status = run.wait(RUN_SECONDS)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        _remove_archive_copies(shipped, scratch)
    text = log.read_text(errors="replace")
    lock_key = f"{output.removeprefix(f's3a://{BUCKET}/')}/{output_lock.NAME}"
    assert not client.list_objects_v2(Bucket=BUCKET, Prefix=lock_key).get("Contents"), "the lock was left behind"
    if status == 0:
        # Completed on the other worker: its outputs must be exact.
        print(f"worker {busy} killed mid-run: the run completed on the other")
        summary = _summary(client, output)
        _assert_shipped(summary, lake)
    else:
        assert status == 1, text[-5000:]
        assert "sr2fhir run: failed: " in text, text[-5000:]
        print(f"worker {busy} killed mid-run: the run failed cleanly")
        # It committed nothing: the next run, on the remaining worker, maps every file again.
        status, text = _run(sr2fhir_run(cluster, shipped, endpoint, output), tmp_path / "next.log")
        _remove_archive_copies(shipped, scratch)
        assert status == 0, text[-5000:]
        summary = _summary(client, output)
        assert summary["files"]["processed"] == lake
    assert summary["documents"] == local_run["documents"]
    assert _rows(spark, output) == local_outputs.rows
    assert _ndjson(client, summary) == local_outputs.lines
