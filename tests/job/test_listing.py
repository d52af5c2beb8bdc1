"""The listing from folder listings (jobs/sources/listing.py) against the `binaryFile` scan's listing it replaces: the
same files with the same values, row for row, over a tree of the names Spark's rules treat specially, and the
zero-byte files that the scan drops besides."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from jobs.config import load_config
from jobs.sources import listing
from jobs.sources.inputs import InputError, Inputs, Listed, listed_struct, open_inputs
from jobs.spark.session import apply_runtime_settings

from .helpers import BUCKET, run_job, s3_settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

pytestmark = [pytest.mark.spark]

TREE = (
    "a.dcm",
    "sub/b.dcm",
    "sub/deep/c",
    "sub/_hid/in-hidden-folder",
    "sub/.dot/in-dot-folder",
    "_hidden/x",
    ".dot/y",
    "_a=b/in-partition-like-folder",  # `_` with `=` is not hidden
    "_a=1",
    "_x",
    ".y",
    "._metadata",
    "empty",  # zero-byte files (ZERO_BYTE): scans skip them, the job lists them
    "sub/deep/zero.dcm",
    "_hidden/zero",
    ".zero",
    "2024/02/zero.dcm",
    "ünï/zéro #1.dcm",
    "f._COPYING_",
    "d._COPYING_/in-copying-folder",
    "_metadata",  # listed by Spark, dropped by the scan
    "_common_metadata",
    "_metadata_folder/w",  # kept: `_metadata…` folders are not hidden
    "sp ace/f%20 x.dcm",
    "ünï/ç.dcm",
    "q#x?.dcm",
    "[br]{c}*.dcm",
    "\u00a0nbsp",
    "tab\tx",
    "ctl\u0085x",
    "odd/a+b&c=d;e,f@g$:h.dcm",  # a colon: Hadoop globs over this folder fail, listings do not
    "back\\slash",
    "2024/01/jan.dcm",
    "2024/02/feb.dcm",
    "2024/02/_skip/hidden.dcm",
    "2024/_03/not-hidden-below-a-glob-root.dcm",
    "2024/notes.txt",
)


ZERO_BYTE = {"empty", "sub/deep/zero.dcm", "_hidden/zero", ".zero", "2024/02/zero.dcm", "ünï/zéro #1.dcm"}


def _write_tree(root: Path, *, zero_bytes: bool) -> Path:
    for number, name in enumerate(TREE):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"" if zero_bytes and name in ZERO_BYTE else b"x" * (number + 1))
        os.utime(path, ns=(1_700_000_000_123_456_789 + number, 1_700_000_000_123_456_789 + number * 1_000_003))
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_tree(tmp_path_factory.mktemp("lake"), zero_bytes=True)


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree with no zero-byte file: which of them a scan would read were they not empty."""
    return _write_tree(tmp_path_factory.mktemp("filled"), zero_bytes=False)


def _inputs(spark: SparkSession, inputs: list[str], tmp: Path, overrides: tuple[str, ...] = ()) -> Inputs:
    config = load_config(inputs=inputs, output=str(tmp / "out"), overrides=list(overrides))
    return open_inputs(spark, config)


def _binary_file_listing(inputs: Inputs) -> DataFrame:
    """Today's listing: the `binaryFile` relation's scan (what `Inputs.files` falls back to)."""
    from pyspark.sql import functions as F

    return inputs.raw.select(
        F.col("path").alias("source_file"),
        F.col("length").alias("size"),
        F.col("modificationTime").alias("modification_time"),
        F.col("_metadata.file_path").alias("file_key"),
    )


CASES = {
    "folder": (["{root}"], ()),
    "folder with a slash": (["{root}/"], ()),
    "folder as file: URI": (["file://{root}"], ()),
    "glob filter": (["{root}"], ("input.path_glob_filter='*.dcm'",)),
    "glob filter with braces": (["{root}"], ("input.path_glob_filter='{a,b,c}*'",)),
    "glob pattern": (["{root}/2024/*/"], ()),
    "glob pattern of files": (["{root}/2024/0?/*.dcm"], ()),
    "glob pattern matching hidden": (["{root}/2024/_*"], ()),
    "files": (["{root}/a.dcm", "{root}/_x", "{root}/_a=1", "{root}/empty", "{root}/sp ace/f%20 x.dcm"], ()),
    "hidden folder as input": (["{root}/_hidden"], ()),
    "overlapping inputs": (["{root}", "{root}/sub", "{root}/sub/_hid", "{root}/a.dcm"], ()),
    "several folders": (["{root}/sub", "{root}/2024", "{root}/ünï"], ()),
}


def _relative(paths: list[str], root: Path) -> set[str]:
    return {path.split(f"{root}/", 1)[1] for path in paths}


