"""The JVM class archive of local sessions (jobs/spark/class_archive.py): which JVM options a session gets in each state
of the cache folder, and that a session whose JVM refuses the archive starts without it. No JVM is started here:
the JVM's side (dump at exit, CRC check, refusal of a truncated archive) is measured in benchmarks/FINDINGS.md."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from jobs.spark import session
from jobs.spark.class_archive import KEPT_ARCHIVES, UNCLAIMED_LOCK_SECONDS, ClassArchive, dump_under_way

DELTA = ["io.delta:delta-spark_4.2_2.13:4.4.0"]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_one_archive_per_package_set(tmp_path: Path) -> None:
    first = ClassArchive.for_jvm(tmp_path, DELTA)
    assert first == ClassArchive.for_jvm(tmp_path, DELTA)
    assert first != ClassArchive.for_jvm(tmp_path, [*DELTA, "org.apache.hadoop:hadoop-aws:3.5.0"])
    assert ClassArchive.for_jvm("~/x", DELTA).path.is_absolute()


def test_first_session_dumps_and_others_wait_for_it(tmp_path: Path) -> None:
    archive = ClassArchive.for_jvm(tmp_path / "jvm", DELTA)
    first = archive.java_options()
    assert first.dumps and f"-XX:ArchiveClassesAtExit={archive.partial}" in first.options
    # A second session while the first is starting, then while its JVM is alive (dumping at exit):
    # neither dumps nor maps a half-written archive.
    assert archive.java_options().options == ""
    archive.dumping(os.getpid())
    archive.partial.write_bytes(b"half written")
    assert archive.java_options().options == ""
    assert not archive.path.exists()
    assert dump_under_way(tmp_path / "jvm")  # what the benchmarks wait for
    archive.dumping(_dead_pid())
    assert not dump_under_way(tmp_path / "jvm")


def test_a_finished_dump_is_published_and_mapped(tmp_path: Path) -> None:
    archive = ClassArchive.for_jvm(tmp_path, DELTA)
    assert archive.java_options().dumps
    archive.dumping(_dead_pid())
    archive.partial.write_bytes(b"archive")
    sharing = archive.java_options()
    assert not sharing.dumps
    assert f"-XX:SharedArchiveFile={archive.path}" in sharing.options
    assert "-XX:+VerifySharedSpaces" in sharing.options  # a truncated archive must stop the JVM at start-up
    assert archive.path.read_bytes() == b"archive"
    assert not archive.partial.exists() and not archive.lock.exists()


def test_a_dump_that_never_came_is_taken_over(tmp_path: Path) -> None:
    archive = ClassArchive.for_jvm(tmp_path, DELTA)
    archive.java_options()
    archive.dumping(_dead_pid())  # its JVM ended without writing anything
    assert archive.java_options().dumps

    abandoned = ClassArchive.for_jvm(tmp_path / "other", DELTA)
    abandoned.java_options()  # the session never started: no pid in the lock
    assert abandoned.java_options().options == ""
    old = time.time() - UNCLAIMED_LOCK_SECONDS - 1
    os.utime(abandoned.lock, (old, old))
    assert abandoned.java_options().dumps


def test_an_unusable_cache_folder_means_no_archive(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    assert ClassArchive.for_jvm(tmp_path / "not-a-folder" / "jvm", DELTA).java_options().options == ""
    # Spark splits spark.driver.extraJavaOptions at white space: such a path would break the JVM's options.
    spaced = ClassArchive.for_jvm(tmp_path / "my cache", DELTA)
    assert spaced.java_options().options == "" and not spaced.lock.exists()


class _Builder:
    """SparkSession.builder's two calls that `session._start` makes; the JVM 'refuses' any class archive."""

    def __init__(self) -> None:
        self.options: dict[str, str] = {}
        self.started: list[str] = []

    def config(self, key: str, value: str) -> _Builder:
        self.options[key] = value
        return self

    def getOrCreate(self) -> str:
        java = self.options["spark.driver.extraJavaOptions"]
        self.started.append(java)
        if "SharedArchiveFile" in java:
            raise RuntimeError("[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number.")
        return "session"


def test_a_refused_archive_is_removed_and_the_session_starts_without(tmp_path: Path) -> None:
    archive = ClassArchive.for_jvm(tmp_path, DELTA)
    archive.path.write_bytes(b"truncated")
    builder = _Builder()
    assert session._start(builder, "-XX:+UseParallelGC", archive) == "session"  # type: ignore[arg-type]
    assert builder.started[0].startswith("-XX:+UseParallelGC -XX:SharedArchiveFile=")
    assert builder.started[1] == "-XX:+UseParallelGC"
    assert not archive.path.exists()


def test_without_an_archive_folder_the_options_are_the_configured_ones() -> None:
    builder = _Builder()
    session._start(builder, "-XX:+UseParallelGC", None)  # type: ignore[arg-type]
    assert builder.started == ["-XX:+UseParallelGC"]


def test_a_session_keeps_the_most_recently_used_archives_and_removes_older_ones(tmp_path: Path) -> None:
    """Each new environment (an upgrade, a CI clone) makes a new ~200 MB archive: old ones must not pile up."""
    now = time.time()
    others = [tmp_path / f"spark-{n:016x}.jsa" for n in range(6)]
    for age, other in enumerate(others):  # others[0] used most recently
        other.write_bytes(b"archive")
        os.utime(other, (now - 3600 * (age + 1), now - 3600 * (age + 1)))
    # An environment whose dump is under way (its JVM alive), and one whose JVM died dumping: the first stays.
    dumping = ClassArchive(tmp_path / "spark-dumping0000000.jsa")
    dumping.dumping(os.getpid())
    dumping.partial.write_bytes(b"half")
    abandoned = ClassArchive(tmp_path / "spark-abandoned000000.jsa")
    abandoned.dumping(_dead_pid())
    abandoned.partial.write_bytes(b"half")
    for path in (dumping.lock, dumping.partial, abandoned.lock, abandoned.partial):
        os.utime(path, (now - 86400, now - 86400))
    (tmp_path / "notes.txt").write_text("not ours")

    archive = ClassArchive.for_jvm(tmp_path, DELTA)
    archive.path.write_bytes(b"archive")
    os.utime(archive.path, (now - 10 * 86400, now - 10 * 86400))
    assert "-XX:SharedArchiveFile" in archive.java_options().options
    assert archive.path.stat().st_mtime >= now  # marked as used
    kept = sorted(p.name for p in tmp_path.iterdir())
    expected = [archive.path, *others[: KEPT_ARCHIVES - 1], dumping.lock, dumping.partial, tmp_path / "notes.txt"]
    assert kept == sorted(p.name for p in expected)

    # A session that dumps a new archive prunes too, and counts its own claim as the most recent use.
    newer = ClassArchive.for_jvm(tmp_path, [*DELTA, "org.apache.hadoop:hadoop-aws:3.5.0"])
    assert newer.java_options().dumps
    assert archive.path.exists() and newer.lock.exists() and not others[KEPT_ARCHIVES - 2].exists()
