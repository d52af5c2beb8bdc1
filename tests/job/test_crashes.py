"""Inputs that crash the mapping (jobs/run/crashes.py): pinned down by mapping halves, then alone, quarantined after
`incremental.quarantine_after` crashes, mapped again on `--retry-quarantined`; a run whose JVM dies on an input
mapped alone leaves a marker the next run ledgers; a worker that dies on everything fails the run instead of
ledgering the lake as crashed. The crash is the Mapper's test hook (`SR2FHIR_TEST_FAULT=crash:<name>`: the worker
exits as from a segmentation fault on that input); the JVM's death is a real out-of-memory."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs.mapping import CRASH_FAULT, FAULT_ENVIRONMENT
from sr2fhir_synth import random_spec, write_sr

from .helpers import REPO_ROOT, ledger, run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]


@contextmanager
def crashing_on(spark: SparkSession, name: str) -> Iterator[None]:
    """Python workers of the jobs started meanwhile die on an input whose path holds `name`."""
    environment = spark.sparkContext.environment
    environment[FAULT_ENVIRONMENT] = f"{CRASH_FAULT}{name}"
    try:
        yield
    finally:
        environment.pop(FAULT_ENVIRONMENT, None)


def _lake(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True)
    for seed, name in enumerate(names):
        (root / name).write_bytes(write_sr(random_spec(seed + 700)))
    return root


def _latest(spark: SparkSession, output: Path) -> dict[str, tuple[str, str | None]]:
    rows = sorted(ledger(spark, output), key=lambda r: r["run_id"])
    return {Path(r["source_path"]).name: (r["status"], r["reason"]) for r in rows}


def test_an_input_that_crashes_workers_is_pinned_isolated_then_quarantined(spark: SparkSession, tmp_path: Path) -> None:
    names = [f"report-{i}.dcm" for i in range(7)] + ["bad.dcm"]
    lake = _lake(tmp_path / "lake", names)
    output = tmp_path / "out"
    with crashing_on(spark, "bad.dcm"):
        first = run_job(spark, [lake], output)
        assert first["documents"] == {"inputs": 8, "mapped": 7, "rejected": 0, "failed": 1}
        assert first["by_reason"] == {"failed/crashed": 1}
        assert _latest(spark, output)["bad.dcm"] == ("failed", "crashed")
        assert not (output / "_attempts").exists() or not list((output / "_attempts").iterdir())

        second = run_job(spark, [lake], output)  # retried alone (retry_failed), crashes again
        assert second["files"]["processed"] == 1 and second["by_reason"] == {"failed/crashed": 1}

        third = run_job(spark, [lake], output)  # the second crash of the same file: quarantined, not mapped
        assert third["by_reason"] == {"failed/quarantined": 1}
        assert third["step_seconds"].get("map", 0) < 60
        assert _latest(spark, output)["bad.dcm"] == ("failed", "quarantined")

        fourth = run_job(spark, [lake], output)  # left out while it stays as it is
        assert fourth["files"]["processed"] == 0 and fourth["files"]["unchanged"] == 8

    again = run_job(spark, [lake], output, retry_quarantined=True)  # the worker fixed: mapped
    assert again["files"]["processed"] == 1 and again["documents"]["mapped"] == 1
    assert _latest(spark, output)["bad.dcm"] == ("mapped", None)


def test_a_worker_that_dies_on_everything_fails_the_run(spark: SparkSession, tmp_path: Path) -> None:
    lake = _lake(tmp_path / "lake", [f"report-{i}.dcm" for i in range(6)])
    output = tmp_path / "out"
    with crashing_on(spark, "report-"), pytest.raises(RuntimeError, match="not an input's doing"):
        run_job(spark, [lake], output)
    assert not (output / "tables" / "documents").exists()


def _padded_report(size: int) -> bytes:
    from benchmarks.memory_limits import padded_sr

    return padded_sr(size, seed=5)


def _run(lake: Path, output: Path, *settings: str, retry: bool = False) -> subprocess.CompletedProcess[str]:
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "jobs.cli", "run", "--input", str(lake), "--output", str(output)]
    if retry:
        command.append("--retry-quarantined")
    for setting in ["output.progress_interval_seconds=0", "spark.class_archive_dir=null", *settings]:
        command += ["--set", setting]
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": pythonpath},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_an_input_the_jvm_dies_on_is_quarantined_by_the_next_runs(spark: SparkSession, tmp_path: Path) -> None:
    """A configured input limit far over what a 512 MB heap maps: the JVM runs out of memory on a 64 MB report,
    mapped alone behind a marker. Each dying run exits 1 naming the memory setting, with its lock released; the
    next run ledgers the marked input crashed, and the second crash quarantines it, the other reports mapped."""
    lake = _lake(tmp_path / "lake", ["small-1.dcm", "small-2.dcm"])
    (lake / "large.dcm").write_bytes(_padded_report(64 << 20))
    output = tmp_path / "out"
    settings = ("spark.settings.spark.driver.memory=512m", f"input.max_file_bytes={128 << 20}")
    for attempt in (1, 2):
        done = _run(lake, output, *settings)
        assert done.returncode == 1, done.stderr[-3000:]
        failed = [line for line in done.stderr.splitlines() if line.startswith("sr2fhir run: failed:")]
        assert len(failed) == 1 and "raise spark.driver.memory" in failed[0], done.stderr[-4000:]
        assert not (output / "_lock").exists()
        assert [p.name for p in (output / "_attempts").iterdir()], attempt  # the marker of the input it died on
    done = _run(lake, output, *settings)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "inputs: 2 mapped, 0 rejected, 1 failed" in done.stdout, done.stdout
    latest = _latest(spark, output)
    assert latest["large.dcm"] == ("failed", "quarantined")
    assert latest["small-1.dcm"] == latest["small-2.dcm"] == ("mapped", None)
    crashed = [r for r in ledger(spark, output) if r["reason"] == "crashed"]
    assert len(crashed) == 2 and all(Path(r["source_path"]).name == "large.dcm" for r in crashed)
    # Back at `auto`, the file is over what the session maps: not read at all.
    done = _run(lake, output, "spark.settings.spark.driver.memory=512m", retry=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _latest(spark, output)["large.dcm"] == ("rejected", "too_large")
