"""BodyStructures: the finding site of a group or measurement (dicom-sr-finding-site) and the lesion
tracking identifiers of a group (ballot: their own dicom-sr-tracking-identifiers BodyStructure; STU1:
identifiers of the group's finding-site BodyStructure)."""

from __future__ import annotations

from ..tid1500.model import FindingSite, MeasurementGroup
from . import profiles
from .context import ReportContext, meta
from .datatypes import fixed, uid_identifier
from .ids import document_resource_id


def included_structure(context: ReportContext, site: FindingSite) -> dict:
    structure: dict = {"structure": context.codings.concept(site.site)}
    if site.laterality is not None:
        structure["laterality"] = context.codings.concept(site.laterality)
    if site.topographical_modifier is not None:
        # Not in the ballot profile; R5 has the element and STU1 maps it here (FHIR-47462).
        structure["qualifier"] = [context.codings.concept(site.topographical_modifier)]
    return structure


def build_finding_site(
    context: ReportContext,
    sites: tuple[FindingSite, ...],
    position: tuple[int, ...],
    tracking: MeasurementGroup | None = None,
) -> dict:
    """The finding sites of a group or measurement: one BodyStructure, one `includedStructure` per site in
    document order (docs/mapping-decisions.md §15); with `tracking` (STU1) also the group's tracking
    identifiers, and without a site the lesion named by its tracking identifier (R5 needs an included
    structure)."""
    if sites:
        structures = [included_structure(context, site) for site in sites]
    else:
        assert tracking is not None
        structures = [{"structure": {"text": tracking.tracking_identifier or tracking.tracking_uid}}]
    resource: dict = {
        "resourceType": "BodyStructure",
        "id": document_resource_id("BodyStructure", context.sop_instance_uid, position, "finding-site"),
        "meta": meta(profiles.FINDING_SITE),
    }
    if tracking is not None:
        resource["identifier"] = tracking_identifiers(tracking)
    resource["includedStructure"] = structures
    resource["patient"] = context.subject
    return context.add(resource)


def has_tracking(group: MeasurementGroup) -> bool:
    return bool(group.tracking_identifier or group.tracking_uid)


def tracking_identifiers(group: MeasurementGroup) -> list[dict]:
    identifiers = []
    if group.tracking_identifier:
        identifiers.append(
            {"type": fixed(profiles.IDENTIFIER_TYPE_TRACKING_IDENTIFIER), "value": group.tracking_identifier}
        )
    if group.tracking_uid:
        identifiers.append(uid_identifier(group.tracking_uid, profiles.IDENTIFIER_TYPE_TRACKING_UID))
    return identifiers


def build_tracking(context: ReportContext, group: MeasurementGroup) -> dict | None:
    if not has_tracking(group):
        return None
    identifiers = tracking_identifiers(group)
    # R5 needs an included structure; the ballot profile names the lesion by its tracking identifier.
    label = group.tracking_identifier or group.tracking_uid
    return context.add(
        {
            "resourceType": "BodyStructure",
            "id": document_resource_id("BodyStructure", context.sop_instance_uid, group.position, "tracking"),
            "meta": meta(profiles.TRACKING_IDENTIFIERS),
            "identifier": identifiers,
            "includedStructure": [{"structure": {"text": label}}],
            "patient": context.subject,
        }
    )
