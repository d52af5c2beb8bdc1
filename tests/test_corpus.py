"""The mapping core against the real corpus: six producers' TID 1500 files, negatives and non-DICOM files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
from corpus_manifest import ManifestEntry, read_manifest
from fhir.resources import get_fhir_model_class

from sr2fhir_core import DocumentStatus, MappingResult, RejectionReason, WarningCode, dumps_json, map_sr

pytestmark = pytest.mark.corpus


@pytest.fixture(scope="module")
def manifest(corpus_dir: Path) -> list[ManifestEntry]:
    entries = read_manifest(corpus_dir)
    assert len([e for e in entries if e.section == "real"]) == 21
    return entries


@pytest.fixture(scope="module")
def results(corpus_dir: Path, manifest: list[ManifestEntry]) -> dict[str, MappingResult]:
    return {entry.file: map_sr(corpus_dir / entry.file) for entry in manifest}


def _real(manifest: list[ManifestEntry]) -> list[ManifestEntry]:
    return [e for e in manifest if e.section == "real"]


def test_every_real_file_maps_with_the_manifests_counts(
    manifest: list[ManifestEntry], results: dict[str, MappingResult]
) -> None:
    for entry in _real(manifest):
        result = results[entry.file]
        record = result.record
        assert record.status is DocumentStatus.MAPPED, (entry.file, record)
        assert record.measurement_groups == entry.groups, entry.file
        # The manifest counts items below the root; the record counts the root container too.
        assert record.content_items == entry.content_items + 1, entry.file
        expected = entry.peer_measurements
        if expected is not None:
            assert record.measurements == expected, entry.file
        assert len(result.rows["measurements"]) == record.measurements


def test_numbers_without_values_are_kept_and_explained(
    manifest: list[ManifestEntry], results: dict[str, MappingResult]
) -> None:
    """dcmjs writes NUMs without a Measured Value Sequence; peers drop or crash on them."""
    files = [e for e in _real(manifest) if "Measured Value Sequence" in e.notes or "invalid document tree" in e.notes]
    assert files, "the manifest names dcmjs files whose NUMs lack values"
    for entry in files:
        result = results[entry.file]
        assert result.record.measurements == entry.num_items, entry.file
        absent_rows = [r for r in result.rows["measurements"] if r["value"] is None]
        assert absent_rows, entry.file
        observations = {r["id"]: r for r in result.resources if r["resourceType"] == "Observation"}
        warned_positions = {w.position for w in result.warnings if w.code is WarningCode.VALUE_ABSENT}
        for row in absent_rows:
            observation = observations[row["observation_id"]]
            assert "valueQuantity" not in observation
            reason = observation["dataAbsentReason"]["coding"][0]
            assert reason["system"] == "http://terminology.hl7.org/CodeSystem/data-absent-reason"
            assert row["content_position"] in warned_positions


def test_every_resource_validates_against_the_r5_models(
    manifest: list[ManifestEntry], results: dict[str, MappingResult]
) -> None:
    checked: Counter[str] = Counter()
    for entry in _real(manifest):
        for resource in results[entry.file].resources:
            data = orjson.loads(dumps_json(resource))
            get_fhir_model_class(data["resourceType"]).model_validate(data)
            checked[data["resourceType"]] += 1
    assert {"Patient", "ImagingStudy", "Device", "Observation", "BodyStructure", "ImagingSelection"} <= set(checked)


def test_references_resolve_within_each_result(
    manifest: list[ManifestEntry], results: dict[str, MappingResult]
) -> None:
    for entry in _real(manifest):
        resources = results[entry.file].resources
        ids = {f"{r['resourceType']}/{r['id']}" for r in resources}
        assert len(ids) == len(resources), f"duplicate ids in {entry.file}"
        for reference in _references(resources):
            assert reference in ids, (entry.file, reference)


def _references(value: object) -> list[str]:
    found = []
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            found.append(value["reference"])
        for item in value.values():
            found.extend(_references(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_references(item))
    return found


def test_negatives_are_rejected_with_a_specific_reason(
    manifest: list[ManifestEntry], results: dict[str, MappingResult]
) -> None:
    for entry in manifest:
        if entry.section != "negative":
            continue
        record = results[entry.file].record
        assert record.status is DocumentStatus.REJECTED, entry.file
        expected = RejectionReason.NOT_TID1500 if "SR" in entry.sop_class else RejectionReason.NOT_SR
        assert record.reason == expected.value, (entry.file, record.message)
        assert record.message


def test_non_dicom_files_are_rejected_as_not_dicom(corpus_dir: Path) -> None:
    files = [p for p in corpus_dir.rglob("*") if p.is_file() and p.suffix in (".json", ".md", ".txt")]
    assert files
    for path in files:
        record = map_sr(path).record
        assert record.status is DocumentStatus.REJECTED
        assert record.reason == RejectionReason.NOT_DICOM.value, path


def test_inputs_that_are_not_srs_are_rejected_as_not_sr(corpus_dir: Path) -> None:
    images = sorted((corpus_dir / "inputs-dcmqi").rglob("*.dcm"))
    srs = [p for p in images if p.name == "sr.dcm"]
    for path in images:
        record = map_sr(path).record
        if path in srs:
            assert record.status is DocumentStatus.MAPPED
        else:
            assert record.reason == RejectionReason.NOT_SR.value, path


def test_mapping_is_deterministic(corpus_dir: Path, manifest: list[ManifestEntry]) -> None:
    for entry in _real(manifest)[:8]:
        first, second = map_sr(corpus_dir / entry.file), map_sr(corpus_dir / entry.file)
        assert [dumps_json(r) for r in first.resources] == [dumps_json(r) for r in second.resources]
        assert first.rows == second.rows


def test_shared_resources_get_the_same_id_from_different_srs(corpus_dir: Path) -> None:
    """dcmqi-repo/sr-example_sr.dcm and inputs-dcmqi/sr-example/sr.dcm are the same bytes; the three dcmqi
    tid1500writer outputs share the composite context (same patient and study) but are different SRs."""
    generated = sorted((corpus_dir / "dcmqi-generated").glob("sr-tid1500-example*.dcm"))
    generated += [corpus_dir / "dcmqi-generated" / "sr-tid1500-qualitative.dcm"]
    shared_ids = []
    for path in generated:
        resources = map_sr(path).resources
        shared_ids.append(
            {r["resourceType"]: r["id"] for r in resources if r["resourceType"] in ("Patient", "ImagingStudy")}
        )
    assert all(ids == shared_ids[0] for ids in shared_ids)
    observation_ids = [
        {r["id"] for r in map_sr(path).resources if r["resourceType"] == "Observation"} for path in generated
    ]
    assert not observation_ids[0] & observation_ids[1], "per-document resources must not collide across SRs"


def test_legacy_snomed_rt_codes_become_snomed_ct(corpus_dir: Path) -> None:
    """PixelMed (2017) writes SRT codes: Finding Site G-C0E3 with value T-71000 Kidney, Length G-D7FE."""
    result = map_sr(corpus_dir / "tid1500-fhir" / "rsna2018_dataset4__1.dcm")
    row = result.rows["measurements"][0]
    assert (row["measurement_code"], row["measurement_system"]) == ("410668003", "http://snomed.info/sct")
    assert (row["finding_site_code"], row["finding_site_system"]) == ("64033007", "http://snomed.info/sct")


def test_messages_and_warnings_carry_no_patient_identity(
    corpus_dir: Path, manifest: list[ManifestEntry], results: dict[str, MappingResult]
) -> None:
    import pydicom

    for entry in manifest:
        result = results[entry.file]
        dataset = pydicom.dcmread(corpus_dir / entry.file, stop_before_pixels=True, force=True)
        identity = {
            str(dataset.get("PatientName", "")),
            str(dataset.get("PatientID", "")),
            str(dataset.get("PatientBirthDate", "")),
        }
        identity = {v for v in identity if len(v) > 2}
        texts = [result.record.message or ""] + [w.message for w in result.warnings]
        for text in texts:
            for value in identity:
                assert value not in text, entry.file
