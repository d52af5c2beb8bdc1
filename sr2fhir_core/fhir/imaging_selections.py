"""ImagingSelections: one per image region, segment, region in space, value map or image that a group or
measurement references, in the IG profile its content item calls for (NOTES §3.7); STU1 adds the source
image for segmentation of a group and the SR content item an Observation comes from."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..errors import WarningCode
from ..options import SopClassSystem
from ..sop_classes import SOP_CLASS_NAMES
from ..tid1500.model import (
    SEGMENT_REFERENCE_KINDS,
    ImageReference,
    ImageReferenceKind,
    MeasurementGroup,
    ReferencedInstance,
)
from . import profiles
from .context import ReportContext, meta
from .datatypes import fixed
from .ids import document_resource_id

FHIR_ID_LENGTH = 64
_FHIR_ID_CHARACTER = r"[A-Za-z0-9\-.]"
FHIR_ID = re.compile(rf"{_FHIR_ID_CHARACTER}{{1,{FHIR_ID_LENGTH}}}")
"""The R5 `id` type, which every DICOM UID element of ImagingSelection is (UID_ELEMENTS)."""
FHIR_ID_CHARACTERS = re.compile(rf"{_FHIR_ID_CHARACTER}*")

UID_ELEMENTS: dict[str, str] = {
    "studyUid": "study UID",
    "seriesUid": "series UID",
    "frameOfReferenceUid": "frame of reference UID",
    "instance.uid": "SOP instance UID",
}
"""ImagingSelection's elements of R5 type `id` that hold a DICOM UID → the UID's name in warnings. The others
that hold UIDs (`instance.subset`, `sopClass.code`, identifiers' `value`) are strings or codes, without the
`id` limits. ImagingStudy's `series.uid` and `series.instance.uid` are `id`s too, but the IG writes no series."""


_SOP_CLASS_CODINGS: dict[tuple[str, SopClassSystem], dict] = {}
_SOP_CLASS_CODINGS_LIMIT = 4096


FHIR_CODE = re.compile(r"[^\s]+( [^\s]+)*")
"""The R5 `code` type: no whitespace but single spaces between other characters."""


def _sop_class(context: ReportContext, position: tuple[int, ...], uid: str | None) -> dict | None:
    """The `sopClass` Coding of an instance entry, made once per process and shared by every entry (resources
    treat what they share as read-only; a report references the same few classes throughout). None, with a
    warning that does not quote it, for a SOP Class UID no `code` can hold (a tab, a line break or two spaces
    inside: never a UID, but a file can carry it)."""
    if not uid:
        return None
    system = context.options.sop_class_system
    coding = _SOP_CLASS_CODINGS.get((uid, system))  # only UIDs that passed the check below are kept
    if coding is None:
        if not FHIR_CODE.fullmatch(uid):
            context.warn(
                WarningCode.INVALID_VALUE, position, "SOP Class UID has whitespace a FHIR code cannot hold: no sopClass"
            )
            return None
        if len(_SOP_CLASS_CODINGS) >= _SOP_CLASS_CODINGS_LIMIT:
            _SOP_CLASS_CODINGS.clear()
        coding = _SOP_CLASS_CODINGS[uid, system] = _sop_class_coding(uid, system)
    return coding


def _sop_class_coding(uid: str, system: SopClassSystem) -> dict:
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


def _is_2d_region(reference: ImageReference) -> bool:
    """A SCOORD (coordinates on referenced images), whatever its concept; SCOORD3D has no instances."""
    return reference.graphic_type is not None and bool(reference.instances)


def _subset(reference: ImageReference, instance: ReferencedInstance) -> list[str]:
    """`instance.subset`: ROI numbers of a region in space; Referenced Segment Numbers (0062,000B) of a
    segment or segmentation frame reference, as the IG maps both (a frame reference's Referenced Frame Numbers
    have no element beside them and are reported); frame numbers of other images."""
    kind = reference.kind
    if kind is ImageReferenceKind.REGION_IN_SPACE:
        return list(reference.subset)
    if kind in SEGMENT_REFERENCE_KINDS:
        # The parse warned about frame numbers beside segment numbers, and about frames alone.
        return [str(n) for n in instance.segment_numbers or instance.frame_numbers]
    return [str(n) for n in instance.frame_numbers]


def _selection(context: ReportContext, resource_id: str, profile: str) -> dict:
    resource: dict = {
        "resourceType": "ImagingSelection",
        "id": resource_id,
        "meta": meta(profile),
        "status": "available",
        "subject": context.subject,
    }
    if context.based_on is not None:
        resource["basedOn"] = context.based_on
    return resource


_VALID_IDS: set[str] = set()
"""UIDs already checked against FHIR_ID: a report names the same study, series and instances in selection after
selection, and a set lookup costs a fifteenth of the match."""
_VALID_IDS_LIMIT = 65_536


def _uid(
    context: ReportContext, position: tuple[int, ...], element: str, uid: str | None, consequence: str = ""
) -> str | None:
    """`uid` when it can be the R5 `id` `element`, else None; one that cannot (a malformed DICOM UID: too long,
    or characters no UID has) is left out with a warning that says what is wrong, not the value."""
    if uid is None or uid in _VALID_IDS:
        return uid
    if FHIR_ID.fullmatch(uid):
        if len(_VALID_IDS) >= _VALID_IDS_LIMIT:
            _VALID_IDS.clear()
        _VALID_IDS.add(uid)
        return uid
    problems = []
    if not uid:
        problems.append("is empty")
    if len(uid) > FHIR_ID_LENGTH:
        problems.append(f"has {len(uid)} characters (an R5 id at most {FHIR_ID_LENGTH})")
    if not FHIR_ID_CHARACTERS.fullmatch(uid):
        problems.append("has characters an R5 id cannot hold (only letters, digits, '-' and '.')")
    context.warn(
        WarningCode.INVALID_VALUE,
        position,
        f"{UID_ELEMENTS[element]} {' and '.join(problems)}: {consequence or 'no ' + element}",
    )
    return None


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
    the ImagingStudy, series, frame of reference (the caller has checked it: it can decide whether there is a
    selection), and STU1's `bodySite` and `focus`. A study or series UID that is no `id` is left out."""
    studies = {i.study_instance_uid for i in instances if i.study_instance_uid}
    study_uid = studies.pop() if len(studies) == 1 else context.report.document.study_instance_uid
    if study_uid := _uid(context, position, "studyUid", study_uid):
        resource["studyUid"] = study_uid
    resource["derivedFrom"] = context.study
    if series_uid := _uid(context, position, "seriesUid", series_uid or None):
        resource["seriesUid"] = series_uid
    if frame_of_reference_uid:
        resource["frameOfReferenceUid"] = frame_of_reference_uid
    if body_site is not None:
        resource["bodySite"] = body_site
    if focus:
        resource["focus"] = focus


def _instance(instance: ReferencedInstance, context: ReportContext, position: tuple[int, ...]) -> dict | None:
    """The `instance` entry of a referenced SOP instance; None, with a warning, when its UID is no `id`
    (`instance.uid` is 1..1, so the entry cannot be written without it)."""
    uid = _uid(context, position, "instance.uid", instance.sop_instance_uid, "instance left out")
    if uid is None:
        return None
    entry: dict = {"uid": uid}
    if (sop_class := _sop_class(context, position, instance.sop_class_uid)) is not None:
        entry["sopClass"] = sop_class
    return entry


def writable(reference: ImageReference) -> bool:
    """Whether a reference content item can be an ImagingSelection: it needs a code (its profile's, else its
    concept) and, for a 2D image region, coordinates R5 can hold."""
    if profiles.SELECTION_PROFILES[reference.kind].code is None and reference.concept is None:
        return False
    return not _is_2d_region(reference) or bool(_regions_2d(reference))


def build_imaging_selection(
    context: ReportContext,
    references: Sequence[ImageReference],
    body_site: dict | None = None,
    focus: list[dict] | None = None,
) -> dict | None:
    """The selection of one reference content item (ballot) or of the items of one profile that one
    observation uses (STU1: its `derivedFrom` slices are 0..1, so they share one selection, an instance entry
    per referenced image and region); `body_site` and `focus` are STU1's (FHIR-47943, 47946, 47949), None
    under the ballot. The id is the first item's. None when it cannot be written: no code, a 2D region R5
    cannot hold, or none of the instances and frame of reference that locate it has a UID an `id` can hold."""
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
    instances: list[dict] = []
    for reference in references:
        regions = _regions_2d(reference) if _is_2d_region(reference) else None
        if reference.instances and regions == []:
            return None
        for instance in reference.instances:
            entry = _instance(instance, context, reference.position)
            if entry is None:
                continue
            subset = _subset(reference, instance)
            if reference.kind in SEGMENT_REFERENCE_KINDS and len(subset) > 1:
                # The segment profiles allow one subset value per instance entry: one entry per segment.
                instances.extend({**entry, "subset": [number]} for number in subset)
                continue
            if subset:
                entry["subset"] = subset
            if regions:
                entry["imageRegion2D"] = regions
            instances.append(entry)
    referenced = [i for reference in references for i in reference.instances]
    frames = {reference.frame_of_reference_uid for reference in references}
    frame = frames.pop() if len(frames) == 1 else None
    valid_frame = _uid(context, first.position, "frameOfReferenceUid", frame or None)
    if (referenced or frame) and not (instances or valid_frame):
        return None  # it had a place (instances, or a 3D region's frame of reference), and none of it is writable
    series = {i.series_instance_uid for i in referenced}
    _place(
        resource,
        context,
        first.position,
        referenced,
        series.pop() if len(series) == 1 else None,
        valid_frame,
        body_site,
        focus,
    )
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
    series, the instances are those of that series in the SR's evidence sequences. None when there are no
    instances, or none with a UID an `id` can hold (its profile wants `instance` 1..*)."""
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
            context.warn(
                WarningCode.UNRESOLVED_REFERENCE,
                position,
                "Source series for segmentation has no instances in the evidence: no source image selection",
            )
        return None
    entries = []
    for instance in instances:
        entry = _instance(instance, context, position)
        if entry is None:
            continue
        if instance.frame_numbers:
            entry["subset"] = [str(n) for n in instance.frame_numbers]
        entries.append(entry)
    if not entries:
        context.warn(
            WarningCode.INVALID_VALUE,
            position,
            "Source image for segmentation has no instance with a valid UID: no source image selection",
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
    resource["instance"] = entries
    return context.add(resource)


def build_source_sr_content_item(
    context: ReportContext, position: tuple[int, ...], observation_uid: str
) -> dict | None:
    """STU1 source-sr-content-item: this SR, with the content item's Observation UID as the subset (the R5
    meaning of `instance.subset` for SR, HL7/fhir PR #3127). None when the SR's SOP Instance UID is no `id`:
    its one instance (1..1) needs it as `uid`."""
    sop_instance_uid = _uid(context, position, "instance.uid", context.sop_instance_uid, "no source SR content item")
    if sop_instance_uid is None:
        return None
    document = context.report.document
    resource = _selection(
        context,
        document_resource_id("ImagingSelection", context.sop_instance_uid, position, "source-sr-content-item"),
        profiles.SOURCE_SR_CONTENT_ITEM,
    )
    resource["code"] = fixed(profiles.CODE_ORIGINAL_SOURCE)
    _place(resource, context, position, (), document.series_instance_uid, None, None, None)  # the SR's own study
    entry: dict = {"uid": sop_instance_uid}
    if (sop_class := _sop_class(context, position, document.sop_class_uid)) is not None:
        entry["sopClass"] = sop_class
    entry["subset"] = [observation_uid]
    resource["instance"] = [entry]
    return context.add(resource)
