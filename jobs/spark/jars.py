"""The jars of a local session: Delta, and hadoop-aws for s3a:// URIs, resolved from Maven Central once per machine
and package set, then given to every session as files (`spark.jars`), so no session runs Ivy itself.

Resolution is spark-submit's own Ivy, run in a child JVM that does nothing else (`jobs/spark/jar_probe.py` prints
the jars it was given). Doing it apart from the session's JVM makes it:
- serialised: every sr2fhir process holds one lock file in the cache folder around it, and a process that waited
  finds the record the first one wrote. Two JVMs resolving into one Ivy cache at once corrupt each other's
  downloads ("Downloaded file size (0) doesn't match expected Content Length") and both fail to start;
- retried: a failed attempt is repeated, and a final failure is one line naming what failed;
- quiet: Ivy's few hundred lines go to a log file beside the record, not to the console;
- Maven Central only (jobs/spark/ivysettings.xml), not the extra repositories of Spark's defaults, unless the
  configuration names others (`spark.jars.repositories`) or its own Ivy settings (`spark.jars.ivySettings`).

The cache folder (`spark.jar_cache_dir`; null: `$SR2FHIR_JAR_CACHE_DIR`, else `~/.cache/sr2fhir/jars`) holds:
`ivy/` (Ivy's cache and the resolved jars), `jars-<key>.json` (one record per package set: its jars' file URIs),
`resolve-<key>.log` (the last resolution's output) and `resolve.lock`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlparse

from filelock import FileLock, Timeout

from ..errors import JarResolutionError, JavaNotFound
from .jar_probe import JARS_LINE

log = logging.getLogger("sr2fhir")

CACHE_ENV = "SR2FHIR_JAR_CACHE_DIR"
DEFAULT_CACHE = "~/.cache/sr2fhir/jars"
ATTEMPTS = 3
RETRY_DELAYS_SECONDS = (3.0, 15.0)
"""Wait before the second and the third attempt."""
RESOLVE_TIMEOUT_SECONDS = 1800.0
"""One attempt at most: long enough to download hadoop-aws's AWS SDK bundle (docs/design/performance.md)."""
_PASSED_SETTINGS = ("spark.jars.repositories", "spark.jars.ivySettings", "spark.jars.ivy")
"""Spark settings of the configuration that shape a resolution, passed on to it when given."""


