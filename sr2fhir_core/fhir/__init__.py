"""Report model → FHIR R5 resources of the DICOM SR IG (ballot or STU1 structure), as JSON-ready dicts; converted
to R4 at the end when the options ask for it (r4.py).

The graph per report (NOTES §1): Patient, ImagingStudy, ServiceRequest, Practitioner, the equipment and
algorithm Devices, and per measurement group its BodyStructures, ImagingSelections, the group Observation
and its members; then derived measurements and report-level qualitative evaluations. Where the IG
versions differ, `context.facts` (profiles.IgFacts) says which structure to write.
"""

from __future__ import annotations

from ..codes import CodeSystems
from ..errors import MappingWarning, WarningCode
from ..options import FhirVersion, MappingOptions
from ..tid1500.model import (
    FindingSite,
    ImageReference,
    ImageReferenceKind,
    ImageReferencePurpose,
    MeasurementGroup,
    MeasurementReport,
)
from . import profiles
from .body_structures import build_finding_site, build_tracking, has_tracking
from .context import build_context
from .devices import DeviceRegistry
from .imaging_selections import (
    build_imaging_selection,
    build_source_image_for_segmentation,
    build_source_sr_content_item,
    writable,
)
from .json import dumps
from .observations import NO_OWNER, NO_SITE, ObservationBuilder, SelectionOwner, SiteLink
from .r4 import to_r4


