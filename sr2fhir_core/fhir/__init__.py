"""Report model → FHIR R5 resources of the DICOM SR IG (ballot structure), as JSON-ready dicts.

The graph per report (NOTES §1): Patient, ImagingStudy, ServiceRequest, Practitioner, the equipment and
algorithm Devices, and per measurement group its BodyStructures, ImagingSelections, the group Observation
and its members; then derived measurements and report-level qualitative evaluations.
"""

from __future__ import annotations

from ..codes import CodeSystems
from ..errors import MappingWarning, WarningCode
from ..options import MappingOptions
from ..tid1500.model import FindingSite, ImageReference, MeasurementReport
from .body_structures import build_finding_site, build_tracking
from .context import build_context
from .devices import DeviceRegistry
from .imaging_selections import build_imaging_selection
from .json import dumps
from .observations import ObservationBuilder


def build_resources(
    report: MeasurementReport, options: MappingOptions, systems: CodeSystems
) -> tuple[list[dict], list[MappingWarning]]:
    """All resources of one report in a deterministic order, and the warnings the mapping raised."""
    context = build_context(report, options, systems)
    devices = DeviceRegistry(context)
    selections: dict[tuple[int, ...], dict | None] = {}
    sites: dict[tuple[int, ...], dict] = {}

    def selections_for(references: tuple[ImageReference, ...]) -> list[dict]:
        """One ImagingSelection per reference content item, however many observations point at it."""
        result = []
        for reference in references:
            if reference.position not in selections:
                selection = build_imaging_selection(context, reference)
                if selection is None:
                    context.warnings.append(
                        MappingWarning(
                            WarningCode.INVALID_VALUE,
                            ".".join(map(str, reference.position)),
                            f"{reference.kind.value} reference cannot be written as an ImagingSelection",
                        )
                    )
                selections[reference.position] = selection
            if (selection := selections[reference.position]) is not None:
                result.append(selection)
        return result

    def finding_site_for(site: FindingSite | None, position: tuple[int, ...]) -> dict | None:
        if site is None:
            return None
        if position not in sites:
            sites[position] = build_finding_site(context, site, position)
        return context.ref(sites[position])

    observations = ObservationBuilder(context, devices, selections_for, finding_site_for)

    def group_observation(group) -> dict:
        site = finding_site_for(group.finding_site, group.position)
        tracking = build_tracking(context, group)
        focus = [context.ref(s) for s in selections_for(group.image_references)]
        if tracking is not None:
            focus.append(context.ref(tracking))
        resource, _ = observations.group(group, focus, site)
        return resource

    for group in report.groups:
        group_observation(group)
    for derived in report.derived_measurements:
        observations.derived(derived.measurement, [group_observation(g) for g in derived.groups])
    for evaluation in report.qualitative_evaluations:
        observations.qualitative_evaluation(evaluation, [], None)
    return context.resources, context.warnings + context.codings.warnings()


__all__ = ["build_resources", "dumps"]
