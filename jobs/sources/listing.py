"""The inputs' listing from directory listings alone: no request per file.

Spark's `binaryFile` scan asks the file system for the status of every file it visits (`getFileStatus`, a HEAD
request on an object store), even when it reads nothing but the path, size and time that the listing (LIST
requests, 1,000 keys each) already had. So the listing comes from Delta's parallel lister instead
(`DeltaFileOperations.recursiveListDirs`, what VACUUM lists a table with): Spark tasks list the folders and
return each entry's path, size, time and kind as a Dataset, which stays in the cluster. The rules by which
Spark's listing picks the files a scan reads are applied to it as column expressions (`visible`), so the two
listings hold the same files with the same values (tests/job/test_listing.py compares them row for row), but
for one rule kept out on purpose: a scan drops zero-byte files, which this listing keeps, so that each gets a
ledger row (`rejected/empty_file`) like any other input.

Delta's lister is internal API: when it is missing (or the session has no JVM), or the inputs come from path
lists (each a file; checking them one by one on the driver would be slower than Spark's parallel listing), the
job keeps the `binaryFile` listing, and takes the zero-byte files its scan drops from the relation's file index
(`zero_byte_files`), which holds them from the same listing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

log = logging.getLogger("sr2fhir")

GLOB = re.compile(r"[{}\[\]*?\\]")
"""The characters that make Spark treat an input as a glob pattern (SparkHadoopUtil.isGlobPath)."""

_LISTED = "path string, length long, isDir boolean, modificationTime long"
"""Delta's SerializableFileStatus: the columns of the lister's Dataset (time in milliseconds)."""


_DOTALL = {"com.google.re2j.Pattern": 2, "java.util.regex.Pattern": 0x20}
"""The DOTALL flag of the regex classes GlobPattern compiles to (re2j, maybe shaded, or java.util.regex)."""


class MissingInput(ValueError):
    """An input that names no file or folder (a glob that matches nothing included)."""


@dataclass(frozen=True)
class Roots:
    """The inputs resolved, as Spark's file index resolves them: globs expanded, each a folder or a file."""

    folders: tuple[str, ...]
    files: tuple[tuple[str, int, int], ...]
    """(path, size, time in milliseconds) of the inputs that are files, from their status."""


def resolve(spark: SparkSession, uris: list[str]) -> Roots:
    """One status request per input (a LIST per glob level for a pattern), none per file under it."""
    jvm = spark.sparkContext._jvm
    jsc = spark.sparkContext._jsc
    assert jvm is not None and jsc is not None, "callers check for a classic session"
    conf = jsc.hadoopConfiguration()
    folders: dict[str, None] = {}
    files: dict[str, tuple[str, int, int]] = {}
    for uri in uris:
        path = jvm.org.apache.hadoop.fs.Path(uri)
        fs = path.getFileSystem(conf)
        qualified = fs.makeQualified(path)
        if GLOB.search(uri):
            statuses = list(fs.globStatus(qualified) or [])
        else:
            try:
                statuses = [fs.getFileStatus(qualified)]
            except Py4JJavaError as exc:
                if exc.java_exception.getClass().getName() != "java.io.FileNotFoundException":
                    raise
                statuses = []
        if not statuses:
            raise MissingInput(f"Path does not exist: {qualified.toString()}")
        for status in statuses:
            name = str(status.getPath().toString())
            if status.isDirectory():
                folders[name] = None
            else:
                files[name] = (name, int(status.getLen()), int(status.getModificationTime()))
    return Roots(folders=tuple(folders), files=tuple(files.values()))


