"""Helpers for the job tests: run the job in-process on the shared session, read back what it wrote."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import load_config
from jobs.run import run

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

REPO_ROOT = Path(__file__).resolve().parents[2]


BUCKET = "lake"
"""The bucket of the loopback S3 server (conftest.s3_endpoint)."""


def s3_settings(endpoint: str) -> list[str]:
    """Overrides that point s3a:// at the loopback S3 server."""
    prefix = "spark.settings.spark.hadoop.fs.s3a"
    return [
        f"{prefix}.endpoint={endpoint}",
        f"{prefix}.endpoint.region=us-east-1",
        f"{prefix}.path.style.access=true",
        f"{prefix}.connection.ssl.enabled=false",
        f"{prefix}.access.key=testing",
        f"{prefix}.secret.key=testing",
        f"{prefix}.aws.credentials.provider=org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
    ]


def run_job(
    spark: SparkSession,
    inputs: Iterable[Path | str],
    output: Path | str,
    *,
    before_ledger: Callable[[], None] | None = None,
    input_lists: Iterable[Path | str] = (),
    overrides: Iterable[str] = (),
    table_format: str | None = None,
    full_refresh: bool = False,
    retry_quarantined: bool = False,
) -> dict:
    config = load_config(
        inputs=[str(i) for i in inputs],
        input_lists=[str(i) for i in input_lists],
        output=str(output),
        overrides=["output.progress_interval_seconds=0", *overrides],
        table_format=table_format,
        full_refresh=full_refresh,
        retry_quarantined=retry_quarantined,
    )
    return run(spark, config, before_ledger=before_ledger)


def table(spark: SparkSession, output: Path, name: str, table_format: str = "delta") -> DataFrame:
    # Parquet part files appended by different mapping versions can differ in columns (as the job reads them).
    reader = spark.read.format(table_format)
    if table_format == "parquet":
        reader = reader.option("mergeSchema", "true")
    return reader.load(str(output / "tables" / name))


def table_rows(
    spark: SparkSession, output: Path, name: str, table_format: str = "delta", drop: tuple[str, ...] = ("run_id",)
) -> list[dict]:
    """All rows as dicts, sorted, without the columns that name the run."""
    df = table(spark, output, name, table_format).drop(*drop)
    return sorted(
        (r.asDict(recursive=True) for r in df.collect()), key=lambda r: json.dumps(r, sort_keys=True, default=str)
    )


def ledger(spark: SparkSession, output: Path, table_format: str = "delta") -> list[dict]:
    return [r.asDict() for r in table(spark, output, "documents", table_format).collect()]


def export_files(summary: dict) -> dict[str, list[str]]:
    """NDJSON lines of one run's export, by file name, in the manifest's order."""
    directory = Path(summary["fhir"]["directory"].removeprefix("file://"))
    manifest = json.loads((directory / "manifest.json").read_text())
    return {
        Path(entry["url"]).name: Path(entry["url"].removeprefix("file://")).read_text().splitlines()
        for entry in manifest["output"]
    }


def export_lines(summary: dict) -> dict[str, list[str]]:
    """NDJSON lines of one run's export, by resource type (its files' lines in the manifest's order)."""
    directory = Path(summary["fhir"]["directory"].removeprefix("file://"))
    manifest = json.loads((directory / "manifest.json").read_text())
    lines: dict[str, list[str]] = {}
    for entry in manifest["output"]:
        lines.setdefault(entry["type"], []).extend(Path(entry["url"].removeprefix("file://")).read_text().splitlines())
    return lines


TABLES = ("measurements", "qualitative_evaluations")


class Killed(RuntimeError):
    """A simulated kill: raised by a run's `before_ledger` hook."""


def kill_before_ledger() -> None:
    """`jobs.run.run`'s `before_ledger` hook of a run killed after its tables and export, before its ledger."""
    raise Killed("simulated kill after the tables and the export, before the ledger commit")


def copy_lake(lake: Path, tmp_path: Path) -> Path:
    """A copy of a lake that a test may change."""
    target = tmp_path / "lake"
    shutil.copytree(lake, target)
    return target


def table_snapshot(spark: SparkSession, output: Path, table_format: str = "delta") -> dict[str, list[dict]]:
    """Every table's rows, without the run that wrote them."""
    return {name: table_rows(spark, output, name, table_format, drop=("run_id",)) for name in TABLES}


def no_duplicate_keys(tables: dict[str, list[dict]]) -> None:
    for name, rows in tables.items():
        keys = Counter((r["source_path"], r["observation_id"]) for r in rows)
        assert max(keys.values(), default=1) == 1, name


def operations(spark: SparkSession, output: Path, name: str) -> list[str]:
    """A Delta table's commits, oldest first."""
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, str(output / "tables" / name)).history().orderBy("version")
    return [r.operation for r in history.select("operation").collect()]


def table_files(spark: SparkSession, output: Path, table_format: str = "delta") -> set[str]:
    """The stored files the tables have rows of."""
    return {r["source_file"] for name in TABLES for r in table_rows(spark, output, name, table_format)}
