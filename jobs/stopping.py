"""Stopping a job on SIGTERM (a scheduler's task timeout, a pod's termination) the way Ctrl-C stops a Python
program: its cleanup runs (the output's lock released, the session stopped), so the next run, perhaps on another
host, need not wait for the lock to expire.

An exception cannot simply be raised in the main thread when the signal comes: it is usually waiting in a py4j
call for a Spark job, and py4j pins one JVM thread and connection to each Python thread, so any later call from
the main thread (the cleanup's) would queue behind the job it abandoned. Instead the signal handler asks Spark,
from a thread of its own, to cancel every job, and goes on cancelling those submitted later: the main thread's
call then returns with the job's failure, and the job's code stops at its next step (`check`), or fails, as a
run killed there would. Without a Spark context
(`sr2fhir map`) there is no such call to wait in, and `Stopped` is raised at once.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_requested = threading.Event()


class Stopped(BaseException):
    """The job was asked to stop. A BaseException, as KeyboardInterrupt is, so that no handler of failures
    takes it for one."""


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raise `Stopped` if a stop was asked for: called where the job can end cleanly (between its steps)."""
    if _requested.is_set():
        raise Stopped()


def _spark_context():  # pyspark.SparkContext | None, without importing pyspark (`sr2fhir map` may lack it)
    pyspark = sys.modules.get("pyspark")
    return None if pyspark is None else pyspark.SparkContext._active_spark_context


def _cancel_spark_jobs() -> None:
    """Cancel every Spark job, and keep cancelling until the session stops: a job that the step under way
    submits after the signal must not run either."""
    while (context := _spark_context()) is not None:
        try:
            context.cancelAllJobs()
        except Exception:  # the session is stopping
            return
        time.sleep(0.5)


def _on_sigterm(signum: int, frame: object) -> None:
    if _requested.is_set():
        return
    _requested.set()
    if _spark_context() is None:
        raise Stopped()
    threading.Thread(target=_cancel_spark_jobs, name="sr2fhir-stop-jobs", daemon=True).start()


@contextmanager
def on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM asks the job to stop (in the main thread only, where signals are handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler not set from Python, which cannot be put back
            signal.signal(signal.SIGTERM, previous)
