"""The benchmark's retained-memory measurement: the heap a forced full collection leaves, read from the JVM's
unified GC log, and the target row built from two runs. The runs themselves are the benchmark's (no Spark here)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import targets
from benchmarks.spark import live_heap

GC_LOG = """\
[0.003s][info][gc] Using Parallel
[0.563s][info][gc] GC(0) Pause Young (Allocation Failure) 95M->23M(362M) 11.017ms
[0.779s][info][gc] GC(2) Pause Full (Metadata GC Threshold) 25M->24M(457M) 20.076ms
[2.611s][info][gc] GC(6) Pause Young (Diagnostic Command) 147M->33M(457M) 9.744ms
[2.670s][info][gc] GC(7) Pause Full (Diagnostic Command) 33M->31M(457M) 59.317ms
[9.378s][info][gc] GC(16) Pause Full (Diagnostic Command) 489M->412M(1634M) 144.706ms
[12.1s][info][gc] GC(20) Pause Full (Diagnostic Command) 200M->88M(1634M) 90.000ms
"""


def test_live_heap_reads_only_the_forced_full_collections(tmp_path: Path) -> None:
    log = tmp_path / "gc.log"
    log.write_text(GC_LOG)
    heap = live_heap(log, requests=4)
    # The JVM's own full collection (metadata threshold) and the young ones are not the run's live set.
    assert heap["after_mb"] == [31, 412, 88]
    assert heap["peak_mb"] == 412
    assert heap["last_mb"] == 88
    assert (heap["forced_collections"], heap["requests"]) == (3, 4)


def test_live_heap_without_a_log_reports_nothing(tmp_path: Path) -> None:
    heap = live_heap(tmp_path / "absent.log", requests=0)
    assert heap["peak_mb"] is None and heap["after_mb"] == []


def _memory_run(files: int, peak: int) -> dict:
    return {"requested_files": files, "ok": True, "live_heap": {"peak_mb": peak, "every_seconds": 3.0}}


def test_live_heap_row_compares_the_smallest_and_largest_run() -> None:
    flat = targets({"spark_memory": [_memory_run(2_500, 400), _memory_run(10_000, 480)]})
    grown = targets({"spark_memory": [_memory_run(2_500, 200), _memory_run(10_000, 480)]})
    assert [(row["measured"], row["met"]) for row in flat] == [("400 → 480 MB (×1.20)", True)]
    assert [(row["measured"], row["met"]) for row in grown] == [("200 → 480 MB (×2.40)", False)]
