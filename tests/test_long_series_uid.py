"""A series UID over 64 characters (malformed: DICOM UIDs have at most 64) never reaches an R5 `id` element.

The generator writes whatever UID its spec holds (pydicom only warns), so the report's own series, every
referenced instance's series and every source series for segmentation are lengthened here. Every
ImagingSelection, the STU1 source SR content item (the report's own series) included, leaves `seriesUid` out
and records a warning; ImagingStudy carries no series at all (the IG maps only its identifier), so nothing of
the series can reach it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fhir.resources import get_fhir_model_class

from sr2fhir_core import MappingOptions, MappingResult, dumps_json, map_sr
from sr2fhir_core.options import IgVersion
from sr2fhir_synth import random_spec, write_sr
from sr2fhir_synth.spec import ReportSpec

SERIES_FIELDS = ("series_instance_uid", "source_series_uid")
ID_ELEMENTS = {"seriesUid", "studyUid", "uid", "frameOfReferenceUid"}
"""Elements of type `id` that hold a DICOM UID (ImagingSelection, ImagingStudy.series and their instances)."""


def _lengthen(value: Any) -> Any:
    """`value` with every series UID in it (nested specs and tuples of them) made 70 characters long."""
    if isinstance(value, tuple):
        return tuple(_lengthen(v) for v in value)
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return value
    changes = {}
    for f in dataclasses.fields(value):
        current = getattr(value, f.name)
        if f.name in SERIES_FIELDS and isinstance(current, str):
            changes[f.name] = (current + ".9" * 40)[:70]
        else:
            changes[f.name] = _lengthen(current)
    return dataclasses.replace(value, **changes)


def _id_values(node: Any) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ID_ELEMENTS and isinstance(value, str):
                yield key, value
            yield from _id_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _id_values(value)


def _selections_with_series(result: MappingResult) -> list[dict]:
    return [r for r in result.resources if r["resourceType"] == "ImagingSelection" and "seriesUid" in r]


@pytest.fixture(scope="module")
def spec() -> ReportSpec:
    """A generated report with a source series for segmentation and several referenced series."""
    for seed in range(100):
        candidate = random_spec(seed)
        if any(g.source_series_uid for g in candidate.all_groups) and len(candidate.referenced_instances()) > 2:
            return candidate
    raise AssertionError("no seed below 100 gives a source series for segmentation")


@pytest.mark.filterwarnings("ignore:The value length \\(70\\) exceeds:UserWarning")  # that is the point
@pytest.mark.parametrize("ig_version", list(IgVersion))
def test_series_uid_over_64_characters_is_left_out_with_a_warning(spec: ReportSpec, ig_version: IgVersion) -> None:
    options = MappingOptions(ig_version=ig_version)
    wellformed = map_sr(write_sr(spec), options)
    long_spec = _lengthen(spec)
    assert len(long_spec.instance.series_instance_uid) == 70
    result = map_sr(write_sr(long_spec), options)

    # The well-formed report gives seriesUids, so the malformed one has some to lose.
    expected = len(_selections_with_series(wellformed))
    assert expected > 0
    assert _selections_with_series(result) == []
    lost = [w for w in result.warnings if "series UID of 70 characters" in w.message]
    assert len(lost) == expected
    assert all(w.code == "invalid_value" for w in lost)
    # Everything else maps as before: the same resources, less the seriesUids.
    assert [(r["resourceType"], r["id"]) for r in result.resources] == [
        (r["resourceType"], r["id"]) for r in wellformed.resources
    ]

    [study] = [r for r in result.resources if r["resourceType"] == "ImagingStudy"]
    assert "series" not in study
    for resource in result.resources:
        for key, value in _id_values(resource):
            assert len(value) <= 64, (resource["resourceType"], key, len(value))
        get_fhir_model_class(resource["resourceType"]).model_validate(orjson.loads(dumps_json(resource)))
