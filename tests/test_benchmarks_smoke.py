"""The benchmark runner end to end on three generated files (`--quick`, two rounds, no real corpus, no Spark): it
must write a well-formed results.json and RESULTS.md. Checks structure only, never timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_run_writes_a_well_formed_report(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [
        sys.executable, "-m", "benchmarks.run", "--quick", "--rounds", "2",
        "--skip", "real,radiomics,spark",
        "--methods", "pydicom_walk,core_auto,core_pydicom",
        "--curve-files", "2", "--lake-files", "3",
        "--cache", str(tmp_path / "cache"), "--output", str(tmp_path / "out"),
    ]  # fmt: skip
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)

    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["meta"]["quick"] is True
    assert results["meta"]["versions"]["pydicom"]
    methods = results["summary"]["corpora"]["curve"]["methods"]
    assert set(methods) == {"pydicom_walk", "core_auto", "core_pydicom"}
    for summary in methods.values():
        assert summary["wall"]["ok"] == summary["wall"]["files"] == 2
        assert summary["wall"]["files_per_second"] > 0
        assert summary["peak_rss_mb"] > 0
    assert methods["core_auto"]["ratio_vs_baseline"] > 0
    assert len(methods["core_auto"]["ratio_vs_baseline_rounds"]) == 2
    curve = results["corpora"]["curve"]
    assert curve["orders"] == [
        ["pydicom_walk", "core_auto", "core_pydicom"],
        ["core_auto", "core_pydicom", "pydicom_walk"],
    ]
    assert all(r["round_samples"] == [1, 1] for raw in curve["raw"].values() for r in raw["results"])
    assert [p["items"] for p in results["summary"]["curve_points"]] == [10, 100]
    assert results["summary"]["lake_core"]["rates"]["3"]["ok"] == 3

    report = (tmp_path / "out" / "RESULTS.md").read_text()
    for heading in ("# sr2fhir benchmark results", "## Targets", "## Generated size curve", "## Spark job"):
        assert heading in report
    assert "per round (wall, min–max)" in report
