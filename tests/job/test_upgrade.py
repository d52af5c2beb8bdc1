"""An output written by the previous mapping version is brought up to date by the next incremental run: every
report mapped again (the mapping fingerprint includes `MAPPING_VERSION`), the tables gain the new columns, and
their rows equal a fresh run's; nothing is left half old, half new."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs.config import load_config
from jobs.sinks import ledger as ledger_sink
from jobs.sinks import tables
from jobs.sinks.store import TableSpec, open_store
from jobs.spark.fs import HadoopFS

from .helpers import run_job, table, table_rows

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = pytest.mark.spark

NEW_COLUMNS: dict[str, tuple[str, ...]] = {
    "measurements": ("finding_sites", "concept_modifiers", "derivation_parameters"),
    "qualitative_evaluations": ("finding_sites", "concept_modifiers"),
    "documents": ("unmapped_items", "unmapped_concepts"),
}
"""The columns mapping version 2 added, by table."""
RUN_COLUMNS = ("run_id", "processed_at", "mapping_fingerprint")


def version_1_fingerprint(overrides: list[str]) -> str:
    """What version 1 wrote in `mapping_fingerprint`: the hash of the mapping options alone."""
    config = load_config(inputs=["unused"], output="unused", overrides=overrides)
    return hashlib.sha256(json.dumps(config.mapping.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


def write_as_version_1(spark: SparkSession, output: Path, table_format: str, fingerprint: str) -> None:
    """Rewrite the output's tables as version 1 left them: created by the same stores, without the columns
    version 2 added, the ledger's rows with version 1's fingerprint."""
    from pyspark.sql import functions as F

    fs = HadoopFS(spark)
    config = load_config(inputs=["unused"], output=str(output))
    specs: dict[str, TableSpec] = {
        name: tables.spec(name, config.out.partition_by) for name in ("measurements", "qualitative_evaluations")
    }
    specs["documents"] = ledger_sink.SPEC
    for name, columns in NEW_COLUMNS.items():
        path = output / "tables" / name
        rows = table(spark, output, name, table_format).drop(*columns, *specs[name].generated)
        if name == "documents":
            rows = rows.withColumn("mapping_fingerprint", F.lit(fingerprint))
        old = path.with_name(f"{name}.v1")
        open_store(spark, fs, str(old), specs[name], table_format).append(rows)
        shutil.rmtree(path)
        old.rename(path)
        assert not set(columns) & set(table(spark, output, name, table_format).columns)


@pytest.mark.parametrize("table_format", ["delta", "parquet"])
def test_an_output_of_version_1_is_mapped_again_and_evolved(
    spark: SparkSession,
    sample: Path,
    tmp_path: Path,
    table_format: str,
) -> None:
    output, fresh = tmp_path / "output", tmp_path / "fresh"
    first = run_job(spark, [sample], output, table_format=table_format)
    write_as_version_1(spark, output, table_format, version_1_fingerprint(["output.progress_interval_seconds=0"]))

    upgrade = run_job(spark, [sample], output, table_format=table_format)
    assert upgrade["files"]["processed"] == first["files"]["processed"] > 0  # every report again
    run_job(spark, [sample], fresh, table_format=table_format)
    for name in ("measurements", "qualitative_evaluations"):
        evolved = table_rows(spark, output, name, table_format)
        assert set(NEW_COLUMNS[name]) <= set(evolved[0])
        assert evolved == table_rows(spark, fresh, name, table_format), name
    documents = table(spark, output, "documents", table_format)
    latest = documents.where(documents.run_id == upgrade["run_id"]).collect()
    assert len(latest) == first["documents"]["inputs"]
    mapped = [row for row in latest if row["status"] == "mapped"]
    assert mapped and all(row["unmapped_items"] is not None for row in mapped)
    # Version 1's rows stay as they were: the new columns read as null there.
    older = documents.where(documents.run_id == first["run_id"]).collect()
    assert older and all(row["unmapped_items"] is None for row in older)

    again = run_job(spark, [sample], output, table_format=table_format)
    assert again["files"]["processed"] == 0  # up to date: nothing mapped a third time
    assert table_rows(spark, output, "measurements", table_format, drop=RUN_COLUMNS[:1]) == table_rows(
        spark, fresh, "measurements", table_format, drop=RUN_COLUMNS[:1]
    )
