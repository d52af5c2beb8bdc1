"""The record of the jars a local session's packages resolve to (jobs/jar_cache.py), and how `local_session` uses
it: packages (Ivy) when there is no usable record, then the recorded files. No JVM is started here: the session
start is replaced by a fake that reports the jars Ivy would have given it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyspark.sql import SparkSession

from jobs import session
from jobs.config import load_config
from jobs.jar_cache import JarCache

DELTA = ["io.delta:delta-spark_4.2_2.13:4.4.0"]
EXCLUDES = ["org.apache.hadoop:hadoop-client-api"]


def _jars(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"PK")
    return [folder / name for name in names]


def test_one_record_per_package_set_and_exclusions(tmp_path: Path) -> None:
    first = JarCache.for_packages(tmp_path, DELTA, EXCLUDES)
    assert first == JarCache.for_packages(tmp_path, list(reversed(DELTA)), EXCLUDES)
    assert first != JarCache.for_packages(tmp_path, [*DELTA, "org.apache.hadoop:hadoop-aws:3.5.0"], EXCLUDES)
    assert first != JarCache.for_packages(tmp_path, DELTA, [])
    assert JarCache.for_packages("~/x", DELTA, EXCLUDES).path.is_absolute()


def test_a_record_is_used_while_every_jar_exists(tmp_path: Path) -> None:
    cache = JarCache.for_packages(tmp_path / "cache", DELTA, EXCLUDES)
    assert cache.jars() is None  # no record yet
    delta, storage = _jars(tmp_path / "ivy jars", "delta-spark.jar", "delta-storage.jar")
    given = f"{delta.as_uri()},{storage.as_uri()}"  # as spark.jars holds them: file URIs, spaces escaped
    cache.remember(given)
    assert cache.jars() == given
    storage.unlink()  # the Ivy folder was cleaned: resolve again
    assert cache.jars() is None
    cache.remember(given)  # a list naming a missing file is not recorded
    assert cache.jars() is None


@pytest.mark.parametrize("content", ["", "{", '{"jars": []}', '{"jars": "a.jar"}', '["a.jar"]', '{"jars": [1]}'])
def test_a_broken_record_means_resolving_again(tmp_path: Path, content: str) -> None:
    cache = JarCache.for_packages(tmp_path, DELTA, EXCLUDES)
    cache.path.write_text(content)
    assert cache.jars() is None


def test_a_record_only_names_local_files(tmp_path: Path) -> None:
    cache = JarCache.for_packages(tmp_path, DELTA, EXCLUDES)
    cache.remember("hdfs://namenode/jars/delta-spark.jar")
    assert not cache.path.exists()


def test_local_session_resolves_once_then_gives_the_recorded_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jars = ",".join(path.as_uri() for path in _jars(tmp_path / "ivy", "delta-spark.jar", "delta-storage.jar"))
    builds: list[dict[str, Any]] = []

    def start(builder: SparkSession.Builder, java_options: str, archive: object) -> SimpleNamespace:
        builds.append(dict(builder._options))
        conf = {"spark.jars": builder._options.get("spark.jars", jars)}  # Ivy's resolution, or the jars given
        context = SimpleNamespace(setLogLevel=lambda level: None, getConf=lambda: SimpleNamespace(get=conf.get))
        return SimpleNamespace(sparkContext=context)

    monkeypatch.setattr(session, "_start", start)
    overrides = [f"spark.jar_cache_dir={tmp_path / 'cache'}", "spark.class_archive_dir=null"]
    config = load_config(output="o", need_inputs=False, overrides=overrides).spark
    for _ in range(3):
        session.local_session(config, s3=False)
        if len(builds) == 2:
            (tmp_path / "ivy" / "delta-storage.jar").unlink()  # gone before the third session: resolve again
    first, second, third = builds
    assert first["spark.jars.packages"] == config.delta_package and "spark.jars" not in first
    assert second["spark.jars"] == jars and "spark.jars.packages" not in second
    assert third["spark.jars.packages"] == config.delta_package and "spark.jars" not in third

    off = load_config(output="o", need_inputs=False, overrides=["spark.jar_cache_dir=null"]).spark
    session.local_session(off, s3=False)
    assert "spark.jars.packages" in builds[-1]
