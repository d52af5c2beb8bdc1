"""What the job does to a session it is given (spark-submit, a cluster, a notebook) that it does to one it starts:
logs as quiet as a local session's (`spark.quiet_jvm_logs`), and a stop when the session's JVM shuts down
(`stopping.on_jvm_shutdown`)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pyspark.sql import SparkSession

from .. import stopping
from ..config import SparkConfig
from .session import quiet_java_options

QUIET_LEVEL = "WARN"


@contextmanager
def as_given(spark: SparkSession, config: SparkConfig, *, started_here: bool) -> Iterator[None]:
    """Within the block, a given session logs quietly and its JVM's shutdown stops the job. A session the job
    started has both already (its log configuration, and SIGTERM reaching this process)."""
    if started_here:
        yield
        return
    quiet_logs(spark, config)
    with stopping.on_jvm_shutdown(spark):
        yield


def quiet_logs(spark: SparkSession, config: SparkConfig, environ: Mapping[str, str] = os.environ) -> bool:
    """Warnings and errors only from a given session's JVM (Spark logs every task at INFO under spark-submit:
    ~1,000 lines for 27 files), unless the submitter configured logging: a -Dlog4j2.configurationFile in
    spark.driver.extraJavaOptions, or `$SPARK_CONF_DIR/log4j2.properties` (a cluster's own, e.g. EMR's or
    Dataproc's), which then wins, as it does for a local session. Only the level can change: the JVM's log4j
    configuration was loaded before the job ran. True when the level was set."""
    if not config.quiet_jvm_logs:
        return False
    java_options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions", "") or ""
    if quiet_java_options(java_options, environ) == java_options:  # the submitter's own configuration
        return False
    spark.sparkContext.setLogLevel(QUIET_LEVEL)
    return True
