"""Regression tests for mapping defects the synthetic reports found; each builds the smallest spec that
shows the defect, so the failure names it directly."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from sr2fhir_core import MappingResult, map_sr
from sr2fhir_synth import random_spec, write_sr
from sr2fhir_synth.spec import Algorithm, ReportSpec, SRStorage


def _first_spec(predicate: Callable[[ReportSpec], bool]) -> ReportSpec:
    return next(spec for seed in range(500) if predicate(spec := random_spec(seed)))


def _observation(result: MappingResult, observation_id: str) -> dict:
    return next(r for r in result.resources if r["resourceType"] == "Observation" and r["id"] == observation_id)


def test_measurement_inferred_from_the_groups_region_by_reference_focuses_it_once() -> None:
    """A NUM INFERRED FROM (Referenced Content Item Identifier) its group's region resolves to the group's
    own ImagingSelection, which the measurement already carries from its group: it must appear once."""
    spec = _first_spec(
        lambda s: (
            s.instance.sop_class is not SRStorage.ENHANCED_SR
            and any(m.group_references for g in s.groups for m in g.measurements)
        )
    )
    result = map_sr(write_sr(spec))
    checked = 0
    for row in result.rows["measurements"]:
        if row["group_observation_id"] is None:
            continue
        focus = [f["reference"] for f in _observation(result, row["observation_id"]).get("focus", [])]
        assert len(focus) == len(set(focus)), focus
        checked += 1
    assert checked


def test_imaging_measurements_algorithm_does_not_reach_derived_measurements() -> None:
    """TID 4019 under "Imaging Measurements" is context of that container's descendants only: a derived
    measurement (a sibling container's item) without its own algorithm has none, whatever the order."""
    spec = _first_spec(lambda s: bool(s.derived_measurements))
    spec = dataclasses.replace(
        spec,
        measurements_algorithm=Algorithm(name="ContainerAlgorithm", version="1"),
        derived_measurements=tuple(
            dataclasses.replace(
                d,
                measurement=dataclasses.replace(d.measurement, algorithm=None),
                groups=tuple(
                    dataclasses.replace(
                        g,
                        algorithm=None,
                        measurements=tuple(dataclasses.replace(m, algorithm=None) for m in g.measurements),
                        qualitative_evaluations=tuple(
                            dataclasses.replace(e, algorithm=None) for e in g.qualitative_evaluations
                        ),
                    )
                    for g in d.groups
                ),
            )
            for d in spec.derived_measurements
        ),
    )
    result = map_sr(write_sr(spec))
    equipment = next(r for r in result.resources if r["meta"]["profile"][0].endswith("dicom-general-equipment"))
    rows = result.rows["measurements"]
    derived_rows = [r for r in rows if r["is_derived"]]
    derived_group_rows = [r for r in rows if r["group_index"] and r["group_index"] > len(spec.groups)]
    assert derived_rows and derived_group_rows
    for row in derived_rows + derived_group_rows:
        assert row["algorithm_name"] is None
        device = _observation(result, row["observation_id"])["device"]["reference"]
        assert device == f"Device/{equipment['id']}"
    assert {r["algorithm_name"] for r in rows if not r["is_derived"] and r["group_index"] <= len(spec.groups)} >= {
        "ContainerAlgorithm"
    }
