"""The built-in sample lake: deterministic bytes, shared patients and studies, and the three bad inputs a
job must record as rejected."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import sr2fhir_synth
from sr2fhir_core import MappingResult, map_sr
from sr2fhir_synth import write_sample_corpus


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    directory = tmp_path_factory.mktemp("lake")
    return directory, write_sample_corpus(directory)


@pytest.fixture(scope="module")
def mapped_lake(lake: tuple[Path, list[Path]]) -> list[MappingResult]:
    return [map_sr(p) for p in lake[1]]


def _tree(directory: Path) -> dict[str, bytes]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return {str(p.relative_to(directory)): p.read_bytes() for p in files}


def _resources(results: list, resource_type: str) -> list[dict]:
    return [res for r in results for res in r.resources if res["resourceType"] == resource_type]


def test_same_seed_gives_identical_bytes(lake: tuple[Path, list[Path]], tmp_path: Path) -> None:
    directory, paths = lake
    again = write_sample_corpus(tmp_path)
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(directory) for p in paths]
    assert _tree(tmp_path) == _tree(directory)


def test_bytes_do_not_depend_on_the_process(lake: tuple[Path, list[Path]], tmp_path: Path) -> None:
    """Spark workers are separate processes with their own string-hash seeds: same bytes there too."""
    directory, _ = lake
    root = str(Path(sr2fhir_synth.__file__).resolve().parent.parent)
    environment = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": root}
    command = [sys.executable, "-m", "sr2fhir_synth", "corpus", str(tmp_path)]
    subprocess.run(command, check=True, env=environment, capture_output=True)
    assert _tree(tmp_path) == _tree(directory)


def test_other_seed_gives_other_reports(lake: tuple[Path, list[Path]], tmp_path: Path) -> None:
    directory, _ = lake
    write_sample_corpus(tmp_path, count=6, seed=1)
    theirs, ours = _tree(tmp_path), _tree(directory)
    assert all(theirs[name] != ours[name] for name in theirs if name.endswith(".dcm") and name in ours)


def test_every_input_is_mapped_or_rejected_for_the_right_reason(
    lake: tuple[Path, list[Path]], mapped_lake: list[MappingResult]
) -> None:
    _, paths = lake
    results = mapped_lake
    outcomes = Counter((r.record.status.value, r.record.reason) for r in results)
    assert outcomes == {
        ("mapped", None): 24,
        ("rejected", "not_dicom"): 1,
        ("rejected", "corrupt"): 1,
        ("rejected", "not_tid1500"): 1,
    }
    assert any(p.suffix == "" for p, r in zip(paths, results, strict=True) if r.mapped)
    assert len({p.parent for p in paths}) >= 6


def test_reports_share_patients_and_studies(mapped_lake: list[MappingResult]) -> None:
    mapped = [r for r in mapped_lake if r.mapped]
    patients = Counter(res["id"] for res in _resources(mapped, "Patient"))
    studies = Counter(res["id"] for res in _resources(mapped, "ImagingStudy"))
    assert len(patients) == 4 and min(patients.values()) >= 4
    assert len(studies) == 6 and min(studies.values()) == 4
    assert len({r.record.sop_instance_uid for r in mapped}) == 24


def test_names_in_the_lake_carry_no_patient_data(
    lake: tuple[Path, list[Path]], mapped_lake: list[MappingResult]
) -> None:
    directory, paths = lake
    mapped = [r for r in mapped_lake if r.mapped]
    patient_ids = {i["value"] for res in _resources(mapped, "Patient") for i in res["identifier"]}
    assert not any(pid in str(p.relative_to(directory)) for p in paths for pid in patient_ids)
