"""Inputs: URIs (files, folders, glob patterns) and path-list files on any Hadoop file system → one
DataFrame of stored files (`source_file`, `size`, `modification_time`, and `content` on demand).

The listing comes from the folders' listings alone where it can (jobs/listing.py); Spark's `binaryFile`
source reads each file's bytes only in the tasks that need them (and lists the inputs itself when made).
Nothing is decided by file name: DICOM with or without `.dcm`, archives and everything else go to the mapping
step, which recognises them by content. Zero-byte files, which `binaryFile` scans drop, are listed and given to
it too, with empty content and without a read, so that each gets a ledger row (`rejected/empty_file`).
"""

from __future__ import annotations

import functools

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from . import listing
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


class Inputs:
    """The listed files. `files` reads no content; `with_content` reads it for some or all of them."""

    def __init__(self, spark: SparkSession, paths: list[str], config: JobConfig, listing: DataFrame | None) -> None:
        self._spark, self._paths, self._glob_filter = spark, paths, config.input.path_glob_filter
        self.max_file_bytes = config.input.max_file_bytes
        self._listing = listing

    @functools.cached_property
    def raw(self) -> DataFrame:
        """The `binaryFile` relation: Spark lists the inputs when it is made (LIST requests, no request per file)."""
        reader = self._spark.read.format("binaryFile").option("recursiveFileLookup", "true")
        if self._glob_filter:
            reader = reader.option("pathGlobFilter", self._glob_filter)
        try:
            return reader.load(self._paths)
        except AnalysisException as exc:
            message = exc.getMessage() if hasattr(exc, "getMessage") else exc
            raise InputError(f"cannot list the inputs: {message}") from exc

    @property
    def files(self) -> DataFrame:
        """source_file, size, modification_time, and `file_key`: the form of the path that `with_content(only)`
        selects by (Spark's `_metadata.file_path`, which is URL-encoded where `path` is not). From the folders'
        listings where it can (jobs/listing.py), else from a scan of the `binaryFile` relation, which costs a
        status request per file, and the zero-byte files of its file index. Both hold the zero-byte files."""
        if self._listing is not None:
            return self._listing
        scanned = self.raw.select(*_file_columns(), F.col("_metadata.file_path").alias("file_key"))
        if not self._zero_byte:
            return scanned
        return scanned.unionByName(listing.zero_byte_listing(self._spark, self._zero_byte))

    @functools.cached_property
    def _zero_byte(self) -> list[listing.ZeroByteFile]:
        """The zero-byte files, which the `binaryFile` scan drops, from the relation's file index (no request)."""
        return listing.zero_byte_files(self._spark, self.raw) or []

    def with_content(self, only: list[str] | None = None) -> DataFrame:
        """Files with their bytes; `content` is null for files over max_file_bytes, which are not read, and empty
        for zero-byte files, which are not read either (from the file index, as the scan drops them).
        `only` restricts the read to the files with these `file_key` values: the filter is on the file's
        metadata, so Spark prunes the other files before any byte is read."""
        raw = self.raw
        wanted = set(only) if only is not None else None
        zero_byte = [file for file in self._zero_byte if wanted is None or file[2] in wanted]
        if only is not None:
            raw = raw.where(F.col("_metadata.file_path").isin(only))
        # Two scans, each of the files it needs: filters on `_metadata` fields prune files from the listing when the
        # scan is planned, so neither scan visits the other's files (binaryFile asks the file system for each
        # file it visits, a HEAD request on an object store, before any filter on `length` could skip it).
        small = F.col("_metadata.file_size") <= self.max_file_bytes
        readable = raw.where(small).select(*_file_columns(), "content")
        oversized = raw.where(~small).select(*_file_columns(), F.lit(None).cast("binary").alias("content"))
        content = readable.unionByName(oversized)
        if zero_byte:
            empty = listing.zero_byte_listing(self._spark, zero_byte).drop("file_key")
            content = content.unionByName(empty.withColumn("content", F.lit(bytearray())))
        return content


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
    listed = None
    if not config.input_lists and spark.sparkContext._jvm is not None:
        try:
            roots = listing.resolve(spark, paths)
        except listing.MissingInput as exc:
            raise InputError(f"cannot list the inputs: {exc}") from exc
        listed = listing.list_files(spark, roots, config.input.path_glob_filter)
    inputs = Inputs(spark, paths, config, listed)
    if listed is None:
        inputs.raw  # noqa: B018 -- the binaryFile listing now, so that a missing input fails here
    return inputs
