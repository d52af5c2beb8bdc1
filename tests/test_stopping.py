"""SIGTERM in a process without a Spark context (jobs/stopping.py): the main thread is in no py4j call, so the
stop is raised at once; with one, the job's Spark jobs are cancelled instead (tests/job/test_robustness.py)."""

from __future__ import annotations

import os
import signal

import pytest

from jobs import stopping


def test_sigterm_without_spark_stops_at_once_and_the_handler_is_put_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(stopping.Stopped), stopping.on_sigterm():
        assert not stopping.requested()
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes
            pass
    assert stopping.requested()
    with pytest.raises(stopping.Stopped):
        stopping.check()  # a step that starts after the request ends the job
    assert signal.getsignal(signal.SIGTERM) == before
    with stopping.on_sigterm():  # a new job starts unasked
        assert not stopping.requested()
        stopping.check()
