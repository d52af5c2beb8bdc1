"""One job at a time per output (jobs/output_lock.py) as the commands see it: while another job holds the output,
`sr2fhir run` and `sr2fhir maintain` stop with exit status 75 and change nothing; a lock left by a process that
has ended is taken over; a finished job leaves no lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from jobs import cli, output_lock
from jobs.errors import ExitStatus
from jobs.output_lock import Holder
from jobs.spark.fs import HadoopFS

from .helpers import run_job

pytestmark = [pytest.mark.spark]


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_job_on_a_busy_output_stops_and_changes_nothing(
    spark: SparkSession, sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    run_job(spark, [sample], output)
    assert not (output / output_lock.NAME).exists()  # released
    before = _tree(output)
    with output_lock.holding(HadoopFS(spark), output.as_uri(), "run", expiry_seconds=600) as other:
        busy_run = cli.main(["run", "-q", "--input", str(sample), "--output", str(output), "--full-refresh"])
        busy_maintain = cli.main(["maintain", "-q", "--output", str(output)])
        assert _tree(output) == sorted([*before, output_lock.NAME, f".{output_lock.NAME}.crc"])
        other.confirm()  # still the other job's
    assert busy_run == busy_maintain == ExitStatus.BUSY == 75
    err = capsys.readouterr().err
    assert f"sr2fhir run: `sr2fhir run` on {other.holder.host} (process {other.holder.pid}" in err
    assert "sr2fhir maintain: `sr2fhir run` on" in err
    assert "one job at a time per output" in err
    assert _tree(output) == before


def test_a_lock_left_by_an_ended_run_is_taken_over(spark: SparkSession, sample: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    output.mkdir()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = Holder("run", Holder.this_process("run").host, int(ended.stdout), "2026-11-29T10:00:00+00:00", "0" * 32)
    (output / output_lock.NAME).write_bytes(left.encode())  # as a run killed on this host leaves it
    summary = run_job(spark, [sample], output)
    assert summary["documents"]["mapped"] == 8
    assert not (output / output_lock.NAME).exists()