@pytest.mark.parametrize("case", CASES)
def test_the_listing_equals_the_binary_file_listing(
    spark: SparkSession, tree: Path, filled: Path, tmp_path: Path, case: str
) -> None:
    """The new listing is the scan's row for row, plus the zero-byte files the scan would read were they not empty
    (the scan of a copy of the tree without zero-byte files tells which); the fallback listing (the scan and the
    zero-byte files of its file index) holds the same rows."""
    uris, overrides = CASES[case]
    inputs = _inputs(spark, [uri.format(root=tree) for uri in uris], tmp_path, overrides)
    assert inputs._listing is not None, "the listing comes from the folders' listings"
    new = inputs.files
    old = _binary_file_listing(inputs)
    assert new.dtypes == old.dtypes
    new_rows, old_rows = sorted(new.collect()), sorted(old.collect())
    assert old_rows, "the case lists some files"
    assert [r for r in new_rows if r.size > 0] == old_rows
    zero_byte = [r for r in new_rows if r.size == 0]
    twin = _binary_file_listing(_inputs(spark, [uri.format(root=filled) for uri in uris], tmp_path, overrides))
    expected = _relative([r.source_file for r in twin.collect()], filled) & ZERO_BYTE
    assert _relative([r.source_file for r in zero_byte], tree) == expected
    index = listing.zero_byte_files(spark, inputs.raw)
    assert index is not None
    assert sorted(listing.zero_byte_listing(spark, index).collect()) == zero_byte


def _selected(inputs: Inputs) -> dict[str, Listed]:
    """The listed files as a run selects them, by `source_file`."""
    rows = inputs.files.select("source_file", listed_struct().alias("file")).collect()
    return {row.source_file: Listed(*row.file) for row in rows}


def _read(content: DataFrame) -> list[Row]:
    return sorted(content.collect())


def _indexes(content: DataFrame) -> set[str]:
    """The kinds of file index the scans of a DataFrame read from."""
    return set(re.findall(r"Location: (\w+)\(", content._jdf.queryExecution().executedPlan().toString()))


def test_the_selected_files_scan_reads_what_the_roots_scan_reads(
    spark: SparkSession, tree: Path, tmp_path: Path
) -> None:
    """The content scan of a run's selection is made from the selected files' statuses alone (a sink log in the
    run's scratch folder), not from the roots: the same files under the same keys, with the same size, time and
    bytes, whatever their names (all but a name with a colon, which Hadoop's local file system cannot open)."""
    inputs = _inputs(spark, [str(tree)], tmp_path)
    listed = {path: file for path, file in _selected(inputs).items() if ":" not in path.removeprefix("file:")}
    selected = sorted(listed.values())
    odd = [file for path, file in sorted(listed.items()) if not path.isascii() or any(c in path for c in " %#?[{*\\=")]
    assert len(odd) >= 8, odd
    scratch = str(tmp_path / "selected")
    for only in (selected, odd[:3]):
        new = inputs.with_content(only, scratch=scratch)
        assert _indexes(new) == {"MetadataLogFileIndex"}, "no listing of the roots"
        old = inputs.with_content(only)  # no scratch folder: the roots' relation, filtered
        assert _indexes(old) == {"InMemoryFileIndex"}
        rows = _read(new)
        assert rows == _read(old)
        assert [row.source_file for row in rows] == sorted(path for path, file in listed.items() if file in only)
        assert all(row.content == b"x" * row.size for row in rows)
    inputs.max_file_bytes = 12  # the files over it are listed with null content and not read, as from the roots
    rows = _read(inputs.with_content(selected, scratch=scratch))
    assert rows == _read(inputs.with_content(selected))
    assert {row.content is None for row in rows} == {True, False}
    assert all((row.content is None) == (row.size > 12) for row in rows)
    zero_byte = [row for row in _read(inputs.with_content(odd, scratch=scratch)) if row.size == 0]
    assert [(row.source_file, row.content) for row in zero_byte] == [(f"file:{tree}/ünï/zéro #1.dcm", b"")]


def test_missing_inputs_are_input_errors(spark: SparkSession, tree: Path, tmp_path: Path) -> None:
    for uri in (f"{tree}/no-such-folder", f"{tree}/no-such-*", f"{tree}/2024/*/none.dcm"):
        with pytest.raises(InputError, match=r"cannot list the inputs: .*does not exist"):
            _inputs(spark, [str(tree), uri], tmp_path)


def test_path_lists_keep_the_binary_file_listing(spark: SparkSession, tree: Path, tmp_path: Path) -> None:
    paths = tmp_path / "paths.txt"
    paths.write_text(f"{tree}/a.dcm\n{tree}/sub\n{tree}/empty\n")
    config = load_config(inputs=[], input_lists=[str(paths)], output=str(tmp_path / "out"))
    inputs = open_inputs(spark, config)
    assert inputs._listing is None
    listed = {Path(r.source_file).name: r.size for r in inputs.files.collect()}
    assert listed == {"a.dcm": 1, "b.dcm": 2, "c": 3, "empty": 0, "zero.dcm": 0}
    content = {Path(r.source_file).name: r.content for r in inputs.with_content().collect()}
    assert content == {"a.dcm": b"x", "b.dcm": b"xx", "c": b"xxx", "empty": b"", "zero.dcm": b""}


