"""How a local session's JVM is told to log (`spark.quiet_jvm_logs`, jobs/spark/log4j2.properties): the bundled
configuration unless the user has one, and loopback binding for local masters. No JVM is started here: the
session start is replaced by a fake that records the JVM options it is given. What the JVM then prints is
checked on a real run in tests/job/test_sample_and_notebook.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyspark.sql import SparkSession

from jobs.config import ConfigError, load_config
from jobs.spark import session

PROPERTY = "-Dlog4j2.configurationFile="


@pytest.fixture(autouse=True)
def _local_ip_restored() -> Iterator[None]:
    """`local_session` sets SPARK_LOCAL_IP in this process's environment: put it back as it was."""
    before = os.environ.get("SPARK_LOCAL_IP")
    yield
    if before is None:
        os.environ.pop("SPARK_LOCAL_IP", None)
    else:
        os.environ["SPARK_LOCAL_IP"] = before


def _started(monkeypatch: pytest.MonkeyPatch, *overrides: str) -> str:
    """The JVM options `local_session` starts a JVM with."""
    given: list[str] = []

    def start(builder: SparkSession.Builder, java_options: str, archive: object) -> SimpleNamespace:
        given.append(java_options)
        context = SimpleNamespace(setLogLevel=lambda level: None)
        return SimpleNamespace(sparkContext=context)

    monkeypatch.setattr(session, "_start", start)
    monkeypatch.setattr(session, "session_jars", lambda cache, settings: "file:///jars/delta-spark.jar")
    settings = ["spark.class_archive_dir=null", *overrides]
    config = load_config(output="o", need_inputs=False, overrides=settings).spark
    session.local_session(config, s3=False)
    (options,) = given
    return options


def test_the_bundled_configuration_is_a_log4j2_file_of_the_package() -> None:
    text = session.QUIET_LOG_CONFIG.read_text()
    assert "rootLogger.level = warn" in text
    assert "logger.native_hadoop.name = org.apache.hadoop.util.NativeCodeLoader" in text


def test_a_local_session_gets_the_bundled_log_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    options = _started(monkeypatch)
    assert f"{PROPERTY}{session.QUIET_LOG_CONFIG.as_uri()}" in options.split()
    assert "-XX:+UseParallelGC" in options.split()  # the configured options stay


def test_the_users_own_log_configuration_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = f"{PROPERTY}file:///etc/spark/log4j2.properties"
    assert session.quiet_java_options(f"-Xss4m {own}", {}) == f"-Xss4m {own}"
    (tmp_path / "log4j2.properties").write_text("rootLogger.level = info\n")
    assert session.quiet_java_options("-Xss4m", {"SPARK_CONF_DIR": str(tmp_path)}) == "-Xss4m"
    # A configuration folder without a log4j2 file does not count.
    assert PROPERTY in session.quiet_java_options("-Xss4m", {"SPARK_CONF_DIR": str(tmp_path / "none")})


def test_off_leaves_spark_its_own_logging_and_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    options = _started(monkeypatch, "spark.quiet_jvm_logs=false")
    assert PROPERTY not in options
    assert "SPARK_LOCAL_IP" not in os.environ


@pytest.mark.parametrize(
    ("master", "given", "expected"),
    [
        ("local[2]", None, "127.0.0.1"),
        ("local[*]", "10.1.2.3", "10.1.2.3"),  # the user's address stays
        ("spark://head:7077", None, None),  # executors elsewhere must reach the driver
    ],
)
def test_a_local_master_binds_to_loopback(
    monkeypatch: pytest.MonkeyPatch, master: str, given: str | None, expected: str | None
) -> None:
    if given is None:
        monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    else:
        monkeypatch.setenv("SPARK_LOCAL_IP", given)
    _started(monkeypatch, f"spark.master={master}")
    assert os.environ.get("SPARK_LOCAL_IP") == expected


@pytest.mark.parametrize("value", ["maybe", "1", "null"])
def test_a_yes_no_key_takes_true_or_false_only(value: Any) -> None:
    with pytest.raises(ConfigError, match=r"spark\.quiet_jvm_logs must be true or false"):
        load_config(output="o", need_inputs=False, overrides=[f"spark.quiet_jvm_logs={value}"])


def _given_session(java_options: str | None) -> tuple[Any, list[str]]:
    """A session as spark-submit gives it: its configuration, and the levels set on its context."""
    levels: list[str] = []
    conf = {"spark.driver.extraJavaOptions": java_options} if java_options is not None else {}
    context = SimpleNamespace(
        getConf=lambda: SimpleNamespace(get=lambda key, default=None: conf.get(key, default)),
        setLogLevel=levels.append,
    )
    return SimpleNamespace(sparkContext=context), levels


def test_a_given_session_logs_warnings_only_unless_the_submitter_configured_logging(tmp_path: Path) -> None:
    """Under spark-submit Spark's default profile logs every task at INFO: the job sets the given session's level
    to WARN, unless the submitter named a log4j2 configuration or $SPARK_CONF_DIR has one (a cluster's own)."""
    from jobs.spark.given import quiet_logs

    config = load_config(output="o", need_inputs=False).spark
    spark, levels = _given_session(None)
    assert quiet_logs(spark, config, {"SPARK_CONF_DIR": str(tmp_path)}) and levels == ["WARN"]

    spark, levels = _given_session(f"-Xss4m {PROPERTY}file:///etc/spark/log4j2.properties")
    assert not quiet_logs(spark, config, {}) and levels == []
    (tmp_path / "log4j2.properties").write_text("rootLogger.level = info\n")
    spark, levels = _given_session("-Xss4m")
    assert not quiet_logs(spark, config, {"SPARK_CONF_DIR": str(tmp_path)}) and levels == []
    off = load_config(output="o", need_inputs=False, overrides=["spark.quiet_jvm_logs=false"]).spark
    spark, levels = _given_session(None)
    assert not quiet_logs(spark, off, {}) and levels == []
