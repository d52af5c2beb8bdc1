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

Under spark-submit the signal reaches the JVM, not this process: `on_jvm_shutdown` turns the JVM's shutdown into
the same request.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, ClassVar

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
    while _requested.is_set() and (context := _spark_context()) is not None:  # until a new job starts unasked
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


JVM_SHUTDOWN_HOOK_PRIORITY = 100
"""Of the hook in Hadoop's ShutdownHookManager, which runs its hooks by descending priority: above Spark's (40),
which stops the SparkContext, and Hadoop's file systems' (10), which closes them."""
JVM_SHUTDOWN_GRACE_SECONDS = 25
"""How long the JVM's shutdown waits for the job's cleanup: under Hadoop's own 30 s limit per hook."""


class _JvmShutdownHook:
    """A java.lang.Runnable in Python (py4j calls it back): the JVM is shutting down."""

    def __init__(self) -> None:
        self.cleaned_up = threading.Event()
        self.ran = False
        self.registered: Any = None
        """The Java object added to Hadoop's ShutdownHookManager (a Thread whose target is this hook)."""

    def run(self) -> None:
        self.ran = True
        if not _requested.is_set():
            _requested.set()
            threading.Thread(target=_cancel_spark_jobs, name="sr2fhir-stop-jobs", daemon=True).start()
        self.cleaned_up.wait(JVM_SHUTDOWN_GRACE_SECONDS)

    class Java:
        implements: ClassVar[list[str]] = ["java.lang.Runnable"]


@contextmanager
def on_jvm_shutdown(spark) -> Iterator[_JvmShutdownHook | None]:  # spark: pyspark.sql.SparkSession
    """Within the block, the JVM of a session the job was given shutting down asks the job to stop, as SIGTERM does.

    Under spark-submit the JVM is the parent and Python its child: SIGTERM to spark-submit reaches the JVM alone, whose
    shutdown stops the SparkContext under the run, which then failed with `Py4JJavaError ... dagScheduler() is
    null`, its lock left to expire. A hook in Hadoop's ShutdownHookManager, ahead of Spark's, calls back into Python
    instead: it asks the job to stop (its Spark jobs cancelled, `requested()` true, so the command reports a stop)
    and holds the JVM's shutdown until the block is left (the lock released while the JVM can still reach the
    output), or `JVM_SHUTDOWN_GRACE_SECONDS`."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    from pyspark.java_gateway import ensure_callback_server_started

    context = spark.sparkContext
    gateway, jvm = context._gateway, context._jvm
    hook = _JvmShutdownHook()
    manager = None
    try:
        ensure_callback_server_started(gateway)
        manager = jvm.org.apache.hadoop.util.ShutdownHookManager.get()
        # The proxy wrapped once in a Java object, so that removing the hook names the object that was added.
        hook.registered = jvm.java.lang.Thread(hook, "sr2fhir-jvm-shutdown")
        seconds = jvm.java.util.concurrent.TimeUnit.SECONDS
        manager.addShutdownHook(hook.registered, JVM_SHUTDOWN_HOOK_PRIORITY, JVM_SHUTDOWN_GRACE_SECONDS + 5, seconds)
    except Exception as exc:  # a session without py4j callbacks (Spark Connect): SIGTERM then ends the run as before
        logging.getLogger("sr2fhir").debug("no JVM shutdown hook: %s", exc)
        manager = None
    try:
        yield hook if manager is not None else None
    finally:
        hook.cleaned_up.set()
        if manager is not None and not hook.ran:
            with suppress(Exception):  # the JVM is going
                manager.removeShutdownHook(hook.registered)
