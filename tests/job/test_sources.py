"""Inputs: each file is visited by the one scan that needs it (binaryFile asks the file system for every file a
scan visits, a HEAD request per file on an object store, before any filter on `length` can skip it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jobs.config import load_config
from jobs.sources.inputs import open_inputs

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]


def _files_read(plan: object) -> dict[str, int]:
    """`number of files read` of each file scan in an executed plan, by the scan's text."""
    found: dict[str, int] = {}
    stack = [plan]
    while stack:
        node = stack.pop()
        if node.nodeName().startswith("Scan"):  # type: ignore[attr-defined]
            found[node.simpleString(200)] = node.metrics().apply("numFiles").value()  # type: ignore[attr-defined]
        children = node.children()  # type: ignore[attr-defined]
        stack += [children.apply(i) for i in range(children.size())]
    return found


def test_small_and_oversized_files_are_each_scanned_once(spark: SparkSession, tmp_path: Path) -> None:
    sizes = {"a.dcm": 10, "b.dcm": 20, "big.dcm": 5_000, "c.dcm": 30, "huge.dcm": 9_000}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
    config = load_config(inputs=[str(tmp_path)], output=str(tmp_path / "out"), overrides=["input.max_file_bytes=100"])
    content = open_inputs(spark, config).with_content()
    rows = {Path(r.source_file).name: r.content for r in content.collect()}
    assert rows == {name: (b"x" * size if size <= 100 else None) for name, size in sizes.items()}
    scans = _files_read(content._jdf.queryExecution().executedPlan())
    assert sorted(scans.values()) == [2, 3], scans  # not 5 and 5
