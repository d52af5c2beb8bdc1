"""The output's lock (jobs/output_lock.py) on local files, without a JVM: `LocalFiles` does what `HadoopFS` does
for it with the same semantics (an exclusive create, modification times from the file system). The job's use of
it (a second `run` or `maintain` refused, exit status 75) is in tests/job/test_output_lock_job.py."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jobs import output_lock
from jobs.output_lock import Holder, LockLost, OutputBusy, OutputLock, holding


class LocalFiles:
    def exists(self, uri: str) -> bool:
        return Path(uri).exists()

    def read_bytes(self, uri: str) -> bytes:
        return Path(uri).read_bytes()

    def write_bytes(self, uri: str, data: bytes) -> None:
        Path(uri).write_bytes(data)

    def create_new(self, uri: str, data: bytes) -> bool:
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(uri, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        return True

    def delete(self, uri: str) -> None:
        Path(uri).unlink(missing_ok=True)

    def modified_ms(self, uri: str) -> int:
        return Path(uri).stat().st_mtime_ns // 1_000_000


FILES = LocalFiles()


def _lock_file(root: Path) -> Path:
    return root / output_lock.NAME


def _dead_pid() -> int:
    """The id of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def _foreign(root: Path, *, host: str, pid: int, age_seconds: float = 0) -> Holder:
    """A lock written by another job, last renewed `age_seconds` ago."""
    holder = Holder("run", host, pid, "2026-11-29T10:00:00+00:00", "f" * 32)
    _lock_file(root).write_bytes(holder.encode())
    if age_seconds:
        stamp = time.time() - age_seconds
        os.utime(_lock_file(root), (stamp, stamp))
    return holder


def test_a_job_holds_the_lock_while_it_works_and_removes_it_after(tmp_path: Path) -> None:
    root = tmp_path / "out"
    with holding(FILES, str(root), "run", expiry_seconds=600) as lock:
        held = json.loads(_lock_file(root).read_text())
        assert held == dataclasses.asdict(lock.holder)
        assert held["command"] == "run" and held["pid"] == os.getpid()
        lock.confirm()
    assert not _lock_file(root).exists()
    assert [p.name for p in root.iterdir()] == []  # the clock probe is gone too


def test_a_second_job_is_refused_while_the_first_works(tmp_path: Path) -> None:
    with holding(FILES, str(tmp_path), "run", expiry_seconds=600) as first:
        before = _lock_file(tmp_path).read_bytes()
        busy = pytest.raises(OutputBusy, match=r"`sr2fhir run` on .* is working on this output")
        with busy, holding(FILES, str(tmp_path), "maintain", expiry_seconds=600):
            pass
        assert _lock_file(tmp_path).read_bytes() == before  # the refused job changed nothing
        first.confirm()
    assert not _lock_file(tmp_path).exists()


def test_a_lock_left_by_an_ended_process_on_this_host_is_taken_over_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _foreign(tmp_path, host=Holder.this_process("run").host, pid=_dead_pid())
    with caplog.at_level(logging.WARNING, "sr2fhir"), holding(FILES, str(tmp_path), "run", expiry_seconds=600) as lock:
        assert Holder.decode(_lock_file(tmp_path).read_bytes()) == lock.holder
    assert "has ended without releasing it" in caplog.text


def test_a_lock_from_another_host_expires_after_its_last_renewal(tmp_path: Path) -> None:
    _foreign(tmp_path, host="elsewhere", pid=1, age_seconds=30)
    with pytest.raises(OutputBusy), holding(FILES, str(tmp_path), "run", expiry_seconds=60):
        pass
    _foreign(tmp_path, host="elsewhere", pid=1, age_seconds=90)
    with holding(FILES, str(tmp_path), "run", expiry_seconds=60) as lock:
        assert Holder.decode(_lock_file(tmp_path).read_bytes()) == lock.holder


def test_a_live_process_on_this_host_keeps_its_lock_however_old(tmp_path: Path) -> None:
    """Its age alone cannot tell a stalled holder from a live one; expiry then decides."""
    _foreign(tmp_path, host=Holder.this_process("run").host, pid=os.getpid(), age_seconds=30)
    with pytest.raises(OutputBusy), holding(FILES, str(tmp_path), "run", expiry_seconds=60):
        pass


