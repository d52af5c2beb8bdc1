"""A run with no executor (jobs/run/executors.py): the decision alone, then the watch thread on a probe that says
what a cluster with every worker lost says. No Spark: the watch's Spark side is two py4j reads."""

from __future__ import annotations

import threading
import time

import pytest

from jobs.errors import ExitStatus, NoExecutors
from jobs.run.executors import Waiting, watching

TIMEOUT = 60.0


@pytest.mark.parametrize(
    ("looks", "fires_at"),
    [
        # (seconds, executors, stages waiting) seen in turn; the index of the look that gives up, or None.
        ([(0, 0, True), (30, 0, True), (59, 0, True), (60, 0, True)], 3),
        ([(0, 0, True), (50, 1, True), (100, 0, True), (159, 0, True), (160, 0, True)], 4),  # a worker came back
        ([(0, 0, True), (50, 0, False), (100, 0, True), (159, 0, True)], None),  # a driver-only step between jobs
        ([(0, 0, False), (1000, 0, False)], None),  # dynamic allocation released idle executors: nothing waits
        ([(0, 2, True), (1000, 2, True)], None),  # executors busy with long tasks
    ],
)
def test_only_waiting_stages_with_no_executor_for_the_whole_timeout_give_up(
    looks: list[tuple[float, int, bool]], fires_at: int | None
) -> None:
    waiting = Waiting(TIMEOUT)
    decisions = [waiting.observe(now, executors, stages) for now, executors, stages in looks]
    assert decisions == [index == fires_at for index in range(len(looks))]


def test_the_watch_cancels_the_jobs_and_the_run_fails_with_no_executors() -> None:
    """A session whose stages wait with no executor: the watch cancels its jobs (again for each later job), and
    the failure the cancelled job gives the run becomes `NoExecutors` with its message and exit status 1."""
    cancelled = threading.Event()
    cancels: list[float] = []

    def cancel() -> None:
        cancels.append(time.monotonic())
        cancelled.set()

    expected = r"no executor for 0.2 s .*spark.no_executor_timeout_seconds"
    with (
        pytest.raises(NoExecutors, match=expected) as raised,
        watching(lambda: (0, True), cancel, timeout=0.2, poll_seconds=0.02),
    ):
        assert cancelled.wait(10), "the watch never gave up"
        time.sleep(0.1)  # jobs submitted after the first cancel are cancelled too
        raise RuntimeError("[SPARK_JOB_CANCELLED] Job 3 cancelled as part of cancellation of all jobs")
    assert len(cancels) >= 2
    assert raised.value.exit_status == ExitStatus.FAILED
    assert "SPARK_JOB_CANCELLED" in str(raised.value.__cause__)


def test_a_run_with_executors_fails_with_its_own_error() -> None:
    with (
        pytest.raises(RuntimeError, match="the run's own failure"),
        watching(lambda: (2, True), lambda: pytest.fail("cancelled"), timeout=0.2, poll_seconds=0.02),
    ):
        time.sleep(0.4)
        raise RuntimeError("the run's own failure")
