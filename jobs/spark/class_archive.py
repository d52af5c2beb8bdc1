"""A class-data-sharing archive for the JVM of a local session (JDK 13+ dynamic CDS, JEP 350).

A local session starts a fresh JVM, which spends seconds of CPU loading, parsing and verifying Spark's classes
before a run can begin: a large part of a small run's JVM CPU (docs/design/performance.md). One session has its
JVM dump the classes it loaded into an archive when it exits (`-XX:ArchiveClassesAtExit`); later sessions map that
archive instead (`-XX:SharedArchiveFile`).

The JVM writes the archive after the Python process has gone (pyspark's JVM exits when its parent does), for
some seconds, so it writes to `<name>.partial` and records its pid in `<name>.dumping`. A later session takes
the partial archive as the archive only once that pid has ended. The JVM does not survive mapping a truncated
archive (a dump killed half way), so archives are CRC-checked at start-up (`-XX:+VerifySharedSpaces`): a bad
one stops the JVM at once, and `jobs.spark.session.local_session` removes it and starts without.

One archive per java binary, Spark and package set (its name is a hash of them): an upgrade makes a new one. The
JVM also refuses, and runs without, an archive whose class path differs from its own. So every new virtual
environment (an upgrade, each CI clone) adds an archive of its own: a session keeps the `KEPT_ARCHIVES` most
recently used and removes older ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .. import processes

log = logging.getLogger("sr2fhir")

UNCLAIMED_LOCK_SECONDS = 600
"""A dump lock without a pid this old belongs to a session that never started: another may dump."""

KEPT_ARCHIVES = 4
"""Archives a folder keeps, its most recently used (a session marks its own as used): enough for the package sets
one environment uses (with and without S3) and an older environment beside a new one."""

QUIET = "-Xlog:cds=off,cds+dynamic=off"
"""Dumping lists every class it cannot archive (signed jars, classes failing verification) as a console warning;
none is a fault of the run."""


@dataclass(frozen=True)
class JavaOptions:
    options: str
    """Added to the JVM's options ("" for none)."""
    dumps: bool
    """Whether the JVM writes the archive when it exits (its pid goes to `ClassArchive.dumping`)."""


@dataclass(frozen=True)
class ClassArchive:
    path: Path

    @classmethod
    def for_jvm(cls, directory: str | os.PathLike[str], identity: Iterable[str]) -> ClassArchive:
        """The archive for this machine's `java`, Spark and the given identity (the session's packages)."""
        parts = [*_java_identity(), *_spark_identity(), *identity]
        key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
        return cls(Path(directory).expanduser() / f"spark-{key}.jsa")

    @property
    def partial(self) -> Path:
        return self.path.with_name(self.path.name + ".partial")

    @property
    def lock(self) -> Path:
        return self.path.with_name(self.path.name + ".dumping")

    def java_options(self) -> JavaOptions:
        """What the next session's JVM does: map the archive, dump one, or neither (a dump is under way)."""
        if any(c.isspace() for c in str(self.path)):  # Spark splits the JVM's options at white space
            log.info("no JVM class archive: its folder's path has white space in it (%s)", self.path.parent)
            return JavaOptions("", dumps=False)
        try:
            if not self.path.is_file() and self.partial.is_file() and not self._dump_running():
                # The dumping JVM has ended: its archive is complete, or truncated (checked at start-up). Another
                # session may have taken it just now.
                with contextlib.suppress(FileNotFoundError):
                    self.partial.replace(self.path)
                self.lock.unlink(missing_ok=True)
            if self.path.is_file():
                self._prune_others(self.path)
                # A JVM stopped by a bad archive writes its crash report beside it, not into the user's folder.
                crash_report = self.path.with_name("hs_err_pid%p.log")
                return JavaOptions(
                    f"-XX:SharedArchiveFile={self.path} -XX:+VerifySharedSpaces -XX:ErrorFile={crash_report} {QUIET}",
                    dumps=False,
                )
            if self._claim_dump():
                self._prune_others(self.lock)
                return JavaOptions(f"-XX:ArchiveClassesAtExit={self.partial} {QUIET}", dumps=True)
        except OSError as exc:  # a read-only or full cache folder: run without the archive
            log.info("no JVM class archive in %s: %s", self.path.parent, exc.strerror or exc)
        return JavaOptions("", dumps=False)

    def dumping(self, pid: int) -> None:
        """Record the pid of the JVM that will write the archive when it exits."""
        self.lock.write_text(str(pid))

    def discard(self) -> None:
        """Remove an archive the JVM could not start with, so that a later session dumps a new one."""
        for path in (self.path, self.partial, self.lock):
            path.unlink(missing_ok=True)

    def _prune_others(self, used: Path) -> None:
        """Mark `used` (this archive or its dump lock) as just used, and remove other archives and their dumps'
        leftovers beyond the most recently used, unless their dump is under way. On POSIX a JVM that maps a removed
        archive keeps it; where removal fails (a file in use elsewhere) the archive stays."""
        with contextlib.suppress(OSError):
            os.utime(used)
        last_used: dict[str, float] = {}
        for entry in self.path.parent.glob("spark-*.jsa*"):
            name = entry.name[: entry.name.index(".jsa") + len(".jsa")]
            with contextlib.suppress(FileNotFoundError):
                last_used[name] = max(last_used.get(name, 0.0), entry.stat().st_mtime)
        last_used.pop(self.path.name, None)
        for name in sorted(last_used, key=lambda n: (last_used[n], n), reverse=True)[KEPT_ARCHIVES - 1 :]:
            other = ClassArchive(self.path.with_name(name))
            if not other._dump_running():
                with contextlib.suppress(OSError):
                    other.discard()
                    log.info("removed the JVM class archive %s: not used since %s", name, time.ctime(last_used[name]))

    def _dump_running(self) -> bool:
        """Whether the lock names a process that is still alive (or was taken too recently to name one)."""
        try:
            text = self.lock.read_text().strip()
            age = time.time() - self.lock.stat().st_mtime
        except FileNotFoundError:
            return False
        if not text.isdigit():
            return age < UNCLAIMED_LOCK_SECONDS
        return processes.alive(int(text))

    def _claim_dump(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.lock.exists() and not self._dump_running():
            self.partial.unlink(missing_ok=True)
            self.lock.unlink(missing_ok=True)
        try:
            os.close(os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True


def dump_under_way(directory: str | os.PathLike[str]) -> bool:
    """Whether a JVM is still to write an archive into `directory` (the benchmarks wait for it)."""
    locks = Path(directory).expanduser().glob("*.jsa.dumping")
    return any(ClassArchive(lock.with_name(lock.name.removesuffix(".dumping")))._dump_running() for lock in locks)


def _java_identity() -> list[str]:
    """The java binary pyspark will start (JAVA_HOME first, as its launcher does), by path, size and time."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return ["java:unknown"]
    real = Path(java).resolve()
    stat = real.stat()
    return [f"java:{real}:{stat.st_size}:{int(stat.st_mtime)}"]


def _spark_identity() -> list[str]:
    """The Spark whose jars make the JVM's class path: SPARK_HOME's when set (pyspark uses it), else pyspark's."""
    import pyspark

    home = Path(os.environ.get("SPARK_HOME") or Path(pyspark.__file__).parent).resolve()
    jars = home / "jars"
    # The JVM refuses an archive whose class path jars changed, which a reinstall of one version does: the jars
    # folder's time changes with them.
    changed = int(jars.stat().st_mtime) if jars.is_dir() else 0
    return [f"pyspark:{pyspark.__version__}:{home}:{changed}"]
