"""What the job writes on a file system with permissions is not readable by others: `output.umask` ("027" by
default) on top of the process's umask (jobs/spark/session.py), where Hadoop alone would write 644 and 755."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs.config import load_config
from jobs.errors import ConfigError
from jobs.spark.session import effective_umask

from .helpers import copy_lake, run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@pytest.fixture
def process_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_the_stricter_of_both_umasks_wins(process_umask: None) -> None:
    assert effective_umask("027") == "027"
    assert effective_umask(None) == "022"
    os.umask(0o077)
    assert effective_umask("027") == "077"
    os.umask(0o002)
    assert effective_umask("027") == "027"


def test_the_configured_umask_is_octal_digits_or_null() -> None:
    assert load_config(inputs=["x"], output="o").out.umask == "027"
    assert load_config(inputs=["x"], output="o", overrides=["output.umask=077"]).out.umask == "077"  # YAML octal
    assert load_config(inputs=["x"], output="o", overrides=["output.umask='0007'"]).out.umask == "0007"
    assert load_config(inputs=["x"], output="o", overrides=["output.umask=null"]).out.umask is None
    for wrong in ("'028'", "'rwx'", "'12345'"):
        with pytest.raises(ConfigError, match=r"output\.umask must be octal digits"):
            load_config(inputs=["x"], output="o", overrides=[f"output.umask={wrong}"])


@pytest.mark.spark
def test_nothing_the_job_writes_is_readable_by_others(
    spark: SparkSession, sample: Path, tmp_path: Path, process_umask: None
) -> None:
    lake = copy_lake(sample, tmp_path)
    output = tmp_path / "out"
    run_job(spark, [lake], output)
    written = [output, *output.rglob("*")]
    assert len(written) > 50
    readable = [str(p.relative_to(tmp_path)) for p in written if p.stat().st_mode & (stat.S_IROTH | stat.S_IWOTH)]
    assert readable == []
    assert all(p.stat().st_mode & stat.S_IRGRP for p in written)  # the group reads (an analysts' group)
