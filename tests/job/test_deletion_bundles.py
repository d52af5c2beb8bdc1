"""The deletion Bundles of the bulk export (no Spark): their form, their order and their bound."""

from __future__ import annotations

import json

import pytest

from jobs.sinks import ndjson


def test_deletion_bundles_are_transactions_of_bounded_deletes_in_reference_order() -> None:
    bundle_model = pytest.importorskip("fhir.resources.bundle").Bundle
    ids = [f"{n:04d}" for n in range(ndjson.DELETES_PER_BUNDLE + 1)]
    deleted = [("Patient", "p"), ("ServiceRequest", "r"), ("ImagingStudy", "s"), ("BodyStructure", "b")]
    deleted += [("Observation", i) for i in reversed(ids)]
    lines = ndjson.deletion_bundles(deleted)
    bundles = [json.loads(line) for line in lines]
    assert [len(b["entry"]) for b in bundles] == [ndjson.DELETES_PER_BUNDLE, 5]
    urls = [e["request"]["url"] for b in bundles for e in b["entry"]]
    # What references a resource goes before it: Observations first, the study before its request, the Patient last.
    shared = ["BodyStructure/b", "ImagingStudy/s", "ServiceRequest/r", "Patient/p"]
    assert urls == [f"Observation/{i}" for i in ids] + shared
    for bundle in bundles:
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
        assert {e["request"]["method"] for e in bundle["entry"]} == {"DELETE"}
        bundle_model.model_validate(bundle)
    assert ndjson.deletion_bundles(list(reversed(deleted))) == lines  # the input's order does not matter
    assert ndjson.deletion_bundles([]) == []
