"""How a run's steps execute: each timed for the summary and a point where a stop (SIGTERM) ends the run, and
independent ones side by side."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

from .. import stopping


class Steps:
    """Seconds per step of the run, for the summary."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        stopping.check()  # a run asked to stop (SIGTERM) ends between its steps
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0) + time.monotonic() - started, 3)


FAILED_STEP_GRACE_SECONDS = 60
"""How long a failed run waits for the other steps it ran beside the failed one to stop."""


def side_by_side(spark: SparkSession, tag: str, calls: dict[str, Callable[[], object]]) -> dict[str, object]:
    """Run independent steps in threads (each mostly Spark jobs and their latency) and return their results.
    The first failure cancels the other steps' Spark jobs (all tagged `tag`) and is raised once they have
    stopped, or after `FAILED_STEP_GRACE_SECONDS` at most: a failed run ends, it never waits on its own
    leftovers. The threads are daemons, so none keeps the process alive."""
    context = spark.sparkContext
    outcomes: queue.Queue = queue.Queue()

    def call(name: str, function: Callable[[], object]) -> None:
        try:
            context.addJobTag(tag)  # thread-local: every job this thread starts carries it
            outcomes.put((name, function(), None))
        except BaseException as exc:
            outcomes.put((name, None, exc))

    for name, function in calls.items():
        threading.Thread(target=call, args=(name, function), name=f"sr2fhir-{name}", daemon=True).start()
    results: dict[str, object] = {}
    failure: BaseException | None = None
    deadline = None
    for _ in calls:
        try:
            name, value, error = outcomes.get(timeout=None if deadline is None else max(deadline - time.monotonic(), 0))
        except queue.Empty:
            break
        if error is not None and failure is None:
            failure = error
            context.cancelJobsWithTag(tag)
            deadline = time.monotonic() + FAILED_STEP_GRACE_SECONDS
        results[name] = value
    if failure is not None:
        raise failure
    return results