def cache_dir(configured: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """The jar cache folder: the configured one, else `$SR2FHIR_JAR_CACHE_DIR`, else the default."""
    return Path(configured or environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def java_binary(environ: Mapping[str, str] = os.environ) -> str:
    """The java that pyspark's launcher starts (JAVA_HOME first, then PATH), or JavaNotFound."""
    if home := environ.get("JAVA_HOME"):
        java = Path(home) / "bin" / "java"
        if java.is_file():
            return str(java)
        raise JavaNotFound(f"Java not found: JAVA_HOME is {home}, which has no bin/java (Spark needs Java 17 or 21)")
    found = shutil.which("java", path=environ.get("PATH"))
    if found is None:
        raise JavaNotFound("Java not found: Spark needs Java 17 or 21 (install it, or set JAVA_HOME)")
    return found


@dataclass(frozen=True)
class JarCache:
    """The record of the jars one package set resolved to, and how to resolve them."""

    folder: Path
    packages: tuple[str, ...]
    excludes: tuple[str, ...]

    @classmethod
    def for_packages(cls, folder: str | os.PathLike[str], packages: Sequence[str], excludes: Sequence[str]) -> JarCache:
        return cls(Path(folder).expanduser(), tuple(sorted(packages)), tuple(sorted(excludes)))

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps([self.packages, self.excludes]).encode()).hexdigest()[:16]

    @property
    def path(self) -> Path:
        return self.folder / f"jars-{self.key}.json"

    @property
    def log_path(self) -> Path:
        return self.folder / f"resolve-{self.key}.log"

    def jars(self) -> str | None:
        """The recorded `spark.jars` value, if there is a record and every jar in it is still a file."""
        try:
            jars = json.loads(self.path.read_text())["jars"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(jars, list) or not jars or not all(isinstance(jar, str) and _is_file(jar) for jar in jars):
            log.debug("jar record %s is stale: resolving the packages again", self.path)
            return None
        return ",".join(jars)

    def remember(self, jars: Sequence[str]) -> None:
        """Record the jars: written whole under another name, then renamed, so a reader sees all or nothing."""
        if not jars or not all(_is_file(jar) for jar in jars):
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
            partial.write_text(json.dumps({"packages": self.packages, "jars": list(jars)}, indent=0) + "\n")
            partial.replace(self.path)
        except OSError as exc:  # a cache: a session that cannot write it still runs
            log.info("could not record the session's jars in %s: %s", self.path, exc)


def session_jars(cache: JarCache, settings: Mapping[str, str], resolver: Resolver | None = None) -> str:
    """The `spark.jars` of a local session with these packages: the record, else a resolution under the lock."""
    if (jars := cache.jars()) is not None:
        return jars
    resolver = resolver or SparkSubmitResolver()
    cache.folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(cache.folder / "resolve.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another sr2fhir process to resolve the Spark packages (%s)", cache.folder)
        try:
            lock.acquire(timeout=ATTEMPTS * RESOLVE_TIMEOUT_SECONDS)
        except Timeout as exc:
            raise JarResolutionError(f"another process has been resolving into {cache.folder} for too long") from exc
    try:
        if (jars := cache.jars()) is not None:  # resolved by the process we waited for
            return jars
        resolved = _resolve_with_retries(cache, settings, resolver)
        cache.remember(resolved)
        return ",".join(resolved)
    finally:
        lock.release()


class Resolver:
    """Runs one resolution of a package set; returns the jars' URIs or raises `ResolutionFailed`."""

    def resolve(self, cache: JarCache, settings: Mapping[str, str]) -> list[str]:
        raise NotImplementedError


class ResolutionFailed(Exception):
    """One attempt failed; the message is the one line that says why."""


def _resolve_with_retries(cache: JarCache, settings: Mapping[str, str], resolver: Resolver) -> list[str]:
    large = " (hadoop-aws brings the ~690 MB AWS SDK bundle)" if any("hadoop-aws" in p for p in cache.packages) else ""
    log.info(
        "resolving the Spark packages %s into %s, once per machine%s; details in %s",
        ", ".join(cache.packages),
        cache.folder,
        large,
        cache.log_path,
    )
    started = time.monotonic()
    failure = ResolutionFailed("no attempt")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            jars = resolver.resolve(cache, settings)
        except ResolutionFailed as exc:
            failure = exc
            if attempt < ATTEMPTS:
                delay = RETRY_DELAYS_SECONDS[min(attempt, len(RETRY_DELAYS_SECONDS)) - 1]
                log.warning("resolving the Spark packages failed (%s); trying again in %.0f s", exc, delay)
                time.sleep(delay)
            continue
        log.info("resolved %d jars in %.1f s", len(jars), time.monotonic() - started)
        return jars
    raise JarResolutionError(
        f"could not resolve the Spark packages {', '.join(cache.packages)} after {ATTEMPTS} attempts: {failure}"
        f" (details in {cache.log_path})"
    )


class SparkSubmitResolver(Resolver):
    """spark-submit with the packages and `jobs/spark/jar_probe.py` as the application: its Ivy resolves and downloads
    them, then the probe prints the `spark.jars` the JVM was given."""

    def resolve(self, cache: JarCache, settings: Mapping[str, str]) -> list[str]:
        java_binary()  # a missing Java is not worth retrying
        conf = {
            "spark.jars.packages": ",".join(cache.packages),
            "spark.jars.excludes": ",".join(cache.excludes),
            "spark.jars.ivy": str(cache.folder / "ivy"),
            "spark.jars.ivySettings": str(_packaged("ivysettings.xml")),
            **{key: settings[key] for key in _PASSED_SETTINGS if key in settings},
        }
        command = [_spark_submit(), "--driver-java-options", "-XX:TieredStopAtLevel=1"]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        command.append(str(_packaged("jar_probe.py")))
        env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
        with cache.log_path.open("w") as output:
            output.write(f"$ {' '.join(command)}\n")
            output.flush()
            try:
                done = subprocess.run(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=output,
                    text=True,
                    timeout=RESOLVE_TIMEOUT_SECONDS,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise ResolutionFailed(f"no result in {RESOLVE_TIMEOUT_SECONDS:.0f} s") from exc
            output.write(done.stdout)
        for line in done.stdout.splitlines():
            if line.startswith(JARS_LINE):
                return [jar for jar in json.loads(line.removeprefix(JARS_LINE)) if jar]
        raise ResolutionFailed(failure_line(cache.log_path.read_text(errors="replace"), done.returncode))


_JVM_EXCEPTION = re.compile(r'^Exception in thread "main" (?:[\w.$]+: )?(.*)$')
_IVY_FAILED = re.compile(r"^\s*\[FAILED\s*\]\s*(.*)$")


def failure_line(output: str, returncode: int) -> str:
    """The one line of a failed resolution's output that says why: the JVM's exception (Ivy's `[download failed:
    ...]` or `[unresolved dependency: ...]`), else Ivy's first failed artifact, else the last line."""
    lines = output.splitlines()
    for pattern in (_JVM_EXCEPTION, _IVY_FAILED):
        for line in lines:
            if match := pattern.match(line):
                return match.group(1).strip()[:500]
    last = next((line.strip() for line in reversed(lines) if line.strip()), "")
    return f"spark-submit exited with status {returncode}" + (f": {last[:500]}" if last else "")


def _spark_submit() -> str:
    from pyspark.find_spark_home import _find_spark_home

    return str(Path(_find_spark_home()) / "bin" / "spark-submit")


def _packaged(name: str) -> Path:
    """A file shipped in this package, as a path spark-submit can read (the package is installed, not zipped,
    wherever a local session starts)."""
    return Path(str(resources.files(__package__).joinpath(name)))


def _is_file(jar: str) -> bool:
    """Whether a `spark.jars` entry (a file: URI, or a path) names an existing local file."""
    parsed = urlparse(jar)
    if parsed.scheme not in ("", "file"):
        return False
    return Path(unquote(parsed.path)).is_file()
