"""ImagingSelections: one per image region, segment, region in space, value map or image that a group or
measurement references, in the IG profile its content item calls for (NOTES §3.7); STU1 adds the source
image for segmentation of a group and the SR content item an Observation comes from."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..errors import MappingWarning, WarningCode
from ..options import SopClassSystem
from ..reading.sop_classes import SOP_CLASS_NAMES
from ..tid1500.model import ImageReference, ImageReferenceKind, MeasurementGroup, ReferencedInstance
from . import profiles
from .context import ReportContext, meta
from .datatypes import fixed
from .ids import document_resource_id

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
"""The R5 `id` type (ImagingSelection.seriesUid, studyUid, instance.uid)."""


def sop_class_coding(uid: str, system: SopClassSystem) -> dict:
    if system is SopClassSystem.RFC3986:
        coding = {"system": profiles.SOP_CLASS_SYSTEM_RFC3986, "code": f"urn:oid:{uid}"}
    else:
        coding = {"system": profiles.SOP_CLASS_SYSTEM_IG, "code": uid}
    name = SOP_CLASS_NAMES.get(uid)
    if name:
        coding["display"] = name
    return coding


def _regions_2d(reference: ImageReference) -> list[dict]:
    data = reference.graphic_data
    if not data or len(data) % 2 or not all(math.isfinite(v) for v in data):
        return []
    graphic_type = reference.graphic_type or ""
    region_type = profiles.REGION_TYPES_2D.get(graphic_type)
    if region_type is None:
        return []
    if graphic_type == "MULTIPOINT":
        return [{"regionType": "point", "coordinate": [data[i], data[i + 1]]} for i in range(0, len(data), 2)]
    return [{"regionType": region_type, "coordinate": list(data)}]


def _subset(reference: ImageReference, instance: ReferencedInstance) -> list[str]:
    if reference.kind is ImageReferenceKind.REGION_IN_SPACE:
        return list(reference.subset)
    if reference.kind is ImageReferenceKind.REFERENCED_SEGMENT:
        return [str(n) for n in instance.segment_numbers]
    if reference.kind is ImageReferenceKind.REFERENCED_SEGMENTATION_FRAME:
        # The IG maps the segment number; a frame reference is the frame number when the SR has one.
        return [str(n) for n in instance.frame_numbers or instance.segment_numbers]
    return [str(n) for n in instance.frame_numbers]


def _selection(context: ReportContext, resource_id: str, profile: str) -> dict:
    resource: dict = {
        "resourceType": "ImagingSelection",
        "id": resource_id,
        "meta": meta(profile),
        "status": "available",
        "subject": context.ref(context.patient),
    }
    if context.service_request is not None:
        resource["basedOn"] = [context.ref(context.service_request)]
    return resource


def _set_series_uid(resource: dict, context: ReportContext, position: tuple[int, ...], series_uid: str | None) -> None:
    """`seriesUid`, which is an R5 `id` (at most 64 characters, like a DICOM UID): a longer value is no UID, so
    it is left out with a warning rather than making the resource invalid."""
    if not series_uid:
        return
    if FHIR_ID.fullmatch(series_uid):
        resource["seriesUid"] = series_uid
        return
    context.warnings.append(
        MappingWarning(
            WarningCode.INVALID_VALUE,
            ".".join(map(str, position)),
            f"series UID of {len(series_uid)} characters is not a valid UID: no seriesUid",
        )
    )


def _place(
    resource: dict,
    context: ReportContext,
    position: tuple[int, ...],
    instances: Sequence[ReferencedInstance],
    series_uid: str | None,
    frame_of_reference_uid: str | None,
    body_site: dict | None,
    focus: list[dict] | None,
) -> None:
    """Where a selection lies, in R5 element order: its study (the referenced instances' one, else the SR's),
    the ImagingStudy, series, frame of reference, and STU1's `bodySite` and `focus`."""
    studies = {i.study_instance_uid for i in instances if i.study_instance_uid}
    resource["studyUid"] = studies.pop() if len(studies) == 1 else context.report.document.study_instance_uid
    resource["derivedFrom"] = [context.ref(context.imaging_study)]
    _set_series_uid(resource, context, position, series_uid)
    if frame_of_reference_uid:
        resource["frameOfReferenceUid"] = frame_of_reference_uid
    if body_site is not None:
        resource["bodySite"] = body_site
    if focus:
        resource["focus"] = focus


def _instance(instance: ReferencedInstance, context: ReportContext) -> dict:
    entry: dict = {"uid": instance.sop_instance_uid}
    if instance.sop_class_uid:
        entry["sopClass"] = sop_class_coding(instance.sop_class_uid, context.options.sop_class_system)
    return entry


def writable(reference: ImageReference) -> bool:
    """Whether a reference content item can be an ImagingSelection: it needs a code (its profile's, else its
    concept) and, for a 2D image region, coordinates R5 can hold."""
    if profiles.SELECTION_PROFILES[reference.kind].code is None and reference.concept is None:
        return False
    return reference.kind is not ImageReferenceKind.IMAGE_REGION_2D or bool(_regions_2d(reference))


