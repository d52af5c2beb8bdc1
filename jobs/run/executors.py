"""A run on a cluster with no executor fails after `spark.no_executor_timeout_seconds` instead of waiting.

Spark waits as long as it takes for an executor to run a stage's tasks: with every worker lost (or none with the
cores and memory the job asks for) a run would wait, its output's lock held and renewed, its progress lines saying
`0 inputs done`, until a worker comes back. A daemon thread looks at the session every few seconds: once its
Spark jobs have had active stages and no executor for the whole timeout, it cancels every job (and keeps
cancelling those submitted later, as `jobs.stopping` does for SIGTERM), and the run's failure becomes
`NoExecutors`: one message, exit 1, the lock released by the run's own cleanup.

Only time with tasks waiting counts: a driver-only step (listing, a commit), or dynamic allocation releasing idle
executors between jobs, leaves no stage waiting. A local session (`local[...]`) is its own executor and is never
watched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import SparkSession

from ..errors import NoExecutors

log = logging.getLogger("sr2fhir")

POLL_SECONDS = 5.0
"""How often the session is looked at (a tenth of the timeout when that is shorter)."""


@dataclass
class Waiting:
    """How long the run's Spark jobs have waited with no executor (the decision, apart from Spark)."""

    timeout: float
    since: float | None = None

    def observe(self, now: float, executors: int, stages_waiting: bool) -> bool:
        """One look at the session; True once it has had stages waiting and no executor for the whole timeout.
        An executor, or no stage waiting, starts the count again."""
        if executors > 0 or not stages_waiting:
            self.since = None
            return False
        if self.since is None:
            self.since = now
        return now - self.since >= self.timeout


Probe = Callable[[], tuple[int, bool]]
"""(live executors, whether any stage is active) of a session."""


def session_probe(spark: SparkSession) -> Probe:
    context = spark.sparkContext
    if context._jsc is None:
        raise RuntimeError("the executor watch needs a classic (JVM) Spark session")
    scala_context = context._jsc.sc()

    def probe() -> tuple[int, bool]:
        # The cluster's executors (the driver is not one); a scheduler that allocates none (local) has none.
        executors = len(list(scala_context.getExecutorIds()))
        return executors, bool(context.statusTracker().getActiveStageIds())

    return probe


def message(timeout: float) -> str:
    return (
        f"no executor for {timeout:g} s while the run's Spark jobs waited for one (spark.no_executor_timeout_seconds):"
        " the cluster has no live worker, or none with the cores and memory the job asks for (spark.executor.cores,"
        " spark.executor.memory); the run stopped before its ledger commit, and the next run maps the same files"
    )


class Watch:
    """The thread that looks at the session; `fired` once the run has waited the timeout with no executor."""

    def __init__(self, probe: Probe, cancel: Callable[[], None], timeout: float, poll_seconds: float) -> None:
        self.probe, self.cancel, self.poll_seconds = probe, cancel, poll_seconds
        self.waiting = Waiting(timeout)
        self.fired = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sr2fhir-executor-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(self.poll_seconds + 5)

    def _watch(self) -> None:
        while not self._done.wait(self.poll_seconds):
            try:
                if self.fired.is_set():
                    self.cancel()  # jobs submitted after the first cancel (the run's next step) go too
                    continue
                executors, stages_waiting = self.probe()
                if self.waiting.observe(time.monotonic(), executors, stages_waiting):
                    log.error(message(self.waiting.timeout))
                    self.fired.set()
                    self.cancel()
            except Exception as exc:  # the session stopping under the watch: nothing left to watch
                log.debug("executor watch ended: %s", exc)
                return


@contextmanager
def failing_without_executors(spark: SparkSession, timeout: float | None) -> Iterator[None]:
    """Within the block, a session with stages waiting and no executor for `timeout` seconds has its jobs cancelled,
    and the block's failure is raised as `NoExecutors`. None, or a local session: nothing is watched."""
    master = spark.sparkContext.master or ""
    if timeout is None or master == "local" or master.startswith("local["):  # local-cluster[...] has executors
        yield
        return
    with watching(session_probe(spark), spark.sparkContext.cancelAllJobs, timeout):
        yield


@contextmanager
def watching(
    probe: Probe, cancel: Callable[[], None], timeout: float, poll_seconds: float | None = None
) -> Iterator[None]:
    """`failing_without_executors` on any probe (tests give their own)."""
    interval = poll_seconds if poll_seconds is not None else min(POLL_SECONDS, timeout / 10)
    watch = Watch(probe, cancel, timeout, interval)
    watch.start()
    try:
        yield
    except Exception as exc:
        if watch.fired.is_set():
            raise NoExecutors(message(timeout)) from exc
        raise
    finally:
        watch.stop()
