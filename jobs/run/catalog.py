"""Step 7, catalog (`output.catalog_schema`): the output's Delta tables registered as external tables of a schema in
the session's catalog, so that `SELECT ... FROM sr2fhir.measurements` works wherever that catalog is shared (a Hive
metastore, AWS Glue, Unity Catalog).

After the run summary, not before it: a run has committed once its summary is written, and a catalog that refuses
(no permission, a name taken) must not make a committed run look killed. It fails the command instead (exit 1),
and the next run, which then has nothing to map, registers again: every statement is IF NOT EXISTS, so runs after
the first change nothing in the catalog. A Delta table's columns and partitions are read from its log, so a table
registered once stays right as later runs add rows, years or columns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from pyspark.sql import SparkSession

from ..errors import CatalogError, failure_line
from ..spark.fs import HadoopFS
from .context import Run

log = logging.getLogger("sr2fhir")

_SAME_STORE = {"s3a": "s3", "s3n": "s3"}
"""URI schemes that name one store: a catalog may keep s3:// for a table created at s3a:// (Databricks, EMR)."""


def register(run: Run) -> dict[str, str]:
    """Register the output's Delta tables that exist in `output.catalog_schema`; returns table → location.
    Nothing when the key is null."""
    schema = run.config.out.catalog_schema
    if schema is None:
        return {}
    started = time.monotonic()
    tables = {name: store.uri for name, store in run.tables.all().items() if store.exists()}
    try:
        created = register_tables(run.spark, run.fs, schema, tables)
    except CatalogError:
        raise
    except Exception as exc:
        raise CatalogError(
            f"run {run.run_id} committed, but its tables could not be registered in {schema}: {failure_line(exc)}"
        ) from exc
    log.info(
        "run %s: tables %s in catalog schema %s (%d registered now) in %.1f s",
        run.run_id,
        ", ".join(sorted(tables)),
        schema,
        len(created),
        time.monotonic() - started,
    )
    return {name: f"{schema}.{name}" for name in tables}


def register_tables(spark: SparkSession, fs: HadoopFS, schema: str, tables: Mapping[str, str]) -> list[str]:
    """CREATE SCHEMA IF NOT EXISTS, then an external Delta table per `tables` entry (name → location) that the
    schema lacks; returns the names registered now. A table of that name at another location is an error: IF NOT
    EXISTS alone would leave queries reading another output's rows, silently."""
    if "." not in schema and _catalog_in_memory(spark):
        log.warning(
            "catalog schema %s: this session's catalog is in memory (no Hive metastore, Glue or Unity Catalog), so"
            " the tables are registered for this session only (docs/deployment.md, Catalog tables)",
            schema,
        )
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS {_quoted(schema)}")
    created = []
    for name, location in sorted(tables.items()):
        table = f"{_quoted(schema)}.`{name}`"
        if spark.catalog.tableExists(f"{schema}.{name}"):
            registered = table_location(spark, table)
            if registered is None or _normalised(fs, registered) != _normalised(fs, location):
                raise CatalogError(
                    f"table {schema}.{name} is already registered at {registered}, not at this output's {location}:"
                    " drop it (DROP TABLE leaves an external table's files alone) or choose another"
                    " output.catalog_schema"
                )
            continue
        spark.sql(f"CREATE TABLE IF NOT EXISTS {table} USING DELTA LOCATION '{_literal(location)}'")
        created.append(name)
    return created


def table_location(spark: SparkSession, table: str) -> str | None:
    """Where a catalog table's files are (`DESCRIBE TABLE EXTENDED`'s Location row; None for a view)."""
    for row in spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect():
        if row["col_name"] == "Location":
            return str(row["data_type"])
    return None


def _catalog_in_memory(spark: SparkSession) -> bool:
    return spark.conf.get("spark.sql.catalogImplementation", "in-memory") == "in-memory"


def _normalised(fs: HadoopFS, uri: str) -> str:
    qualified = fs.qualify(uri).rstrip("/")
    scheme, sep, rest = qualified.partition(":")
    return f"{_SAME_STORE.get(scheme.lower(), scheme.lower())}{sep}{rest}"


def _quoted(dotted: str) -> str:
    """`schema` or `catalog.schema` as quoted identifiers (the configuration admits plain identifiers only)."""
    return ".".join(f"`{part}`" for part in dotted.split("."))


def _literal(text: str) -> str:
    """Text inside a SQL string literal."""
    return text.replace("\\", "\\\\").replace("'", "\\'")
