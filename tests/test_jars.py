"""The jars of a local session (jobs/spark/jars.py): the record per package set, resolution serialised by a lock across
processes, retried, and a final failure in one line; a session is given files (`spark.jars`), never packages.
No JVM here: a fake resolver stands in for spark-submit's Ivy (tests/job/test_jar_resolution.py runs the real one)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyspark.sql import SparkSession

from jobs.config import load_config
from jobs.spark import jars, session
from jobs.spark.jars import JarCache, JarResolutionError, JavaNotFound, ResolutionFailed, Resolver, session_jars

DELTA = ["io.delta:delta-spark_4.2_2.13:4.4.0"]
EXCLUDES = ["org.apache.hadoop:hadoop-client-api"]


def _jars(folder: Path, *names: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"PK")
    return [(folder / name).as_uri() for name in names]


class FakeResolver(Resolver):
    """Fails `failures` times, then gives two jars in `cache.folder/ivy`; counts its calls in a file (processes)."""

    def __init__(self, calls: Path, failures: int = 0, seconds: float = 0.0) -> None:
        self.calls, self.failures, self.seconds = calls, failures, seconds

    def resolve(self, cache: JarCache, settings: Mapping[str, str]) -> list[str]:
        with self.calls.open("a") as calls:
            calls.write("x")
        time.sleep(self.seconds)
        if len(self.calls.read_text()) <= self.failures:
            raise ResolutionFailed("[download failed: io.delta#delta-spark_4.2_2.13;4.4.0!delta-spark_4.2_2.13.jar]")
        return _jars(cache.folder / "ivy" / "jars", "delta-spark.jar", "delta-storage.jar")


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jars, "RETRY_DELAYS_SECONDS", (0.0, 0.0))


def test_one_record_per_package_set_and_exclusions(tmp_path: Path) -> None:
    first = JarCache.for_packages(tmp_path, DELTA, EXCLUDES)
    assert first.path == JarCache.for_packages(tmp_path, list(reversed(DELTA)), EXCLUDES).path
    assert first.path != JarCache.for_packages(tmp_path, [*DELTA, "org.apache.hadoop:hadoop-aws:3.5.0"], EXCLUDES).path
    assert first.path != JarCache.for_packages(tmp_path, DELTA, []).path
    assert JarCache.for_packages("~/x", DELTA, EXCLUDES).path.is_absolute()


def test_the_cache_folder_is_the_configured_one_else_the_environments_else_the_default() -> None:
    assert jars.cache_dir("/c", {jars.CACHE_ENV: "/e"}) == Path("/c")
    assert jars.cache_dir(None, {jars.CACHE_ENV: "/e"}) == Path("/e")
    assert jars.cache_dir(None, {}) == Path(jars.DEFAULT_CACHE).expanduser()


def test_a_record_is_used_while_every_jar_exists(tmp_path: Path) -> None:
    cache = JarCache.for_packages(tmp_path / "cache", DELTA, EXCLUDES)
    calls = tmp_path / "calls"
    first = session_jars(cache, {}, FakeResolver(calls))
    assert first.startswith("file://") and len(first.split(",")) == 2
    assert session_jars(cache, {}, FakeResolver(calls)) == first
    assert calls.read_text() == "x"  # resolved once
    Path(first.split(",")[1].removeprefix("file://")).unlink()  # the Ivy folder was cleaned: resolve again
    assert session_jars(cache, {}, FakeResolver(calls)) == first
    assert calls.read_text() == "xx"


@pytest.mark.parametrize("content", ["", "{", '{"jars": []}', '{"jars": "a.jar"}', '["a.jar"]', '{"jars": [1]}'])
def test_a_broken_record_means_resolving_again(tmp_path: Path, content: str) -> None:
    cache = JarCache.for_packages(tmp_path, DELTA, EXCLUDES)
    cache.path.write_text(content)
    assert cache.jars() is None


def test_a_record_only_names_local_files(tmp_path: Path) -> None:
    cache = JarCache.for_packages(tmp_path, DELTA, EXCLUDES)
    cache.remember(["hdfs://namenode/jars/delta-spark.jar"])
    assert not cache.path.exists()


def test_a_failed_attempt_is_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = JarCache.for_packages(tmp_path / "cache", DELTA, EXCLUDES)
    given = session_jars(cache, {}, FakeResolver(tmp_path / "calls", failures=2))
    assert len(given.split(",")) == 2 and cache.jars() == given
    assert (tmp_path / "calls").read_text() == "xxx"
    assert sum("trying again" in r.message for r in caplog.records) == 2


def test_a_final_failure_is_one_line_naming_what_failed(tmp_path: Path) -> None:
    cache = JarCache.for_packages(tmp_path / "cache", DELTA, EXCLUDES)
    with pytest.raises(JarResolutionError) as failure:
        session_jars(cache, {}, FakeResolver(tmp_path / "calls", failures=jars.ATTEMPTS))
    message = str(failure.value)
    assert "\n" not in message
    assert "after 3 attempts: [download failed: io.delta#delta-spark_4.2_2.13;4.4.0" in message
    assert str(cache.log_path) in message
    assert failure.value.exit_status == 2
    assert not cache.path.exists()


def _start_together(folder: Path, calls: Path, go: Any, results: Any) -> None:
    go.wait()
    cache = JarCache.for_packages(folder, DELTA, EXCLUDES)
    results.put(session_jars(cache, {}, FakeResolver(calls, seconds=0.5)))


@pytest.mark.parametrize("processes", [2, 4])
def test_processes_starting_together_resolve_once(tmp_path: Path, processes: int) -> None:
    """The lock serialises them: one resolves, the others wait, then read its record."""
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    calls = tmp_path / "calls"
    started = [
        context.Process(target=_start_together, args=(tmp_path / "cache", calls, go, results)) for _ in range(processes)
    ]
    for process in started:
        process.start()
    go.set()
    given = [results.get(timeout=60) for _ in started]
    for process in started:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert calls.read_text() == "x"
    assert len(set(given)) == 1


def test_failure_line_picks_the_reason_from_ivys_output() -> None:
    download = (
        "\t\t[FAILED     ] software.amazon.awssdk#bundle;2.35.4!bundle.jar: Downloaded file size (0) doesn't match\n"
        "\t:: software.amazon.awssdk#bundle;2.35.4!bundle.jar\n"
        'Exception in thread "main" java.lang.RuntimeException: [download failed: '
        "software.amazon.awssdk#bundle;2.35.4!bundle.jar]\n"
        "\tat org.apache.spark.util.MavenUtils$.resolveMavenCoordinates(MavenUtils.scala:470)\n"
    )
    assert jars.failure_line(download, 1) == "[download failed: software.amazon.awssdk#bundle;2.35.4!bundle.jar]"
    failed_only = "\t\t[FAILED     ] io.delta#delta-storage;4.4.0!delta-storage.jar: (0ms)\n"
    assert jars.failure_line(failed_only, 1) == "io.delta#delta-storage;4.4.0!delta-storage.jar: (0ms)"
    assert jars.failure_line("JAVA_HOME is not set\n", 1) == "spark-submit exited with status 1: JAVA_HOME is not set"
    assert jars.failure_line("", 137) == "spark-submit exited with status 137"


def test_java_is_found_by_java_home_then_path(tmp_path: Path) -> None:
    with pytest.raises(JavaNotFound, match="JAVA_HOME is"):
        jars.java_binary({"JAVA_HOME": str(tmp_path), "PATH": ""})
    with pytest.raises(JavaNotFound, match="Java not found: Spark needs Java 17"):
        jars.java_binary({"PATH": str(tmp_path)})
    java = tmp_path / "bin" / "java"
    java.parent.mkdir()
    java.write_text("#!/bin/sh\n")
    java.chmod(0o755)
    assert jars.java_binary({"JAVA_HOME": str(tmp_path)}) == str(java)
    assert jars.java_binary({"PATH": str(java.parent)}) == str(java)


def test_a_local_session_is_given_the_resolved_files_never_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[dict[str, Any]] = []

    def start(builder: SparkSession.Builder, java_options: str, archive: object) -> SimpleNamespace:
        builds.append(dict(builder._options))
        return SimpleNamespace(sparkContext=SimpleNamespace(setLogLevel=lambda level: None))

    monkeypatch.setattr(session, "_start", start)
    monkeypatch.setattr(jars, "SparkSubmitResolver", lambda: FakeResolver(tmp_path / "calls"))
    overrides = [f"spark.jar_cache_dir={tmp_path / 'cache'}", "spark.class_archive_dir=null"]
    config = load_config(output="o", need_inputs=False, overrides=overrides).spark
    session.local_session(config, s3=False)
    session.local_session(config, s3=True)  # another package set: its own resolution and record
    assert (tmp_path / "calls").read_text() == "xx"
    assert all("spark.jars.packages" not in build and build["spark.jars"].startswith("file://") for build in builds)
    assert len(list((tmp_path / "cache").glob("jars-*.json"))) == 2
