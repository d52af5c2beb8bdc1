"""The FHIR NDJSON export in files of bounded size: a small bound forces every type into several files; the
files, their counts and their bytes must be those of one file per type cut differently, and the same twice."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sr2fhir_synth import write_sample_corpus

from .helpers import export_files, export_lines, run_job

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytestmark = [pytest.mark.spark]

BOUND = 3
NAME = re.compile(r"^([A-Za-z]+)\.(\d{5})\.ndjson$")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample lake plus a copy of it: every resource comes at least twice, from two files."""
    root = tmp_path_factory.mktemp("ndjson") / "lake"
    write_sample_corpus(root / "a", count=6)
    shutil.copytree(root / "a", root / "b")
    return root


def _directory_files(summary: dict) -> dict[str, bytes]:
    """The export folder's files (not the local file system's hidden .crc checksum files)."""
    directory = Path(summary["fhir"]["directory"].removeprefix("file://"))
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if not p.name.startswith(".")}


def test_a_small_bound_splits_types_into_files_deduplicated_and_deterministic(
    spark: SparkSession, lake: Path, tmp_path: Path
) -> None:
    fhir = pytest.importorskip("fhir.resources")
    bounded = [f"fhir.max_resources_per_file={BOUND}"]
    split = run_job(spark, [lake], tmp_path / "split", overrides=bounded)
    again = run_job(spark, [lake], tmp_path / "again", overrides=bounded)
    whole = run_job(spark, [lake], tmp_path / "whole")

    files = export_files(split)
    manifest = json.loads(Path(split["fhir"]["manifest"].removeprefix("file://")).read_text())
    numbers: dict[str, list[int]] = {}
    for entry in manifest["output"]:
        name = Path(entry["url"]).name
        match = NAME.match(name)
        assert match is not None and match.group(1) == entry["type"], name
        numbers.setdefault(entry["type"], []).append(int(match.group(2)))
        assert 0 < entry["count"] == len(files[name]) <= BOUND, name
        resources = [json.loads(line) for line in files[name]]
        assert {r["resourceType"] for r in resources} == {entry["type"]}, name
        assert [r["id"] for r in resources] == sorted(r["id"] for r in resources), name
        model = fhir.get_fhir_model_class(entry["type"])
        for resource in resources:
            model.model_validate(resource)
    assert all(n == list(range(len(n))) for n in numbers.values())
    # Every type with more resources than the bound is split, into as many files as it needs or a few more.
    for resource_type, count in split["resources"].items():
        assert len(numbers[resource_type]) >= -(-count // BOUND), resource_type
    assert max(len(n) for n in numbers.values()) > 1

    # Deduplicated across files: each (type, id) once, and the same lines as one file per type.
    lines = export_lines(split)
    ids = Counter((t, json.loads(line)["id"]) for t, type_lines in lines.items() for line in type_lines)
    assert max(ids.values()) == 1
    assert sum(split["resources_before_dedup"].values()) >= 2 * len(ids)
    whole_lines = export_lines(whole)
    assert {t: sorted(v) for t, v in lines.items()} == {t: sorted(v) for t, v in whole_lines.items()}
    assert split["resources"] == whole["resources"]
    assert all(len(names) == 1 for names in _types(export_files(whole)).values())

    # Deterministic: the same file names and bytes in another run; only the manifest's run-specific fields differ.
    first, second = _directory_files(split), _directory_files(again)
    assert first.keys() == second.keys()
    assert {n: b for n, b in first.items() if n != "manifest.json"} == {
        n: b for n, b in second.items() if n != "manifest.json"
    }
    second_manifest = json.loads(second["manifest.json"])
    assert [(e["type"], Path(e["url"]).name, e["count"]) for e in manifest["output"]] == [
        (e["type"], Path(e["url"]).name, e["count"]) for e in second_manifest["output"]
    ]
    assert all(NAME.match(name) for name in first if name != "manifest.json")


def _types(files: dict[str, list[str]]) -> dict[str, list[str]]:
    by_type: dict[str, list[str]] = {}
    for name in files:
        by_type.setdefault(name.split(".")[0], []).append(name)
    return by_type
