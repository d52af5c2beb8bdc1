"""`sr2fhir map` writes valid Bundles using the core alone."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fhir.resources.bundle import Bundle

from jobs.cli import main

pytestmark = pytest.mark.corpus


def test_map_writes_a_valid_bundle_per_file(corpus_dir: Path, tmp_path: Path) -> None:
    files = [
        corpus_dir / "hl7-dicom-sr-ig" / "Example-MeasurementReport.dcm",
        corpus_dir / "dcmqi-generated" / "sr-tid1500-ct-liver-example.dcm",
    ]
    assert main(["map", *map(str, files), "-o", str(tmp_path)]) == 0
    for path in files:
        data = orjson.loads((tmp_path / f"{path.name}.json").read_bytes())
        bundle = Bundle.model_validate(data)
        assert bundle.type == "collection"
        assert bundle.entry is not None
        types = set()
        for e in bundle.entry:
            assert e.resource is not None
            types.add(e.resource.get_resource_type())
        assert types >= {"Patient", "Observation", "Device"}


def test_map_prints_one_bundle_and_reports_rejections(
    corpus_dir: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert main(["map", str(corpus_dir / "dcmjs" / "sample-sr_48498508.dcm")]) == 0
    out = capsysbinary.readouterr().out
    assert orjson.loads(out)["resourceType"] == "Bundle"
    assert main(["map", str(corpus_dir / "negative" / "CT_small.dcm")]) == 1
    assert b"not_sr" in capsysbinary.readouterr().err
