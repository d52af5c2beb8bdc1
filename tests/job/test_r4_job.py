"""`mapping.fhir_version: r4` in the job: switching an output from R5 to R4 maps every file again (the mapping
fingerprint includes the version), exports R4 NDJSON (Basic, no ImagingSelection) with a manifest that says
4.0.1 and no deletion of an R5-only type, and leaves the tables as they were."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sr2fhir_synth import write_sample_corpus

from .helpers import export_lines, run_job, table_snapshot

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]


def _manifest(summary: dict) -> dict:
    return json.loads(Path(summary["fhir"]["manifest"].removeprefix("file://")).read_text())


def test_switching_to_r4_remaps_exports_r4_and_keeps_the_tables(spark: SparkSession, tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_sample_corpus(lake, count=3)
    output = tmp_path / "output"
    r5 = run_job(spark, [lake], output)
    tables = table_snapshot(spark, output)
    assert _manifest(r5)["extension"] == {"fhirVersion": "5.0.0"}
    assert "ImagingSelection" in export_lines(r5)

    r4 = run_job(spark, [lake], output, overrides=["mapping.fhir_version=r4"])
    assert r4["files"]["unchanged"] == 0  # another fingerprint: every file again
    assert r4["files"]["processed"] == r5["files"]["processed"] == r5["files"]["found"] > 0
    assert r4["mapping_fingerprint"] != r5["mapping_fingerprint"]
    manifest = _manifest(r4)
    assert manifest["extension"] == {"fhirVersion": "4.0.1"}
    assert manifest["deleted"] == []  # the ImagingSelections are Basics of the same ids now, nothing else went
    lines = export_lines(r4)
    assert "ImagingSelection" not in lines and len(lines["Basic"]) == len(export_lines(r5)["ImagingSelection"])
    for resource_type, type_lines in lines.items():
        for line in type_lines:
            resource = json.loads(line)
            assert resource["resourceType"] == resource_type and "meta" not in resource
            assert "ImagingSelection/" not in line
    assert table_snapshot(spark, output) == tables