def test_an_unreadable_lock_is_one_being_written_until_a_heartbeat_has_passed(tmp_path: Path) -> None:
    _lock_file(tmp_path).write_bytes(b"")  # a local file between its create and its write
    with pytest.raises(OutputBusy, match="another job"), holding(FILES, str(tmp_path), "run", expiry_seconds=600):
        pass
    stamp = time.time() - 120  # a heartbeat is 60 s at most
    os.utime(_lock_file(tmp_path), (stamp, stamp))
    with holding(FILES, str(tmp_path), "run", expiry_seconds=600) as lock:
        assert Holder.decode(_lock_file(tmp_path).read_bytes()) == lock.holder


def test_the_heartbeat_renews_the_lock(tmp_path: Path) -> None:
    lock = OutputLock(FILES, str(tmp_path), Holder.this_process("run"), expiry_seconds=10)
    assert lock.heartbeat_seconds == 2
    lock.take()
    try:
        stamp = time.time() - 300
        os.utime(_lock_file(tmp_path), (stamp, stamp))
        deadline = time.monotonic() + 10
        while FILES.modified_ms(str(_lock_file(tmp_path))) < (stamp + 100) * 1000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert FILES.modified_ms(str(_lock_file(tmp_path))) > (stamp + 100) * 1000
    finally:
        lock.release()
    assert not _lock_file(tmp_path).exists()


def test_a_lock_taken_over_is_not_renewed_confirmed_or_removed_by_its_old_holder(tmp_path: Path) -> None:
    lock = OutputLock(FILES, str(tmp_path), Holder.this_process("run"), expiry_seconds=10)
    lock.take()
    other = _foreign(tmp_path, host="elsewhere", pid=1)
    with pytest.raises(LockLost):
        lock.confirm()
    time.sleep(lock.heartbeat_seconds + 0.5)  # a heartbeat passes: it finds the lock is not its own
    lock.release()
    assert Holder.decode(_lock_file(tmp_path).read_bytes()) == other


def test_two_jobs_starting_together_one_holds(tmp_path: Path) -> None:
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        lock = OutputLock(FILES, str(tmp_path), Holder.this_process("run"), expiry_seconds=600)
        barrier.wait()
        try:
            lock.take()
        except OutputBusy:
            outcomes.append("busy")
            return
        outcomes.append("held")
        time.sleep(0.5)
        lock.release()

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["busy"] * 7 + ["held"]
    assert not _lock_file(tmp_path).exists()


class GoneJVM(LocalFiles):
    """File operations once the JVM behind them has died (an OutOfMemoryError): every call fails."""

    def __init__(self) -> None:
        self.gone = False

    def read_bytes(self, uri: str) -> bytes:
        if self.gone:
            raise ConnectionRefusedError(111, "Connection refused")
        return super().read_bytes(uri)

    def write_bytes(self, uri: str, data: bytes) -> None:
        if self.gone:
            raise ConnectionRefusedError(111, "Connection refused")
        super().write_bytes(uri, data)

    def delete(self, uri: str) -> None:
        if self.gone:
            raise ConnectionRefusedError(111, "Connection refused")
        super().delete(uri)


def test_a_local_lock_is_released_through_the_os_when_the_jvm_has_died(tmp_path: Path) -> None:
    files = GoneJVM()
    root = tmp_path / "out"
    with pytest.raises(RuntimeError, match="the run failed"), holding(files, str(root), "run", expiry_seconds=600):
        assert _lock_file(root).exists()
        files.gone = True
        raise RuntimeError("the run failed")
    assert not _lock_file(root).exists()
    # Another holder's lock is never removed that way.
    other = Holder.this_process("run")
    _lock_file(root).write_bytes(dataclasses.replace(other, token="someone else").encode())
    assert not output_lock._release_local(str(_lock_file(root)), other)
    assert _lock_file(root).exists()
