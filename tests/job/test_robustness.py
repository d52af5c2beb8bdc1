"""`sr2fhir run` as a user runs it (its own process and local session) where runs used to break: reports of
thousands of content items with a small driver heap, and a stage that fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobs import output_lock
from jobs.mapping import FAULT_ENVIRONMENT
from sr2fhir_core import map_sr
from sr2fhir_synth import random_spec, write_sr

from .helpers import REPO_ROOT

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]

LARGE_REPORTS = 3
COPIES = 8


def _run(
    inputs: list[Path], output: Path, *settings: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "jobs.cli", "run", "--input", *map(str, inputs), "--output", str(output)]
    for setting in ["output.progress_interval_seconds=0", *settings]:
        command += ["--set", setting]
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,  # a run that hangs fails here instead of hanging the suite
        check=False,
    )


def test_reports_of_5000_items_map_with_a_1g_driver(tmp_path: Path) -> None:
    """Each report gives ~1,600 resources (~1 MB of JSON): staged one resource per row, the run stays
    within a 1 GB heap and writes every row and resource."""
    lake = tmp_path / "lake"
    expected_measurements, expected_ids = 0, set()
    for seed in range(LARGE_REPORTS):
        data = write_sr(random_spec(seed + 50, target_items=5000))
        result = map_sr(data)
        assert result.mapped and len(result.resources) > 1000
        expected_measurements += COPIES * len(result.rows["measurements"])
        expected_ids |= {(r["resourceType"], r["id"]) for r in result.resources}
        for copy in range(COPIES):
            (lake / f"copy-{copy}").mkdir(parents=True, exist_ok=True)
            (lake / f"copy-{copy}" / f"report-{seed}.dcm").write_bytes(data)

    output = tmp_path / "out"
    done = _run([lake], output, "spark.settings.spark.driver.memory=1g")
    assert done.returncode == 0, done.stderr[-3000:]

    summary = json.loads(next((output / "runs").glob("*.json")).read_text())
    files = LARGE_REPORTS * COPIES
    assert summary["documents"] == {"inputs": files, "mapped": files, "rejected": 0, "failed": 0}
    assert summary["rows"]["measurements"] == expected_measurements
    deltalake = pytest.importorskip("deltalake")
    measurements = deltalake.DeltaTable(str(output / "tables" / "measurements")).to_pyarrow_table()
    assert measurements.num_rows == expected_measurements
    assert deltalake.DeltaTable(str(output / "tables" / "documents")).to_pyarrow_table().num_rows == files
    # Copies of one report share their resource ids: the export holds each once.
    manifest = json.loads(Path(summary["fhir"]["manifest"].removeprefix("file://")).read_text())
    ids: Counter[tuple[str, str]] = Counter()
    for entry in manifest["output"]:
        for line in Path(entry["url"].removeprefix("file://")).read_text().splitlines():
            resource = json.loads(line)
            ids[(resource["resourceType"], resource["id"])] += 1
    assert set(ids) == expected_ids and max(ids.values()) == 1
    assert sum(summary["resources_before_dedup"].values()) == COPIES * len(expected_ids)
    assert not (output / "_staging").exists()


def test_a_failed_stage_ends_the_run_with_an_error_and_a_nonzero_exit(tmp_path: Path) -> None:
    """The Mapper's test hook fails every map task: the run must end (no hang) with exit 1, one clear
    message, and nothing committed (no ledger, no run summary)."""
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "report.dcm").write_bytes(write_sr(random_spec(3)))
    output = tmp_path / "out"
    done = _run([lake], output, env={FAULT_ENVIRONMENT: "mapper"})
    assert done.returncode == 1, done.stderr[-3000:]
    message = [line for line in done.stderr.splitlines() if line.startswith("sr2fhir run: failed:")]
    assert len(message) == 1 and f"fault injected by {FAULT_ENVIRONMENT}" in message[0], done.stderr[-3000:]
    assert not (output / "runs").exists()
    assert not (output / "tables" / "documents").exists()


def test_a_run_stopped_by_sigterm_releases_the_output_and_the_next_run_recovers(tmp_path: Path) -> None:
    """A scheduler stops a run with SIGTERM (a task timeout, a pod's termination): the run's cleanup still
    runs, so its lock does not hold off the next run, which may start on another host, for the lock's expiry."""
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "report.dcm").write_bytes(write_sr(random_spec(4)))
    output = tmp_path / "out"
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "jobs.cli", "run", "-q", "--input", str(lake), "--output", str(output)]
    environment = {**os.environ, "PYTHONPATH": pythonpath, FAULT_ENVIRONMENT: "stall"}
    with subprocess.Popen(command, cwd=REPO_ROOT, env=environment, stderr=subprocess.PIPE, text=True) as process:
        deadline = time.monotonic() + 300
        while not (output / "_staging").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the map step has started (its staging write), and its task stalls
        assert (output / output_lock.NAME).exists()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 143, stderr[-3000:]
    assert "sr2fhir run: stopped by SIGTERM; the next run recovers" in stderr
    assert not (output / output_lock.NAME).exists()
    assert not (output / "tables" / "documents").exists()  # no ledger commit
    done = _run([lake], output)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mapped in" in done.stdout and "inputs: 1 mapped" in done.stdout, done.stdout


