"""ImagingSelections: one per image region, segment, region in space, value map or image that a group or
measurement references, in the IG profile its content item calls for (NOTES §3.7)."""

from __future__ import annotations

import math

from ..options import SopClassSystem
from ..reading.sop_classes import SOP_CLASS_NAMES
from ..tid1500.model import ImageReference, ImageReferenceKind, ReferencedInstance
from . import profiles
from .context import ReportContext, meta
from .datatypes import fixed
from .ids import document_resource_id


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


def build_imaging_selection(context: ReportContext, reference: ImageReference) -> dict | None:
    profile = profiles.SELECTION_PROFILES[reference.kind]
    resource: dict = {
        "resourceType": "ImagingSelection",
        "id": document_resource_id("ImagingSelection", context.sop_instance_uid, reference.position),
        "meta": meta(profile.url),
        "status": "available",
        "subject": context.ref(context.patient),
    }
    if context.service_request is not None:
        resource["basedOn"] = [context.ref(context.service_request)]
    if profile.code is not None:
        resource["code"] = fixed(profile.code)
    elif reference.concept is not None:
        resource["code"] = context.codings.concept(reference.concept)
    else:
        return None
    studies = {i.study_instance_uid for i in reference.instances if i.study_instance_uid}
    resource["studyUid"] = studies.pop() if len(studies) == 1 else context.report.document.study_instance_uid
    resource["derivedFrom"] = [context.ref(context.imaging_study)]
    series = {i.series_instance_uid for i in reference.instances}
    if len(series) == 1 and (series_uid := series.pop()):
        resource["seriesUid"] = series_uid
    if reference.frame_of_reference_uid:
        resource["frameOfReferenceUid"] = reference.frame_of_reference_uid
    instances = []
    for instance in reference.instances:
        entry: dict = {"uid": instance.sop_instance_uid}
        if instance.sop_class_uid:
            entry["sopClass"] = sop_class_coding(instance.sop_class_uid, context.options.sop_class_system)
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
