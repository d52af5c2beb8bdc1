"""The time limit of one `map_sr` call (`map_sr(..., time_limit=seconds)`), checked cooperatively.

`map_sr` sets the deadline for the calling thread; `check()` raises `MappingTimeout` once it has passed, and
`map_sr` turns that into a `failed`/`timeout` record. The mapping checks between its steps (read, TID 1500
parse, FHIR resources, table rows), in the reference reader at every read from the input and every content
item, and in the TID 1500 parse at every content item, so a limit is met to within what one step of the fast
path takes uninterrupted: the fast reader's walk and tree build (C), about 0.02 s per MB.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token


class MappingTimeout(BaseException):
    """The deadline has passed. A BaseException: pydicom and the core catch `Exception` in places (pydicom even
    turns any exception inside a sequence item's header read into an OSError), and must not absorb it."""


_deadline: ContextVar[float | None] = ContextVar("sr2fhir_deadline", default=None)
"""time.monotonic() value after which `check` raises; None: no limit. A context variable: each thread (and
task) has its own, and reading it costs less than a thread-local attribute."""
_monotonic = time.monotonic


def start(seconds: float | None) -> Token[float | None]:
    """Make this thread's deadline `seconds` from now (None: none) until `stop` is given what this returns."""
    return _deadline.set(None if seconds is None else _monotonic() + seconds)


def stop(token: Token[float | None]) -> None:
    """Restore the deadline `start` replaced."""
    _deadline.reset(token)


@contextmanager
def limit(seconds: float | None) -> Iterator[None]:
    """Within the block, this thread's deadline is `seconds` from now (None: none)."""
    token = start(seconds)
    try:
        yield
    finally:
        stop(token)


def current() -> float | None:
    """This thread's deadline (a time.monotonic() value), or None."""
    return _deadline.get()


def check() -> None:
    """Raise `MappingTimeout` if this thread's deadline has passed (about 0.1 µs)."""
    at = _deadline.get()
    if at is not None and _monotonic() > at:
        raise MappingTimeout
