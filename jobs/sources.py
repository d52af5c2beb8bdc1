"""Inputs: URIs (files, folders, glob patterns) and path-list files on any Hadoop file system → one
DataFrame of stored files (`source_file`, `size`, `modification_time`, and `content` on demand).

Spark's `binaryFile` source does the listing (once, when the DataFrame is made) and reads each file's bytes
only in the tasks that need them. Nothing is decided by file name: DICOM with or without `.dcm`, archives
and everything else go to the mapping step, which recognises them by content.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from .config import JobConfig


class InputError(ValueError):
    pass


def read_path_lists(spark: SparkSession, uris: tuple[str, ...]) -> list[str]:
    """Input URIs from text files, one per line; blank lines and lines starting with '#' are skipped.
    The paths come to the driver (about 100 bytes each): what a lake too large to list costs instead."""
    if not uris:
        return []
    lines = spark.read.text(list(uris)).select(F.trim("value").alias("path"))
    lines = lines.where((F.col("path") != "") & ~F.col("path").startswith("#"))
    return [row.path for row in lines.collect()]


@dataclass(frozen=True)
class Inputs:
    """The listed files. `files` reads no content; `with_content` reads it for some or all of them."""

    raw: DataFrame
    max_file_bytes: int

    @property
    def files(self) -> DataFrame:
        """source_file, size, modification_time, and `file_key`: the form of the path that `with_content(only)`
        selects by (Spark's `_metadata.file_path`, which is URL-encoded where `path` is not)."""
        return self.raw.select(*_file_columns(), F.col("_metadata.file_path").alias("file_key"))

    def with_content(self, only: list[str] | None = None) -> DataFrame:
        """Files with their bytes; `content` is null for files over max_file_bytes, which are not read.
        `only` restricts the read to the files with these `file_key` values: the filter is on the file's
        metadata, so Spark prunes the other files before any byte is read."""
        raw = self.raw
        if only is not None:
            raw = raw.where(F.col("_metadata.file_path").isin(only))
        # Two scans, each of the files it needs: filters on `_metadata` fields prune files from the listing when the
        # scan is planned, so neither scan visits the other's files (binaryFile asks the file system for each
        # file it visits, a HEAD request on an object store, before any filter on `length` could skip it).
        small = F.col("_metadata.file_size") <= self.max_file_bytes
        readable = raw.where(small).select(*_file_columns(), "content")
        oversized = raw.where(~small).select(*_file_columns(), F.lit(None).cast("binary").alias("content"))
        return readable.unionByName(oversized)


def _file_columns() -> list[Column]:
    return [
        F.col("path").alias("source_file"),
        F.col("length").alias("size"),
        F.col("modificationTime").alias("modification_time"),
    ]


def open_inputs(spark: SparkSession, config: JobConfig) -> Inputs:
    paths = list(config.inputs) + read_path_lists(spark, config.input_lists)
    if not paths:
        raise InputError("the input lists name no paths")
    reader = spark.read.format("binaryFile").option("recursiveFileLookup", "true")
    if config.input.path_glob_filter:
        reader = reader.option("pathGlobFilter", config.input.path_glob_filter)
    try:
        raw = reader.load(paths)
    except AnalysisException as exc:
        raise InputError(f"cannot list the inputs: {exc.getMessage() if hasattr(exc, 'getMessage') else exc}") from exc
    return Inputs(raw=raw, max_file_bytes=config.input.max_file_bytes)
