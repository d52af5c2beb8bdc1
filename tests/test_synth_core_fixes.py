"""Regression tests for mapping defects the synthetic reports found; each builds the smallest spec that
shows the defect, so the failure names it directly."""

from __future__ import annotations

from sr2fhir_core import map_sr
from sr2fhir_synth import random_spec, write_sr
from sr2fhir_synth.spec import ReportSpec, SRStorage


def _first_spec(predicate) -> ReportSpec:
    return next(spec for seed in range(500) if predicate(spec := random_spec(seed)))


def _observation(result, observation_id: str) -> dict:
    return next(
        r for r in result.resources if r["resourceType"] == "Observation" and r["id"] == observation_id
    )


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
