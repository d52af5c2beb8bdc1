"""The Spark targets as issue 4's decision restated them (benchmarks/report.py): the cost per further file, the
fixed part, and the rich lake they are measured on. Arithmetic on given runs and a three-file lake; no timing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import corpora, report
from sr2fhir_core import map_sr


def _run(files: int, elapsed: float, steps: dict[str, float], cpu: dict[str, float]) -> dict:
    return {
        "ok": True,
        "requested_files": files,
        "files": files,
        "elapsed_seconds": elapsed,
        "step_seconds": steps,
        "run_cpu_seconds": cpu,
        "memory": {},
    }


RUNS = [
    _run(1_000, 10.0, {"map": 3.0, "sinks": 5.0}, {"jvm": 12.0, "python_workers": 3.0}),
    _run(3_000, 14.0, {"map": 5.0, "sinks": 7.0}, {"jvm": 16.0, "python_workers": 5.0}),
]
CORE = {"rates": {"3000": {"files_per_second": 1_000.0, "cpu_files_per_second": 1_250.0}}}


def test_marginal_cost_splits_each_further_file_from_the_fixed_part() -> None:
    marginal = report.marginal_cost(list(reversed(RUNS)), CORE)  # any order: smallest and largest by files
    assert marginal is not None
    assert (marginal["from_files"], marginal["to_files"]) == (1_000, 3_000)
    assert marginal["ms_per_file"] == 2.0 and marginal["files_per_second"] == 500.0
    assert marginal["fixed_seconds"] == 8.0  # 10 s less 1,000 files at 2 ms
    assert marginal["steps"]["map"] == {"ms_per_file": 1.0, "fixed_seconds": 2.0}
    assert marginal["cpu"]["jvm"] == {"ms_per_file": 2.0, "fixed_seconds": 10.0}
    assert marginal["fraction_of_two_cores"] == 0.25  # 500 against 2 × 1,000 files/s
    assert marginal["core_cpu_ms_per_file"] == 0.8


def test_targets_read_the_marginal_cost_and_the_incremental_run() -> None:
    results: dict[str, Any] = {
        "spark": RUNS,
        "spark_incremental": [
            {"ok": True, "scenario": "first", "elapsed_seconds": 9.0, "files_found": 990},
            {"ok": True, "scenario": "nothing changed", "elapsed_seconds": 3.5, "files_found": 990},
        ],
        "summary": {"spark_marginal": report.marginal_cost(RUNS, CORE)},
    }
    rows = {row["target"].split(",")[0]: row for row in report.targets(results)}
    marginal = rows["Spark local[2] marginal files/s ≥ 50% of 2 × core files/s (moonshot 70%)"]
    assert marginal["measured"].startswith("25% (500.0 vs 2000.0 files/s") and not marginal["met"]
    assert rows["Spark local[2] fixed part of a full run ≤ 8 s (run time less the marginal time of its files"]["met"]
    cpu_view = next(row for name, row in rows.items() if name.startswith("(CPU view of the marginal target"))
    assert "0.80 vs 3.00 ms/file: jvm 2.00, python_workers 1.00" in cpu_view["measured"]
    assert rows["an incremental run that finds nothing new ≤ 4 s (session start-up excluded)"]["met"]
    table = "\n".join(report._marginal_table(results["summary"]["spark_marginal"]))
    assert "| step: map | 1.00 | 2.00 |" in table and "| CPU: jvm | 2.00 | 10.00 |" in table


def test_one_run_has_no_marginal_cost() -> None:
    assert report.marginal_cost(RUNS[:1], CORE) is None


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_the_rich_lake_has_at_least_30_measurements_per_report(tmp_path: Path) -> None:
    root, entries = corpora.lake_corpus(tmp_path, 3, "rich")
    assert root.name == "lake-rich-3"
    for entry in entries:
        rows = map_sr(Path(entry.path).read_bytes()).rows["measurements"]
        assert len(rows) >= corpora.RICH_MIN_MEASUREMENTS, entry.path
    assert corpora.lake_corpus(tmp_path, 3, "rich")[1] == entries  # the cache, reused
