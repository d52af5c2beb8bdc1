"""One job at a time per output: `sr2fhir run` and `sr2fhir maintain` hold `<output>/_lock` while they work.

A run starts by removing what killed runs left (their staging, appended rows and unfinished exports), which is
only right if no other job is at work on the output. A schedule that fires again before the last run has ended
would otherwise start a second run that takes the first one's staging for a killed run's, deletes it, and
commits beside it. With the lock, the second job stops at once with `OutputBusy` (`sr2fhir` exits with status
75, "try again later"), and changes nothing.

The lock is a small JSON file naming its holder (command, host, process id, when taken, and a random token).
A daemon thread rewrites it every `heartbeat_seconds`, so its modification time says the holder is alive. A
lock is stale, and the next job takes it over with a warning, when
  * the holder was on this host and its process is gone (a killed local run: no waiting), or
  * its last heartbeat is older than `expiry_seconds` (a holder elsewhere that died).
Ages are measured in the file system's own time: the lock's modification time against that of a probe file
written just before, so a client clock that is off does not matter.

Taking the lock is a create-without-overwrite (`HadoopFS.create_new`) followed by a read back of the token:
atomic on local disks, HDFS and ABFS, and on S3 where hadoop-aws writes conditionally. On a store without an
atomic create, two jobs started within a second of each other can both believe they hold it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

from . import processes
from .errors import LockLost, OutputBusy

log = logging.getLogger("sr2fhir")

NAME = "_lock"
"""The lock's file name under --output (Spark's listings skip names that start with "_")."""


class Files(Protocol):
    """What the lock needs of a file system (`jobs.spark.fs.HadoopFS` has it)."""

    def exists(self, uri: str) -> bool: ...

    def read_bytes(self, uri: str) -> bytes: ...

    def write_bytes(self, uri: str, data: bytes) -> None: ...

    def create_new(self, uri: str, data: bytes) -> bool: ...

    def delete(self, uri: str) -> None: ...

    def modified_ms(self, uri: str) -> int: ...


@dataclass(frozen=True)
class Holder:
    command: str
    host: str
    pid: int
    taken: str
    token: str

    @classmethod
    def this_process(cls, command: str) -> Holder:
        taken = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(command, socket.gethostname(), os.getpid(), taken, uuid.uuid4().hex)

    def encode(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> Holder | None:
        """None for a lock file that is not one (empty, cut short, or written by something else)."""
        try:
            fields = json.loads(data)
            return cls(**{field.name: fields[field.name] for field in dataclasses.fields(cls)})
        except (ValueError, TypeError, KeyError):
            return None

    def describe(self) -> str:
        return f"`sr2fhir {self.command}` on {self.host} (process {self.pid}, since {self.taken})"


class OutputLock:
    def __init__(self, files: Files, root: str, holder: Holder, *, expiry_seconds: float) -> None:
        self.files = files
        self.uri = f"{root}/{NAME}"
        self.holder = holder
        self.expiry_seconds = expiry_seconds
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._writing = threading.Lock()
        """Held while this job reads or rewrites its lock, so that it never reads its own half-written file."""

    @property
    def heartbeat_seconds(self) -> float:
        return max(1.0, min(60.0, self.expiry_seconds / 5))

    def take(self) -> None:
        """Take the lock, or raise `OutputBusy` naming the job that holds it."""
        taken = self.files.create_new(self.uri, self.holder.encode())
        if not taken:
            current = self._current()
            why = self._stale_because(current)
            if why is None:
                who = current.describe() if current is not None else "another job (taking the lock just now)"
                raise OutputBusy(
                    f"{who} is working on this output ({self.uri}); one job at a time per output. If it has died, "
                    f"its lock expires {self.expiry_seconds:.0f} s after its last heartbeat "
                    "(output.lock_expiry_seconds)."
                )
            log.warning("taking over the output's lock: %s", why)
            self.files.delete(self.uri)
            taken = self.files.create_new(self.uri, self.holder.encode())
        if not taken or self._current() != self.holder:
            raise OutputBusy(f"another job took this output's lock ({self.uri}) at the same time")
        self._beat = threading.Thread(target=self._heartbeat, name="sr2fhir-lock", daemon=True)
        self._beat.start()

    def confirm(self) -> None:
        """Raise `LockLost` unless the lock is still this job's: called before a commit that must be the only one."""
        with self._writing:
            if self._current() != self.holder:
                raise LockLost(f"this job's lock on the output ({self.uri}) was taken over by another job")

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(30)
        with self._writing:
            try:
                held = Holder.decode(self.files.read_bytes(self.uri)) == self.holder
            except Exception as exc:
                if not _release_local(self.uri, self.holder):  # gone meanwhile, or unreachable without the JVM
                    log.debug("could not read the output's lock to release it: %s", type(exc).__name__)
                return
            if held:
                self.files.delete(self.uri)

    def _current(self) -> Holder | None:
        try:
            return Holder.decode(self.files.read_bytes(self.uri))
        except Exception:  # gone meanwhile (released, or deleted by a job taking it over)
            return None

    def _stale_because(self, current: Holder | None) -> str | None:
        """Why the lock found is stale, or None while its holder may be at work. An unreadable lock may be one
        being written (a local file is empty between its create and its write): stale only after a heartbeat."""
        if current is not None and current.host == self.holder.host and not processes.alive(current.pid):
            return f"{current.describe()} has ended without releasing it"
        age = self._age_seconds()
        if age is None:
            return "it was released meanwhile"
        limit = self.expiry_seconds if current is not None else self.heartbeat_seconds
        if age > limit:
            who = current.describe() if current is not None else "an unreadable lock"
            return f"{who} has not been renewed for {age:.0f} s"
        return None

    def _age_seconds(self) -> float | None:
        """Seconds since the lock was last written, by the file system's clock (None if it is gone)."""
        probe = f"{self.uri}.clock-{self.holder.token}"
        self.files.write_bytes(probe, b"")
        try:
            now = self.files.modified_ms(probe)
        finally:
            self.files.delete(probe)
        try:
            return (now - self.files.modified_ms(self.uri)) / 1000
        except Exception:
            return None

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            with self._writing:
                try:
                    if self._current() != self.holder:
                        log.error("this job's lock on the output (%s) was taken over by another job", self.uri)
                        return
                    self.files.write_bytes(self.uri, self.holder.encode())
                except Exception as exc:  # a passing store error: the next beat tries again
                    log.warning("could not renew the output's lock: %s", exc)


def _release_local(uri: str, holder: Holder) -> bool:
    """Release a lock on a local output through the OS: the file operations go through the JVM, which may have
    died (out of memory) and taken them with it. True when this holder's lock was removed. Elsewhere the next
    job on this host takes the lock over at once (this process has ended), another host after the expiry."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", ""):
        return False
    path = Path(unquote(parsed.path))
    try:
        if Holder.decode(path.read_bytes()) != holder:
            return False
        path.unlink()
    except (OSError, ValueError):
        return False
    log.info("released the output's lock through the file system (the JVM is gone)")
    return True


@contextmanager
def holding(files: Files, root: str, command: str, *, expiry_seconds: float) -> Iterator[OutputLock]:
    """Hold the output's lock for the `with` block (`OutputBusy` if another job holds it)."""
    lock = OutputLock(files, root, Holder.this_process(command), expiry_seconds=expiry_seconds)
    lock.take()
    try:
        yield lock
    finally:
        lock.release()
