"""`DOCUMENT_SCOPED_TYPES` is what a job's deletion lookup trusts: a resource of such a type can only come from a
file holding the same SOP instance, and a resource of any other type can come from any report."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import pytest

from sr2fhir_core import MappingResult, map_sr
from sr2fhir_core.fhir.ids import DOCUMENT_SCOPED_TYPES
from sr2fhir_synth import random_spec, write_sr

OTHER_SOP_INSTANCE = "2.25.141592653589793238462643383279502884"


def _ids_by_type(result: MappingResult) -> dict[str, set[str]]:
    ids: dict[str, set[str]] = defaultdict(set)
    for resource in result.resources:
        ids[resource["resourceType"]].add(resource["id"])
    return ids


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_only_document_scoped_types_change_with_the_sop_instance(seed: int) -> None:
    spec = random_spec(seed, participants=seed % 2 == 0)
    copy = dataclasses.replace(spec, instance=dataclasses.replace(spec.instance, sop_instance_uid=OTHER_SOP_INSTANCE))
    first, second = map_sr(write_sr(spec)), map_sr(write_sr(copy))
    assert first.mapped and second.mapped
    ids, other_ids = _ids_by_type(first), _ids_by_type(second)
    assert ids.keys() == other_ids.keys()
    assert ids.keys() & DOCUMENT_SCOPED_TYPES, "a report without per-SR resources shows nothing"
    for resource_type in ids:
        if resource_type in DOCUMENT_SCOPED_TYPES:
            assert not ids[resource_type] & other_ids[resource_type], resource_type
        else:
            assert ids[resource_type] == other_ids[resource_type], resource_type


def test_the_shared_types_are_the_ones_reports_share() -> None:
    """Every type the mapping makes is either document-scoped or among the shared types the docs name."""
    seen: set[str] = set()
    for seed in range(40):
        seen |= _ids_by_type(map_sr(write_sr(random_spec(seed, participants=True)))).keys()
    assert seen - DOCUMENT_SCOPED_TYPES == {"Patient", "ImagingStudy", "ServiceRequest", "Practitioner", "Device"}
    assert seen >= DOCUMENT_SCOPED_TYPES
