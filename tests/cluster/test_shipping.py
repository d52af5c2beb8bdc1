"""How the package reaches executors, without a cluster: what a zip on --py-files gives (the configuration read as
package data, the pure-Python reader, reported), a wheel on --py-files refused with the fix, and the Python a
session's workers run."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from jobs.run.stage import _lack_message, _missing_package
from jobs.run.summary import mapping_workers, readers
from jobs.spark.session import python_for_workers

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_from_a_zip_the_job_reads_its_defaults_and_reports_the_pure_python_reader(tmp_path: Path) -> None:
    """A zip of the packages, as on --py-files: the default configuration is package data read from the zip (not a
    file path), and the C extensions in it cannot load, which the worker report says."""
    archive = tmp_path / "sr2fhir.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for package in ("jobs", "sr2fhir_core"):
            for path in sorted((REPO_ROOT / package).rglob("*")):
                if path.is_file() and "__pycache__" not in path.parts:
                    zipped.write(path, path.relative_to(REPO_ROOT).as_posix())  # the C builds (.so) too
    code = (
        "import json, jobs, jobs.mapping\n"
        "from jobs.config import load_config\n"
        "config = load_config(inputs=['in'], output='out')\n"
        "print(json.dumps({'file': jobs.__file__, 'worker': jobs.mapping.this_worker(),"
        " 'master': config.spark.master}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SR2FHIR_PURE_PYTHON")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(archive)},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    found = json.loads(done.stdout)
    assert found["file"] == str(archive / "jobs" / "__init__.py")
    assert found["master"] == "local[2]"
    _, _, python, package, reader = found["worker"]
    assert (python, package, reader) == (sys.executable, str(archive / "jobs"), "python")


def _worker(reader: str, inputs: int, pid: int = 1) -> tuple[tuple[str, int, str, str, str], int]:
    return ("node-1", pid, "/work/app/0/env/bin/python", "/work/app/0/env/lib/site-packages/jobs", reader), inputs


def test_the_report_counts_inputs_per_worker_and_warns_of_the_fallback(caplog: pytest.LogCaptureFixture) -> None:
    counts = dict([_worker("c", 20, pid=2), _worker("python", 13, pid=1)])
    with caplog.at_level(logging.WARNING, logger="sr2fhir"):
        workers = mapping_workers(counts, "run-1")
    assert workers == [
        {
            "host": "node-1",
            "pid": pid,
            "python": "/work/app/0/env/bin/python",
            "package": "/work/app/0/env/lib/site-packages/jobs",
            "reader": reader,
            "inputs": n,
        }
        for pid, reader, n in ((1, "python", 13), (2, "c", 20))
    ]
    assert readers(workers) == {"c": 20, "python": 13}
    (warning,) = caplog.records
    assert "13 of 33 inputs were read without the C reader on node-1" in warning.getMessage()
    assert "Shipping the package" in warning.getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sr2fhir"):
        assert readers(mapping_workers(dict([_worker("c", 5)]), "run-2")) == {"c": 5}
    assert not caplog.records
    assert mapping_workers(None, "run-3") is None and readers(None) is None


def _session(py_files: str | None) -> Any:
    conf = SimpleNamespace(get=lambda key, default=None: py_files if key == "spark.submit.pyFiles" else default)
    return SimpleNamespace(sparkContext=SimpleNamespace(getConf=lambda: conf))


def test_executors_without_the_package_get_the_fix_in_the_message() -> None:
    # What a map job's failure says when the executors' Python cannot unpickle the Mapper.
    failure = (
        "An error occurred while calling o388.parquet.\n: org.apache.spark.SparkException: Job aborted ...\n"
        '  File "/env/lib/python3.11/site-packages/pyspark/serializers.py", line 471, in loads\n'
        "    return cloudpickle.loads(obj, encoding=encoding)\n"
        "ModuleNotFoundError: No module named 'jobs'\n"
    )
    assert _missing_package(RuntimeError(failure)) == "jobs"
    assert _missing_package(RuntimeError("No module named 'sr2fhir_core.reading'")) == "sr2fhir_core.reading"
    assert _missing_package(RuntimeError("No module named 'pyarrow'")) is None
    wheel = "file:/tmp/spark-1/sr2fhir-0.1.0-cp311-cp311-linux_x86_64.whl"
    message = _lack_message(_session(f"{wheel},file:/tmp/spark-1/extra.zip"), "jobs")
    assert "No module named 'jobs'" in message
    assert "--py-files names the wheel sr2fhir-0.1.0-cp311-cp311-linux_x86_64.whl" in message
    assert "--archives env.tar.gz#env" in message and "PYSPARK_PYTHON=./env/bin/python" in message
    assert "neither installed" in _lack_message(_session(None), "jobs")


@pytest.mark.parametrize(
    ("master", "user", "expected"),
    [
        ("local[2]", "./env/bin/python", sys.executable),  # local workers run the driver's interpreter
        ("local[2]", None, sys.executable),
        ("spark://127.0.0.1:7077", "./env/bin/python", "./env/bin/python"),  # the user's, on a cluster
        ("spark://127.0.0.1:7077", None, sys.executable),
        ("yarn", "", sys.executable),
    ],
)
def test_the_users_pyspark_python_is_kept_on_a_cluster(master: str, user: str | None, expected: str) -> None:
    environ = {} if user is None else {"PYSPARK_PYTHON": user}
    python_for_workers(master, environ)
    assert environ["PYSPARK_PYTHON"] == expected
