"""A fresh machine's first start, for real: `sr2fhir run` processes started together on empty jar caches all come
up (one resolves the Spark packages from Maven Central, the others wait for it), and a session that cannot start
says why in one line and exits 2. Needs java and Maven Central."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.config import load_config
from jobs.spark import jars
from jobs.spark.jars import JarCache, JarResolutionError, session_jars

from .helpers import REPO_ROOT

pytestmark = [pytest.mark.spark]

ROUNDS = int(os.environ.get("SR2FHIR_RESOLUTION_ROUNDS", "1"))
"""Rounds of the race from empty caches (each resolves ~30 jars, ~7 MB, from Maven Central)."""
RESOLVING = "resolving the Spark packages"


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "jobs.cli", *args]


def _environment(**extra: str) -> dict[str, str]:
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": pythonpath, **extra}


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_runs_starting_together_on_empty_caches_both_start(sample: Path, tmp_path: Path, round_: int) -> None:
    cache = tmp_path / "jars"  # empty: the Ivy cache is inside it too
    settings = [f"spark.jar_cache_dir={cache}", "spark.class_archive_dir=null", "output.progress_interval_seconds=0"]
    runs = []
    for name in ("first", "second"):
        command = _command("run", "--input", str(sample), "--output", str(tmp_path / name))
        for setting in settings:
            command += ["--set", setting]
        runs.append(
            subprocess.Popen(
                command, cwd=REPO_ROOT, env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = [run.communicate(timeout=900) for run in runs]
    for run, (stdout, stderr) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, stderr[-3000:]
        assert "inputs: " in stdout
    logs = "".join(stderr for _, stderr in outputs)
    assert logs.count(RESOLVING) == 1, logs[-3000:]  # the other waited and read the record
    assert len(list(cache.glob("jars-*.json"))) == 1
    assert "Downloaded file size" not in logs and "download failed" not in logs
    assert "repos.spark-packages.org" not in (next(cache.glob("resolve-*.log"))).read_text()  # Maven Central only


def test_a_resolution_that_cannot_succeed_fails_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository that refuses every connection: three attempts, then the reason and the log's path."""
    monkeypatch.setattr(jars, "RETRY_DELAYS_SECONDS", (0.0, 0.0))
    settings = tmp_path / "ivysettings.xml"
    settings.write_text(
        '<ivysettings><settings defaultResolver="closed"/><resolvers>'
        '<ibiblio name="closed" m2compatible="true" root="http://127.0.0.1:9/maven2/"/>'
        "</resolvers></ivysettings>\n"
    )
    config = load_config(output="o", need_inputs=False).spark
    cache = JarCache.for_packages(tmp_path / "jars", [config.delta_package], config.jar_excludes)
    with pytest.raises(JarResolutionError) as failure:
        session_jars(cache, {"spark.jars.ivySettings": str(settings)})
    message = str(failure.value)
    assert "\n" not in message
    assert "after 3 attempts: [unresolved dependency: io.delta#delta-spark_4.2_2.13;4.4.0: not found]" in message
    assert str(cache.log_path) in message
    assert not cache.path.exists()


def test_a_run_without_java_says_so_and_exits_2(sample: Path, tmp_path: Path) -> None:
    python_only = tmp_path / "bin"
    python_only.mkdir()
    (python_only / "python").symlink_to(sys.executable)
    environment = _environment(PATH=str(python_only))
    environment.pop("JAVA_HOME", None)
    done = subprocess.run(
        _command("run", "--input", str(sample), "--output", str(tmp_path / "out")),
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "sr2fhir run: Java not found: Spark needs Java 17 or 21 (install it, or set JAVA_HOME)"
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