def _s3_requests(spark: SparkSession, uri: str) -> dict[str, int]:
    """hadoop-aws's request counters of the file system instance serving `uri` (local mode: the tasks' too). Its
    own statistics (`getIOStatistics`): the JVM-wide `getStorageStatistics` follow only the first s3a file system
    the JVM made, another bucket's when a test of another module ran first in this process."""
    jvm = spark.sparkContext._jvm
    jsc = spark.sparkContext._jsc
    assert jvm is not None and jsc is not None
    path = jvm.org.apache.hadoop.fs.Path(uri)
    counters = path.getFileSystem(jsc.hadoopConfiguration()).getIOStatistics().counters()
    return {str(name): int(counters.get(name)) for name in counters.keySet()}


PAGED = "paged"
"""A bucket whose s3a listings page by 10 keys (S3's own pages hold 1,000): a listing's cost shows on a small lake."""


def test_a_run_on_s3_lists_the_lake_once(spark: SparkSession, s3_endpoint: tuple[str, Any], tmp_path: Path) -> None:
    """A run that finds nothing new lists the folders (LIST requests) and asks for no file's status (HEAD); one
    that finds a few new files lists the lake no more than that (its content scan is made from the selection, not
    from the roots) and asks for the new files alone. The scans read the same, odd names included."""
    endpoint, client = s3_endpoint
    client.create_bucket(Bucket=PAGED)
    names = [f"{number % 4}/file {number}.bin" for number in range(56)]
    names += ["odd/sp ace %20 ç\u00a0.bin", "odd/q#x?[b]{c}.bin", "odd/_a=1/z", "_hidden/x", "odd/.dot", "empty"]
    for number, name in enumerate(names):
        client.put_object(Bucket=PAGED, Key=f"count/{name}", Body=b"" if name == "empty" else b"x" * (number + 1))
    files = len(names) - 2  # the zero-byte file is listed, the hidden two are not
    new = ["1/new 1.bin", "odd/new %41 ü#[x]*.bin", "2/a=b new?.bin"]  # in listed folders
    uri = f"s3a://{PAGED}/count/"
    settings = [*s3_settings(endpoint), f"spark.settings.spark.hadoop.fs.s3a.bucket.{PAGED}.paging.maximum=10"]
    output = tmp_path / "out"  # on local disk: the counts are the lake's requests alone
    config = load_config(inputs=[uri], output=str(tmp_path), overrides=settings)
    apply_runtime_settings(spark, config.spark)
    inputs = open_inputs(spark, config)
    listed = sorted(inputs.files.collect())
    assert [r for r in listed if r.size > 0] == sorted(_binary_file_listing(inputs).collect())
    assert [r.source_file for r in listed if r.size == 0] == [f"{uri}empty"]

    def requests(run: int) -> dict[str, int]:
        before = _s3_requests(spark, uri)
        summary = run_job(spark, [uri], output, overrides=settings)
        assert summary["files"]["found"] == files + (len(new) if run == 2 else 0)
        assert summary["files"]["processed"] == [files, 0, len(new)][run]
        after = _s3_requests(spark, uri)
        return {
            name: after.get(name, 0) - before.get(name, 0)
            for name in ("object_list_request", "object_metadata_request", "stream_read_opened")
        }

    first, unchanged = requests(0), requests(1)
    for number, name in enumerate(new):
        client.put_object(Bucket=PAGED, Key=f"count/{name}", Body=b"n" * (number + 1))
    with_new = requests(2)
    print("S3 requests, first run:", first, "unchanged:", unchanged, "3 new:", with_new)
    # The first run reads every file (a status request in the content scan and one to open it); the next reads
    # none. The requests left are per input and per folder (the lister checks each folder it lists), not per file.
    assert files - 1 <= first["object_metadata_request"] <= 2 * files + 10, first  # the empty file: none
    assert unchanged["object_metadata_request"] <= 10, unchanged
    assert unchanged["object_list_request"] <= 20, unchanged
    # The new files' run: the listing's LIST requests, no listing of the roots.
    assert with_new["object_list_request"] == unchanged["object_list_request"], (unchanged, with_new)
    assert with_new["stream_read_opened"] == len(new), with_new
    assert with_new["object_metadata_request"] <= unchanged["object_metadata_request"] + 2 * len(new) + 1, with_new

    inputs = open_inputs(spark, config)
    selected = sorted(_selected(inputs).values())
    scratch = f"s3a://{BUCKET}/count-selected"  # the sink log on S3 too
    assert _indexes(inputs.with_content(selected, scratch=scratch)) == {"MetadataLogFileIndex"}
    rows = _read(inputs.with_content(selected, scratch=scratch))
    assert rows == _read(inputs.with_content(selected))
    assert len(rows) == files + len(new)
