"""The jars a local session's packages resolve to, remembered so that later sessions start without Ivy.

A local session gets Delta (and hadoop-aws) as Maven coordinates (`spark.jars.packages`): spark-submit runs Ivy,
which resolves them against its cache on every start, copies the jars to its `jars` folder and prints about 75
lines to the console, even for `sr2fhir run -q`. Measured on 2 cores, to a started session: 2.5-2.8 s with the
packages, 1.9-2.1 s with the same jars given as `spark.jars` (with the class archive; 5.3-5.4 against 4.5-4.9 s
without; benchmarks/FINDINGS.md). So the first session records the jars Ivy gave it, and later sessions with the
same packages and exclusions are given those files while every one of them still exists; otherwise they resolve
again, and record again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

log = logging.getLogger("sr2fhir")


@dataclass(frozen=True)
class JarCache:
    path: Path

    @classmethod
    def for_packages(
        cls, directory: str | os.PathLike[str], packages: Sequence[str], excludes: Sequence[str]
    ) -> JarCache:
        """The record for this package set and its exclusions (one file each, named by their hash)."""
        key = hashlib.sha256(json.dumps([sorted(packages), sorted(excludes)]).encode()).hexdigest()[:16]
        return cls(Path(directory).expanduser() / f"jars-{key}.json")

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

    def remember(self, jars: str) -> None:
        """Record a started session's `spark.jars`: written whole under another name, then renamed, so a
        concurrent session reads a complete record or none."""
        listed = [jar for jar in jars.split(",") if jar]
        if not listed or not all(_is_file(jar) for jar in listed):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
            partial.write_text(json.dumps({"jars": listed}, indent=0) + "\n")
            partial.replace(self.path)
        except OSError as exc:  # a cache: a session that cannot write it still runs
            log.info("could not record the session's jars in %s: %s", self.path, exc)


def _is_file(jar: str) -> bool:
    """Whether a `spark.jars` entry (a file: URI, or a path) names an existing local file."""
    parsed = urlparse(jar)
    if parsed.scheme not in ("", "file"):
        return False
    return Path(unquote(parsed.path)).is_file()