def glob_regex(spark: SparkSession, glob_filter: str) -> str:
    """The Java regex (for `rlike`) that a file name matches when it passes `input.path_glob_filter`, as Spark's
    `pathGlobFilter` applies it: Hadoop's GlobFilter, which compiles the glob with DOTALL (`?` and `*` match line
    terminators, U+0085 included) and matches the whole name (`\\z`, not `$`, which also matches before a final
    line break)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None, "a classic session"
    compiled = jvm.org.apache.hadoop.fs.GlobPattern(glob_filter).compiled()
    dotall = _DOTALL[str(compiled.getClass().getName()).removeprefix("org.apache.hadoop.shaded.")]
    flags = "(?s)" if compiled.flags() & dotall else ""
    return rf"{flags}\A(?:{compiled.pattern()})\z"


def _skipped(name: Column) -> Column:
    """HadoopFSUtils.shouldFilterOutPathName: the names Spark's listing skips, folders and files alike."""
    hidden = (name.startswith("_") & ~name.contains("=")) | name.startswith(".") | name.endswith("._COPYING_")
    return hidden & ~(name.startswith("_common_metadata") | name.startswith("_metadata"))


def _data_file(name: Column) -> Column:
    """PartitioningAwareFileIndex.isDataPath, which a scan applies to the listed files on top."""
    return ~((name.startswith("_") & ~name.contains("=")) | name.startswith("."))


def visible(roots: Roots, glob_regex: str | None) -> Column:
    """True for a listed entry that a recursive `binaryFile` scan of the roots reads, or would read were it not
    empty (scans drop zero-byte files; the job reports them): a file whose name passes the hidden-name rules and
    the glob filter, and whose folders below some root all pass the hidden-name rules (a folder given as an input
    is read whatever its name)."""
    path, name = F.col("path"), F.regexp_extract("path", r"([^/]*)$", 1)
    under_a_root = F.lit(False)
    for root in roots.folders:
        prefix = root.rstrip("/") + "/"
        folders = F.split(F.substring(path, len(prefix) + 1, 1 << 30), "/")
        folders = F.slice(folders, 1, F.size(folders) - 1)
        under_a_root = under_a_root | (path.startswith(prefix) & F.forall(folders, lambda c: ~_skipped(c)))
    root_file = path.isin([file[0] for file in roots.files]) if roots.files else F.lit(False)
    file = ~F.col("isDir") & ~_skipped(name) & _data_file(name)
    if glob_regex is not None:
        file = file & name.rlike(glob_regex)
    return file & (under_a_root | root_file)


def _overlap(roots: Roots) -> bool:
    """Whether a file can be listed twice: a root inside a folder root."""
    prefixes = [root.rstrip("/") + "/" for root in roots.folders]
    paths = [*roots.folders, *(file[0] for file in roots.files)]
    return any(path != prefix[:-1] and path.startswith(prefix) for path in paths for prefix in prefixes)


def list_files(spark: SparkSession, roots: Roots, glob_filter: str | None) -> DataFrame | None:
    """source_file, size, modification_time and file_key (as the scan's `_metadata.file_path`) of the files a
    recursive `binaryFile` scan of the roots reads, and of the zero-byte files it drops; None when Delta's lister
    is not there to call."""
    jvm = spark.sparkContext._jvm
    jsc = spark.sparkContext._jsc
    assert jvm is not None and jsc is not None, "callers check for a classic session"
    try:
        operations = jvm.org.apache.spark.sql.delta.util.DeltaFileOperations
        to_seq = jvm.org.apache.spark.api.python.PythonUtils.toSeq
        conf = jvm.org.apache.spark.util.SerializableConfiguration(jsc.hadoopConfiguration())
        broadcast = jsc.sc().broadcast(conf, jvm.scala.reflect.ClassTag.apply(conf.getClass()))
        # No name is hidden from the lister (an empty Set is a String => Boolean that is always false): its own
        # rule (`_` or `.` first) differs from Spark's, which `visible` applies instead.
        nothing = to_seq([]).toSet()
        listed = operations.recursiveListDirs(
            spark._jsparkSession,
            to_seq(list(roots.folders)).toList(),
            broadcast,
            nothing,
            nothing,
            getattr(operations, "recursiveListDirs$default$6")(),
            True,
        )
    except (Py4JError, TypeError) as exc:  # TypeError: a class missing from the JVM is a package, not callable
        log.info("listing: Delta's lister is not available (%s); the binaryFile scan lists the inputs", exc)
        return None
    entries = DataFrame(listed.toDF(), spark) if roots.folders else spark.createDataFrame([], _LISTED)
    if roots.files:
        entries = entries.unionByName(spark.createDataFrame([(*f[:2], False, f[2]) for f in roots.files], _LISTED))
    regex = glob_regex(spark, glob_filter) if glob_filter else None
    files = entries.where(visible(roots, regex))
    if _overlap(roots):
        files = files.dropDuplicates(["path"])
    return _as_files(files)


