"""Delta table properties the job sets at creation: file statistics only for the selection columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs.sinks.tables import STATS_COLUMNS
from sr2fhir_synth import write_sample_corpus

from .helpers import run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]


def test_delta_file_statistics_cover_the_selection_columns_only(spark: SparkSession, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_sample_corpus(lake, count=4)
    run_job(spark, [lake], tmp_path / "out")
    for name in ("measurements", "qualitative_evaluations"):
        log = tmp_path / "out" / "tables" / name / "_delta_log"
        actions = [json.loads(line) for f in sorted(log.glob("*.json")) for line in f.read_text().splitlines()]
        adds = [a["add"] for a in actions if "add" in a]
        expected = {c for c in STATS_COLUMNS if c in spark.read.format("delta").load(str(log.parent)).columns}
        assert {"study_date", "patient_id", "source_path"} < expected < set(STATS_COLUMNS)
        assert adds, name
        for add in adds:
            stats = json.loads(add["stats"])
            assert stats["numRecords"] > 0
            assert set(stats["nullCount"]) == expected, name
            assert set(stats["minValues"]) <= expected and {"study_date", "source_path"} <= set(stats["minValues"])
