"""Fixtures of the cluster tests: a Spark standalone master and two workers started from pyspark's own launcher on
loopback, a wheel of this checkout built by the test, and a packed Python environment for the executors made from
it. Input and output are on the loopback S3 server of the job tests (`job.conftest.s3_endpoint`), in a bucket of
their own (Hadoop caches an s3a file system per bucket, endpoint included)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from job.conftest import s3_endpoint  # noqa: F401  (the fixture, for this folder's tests)

REPO_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "cluster"
WORKERS = 2
STARTUP_SECONDS = 180
"""How long the master and workers may take to start on a busy 2-core machine."""

_SOURCES = ("setup.py", "pyproject.toml", "README.md", "jobs", "sr2fhir_core", "sr2fhir_synth")
"""What a wheel is built from: the checkout's package folders and build files (not its in-place C builds)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_home() -> Path:
    """pyspark's own Spark: its bin/spark-class and bin/spark-submit."""
    import pyspark

    return Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent)


def base_python() -> str:
    """The interpreter this test's virtual environment was made from: the executors' environment is another
    virtual environment of it, made by the test."""
    return getattr(sys, "_base_executable", None) or sys.executable


def daemon_environment(spark: Path) -> dict[str, str]:
    """The environment of the master and workers, hence of their executors and Python workers: none of this
    process's Python settings (PYTHONPATH would let the executors import this checkout instead of what is shipped
    to them)."""
    keep = ("PATH", "HOME", "JAVA_HOME", "LANG", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    return {
        **env,
        "SPARK_HOME": str(spark),
        "SPARK_LOCAL_IP": "127.0.0.1",
        # The master and worker daemons themselves: small heaps (their executors get spark.executor.memory), and
        # C1 only (little to compile in a test's minutes).
        "SPARK_DAEMON_MEMORY": "256m",
        "SPARK_DAEMON_JAVA_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    }


def _quietly(command: list[str]) -> None:
    """Run a build step; its output (setuptools' deprecation notices) only when it fails."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@dataclass(frozen=True)
class Shipped:
    wheel: Path
    environment: Path
    """The packed executors' environment (`--archives <this>#env`, PYSPARK_PYTHON=./env/bin/python)."""


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Shipped:
    """A wheel of this checkout (its C extensions compiled) and a packed environment with it installed.

    The environment is a virtual environment of the base interpreter made with `--copies` (bin/python a file, not a
    symlink to the build machine's interpreter: Spark's unpacking of a .tar refuses links that point out of it),
    the wheel and its dependencies installed from the package index, packed as a .tar.gz (Spark unpacks that with
    the system's tar, which keeps the executable bits; a plain .tar it unpacks without them). It is what
    `venv-pack` makes, without that tool's rewriting of the scripts in bin/, which executors never run; like any
    virtual environment it needs the base interpreter at the same path on every node (docs/job.md)."""
    work = tmp_path_factory.mktemp("shipped")
    source = work / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("*.so", "__pycache__", "*.pyc")
    for name in _SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)  # symlinks followed: jobs/sr2fhir.yaml is one
        else:
            shutil.copy(path, source / name)
    dist = work / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    _quietly([*pip, "wheel", "--no-deps", "-w", str(dist), str(source)])
    (wheel,) = dist.glob("sr2fhir-*.whl")
    env = work / "env"
    _quietly([base_python(), "-m", "venv", "--copies", "--without-pip", str(env)])
    _quietly([*pip, "--python", str(env / "bin" / "python"), "install", str(wheel)])
    archive = work / "env.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        for entry in sorted(env.iterdir()):
            tar.add(entry, arcname=entry.name)  # no "./" entry: Spark refuses it
    return Shipped(wheel, archive)


@dataclass
class Cluster:
    master: str
    """spark://127.0.0.1:<port>"""
    ui: str
    workers: list[subprocess.Popen]
    work_dirs: list[Path]
    processes: list[subprocess.Popen]

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.ui}/json/", timeout=10) as answer:
            return json.loads(answer.read())

    def kill_worker(self, index: int) -> None:
        """A lost node: the worker, its executor and that executor's Python workers, killed at once."""
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait(30)

    def executor_logs(self) -> set[Path]:
        """The logs of the executors the workers have started so far (one folder per application and executor)."""
        return {log for work_dir in self.work_dirs for log in work_dir.glob("app-*/*/stderr")}

    def running_task(self, before: set[Path]) -> int | None:
        """The index of a live worker whose executor, not among those of `before`, has started a task, if any."""
        for index, work_dir in enumerate(self.work_dirs):
            if self.workers[index].poll() is not None:
                continue
            for log in set(work_dir.glob("app-*/*/stderr")) - before:
                if "Running task" in log.read_text(errors="replace"):
                    return index
        return None


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        # A process group of its own: a worker is killed with its executor and their Python workers.
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A standalone master and two workers of 1 core and 1 GiB each, every one its own JVM, bound to 127.0.0.1."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no java: a Spark cluster needs Java 17")
    spark = spark_home()
    spark_class = str(spark / "bin" / "spark-class")
    logs = tmp_path_factory.mktemp("cluster")
    scratch = logs / "local"
    # The executors' scratch space (fetched jars and archives, shuffle files) here, not in /tmp: removed at the end
    # with the workers' application folders (~700 MB of jars per executor and application).
    env = {**daemon_environment(spark), "SPARK_LOCAL_DIRS": str(scratch)}
    port, ui_port = _free_port(), _free_port()
    master = f"spark://127.0.0.1:{port}"
    processes = [
        _start(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui_port),
            ],
            env,
            logs / "master.log",
        )
    ]
    workers, work_dirs = [], []
    for index in range(WORKERS):
        work_dir = logs / f"worker-{index}"
        work_dir.mkdir()
        worker = _start(
            [
                spark_class,
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--cores",
                "1",
                "--memory",
                "1g",
                "--webui-port",
                str(_free_port()),
                "--work-dir",
                str(work_dir),
                master,
            ],
            env,
            logs / f"worker-{index}.log",
        )
        workers.append(worker)
        work_dirs.append(work_dir)
    processes += workers
    running = Cluster(master, f"http://127.0.0.1:{ui_port}", workers, work_dirs, processes)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a Spark daemon exited at start: see {logs}")
            try:
                state = running.state()
                if state.get("status") == "ALIVE" and state.get("aliveworkers") == WORKERS:
                    break
            except OSError:
                pass  # the master's UI is not up yet
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not start in {STARTUP_SECONDS} s: see {logs}")
            time.sleep(1)
        yield running
    finally:
        for process in processes:  # throwaway daemons: nothing of theirs needs a clean stop
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        shutil.rmtree(scratch, ignore_errors=True)
        for work_dir in work_dirs:  # the executors' logs stay: app-*/<executor>/stderr
            for copied in work_dir.glob("app-*/*/*"):
                if copied.name in ("stderr", "stdout"):
                    continue
                if copied.is_dir() and not copied.is_symlink():
                    shutil.rmtree(copied)
                else:
                    copied.unlink()
