"""The staged rows: what the map step writes once under `_staging/<run-id>` (Parquet) and every sink reads.

The rows are long: one per document record (one per input), per FHIR resource (its JSON text) and per table row,
told apart by `kind`, each kind in its own struct column (the others null). So no staged row holds more than one
resource or table row, whatever the size of a report, and each sink reads only its kind's columns (Parquet reads
nested columns separately). The Mapper (`jobs/mapping.py`) writes them; the sinks read them through the
accessors below.
"""

from __future__ import annotations

import dataclasses
import typing

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from sr2fhir_core import TABLE_SCHEMAS, DocumentRecord


def _record_fields() -> list[pa.Field]:
    """The document record's columns, from the core's `DocumentRecord` (source_path is an input column)."""
    hints = typing.get_type_hints(DocumentRecord)
    return [
        pa.field(name, pa.int32() if hints[name] is int else pa.string(), nullable=name != "status")
        for name in (f.name for f in dataclasses.fields(DocumentRecord))
        if name != "source_path"
    ]


RECORD_FIELDS: list[pa.Field] = _record_fields()

INPUT_FIELDS = [
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("size", pa.int64()),
    pa.field("modification_time", pa.timestamp("us", tz="UTC")),
    pa.field("content_sha256", pa.string()),
]
"""`size`/`modification_time` are the stored file's (for a member: the archive's), which is what incremental
runs compare; `content_sha256` is of the input's bytes."""

RECORD = "record"
RESOURCE = "resource"
TABLES = tuple(TABLE_SCHEMAS)
KINDS = (RECORD, RESOURCE, *TABLES)
"""Values of `kind`, each also the name of the struct column that holds that kind's row."""

COMMON_FIELDS = [
    pa.field("kind", pa.string(), nullable=False),
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("content_sha256", pa.string()),
]
"""On every row: what the row is, and the stored file and input bytes it comes from."""

# The source file and content hash are common columns, so the record struct leaves them out.
RECORD_STRUCT_FIELDS = [f for f in INPUT_FIELDS if f.name not in ("source_file", "content_sha256")] + RECORD_FIELDS
RECORD_TYPE = pa.struct(RECORD_STRUCT_FIELDS)
RESOURCE_TYPE = pa.struct(
    [
        pa.field("resource_type", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("json", pa.string(), nullable=False),
    ]
)
STRUCT_TYPES: dict[str, pa.StructType] = {
    RECORD: RECORD_TYPE,
    RESOURCE: RESOURCE_TYPE,
    **{table: pa.struct(list(schema)) for table, schema in TABLE_SCHEMAS.items()},
}

OUTPUT_SCHEMA = pa.schema([*COMMON_FIELDS, *(pa.field(kind, STRUCT_TYPES[kind]) for kind in KINDS)])
"""The staged rows: `kind`, `source_file`, `content_sha256`, and one struct column per kind."""


def spark_schema() -> StructType:
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(OUTPUT_SCHEMA)


def write(mapped: DataFrame, uri: str) -> None:
    """The map step's output as Parquet. Written once, read once per sink, then deleted: dictionary encoding
    (smaller files, faster re-reads) does not pay back its hashing of every string value
    (docs/design/performance.md)."""
    mapped.write.mode("overwrite").option("parquet.enable.dictionary", "false").parquet(uri)


COMPLETE = "_SUCCESS"
"""File at the root of a run's staging once its map step has written every part: its tables may have its rows
from then on (`run.recovery`)."""


def read(spark: SparkSession, uri: str) -> DataFrame:
    """The staged rows of a run: every part under its staging folder (one per map job)."""
    return spark.read.schema(spark_schema()).option("recursiveFileLookup", "true").parquet(uri)


def records(staged: DataFrame) -> DataFrame:
    """One row per input: `source_file`, `content_sha256` and the record's columns (`RECORD_STRUCT_FIELDS`)."""
    return staged.where(F.col("kind") == RECORD).select("source_file", "content_sha256", f"{RECORD}.*")


def resources(staged: DataFrame) -> DataFrame:
    """(resource_type, id, json) of every resource, copies included (a shared resource comes from many inputs)."""
    return staged.where(F.col("kind") == RESOURCE).select(f"{RESOURCE}.*")


def resource_keys(staged: DataFrame) -> DataFrame:
    """(source_file, resource_type, resource_id) of every resource (Parquet reads neither the JSON nor the
    other kinds' columns)."""
    return staged.where(F.col("kind") == RESOURCE).select(
        "source_file",
        F.col(f"{RESOURCE}.resource_type").alias("resource_type"),
        F.col(f"{RESOURCE}.id").alias("resource_id"),
    )


def table_rows(staged: DataFrame, table: str) -> DataFrame:
    """A research table's rows, with `source_file` and `content_sha256`."""
    return staged.where(F.col("kind") == table).select(f"{table}.*", "source_file", "content_sha256")
