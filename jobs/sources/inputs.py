"""Inputs: URIs (files, folders, glob patterns) and path-list files on any Hadoop file system → one
DataFrame of stored files (`source_file`, `size`, `modification_time`, and `content` on demand).

The listing comes from the folders' listings alone where it can (jobs/sources/listing.py); Spark's `binaryFile`
source reads each file's bytes only in the tasks that need them. Reading all files, its relation lists the
inputs itself when made; reading the files a run selected from the listing, it is made of those files' statuses
alone (`Inputs.with_content`), so a run lists the lake once.
Nothing is decided by file name: DICOM with or without `.dcm`, archives and everything else go to the mapping
step, which recognises them by content. Zero-byte files, which `binaryFile` scans drop, are listed and given to
it too, with empty content and without a read, so that each gets a ledger row (`rejected/empty_file`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import NamedTuple

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F

from .. import limits
from ..config import JobConfig
from ..errors import InputError
from ..spark.fs import HadoopFS
from . import listing


class Listed(NamedTuple):
    """A listed file as a run selects it: enough to read it without asking the file system for its status."""

    file_key: str
    """`Inputs.files`' `file_key`: the path as a URL, as the content scan's `_metadata.file_path` has it."""
    size: int
    modification_ms: int
    """The modification time in milliseconds, as the file system gives it."""
    source_file: str
    """The path as the listing has it (a zero-byte file, which is not read, is given to the mapping by it)."""


def listed_struct() -> Column:
    """The struct of `Inputs.files`' columns that makes a `Listed`."""
    return F.struct("file_key", "size", F.unix_millis("modification_time").alias("modification_ms"), "source_file")


_SINK_LOG = "_spark_metadata"
"""The folder of a streaming file sink's log (FileStreamSink.metadataDir): a relation of a folder with one is made
of the files the log lists, with the statuses it holds, and no listing (MetadataLogFileIndex)."""

_SINK_LOG_IGNORED = "spark.sql.streaming.fileStreamSink.ignoreMetadata"

_BLOCK_SIZE = 32 << 20
"""The block size the log gives each file: the local file system's and s3a's default. A `binaryFile` file is
never split, so it only has to be positive."""


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
        # A run resolves `auto` for its session first (jobs.run.with_limits); other callers get what it allows.
        limit = config.input.max_file_bytes
        self.max_file_bytes = limit if limit is not None else limits.session_memory(spark).max_input_bytes
        self._listing = listing

    @functools.cached_property
    def raw(self) -> DataFrame:
        """The `binaryFile` relation: Spark lists the inputs when it is made (LIST requests, no request per file)."""
        reader = _binary_files(self._spark)
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
        listings where it can (jobs/sources/listing.py), else from a scan of the `binaryFile` relation, which costs a
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

    def with_content(
        self, only: list[Listed] | None = None, scratch: str | None = None, exclude: Sequence[Listed] = ()
    ) -> DataFrame:
        """Files with their bytes; `content` is null for files over max_file_bytes, which are not read, and empty
        for zero-byte files, which are not read either (scans drop them: they are added from the listing).
        `only` restricts the read to these listed files. When they come from the folders' listings and there is
        a `scratch` folder to write to (the run's, removed with its staging), the relation is made of their
        statuses alone (`_relation_of`): the lake is not listed again. Otherwise (path lists: the inputs'
        relation is listed already) the inputs' relation is filtered on the file's metadata, so Spark prunes the
        other files before any byte is read. All files (`only` None): the inputs' relation, listed when made, on
        the driver, less the files in `exclude`."""
        if only and self._listing is not None and scratch is not None and not self._sink_log_ignored():
            raw = self._relation_of(only, scratch)
        else:
            raw = self.raw
        if only is not None:  # whichever relation: a file is read under the key it was selected by, or not at all
            raw = raw.where(F.col("_metadata.file_path").isin([file.file_key for file in only]))
        if exclude:
            raw = raw.where(~F.col("_metadata.file_path").isin([file.file_key for file in exclude]))
        # Two scans, each of the files it needs: filters on `_metadata` fields prune files from the listing when the
        # scan is planned, so neither scan visits the other's files (binaryFile asks the file system for each
        # file it visits, a HEAD request on an object store, before any filter on `length` could skip it).
        small = F.col("_metadata.file_size") <= self.max_file_bytes
        readable = raw.where(small).select(*_file_columns(), "content")
        oversized = raw.where(~small).select(*_file_columns(), F.lit(None).cast("binary").alias("content"))
        content = readable.unionByName(oversized)
        excluded = {file.file_key for file in exclude}
        if zero_byte := [file for file in self._zero_byte_of(only) if file[2] not in excluded]:
            empty = listing.zero_byte_listing(self._spark, zero_byte).drop("file_key")
            content = content.unionByName(empty.withColumn("content", F.lit(bytearray())))
        return content

    def _zero_byte_of(self, only: list[Listed] | None) -> list[listing.ZeroByteFile]:
        """The zero-byte files to give the mapping: of a selection from the folders' listings, those it holds (the
        listing has them; the inputs' relation is never made); else those of the inputs' file index (made and
        listed by then), of the selection if there is one."""
        if only is not None and self._listing is not None:
            return sorted((f.source_file, f.modification_ms, f.file_key) for f in only if f.size == 0)
        wanted = {f.file_key for f in only} if only is not None else None
        return [file for file in self._zero_byte if wanted is None or file[2] in wanted]

    def _relation_of(self, files: list[Listed], scratch: str) -> DataFrame:
        """The `binaryFile` relation of these files, from a streaming file sink's log written for them in
        `scratch`: Spark takes each file's path, size and time from the log, as it does for a sink's output, and
        asks the file system for nothing but the log (a status and an existence check of the folder, a listing
        of the log's folder, one read), whatever the number of files or the size of the lake. Relations of file
        paths instead (`load(paths)`) cost each file an existence check and a `listStatus` (on S3 a HEAD, then
        a LIST and a HEAD), more requests than the lake's listing for a few percent of it (docs/design/performance.md).
        The listing has applied the hidden-name rules and `pathGlobFilter` already."""
        entries = (
            json.dumps(
                {
                    "path": file.file_key,  # SinkFileStatus.path is the path as a URL (Path.toUri), as the key
                    "size": file.size,
                    "isDir": False,
                    "modificationTime": file.modification_ms,
                    "blockReplication": 1,
                    "blockSize": _BLOCK_SIZE,
                    "action": "add",
                },
                separators=(",", ":"),
            )
            for file in sorted(files)
        )
        log = "\n".join(["v1", *entries])  # FileStreamSinkLog version 1: the version line, then one entry a line
        HadoopFS(self._spark).write_bytes(f"{scratch}/{_SINK_LOG}/0", log.encode())
        return _binary_files(self._spark).load(scratch)

    def _sink_log_ignored(self) -> bool:
        """Whether the session reads a sink's output by listing it (then the log would list nothing)."""
        return str(self._spark.conf.get(_SINK_LOG_IGNORED, "false")).lower() == "true"


def _binary_files(spark: SparkSession) -> DataFrameReader:
    """The `binaryFile` reader of both relations. A file deleted after the listing, before its task reads it,
    is skipped rather than failing the run (`ignoreMissingFiles`): the run tells it from the files it selected
    (`jobs/run/stage.py`). `recursiveFileLookup` keeps `name=value` folders from being read as partitions."""
    return spark.read.format("binaryFile").option("recursiveFileLookup", "true").option("ignoreMissingFiles", "true")


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
