"""The Spark session: the one the job is given (spark-submit, a cluster, a notebook, the tests), or a local
one it starts itself with the Delta (and, for s3a:// URIs, hadoop-aws) jars (jobs/spark/jars.py)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from pyspark.sql import SparkSession

from ..config import SparkConfig
from ..errors import SessionStartError
from .class_archive import ClassArchive
from .jars import JarCache, cache_dir, java_binary, session_jars

log = logging.getLogger("sr2fhir")

_DELTA_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


_JARS = "spark.jars"
_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
"""The JVM options of a local session: the driver is the executor."""
QUIET_LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
_LOG_CONFIG_PROPERTY = "log4j2.configurationFile"


def needs_s3(uris: tuple[str, ...]) -> bool:
    return any(uri.lower().startswith(("s3a://", "s3://")) for uri in uris)


def given_session() -> SparkSession | None:
    """The session to use as is: an active one, or the one spark-submit's JVM is waiting to give us."""
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if "PYSPARK_GATEWAY_PORT" in os.environ or os.environ.get("SPARK_CONNECT_MODE_ENABLED"):
        return SparkSession.builder.getOrCreate()
    return None


UMASK = "fs.permissions.umask-mode"
"""The Hadoop setting file systems with permissions (local, HDFS) create files and folders with; Hadoop's default is
022 (world-readable), whatever the process's umask."""


def effective_umask(configured: str | None) -> str:
    """The bits the process's umask clears and those `output.umask` clears: the stricter of both, for every bit."""
    process = os.umask(0)
    os.umask(process)
    return f"{process | (int(configured, 8) if configured else 0):03o}"


def local_session(config: SparkConfig, *, s3: bool, umask: str | None = None) -> SparkSession:
    """Start a session from this process: `local[...]`, or a cluster's master (`spark.master`, client mode).
    `umask`: `output.umask` (the process's umask is honoured either way)."""
    python_for_workers(config.master, os.environ)
    java_binary()
    packages = [config.delta_package] + ([config.s3_package] if s3 else [])
    cache = JarCache.for_packages(cache_dir(config.jar_cache_dir), packages, config.jar_excludes)
    jars = session_jars(cache, config.settings)
    builder = SparkSession.builder.master(config.master).appName(config.app_name).config(_JARS, jars)
    for key, value in {**_DELTA_SETTINGS, f"spark.hadoop.{UMASK}": effective_umask(umask), **config.settings}.items():
        builder = builder.config(key, value)
    java_options = config.settings.get(_JAVA_OPTIONS, "")
    if config.quiet_jvm_logs:
        java_options = quiet_java_options(java_options, os.environ)
        if config.master.startswith("local") and "SPARK_LOCAL_IP" not in os.environ:
            # Spark looks for a non-loopback address to bind to and warns when the host name resolves to
            # loopback; a local session has no one else to talk to, and its UI stays off the network.
            os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # The JVM refuses an archive made with another class path: the jars' paths are part of its identity.
    archive = ClassArchive.for_jvm(config.class_archive_dir, jars.split(",")) if config.class_archive_dir else None
    spark = _start(builder, java_options, archive)
    spark.sparkContext.setLogLevel("WARN")
    return spark


def python_for_workers(master: str, environ: MutableMapping[str, str]) -> None:
    """The Python the mapping's workers run. A local session's workers run this interpreter (a bare `python3` would
    lack pyarrow and sr2fhir), whatever PYSPARK_PYTHON says. On a cluster they run on other machines: the user's
    PYSPARK_PYTHON (e.g. `./env/bin/python` of a packed environment shipped with spark.archives) is kept, and only
    when it is unset do they run this interpreter's path, which every node must then have (docs/job.md, Shipping
    the package). `spark.pyspark.python` in spark.settings wins over both, as in Spark."""
    if master.startswith("local") or not environ.get("PYSPARK_PYTHON"):
        environ["PYSPARK_PYTHON"] = sys.executable


def quiet_java_options(java_options: str, environ: Mapping[str, str]) -> str:
    """The JVM options with the bundled log configuration, unless the user has one: named in the options, or
    `$SPARK_CONF_DIR/log4j2.properties`, which Spark's launcher puts on the class path."""
    conf_dir = environ.get("SPARK_CONF_DIR")
    if _LOG_CONFIG_PROPERTY in java_options or (conf_dir and (Path(conf_dir) / "log4j2.properties").is_file()):
        return java_options
    return f"{java_options} -D{_LOG_CONFIG_PROPERTY}={QUIET_LOG_CONFIG.as_uri()}".strip()


def _start(builder: SparkSession.Builder, java_options: str, archive: ClassArchive | None) -> SparkSession:
    """Start the session's JVM with the class archive, if any; without it when the JVM refuses to start."""
    if archive is None or not (sharing := archive.java_options()).options:
        return _get_or_create(builder.config(_JAVA_OPTIONS, java_options))
    try:
        spark = builder.config(_JAVA_OPTIONS, f"{java_options} {sharing.options}".strip()).getOrCreate()
    except Exception as exc:
        # The archive is checked when the JVM maps it: a bad one stops the JVM before Spark starts.
        log.warning("the JVM did not start with its class archive (%s): removed, starting without it", exc)
        archive.discard()
        return _get_or_create(builder.config(_JAVA_OPTIONS, java_options))
    if sharing.dumps:
        jvm = spark.sparkContext._jvm
        assert jvm is not None, "a local session has started its JVM"
        archive.dumping(jvm.java.lang.ProcessHandle.current().pid())
    return spark


def _get_or_create(builder: SparkSession.Builder) -> SparkSession:
    """The session, or one line on why its JVM did not start (what the JVM printed is above it)."""
    try:
        return builder.getOrCreate()
    except Exception as exc:
        if "JAVA_GATEWAY_EXITED" not in str(exc) and "Java gateway process exited" not in str(exc):
            raise
        raise SessionStartError("the Spark JVM exited before the session started (its own messages are above)") from exc


def session_for(config: SparkConfig, *, s3: bool, umask: str | None = None) -> tuple[SparkSession, bool]:
    """(session, started_here). A given session keeps its own settings; the job applies its runtime ones
    (`apply_runtime_settings`) to whichever session it runs on."""
    spark = given_session()
    if spark is None:
        return local_session(config, s3=s3, umask=umask), True
    return spark, False


def apply_runtime_settings(spark: SparkSession, config: SparkConfig, *, umask: str | None = None) -> None:
    """Runtime settings onto a given session: SQL and Delta ones, and `spark.hadoop.*` (file system
    settings such as fs.s3a.endpoint) onto its Hadoop configuration, with the umask the job writes with (unless the
    settings name one). A given session's file systems made before keep what they were made with."""
    settings = {f"spark.hadoop.{UMASK}": effective_umask(umask), **config.settings}
    for key, value in settings.items():
        if key.startswith("spark.hadoop."):
            jsc = spark.sparkContext._jsc
            if jsc is None:  # only off the driver, where no job is started
                raise RuntimeError("spark.hadoop.* settings need a classic (JVM) Spark session")
            jsc.hadoopConfiguration().set(key.removeprefix("spark.hadoop."), value)
        elif key.startswith(("spark.sql.", "spark.databricks.delta.")) and key not in _DELTA_SETTINGS:
            try:
                spark.conf.set(key, value)
            except Exception as exc:  # a static setting of someone else's session
                log.debug("cannot set %s on the given session: %s", key, exc)