def _as_files(entries: DataFrame) -> DataFrame:
    """The listing's columns from the lister's (`_LISTED`)."""
    return entries.select(
        F.col("path").alias("source_file"),
        F.col("length").alias("size"),
        F.timestamp_millis("modificationTime").alias("modification_time"),
        # The scan's key for a file is its path as a URL (Path.toUri): the same JVM code computes it here.
        F.call_function("reflect", F.lit("org.apache.spark.paths.SparkPath"), F.lit("fromPathString"), "path").alias(
            "file_key"
        ),
    )


ZeroByteFile = tuple[str, int, str]
"""(path, time in milliseconds, file_key) of a zero-byte file."""


def zero_byte_files(spark: SparkSession, relation: DataFrame) -> list[ZeroByteFile] | None:
    """The zero-byte files of a `binaryFile` relation's inputs: the files its scan would read were they not empty.
    Spark's file index lists them (it drops them only when a scan asks for the files to read,
    PartitioningAwareFileIndex.listFiles), so they come from the listing the relation has made already, with no
    request to the file system. The index has applied the hidden-name rules and the glob filter; the data-file
    rule (`_metadata` files) is applied here. The files the scan drops are found in the JVM (a difference of two
    sequences), so Python looks at those alone, a few calls each. None without a JVM (Spark Connect) or a file
    index: the caller's listing then lacks them."""
    try:
        index = relation._jdf.queryExecution().analyzed().relation().location()
        jvm = spark.sparkContext._jvm
        assert jvm is not None, "a DataFrame with a JVM plan has a JVM"
        nothing = jvm.org.apache.spark.api.python.PythonUtils.toSeq([])
        status_class = jvm.java.lang.Class.forName("org.apache.hadoop.fs.FileStatus")
        statuses = index.allFiles().toArray(jvm.scala.reflect.ClassTag.apply(status_class))
        # The scan's files are FileStatusWithMetadata (equal when status and metadata are): the index's statuses
        # wrapped alike (empty metadata, as the index gives them), less the scan's. Were the metadata to differ,
        # the difference would hold every file: slower, as correct.
        dropped = jvm.org.apache.spark.sql.execution.datasources.PartitionDirectory.apply(
            jvm.org.apache.spark.sql.catalyst.InternalRow.empty(), statuses
        ).files()
        read = index.listFiles(nothing, nothing)
        for number in range(read.size()):
            dropped = dropped.diff(read.apply(number).files())
        dropped_statuses = [dropped.apply(number).fileStatus() for number in range(dropped.size())]
    except (Py4JError, AttributeError) as exc:  # AttributeError: a Connect DataFrame has no `_jdf`
        log.warning("listing: no file index to read (%s): zero-byte files are not listed", type(exc).__name__)
        return None
    found: list[ZeroByteFile] = []
    for status in dropped_statuses:
        if status.getLen() == 0 and _is_data_name(str(status.getPath().getName())):
            path = str(status.getPath().toString())
            # The scan's key (`_metadata.file_path`), as `_as_files` computes it with `reflect`.
            key = str(jvm.org.apache.spark.paths.SparkPath.fromPathString(path).toString())
            found.append((path, int(status.getModificationTime()), key))
    return sorted(found)


def _is_data_name(name: str) -> bool:
    """`_data_file` on a name in Python."""
    return not ((name.startswith("_") and "=" not in name) or name.startswith("."))


def zero_byte_listing(spark: SparkSession, files: list[ZeroByteFile]) -> DataFrame:
    """Zero-byte files in the listing's columns."""
    rows = [(path, 0, time, key) for path, time, key in files]
    listed = spark.createDataFrame(rows, "source_file string, size long, time long, file_key string")
    return listed.select("source_file", "size", F.timestamp_millis("time").alias("modification_time"), "file_key")
