"""What stops a command, as one hierarchy: each error carries the exit status the command ends with and a message
for its user (one line, never a stack trace, never a value from a report). `cli.main` is the one handler.

| status | meaning |
|---|---|
| 0 | done |
| 1 | the command failed (a Spark job, storage); a run that failed before its ledger commit left nothing the next |
|   | run sees: it maps the same files |
| 2 | bad configuration or input, or no session could start (no Java, jars that cannot be resolved) |
| 75 | another job holds the output (sysexits' EX_TEMPFAIL): try again later |
| 130 / 143 | stopped by SIGINT / SIGTERM (128 + the signal), the output's lock released |
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ExitStatus(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    BUSY = 75
    SIGINT = 130
    SIGTERM = 143


class JobError(Exception):
    """Base of the errors a command reports as they are: `str(error)` is the message for the user."""

    exit_status: ClassVar[ExitStatus] = ExitStatus.FAILED


class ConfigError(JobError, ValueError):
    """The configuration (files, --set, flags) is invalid."""

    exit_status = ExitStatus.USAGE


class InputError(JobError, ValueError):
    """The inputs cannot be listed (a missing folder, an empty path list)."""

    exit_status = ExitStatus.USAGE


class SessionStartError(JobError):
    """A local session could not start: no Java, or its packages could not be resolved."""

    exit_status = ExitStatus.USAGE


class JavaNotFound(SessionStartError):
    pass


class JarResolutionError(SessionStartError):
    pass


class MaintenanceError(JobError):
    """`sr2fhir maintain` refuses its configuration (a VACUUM retention under Delta's safe minimum)."""

    exit_status = ExitStatus.USAGE


class OutputBusy(JobError):
    """Another job holds the output's lock; nothing was changed."""

    exit_status = ExitStatus.BUSY


class CatalogError(JobError):
    """The run committed, but its tables could not be registered in the catalog (`output.catalog_schema`)."""


class NoExecutors(JobError):
    """The run's Spark jobs waited `spark.no_executor_timeout_seconds` with no executor to run on."""


class LockLost(JobError):
    """Another job took this job's lock over (it had stalled past the expiry): this one stops before committing."""


def jvm_died(exc: BaseException) -> bool:
    """Whether a failure is the JVM's death (an OutOfMemoryError, or the gateway gone), through its causes."""
    seen: BaseException | None = exc
    while seen is not None:
        name = type(seen).__name__
        if name in ("Py4JNetworkError", "ConnectionRefusedError", "ConnectionResetError", "BrokenPipeError"):
            return True
        try:
            text = str(seen)  # a Py4JJavaError asks the JVM for its text
        except Exception:
            return True
        if "OutOfMemoryError" in text or "Java heap space" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


JVM_GONE = (
    "the Spark JVM ran out of memory or died; raise spark.driver.memory (local) or spark.executor.memory (cluster)"
    " in spark.settings, or keep input.max_file_bytes at auto (docs/job.md, Limits)"
)


DELTA_NOT_CONFIGURED = (
    "the Spark session the job was given has no Delta support: start it with "
    "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension and "
    "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog, and the delta-spark jars "
    "(docs/deployment.md), or write Parquet tables (output.table_format: parquet)"
)
_DELTA_NOT_CONFIGURED_MARKERS = (
    "DELTA_CONFIGURE_SPARK_SESSION_WITH_EXTENSION_AND_CATALOG",
    "Failed to find the data source: delta.",  # no delta-spark jars
    # Spark's own words when a Delta path is written without Delta's catalog: the schema the job gives a table
    # it creates is "external metadata" to the built-in catalog.
    "EXTERNAL_METADATA_UNSUPPORTED",
)


def failure_line(exc: BaseException) -> str:
    """One readable line for a failed run: the exception, the first line of its message and, for an error
    raised in a Python worker, the worker's own exception line (the last unindented line of its traceback);
    the JVM stack trace Spark appends is left to the log. A dead JVM is named as such, with what to raise; so
    is a given session without Delta, with the settings it lacks."""
    if jvm_died(exc):
        return f"{JVM_GONE} ({type(exc).__name__})"
    if any(marker in str(exc) for marker in _DELTA_NOT_CONFIGURED_MARKERS):
        return f"{DELTA_NOT_CONFIGURED} ({type(exc).__name__})"
    text = str(exc).split("JVM stacktrace:")[0]
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head = lines[0].strip()
    cause = next((line for line in reversed(lines) if not line[0].isspace()), head)
    message = head if cause == head else f"{head} ... {cause}"
    return f"{type(exc).__name__}: {message[:2000]}"
