"""Files gone from the lake (`incremental.removed_files: delete`): which ledger files a run can tell are gone.

A file counts as removed when its latest ledger rows are not `removed` already, and it lies under an input given
as a folder, matches `input.path_glob_filter`, is not in this run's listing and does not exist. Each condition
guards a way a present file can be missing from one listing: a run given another part of the lake (other
folders, a glob or a path list, which name no folder to compare with), a narrower glob filter, a listing that
an object store served stale. Only the last check touches the file system, once per remaining candidate.
"""

from __future__ import annotations

import functools
import logging
import operator
import re

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from ..config import JobConfig
from ..sources import listing
from ..spark.fs import HadoopFS

log = logging.getLogger("sr2fhir")

_GLOB = re.compile(r"[*?\[\]{}\\]")
"""Hadoop glob syntax: such an input names a pattern, not a place whose files can be missed."""


def input_folders(fs: HadoopFS, inputs: tuple[str, ...]) -> list[str]:
    """The qualified folders among the inputs, each with a trailing slash (a prefix of the files under it)."""
    return [fs.qualify(uri).rstrip("/") + "/" for uri in inputs if not _GLOB.search(uri) and fs.is_dir(uri)]


def candidates(spark: SparkSession, fs: HadoopFS, config: JobConfig) -> Column | None:
    """Over a join of the listing and the ledger's file states (`Ledger.file_states`): true for a known file that
    the listing lacks and that lies where this run looked. None when the run looked at no folder."""
    where = looked_at(spark, fs, config)
    if where is None:
        log.info("removed files: no input names a folder (only files, globs or path lists), so none are judged gone")
        return None
    return F.col("file_key").isNull() & ~F.col("known_removed") & where


def looked_at(spark: SparkSession, fs: HadoopFS, config: JobConfig) -> Column | None:
    """True for a `source_file` this run's listing would have shown had it existed: under an input folder and
    matching `input.path_glob_filter`. None when the run looked at no folder."""
    folders = input_folders(fs, config.inputs)
    if not folders:
        return None
    where = functools.reduce(operator.or_, [F.col("source_file").startswith(folder) for folder in folders])
    if config.input.path_glob_filter:  # the filter Spark applied to file names
        name = F.regexp_extract("source_file", r"([^/]*)$", 1)
        where = where & name.rlike(listing.glob_regex(spark, config.input.path_glob_filter))
    return where


def confirmed(spark: SparkSession, fs: HadoopFS, candidates: list[tuple[str, str]]) -> DataFrame | None:
    """(source_file, known_run_id) of the candidates that do not exist, or None when every one does."""
    gone = sorted((file, run_id) for file, run_id in candidates if not fs.exists(file))
    if not gone:
        return None
    return spark.createDataFrame(gone, "source_file string, known_run_id string")