def build_resources(
    report: MeasurementReport, options: MappingOptions, systems: CodeSystems
) -> tuple[list[dict], list[MappingWarning]]:
    """All resources of one report in a deterministic order, and the warnings the mapping raised."""
    context = build_context(report, options, systems)
    facts = context.facts
    devices = DeviceRegistry(context)
    selections: dict[tuple[int, ...], dict | None] = {}
    sites: dict[tuple[int, ...], dict] = {}
    sources: dict[tuple[int, ...], dict | None] = {}
    selection_profiles: dict[str, str] = {}
    """Reference → profile of each ImagingSelection made so far."""

    def selections_for(
        references: tuple[ImageReference, ...] | list[ImageReference],
        owner: SelectionOwner = NO_OWNER,
        fresh: list[dict] | None = None,
    ) -> list[dict]:
        """One ImagingSelection per reference content item (ballot), or per profile of the items an observation
        brings (STU1), however many observations point at it; the first observation to use it (its group, or
        the measurement that holds it) is its owner (STU1). `fresh` collects the selections this call made."""
        result: list[dict] = []
        new = list({r.position: r for r in references if r.position not in selections}.values())
        batches = _batches(new) if facts.one_selection_per_profile else [[r] for r in new]
        for batch in batches:
            first = batch[0]
            focus = owner.focus
            if owner.source_image is not None and first.kind in profiles.SEGMENTATION_SELECTIONS:
                focus = [owner.source_image, *focus]
            selection = build_imaging_selection(context, batch, owner.body_site, focus)
            if selection is None:
                context.warn(
                    WarningCode.INVALID_VALUE,
                    first.position,
                    f"{first.kind.value} reference cannot be written as an ImagingSelection",
                )
            for reference in batch:
                selections[reference.position] = selection
            if selection is not None:
                selection_profiles[context.ref(selection)["reference"]] = selection["meta"]["profile"][0]
                if fresh is not None:
                    fresh.append(selection)
        for reference in references:
            selection = selections[reference.position]
            if selection is not None and not (facts.one_selection_per_profile and any(s is selection for s in result)):
                result.append(selection)
        return result

    def _batches(references: list[ImageReference]) -> list[list[ImageReference]]:
        """STU1: the new references of one observation by profile, first appearance first; a base-profile
        reference (no slice) and one that cannot be written stay alone, and 3D regions share a selection only
        within one frame of reference (`frameOfReferenceUid` is 0..1)."""
        batches: dict[object, list[ImageReference]] = {}
        for reference in references:
            if reference.kind is ImageReferenceKind.OTHER or not writable(reference):
                key: object = reference.position
            else:
                key = (reference.kind, reference.frame_of_reference_uid)
            batches.setdefault(key, []).append(reference)
        return list(batches.values())

    def finding_site_for(
        finding_sites: tuple[FindingSite, ...], position: tuple[int, ...], tracking: MeasurementGroup | None = None
    ) -> SiteLink:
        """Ballot: a BodyStructure for every set of finding sites. STU1: `bodySite` for one bare site, a
        BodyStructure when laterality, topographical modifier, several sites (`bodySite` is 0..1) or the
        group's tracking identifiers need one."""
        if not finding_sites and tracking is None:
            return NO_SITE
        if facts.body_site_without_modifiers and tracking is None and len(finding_sites) == 1:
            site = finding_sites[0]
            if site.laterality is None and site.topographical_modifier is None:
                return SiteLink(None, context.codings.concept(site.site))
        if position not in sites:
            sites[position] = build_finding_site(context, finding_sites, position, tracking)
        return SiteLink(context.ref(sites[position]), None)

    def source_item_for(position: tuple[int, ...], observation_uid: str | None) -> dict | None:
        """STU1 source-sr-content-item of a content item that has an Observation UID (its subset), unless the
        SR's own SOP Instance UID cannot be its instance's `uid`."""
        if not (facts.source_sr_content_item and observation_uid):
            return None
        if position not in sources:
            sources[position] = build_source_sr_content_item(context, position, observation_uid)
        source = sources[position]
        return None if source is None else context.ref(source)

    observations = ObservationBuilder(
        context, devices, selections_for, finding_site_for, source_item_for, selection_profiles.get
    )

    group_observations: dict[tuple[int, ...], dict] = {}

    def group_observation(group: MeasurementGroup) -> dict:
        """Once per group: a derived measurement can name a group of the Imaging Measurements container."""
        known = group_observations.get(group.position)
        if known is None:
            known = group_observations[group.position] = _group_observation(group)
        return known

    def _group_observation(group: MeasurementGroup) -> dict:
        if facts.tracking_body_structure:
            if group.source_series_uid:
                context.warn(
                    WarningCode.UNMAPPED_CONTENT,
                    group.position,
                    "Source series for segmentation (121232, DCM) has no element under the ballot structure "
                    "(ig_version stu1 writes it as the source image selection's seriesUid)",
                )
            site = finding_site_for(group.finding_sites, group.position)
            tracking = build_tracking(context, group)
            references = [context.ref(s) for s in selections_for(group.image_references)]
            if tracking is not None:
                references.append(context.ref(tracking))
            own = [context.ref(s) for s in selections_for(group.other_spatial_items)]
            resource, _ = observations.group(group, references, site, own)
            return resource
        site = finding_site_for(group.finding_sites, group.position, group if has_tracking(group) else None)
        source = source_item_for(group.position, group.observation_uid)
        owner = SelectionOwner(site.codeable_reference(facts), [source] if source is not None else [])
        image_references = list(group.image_references)
        extra: list[dict] = []
        if facts.source_image_for_segmentation:
            purpose = ImageReferencePurpose.SOURCE_IMAGE_FOR_SEGMENTATION
            images = [r for r in image_references if r.purpose is purpose]
            image_references = [r for r in image_references if r.purpose is not purpose]
            source_image = build_source_image_for_segmentation(context, group, images, owner.body_site, owner.focus)
            if source_image is not None:
                image_ref = context.ref(source_image)
                owner = SelectionOwner(owner.body_site, owner.focus, image_ref)
                if not any(r.kind in profiles.SEGMENTATION_SELECTIONS for r in image_references):
                    # Nothing segmented names it in its focus: the group itself keeps the reference.
                    extra.append(image_ref)
        references = [context.ref(s) for s in selections_for(image_references, owner)] + extra
        own = [context.ref(s) for s in selections_for(group.other_spatial_items, owner)]
        resource, _ = observations.group(group, references, site, own)
        return resource

    for group in report.groups:
        group_observation(group)
    for derived in report.derived_measurements:
        observations.derived(derived.measurement, [group_observation(g) for g in derived.groups])
    for evaluation in report.qualitative_evaluations:
        observations.qualitative_evaluation(evaluation, [], NO_SITE)
    resources = to_r4(context.resources) if options.fhir_version is FhirVersion.R4 else context.resources
    return resources, context.warnings + context.codings.warnings()


__all__ = ["build_resources", "dumps"]