def test_a_failed_sink_cancels_the_others_and_raises(spark: SparkSession) -> None:
    """Sinks run side by side; the first failure cancels the other sinks' Spark jobs instead of waiting for
    them, then is raised."""
    from pyspark.sql import functions as F

    from jobs.run.execution import side_by_side

    def slow() -> float:  # many minutes of work on two cores unless cancelled
        row = spark.range(0, 10**12, numPartitions=4).select(F.sum(F.sqrt("id"))).first()
        assert row is not None  # one aggregate row
        return row[0]

    def broken() -> None:
        time.sleep(2)  # the slow job is running by then
        raise ValueError("sink failed")

    started = time.monotonic()
    with pytest.raises(ValueError, match="sink failed"):
        side_by_side(spark, "sr2fhir-test-cancel", {"slow": slow, "broken": broken})
    # Not a speed check: uncancelled, the slow job runs for over an hour on two cores; 30 s was exceeded (62 s)
    # on a machine loaded tenfold, so the bound only has to tell minutes from an hour.
    assert time.monotonic() - started < 300
    assert spark.range(3).count() == 3  # the session is fine afterwards


def test_the_given_sessions_jvm_shutting_down_stops_the_job_and_waits_for_its_cleanup(spark: SparkSession) -> None:
    """Under spark-submit SIGTERM reaches the JVM, not Python: `stopping.on_jvm_shutdown` puts a hook ahead of
    Spark's in Hadoop's ShutdownHookManager. Run here as the JVM's shutdown runs it (a Java call of the registered
    hook, which calls back into Python): the job is asked to stop, its running Spark job is cancelled, and the hook
    holds the shutdown until the job's cleanup (the block) is done, so its lock is released while the JVM lives."""
    from pyspark.sql import functions as F

    from jobs import stopping

    jvm = spark.sparkContext._jvm
    assert jvm is not None
    manager = jvm.org.apache.hadoop.util.ShutdownHookManager.get()
    failures: list[BaseException] = []
    returned = threading.Event()

    def running_job() -> None:
        try:
            spark.range(0, 10**12, numPartitions=4).select(F.sum(F.sqrt("id"))).first()
        except BaseException as exc:
            failures.append(exc)

    registered: list[Any] = []

    def shut_down() -> None:  # what the JVM's shutdown does: run the hooks in Hadoop's manager
        registered[0].run()
        returned.set()

    with stopping.on_jvm_shutdown(spark) as idle:  # a job that ends unstopped takes its hook away
        assert idle is not None and manager.hasShutdownHook(idle.registered)
    assert not manager.hasShutdownHook(idle.registered)

    try:
        with stopping.on_sigterm(), stopping.on_jvm_shutdown(spark) as hook:
            assert hook is not None and manager.hasShutdownHook(hook.registered)
            registered.append(hook.registered)
            job = threading.Thread(target=running_job, daemon=True)
            job.start()
            time.sleep(1)  # the job is running
            threading.Thread(target=shut_down, daemon=True).start()
            job.join(60)
            assert stopping.requested() and failures, "the running job was not cancelled"
            assert "cancel" in str(failures[0]).lower()
            time.sleep(0.5)
            assert not returned.is_set(), "the hook let the JVM shut down before the job's cleanup"
        assert returned.wait(10)
    finally:
        stopping._requested.clear()  # this process goes on with other tests
        for hook_object in registered:
            manager.removeShutdownHook(hook_object)
    assert spark.range(3).count() == 3  # the session is fine afterwards
