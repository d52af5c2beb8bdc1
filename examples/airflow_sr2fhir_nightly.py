"""Airflow DAG: the nightly incremental `sr2fhir run` through spark-submit (docs/deployment.md, "Airflow").

The job's exit status (jobs/errors.py, docs/job.md "Exit status") decides what Airflow does:

| status | meaning                                                    | here                       |
|--------|------------------------------------------------------------|----------------------------|
| 0      | done                                                       | success                    |
| 75     | another run or `maintain` holds the output; nothing changed | retry later                |
| 1      | the run failed; the next run maps the same files again     | retry                      |
| 143    | stopped by SIGTERM (a timeout, a pod's termination)        | retry: the next run recovers |
| 2      | bad configuration or input                                 | fail, no retry: fix it     |

Exit statuses reach Airflow only in client deploy mode (the driver is spark-submit's child here). In cluster mode
spark-submit reports the application's final state instead: every failure is 1, and retrying all of them is safe
(a run that finds the output busy changes nothing).

Needs nothing beyond Airflow itself (no Spark provider) on the worker: spark-submit on its PATH with Spark's client
configuration (SPARK_CONF_DIR, HADOOP_CONF_DIR), a Python with sr2fhir installed for the driver (DRIVER_PYTHON),
the packed environment for the executors on HDFS, and sr2fhir-cluster.yaml beside this file.
"""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from airflow.decorators import dag, task
from airflow.exceptions import AirflowException, AirflowFailException

LAKE = "s3a://lake-bucket/dicom-sr/"
OUTPUT = "s3a://lakehouse-bucket/sr2fhir/"
CLUSTER_CONF = str(Path(__file__).with_name("sr2fhir-cluster.yaml"))
DRIVER_PYTHON = "/opt/sr2fhir/venv/bin/python"
"""The driver's Python (client mode: on this worker), with the sr2fhir wheel installed."""
APPLICATION = "/opt/sr2fhir/sr_to_fhir.py"
"""The release's jobs/sr_to_fhir.py, copied there: spark-submit takes the application as a file."""

SPARK_SUBMIT = [
    "spark-submit",
    "--master", "yarn",
    "--deploy-mode", "client",
    "--packages", "io.delta:delta-spark_4.2_2.13:4.4.0,org.apache.hadoop:hadoop-aws:3.5.0",
    "--exclude-packages", "org.apache.hadoop:hadoop-client-api,org.apache.hadoop:hadoop-client-runtime",
    "--conf", "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
    "--conf", "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "--archives", "hdfs:///apps/sr2fhir/sr2fhir-env.tar.gz#env",
    "--conf", "spark.yarn.appMasterEnv.PYSPARK_PYTHON=./env/bin/python",
    "--conf", "spark.executorEnv.PYSPARK_PYTHON=./env/bin/python",
    APPLICATION,
]  # fmt: skip
JOB_ARGUMENTS = [
    "--input", LAKE,
    "--output", OUTPUT,
    "--conf", CLUSTER_CONF,
    "--set", "output.progress_interval_seconds=60",
]  # fmt: skip

RETRY_LATER = {75, 1, 143, 130}
"""Exit statuses after which a later attempt can succeed: busy output, a failed or stopped run."""
BAD_CONFIGURATION = 2


@dag(
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 6, "retry_delay": timedelta(minutes=15), "retry_exponential_backoff": True},
    tags=["sr2fhir"],
)
def sr2fhir_nightly() -> None:
    @task(execution_timeout=timedelta(hours=6))
    def run_sr2fhir() -> None:
        # SIGTERM on a timeout reaches spark-submit's JVM, whose shutdown the job reports as a stop (exit 143).
        environment = {**os.environ, "PYSPARK_DRIVER_PYTHON": DRIVER_PYTHON}
        status = subprocess.run([*SPARK_SUBMIT, *JOB_ARGUMENTS], env=environment, check=False).returncode
        if status == 0:
            return
        if status == BAD_CONFIGURATION:
            raise AirflowFailException("sr2fhir: bad configuration or input (exit 2): see the task log; not retried")
        if status in RETRY_LATER:
            raise AirflowException(f"sr2fhir exited {status}: retried later (75: output busy; 1: failed; 143: stopped)")
        raise AirflowException(f"sr2fhir exited {status}")

    run_sr2fhir()


sr2fhir_nightly()
