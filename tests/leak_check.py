"""Leak checks of the C extensions: memory that stays allocated across many rounds of calls."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

LEAK_LIMIT = 64 * 1024
"""Bytes that 300 rounds may leave allocated: far less than one leaked object per call would."""


def memory_growth(run: Callable[[int], None]) -> int:
    """Bytes still allocated after `run(300)` that were not after `run(20)` (both after a full collection)."""
    tracemalloc.start()
    try:
        run(20)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        run(300)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return after - before