def build_imaging_selection(
    context: ReportContext,
    references: Sequence[ImageReference],
    body_site: dict | None = None,
    focus: list[dict] | None = None,
) -> dict | None:
    """The selection of one reference content item (ballot) or of the items of one profile that one
    observation uses (STU1: its `derivedFrom` slices are 0..1, so they share one selection, an instance entry
    per referenced image and region); `body_site` and `focus` are STU1's (FHIR-47943, 47946, 47949), None
    under the ballot. The id is the first item's."""
    first = references[0]
    profile = profiles.SELECTION_PROFILES[first.kind]
    resource = _selection(
        context, document_resource_id("ImagingSelection", context.sop_instance_uid, first.position), profile.url
    )
    if profile.code is not None:
        resource["code"] = fixed(profile.code)
    elif first.concept is not None:
        resource["code"] = context.codings.concept(first.concept)
    else:
        return None
    referenced = [i for reference in references for i in reference.instances]
    series = {i.series_instance_uid for i in referenced}
    frames = {reference.frame_of_reference_uid for reference in references}
    _place(
        resource,
        context,
        first.position,
        referenced,
        series.pop() if len(series) == 1 else None,
        frames.pop() if len(frames) == 1 else None,
        body_site,
        focus,
    )
    instances = []
    for reference in references:
        for instance in reference.instances:
            entry = _instance(instance, context)
            subset = _subset(reference, instance)
            if subset:
                entry["subset"] = subset
            if reference.kind is ImageReferenceKind.IMAGE_REGION_2D:
                regions = _regions_2d(reference)
                if not regions:
                    return None
                entry["imageRegion2D"] = regions
            instances.append(entry)
    if instances:
        resource["instance"] = instances
    return context.add(resource)


def build_source_image_for_segmentation(
    context: ReportContext,
    group: MeasurementGroup,
    images: list[ImageReference],
    body_site: dict | None,
    focus: list[dict] | None,
) -> dict | None:
    """STU1 source-image-for-segmentation of a group: its "Source image for segmentation" IMAGE items
    (121233), and its "Source series for segmentation" (121232) as `seriesUid`. When the SR names only the
    series, the instances are those of that series in the SR's evidence sequences."""
    instances = [i for image in images for i in image.instances]
    series_uid = group.source_series_uid
    if not instances and series_uid:
        instances = [
            ReferencedInstance(
                sop_class_uid=e.sop_class_uid,
                sop_instance_uid=e.sop_instance_uid,
                series_instance_uid=e.series_instance_uid,
                study_instance_uid=e.study_instance_uid,
            )
            for e in context.report.document.evidence
            if e.series_instance_uid == series_uid
        ]
    position = images[0].position if images else group.position
    if not instances:
        # Its profile wants `instance` (1..*): a series without known instances is no selection.
        if series_uid:
            context.warnings.append(
                MappingWarning(
                    WarningCode.UNRESOLVED_REFERENCE,
                    ".".join(map(str, position)),
                    "Source series for segmentation has no instances in the evidence: no source image selection",
                )
            )
        return None
    if series_uid is None:
        series = {i.series_instance_uid for i in instances}
        series_uid = series.pop() if len(series) == 1 else None
    resource = _selection(
        context,
        document_resource_id("ImagingSelection", context.sop_instance_uid, position, "source-image-for-segmentation"),
        profiles.SOURCE_IMAGE_FOR_SEGMENTATION,
    )
    resource["code"] = fixed(profiles.CODE_SOURCE_IMAGE_FOR_SEGMENTATION)
    _place(resource, context, position, instances, series_uid, None, body_site, focus)
    entries = []
    for instance in instances:
        entry = _instance(instance, context)
        if instance.frame_numbers:
            entry["subset"] = [str(n) for n in instance.frame_numbers]
        entries.append(entry)
    if entries:
        resource["instance"] = entries
    return context.add(resource)


def build_source_sr_content_item(context: ReportContext, position: tuple[int, ...], observation_uid: str) -> dict:
    """STU1 source-sr-content-item: this SR, with the content item's Observation UID as the subset (the R5
    meaning of `instance.subset` for SR, HL7/fhir PR #3127)."""
    document = context.report.document
    resource = _selection(
        context,
        document_resource_id("ImagingSelection", context.sop_instance_uid, position, "source-sr-content-item"),
        profiles.SOURCE_SR_CONTENT_ITEM,
    )
    resource["code"] = fixed(profiles.CODE_ORIGINAL_SOURCE)
    _place(resource, context, position, (), document.series_instance_uid, None, None, None)  # the SR's own study
    entry: dict = {"uid": context.sop_instance_uid}
    if document.sop_class_uid:
        entry["sopClass"] = sop_class_coding(document.sop_class_uid, context.options.sop_class_system)
    entry["subset"] = [observation_uid]
    resource["instance"] = [entry]
    return context.add(resource)
