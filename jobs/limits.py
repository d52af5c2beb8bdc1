"""The input size a session can always map: `input.max_file_bytes: auto`, derived from the memory of the JVM that
reads the inputs and the tasks it runs at once.

A task's JVM holds an input's bytes several times over while it reads the file and hands it to the Python worker
(the scanned row, its copy, the Arrow batch), and two tasks of a local[2] session do so at once. So the limit is
the heap over `HEAP_BYTES_PER_INPUT_BYTE` per concurrent task, a figure measured with a margin
(`benchmarks/memory_limits.py`; docs/design/limits.md). Larger files are not read at all: their ledger row says
rejected/too_large before Spark holds a byte of them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pyspark.sql import SparkSession

log = logging.getLogger("sr2fhir")

HEAP_BYTES_PER_INPUT_BYTE = 24
"""JVM heap an input in flight may need per byte: what was measured to suffice, times a margin
(docs/design/limits.md)."""
MIB = 1 << 20
_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)b?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Memory:
    heap_bytes: int
    """The heap of the JVM that reads inputs (the driver's in local mode, an executor's on a cluster)."""
    concurrent_tasks: int
    """Tasks that JVM runs at once."""
    setting: str
    """The setting to raise for more heap."""

    @property
    def max_input_bytes(self) -> int:
        """The largest input the JVM always maps, rounded down to a MiB (at least one)."""
        limit = self.heap_bytes // (HEAP_BYTES_PER_INPUT_BYTE * max(self.concurrent_tasks, 1))
        return max(limit // MIB, 1) * MIB


def session_memory(spark: SparkSession) -> Memory:
    """Local mode: the driver's JVM maps, with its actual heap and as many tasks as the master's cores. A cluster:
    an executor's heap (`spark.executor.memory`, default 1g) and `spark.executor.cores` (default 1)."""
    context = spark.sparkContext
    conf = context.getConf()
    if (context.master or "").startswith("local"):
        jvm = context._jvm
        heap = int(jvm.java.lang.Runtime.getRuntime().maxMemory()) if jvm is not None else parse_size("1g")
        return Memory(heap, context.defaultParallelism, "spark.driver.memory")
    heap = parse_size(conf.get("spark.executor.memory", "1g") or "1g")
    cores = int(conf.get("spark.executor.cores", "1") or "1") // int(conf.get("spark.task.cpus", "1") or "1")
    return Memory(heap, cores, "spark.executor.memory")


def parse_size(text: str) -> int:
    """A JVM memory setting ("2g", "512m", "1024") in bytes (Spark reads a bare number as MiB)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a memory size: {text!r}")
    number, unit = int(match.group(1)), match.group(2).lower() or "m"
    return number << {"k": 10, "m": 20, "g": 30, "t": 40}[unit]


def max_file_bytes(configured: int | None, memory: Memory) -> int:
    """The limit a run uses: the configured one, or (None: `auto`) what the session's memory allows. A configured
    limit over that is kept, with a warning: the run may then die of memory on such a file."""
    safe = memory.max_input_bytes
    if configured is None:
        log.info(
            "input.max_file_bytes: %d MiB (auto: a %d MiB heap, %d tasks at once)",
            safe // MIB,
            memory.heap_bytes // MIB,
            memory.concurrent_tasks,
        )
        return safe
    if configured > safe:
        log.warning(
            "input.max_file_bytes %d MiB is more than %d MiB, what a %d MiB heap running %d tasks at once always "
            "maps: an input that large can make the run fail for memory (raise %s, or use auto)",
            configured // MIB,
            safe // MIB,
            memory.heap_bytes // MIB,
            memory.concurrent_tasks,
            memory.setting,
        )
    return configured
