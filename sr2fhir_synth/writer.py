"""`ReportSpec` → DICOM SR Part 10 bytes, with pydicom only.

Two steps: the spec becomes a tree of `_Item`s (the content tree as TID 1500 lays it out, with positions,
so that by-reference items can name their targets and the item count is known without encoding), then the
tree and the header become a pydicom `Dataset` written in the requested `Encoding`. Output is a pure
function of (spec, encoding): no clock, no randomness, no pydicom version in the file meta.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from . import catalog
from .spec import (
    Algorithm,
    Code,
    CodedValue,
    DerivationParameter,
    DeviceObserver,
    FindingSite,
    ImageReference,
    Issuer,
    Measurement,
    MeasurementGroup,
    NumValue,
    Participant,
    PersonObserver,
    QualitativeEvaluation,
    ReferencedInstance,
    ReferenceKind,
    ReportSpec,
    SpatialItem,
    TimePointContext,
)

IMPLEMENTATION_CLASS_UID = "2.25.173598232716364916574457366407283947081"
"""This generator's own Implementation Class UID (a UUID-derived UID), so the file meta does not change
with the installed pydicom version."""
IMPLEMENTATION_VERSION_NAME = "SR2FHIR_SYNTH_1"


class TransferSyntax(StrEnum):
    EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
    IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
    EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
    """Retired in DICOM, still found in archives; pydicom 3 writes it for data sets without pixel data."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """How the bytes are laid out; the content is the same whatever the encoding."""

    transfer_syntax: TransferSyntax = TransferSyntax.EXPLICIT_VR_LITTLE_ENDIAN
    undefined_length_sequences: bool = False
    """Sequences end with a Sequence Delimitation Item instead of a length (DCMTK writes them so)."""
    undefined_length_items: bool = False
    """Sequence items end with an Item Delimitation Item instead of a length."""
    omit_empty_measured_values: bool = False
    """A NUM without a value leaves its Measured Value Sequence out instead of writing it empty (Type 2),
    as dcmjs does."""


DEFAULT_ENCODING = Encoding()
ENCODINGS: tuple[Encoding, ...] = (
    DEFAULT_ENCODING,
    Encoding(TransferSyntax.IMPLICIT_VR_LITTLE_ENDIAN),
    Encoding(TransferSyntax.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, undefined_length_sequences=True),
    Encoding(TransferSyntax.EXPLICIT_VR_BIG_ENDIAN, undefined_length_items=True),
    Encoding(TransferSyntax.EXPLICIT_VR_LITTLE_ENDIAN, True, True, omit_empty_measured_values=True),
    Encoding(TransferSyntax.IMPLICIT_VR_LITTLE_ENDIAN, True, True),
)
"""Every transfer syntax, defined/undefined lengths of sequences and items in several combinations, and
both ways of writing a NUM without a value."""


# --- The content tree ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Num:
    value: str | None
    unit: Code | None
    qualifier: Code | None


@dataclass(frozen=True, slots=True)
class _Graphic:
    graphic_type: str
    data: tuple[float, ...]
    frame_of_reference_uid: str | None = None


_Value = Code | str | _Num | _Graphic | ReferencedInstance | None


@dataclass(eq=False, slots=True)
class _Item:
    """One content item. `target` makes it a by-reference item (Referenced Content Item Identifier)."""

    relationship: str | None
    value_type: str
    concept: Code | None = None
    value: _Value = None
    children: list[_Item] = field(default_factory=list)
    template_id: str | None = None
    observation_uid: str | None = None
    observation_datetime: str | None = None
    target: _Item | None = None
    position: tuple[int, ...] = ()


@dataclass(slots=True)
class _Context:
    """Items that by-reference links of later items point at, collected while the tree is built."""

    library: dict[str, _Item] = field(default_factory=dict)
    """SOP Instance UID → its Image Library entry (targets of R-SELECTED FROM)."""


def _by_reference(relationship: str, target: _Item) -> _Item:
    return _Item(relationship, "", target=target)


def _code(relationship: str, concept: Code, value: Code, *children: _Item) -> _Item:
    return _Item(relationship, "CODE", concept, value, list(children))


def _text(relationship: str, concept: Code, value: str) -> _Item:
    return _Item(relationship, "TEXT", concept, value)


def _uid(relationship: str, concept: Code, value: str) -> _Item:
    return _Item(relationship, "UIDREF", concept, value)


def _algorithm(algorithm: Algorithm | None) -> list[_Item]:
    """TID 4019 Algorithm Identification, as HAS CONCEPT MOD children of the item it qualifies."""
    if algorithm is None:
        return []
    items = [_text("HAS CONCEPT MOD", catalog.ALGORITHM_NAME, algorithm.name)]
    if algorithm.name_code is not None:
        items.append(_code("HAS CONCEPT MOD", catalog.ALGORITHM_NAME, algorithm.name_code))
    items.append(_text("HAS CONCEPT MOD", catalog.ALGORITHM_VERSION, algorithm.version))
    if algorithm.manufacturer is not None:
        items.append(_text("HAS CONCEPT MOD", catalog.ALGORITHM_MANUFACTURER, algorithm.manufacturer))
    items += [_text("HAS CONCEPT MOD", catalog.ALGORITHM_PARAMETERS, p) for p in algorithm.parameters]
    if algorithm.family is not None:
        items.append(_code("HAS CONCEPT MOD", catalog.ALGORITHM_FAMILY, algorithm.family))
    return items


def _finding_sites(sites: tuple[FindingSite, ...]) -> list[_Item]:
    """Finding Sites (TID 1419 / 1501 / 301, VM 1-n), each with its own Laterality and Topographical
    modifier as its HAS CONCEPT MOD children."""
    items = []
    for site in sites:
        children = []
        if site.laterality is not None:
            children.append(_code("HAS CONCEPT MOD", catalog.LATERALITY, site.laterality))
        if site.topographical_modifier is not None:
            children.append(_code("HAS CONCEPT MOD", catalog.TOPOGRAPHICAL_MODIFIER, site.topographical_modifier))
        items.append(_code("HAS CONCEPT MOD", catalog.FINDING_SITE, site.site, *children))
    return items


def _modifiers(modifiers: tuple[CodedValue, ...]) -> list[_Item]:
    return [_code("HAS CONCEPT MOD", m.concept, m.value) for m in modifiers]


_SOURCE = Code("260753009", "SCT", "Source")
"""Concept name of the IMAGE a SCOORD is SELECTED FROM."""


def _reference(reference: ImageReference, relationship: str, context: _Context | None = None) -> _Item:
    value_type, concept = catalog.REFERENCE_ITEMS[reference.kind]
    item = _Item(relationship, value_type, reference.purpose or concept, observation_uid=reference.observation_uid)
    if value_type == "SCOORD":
        assert reference.instance is not None and reference.graphic_type is not None
        item.value = _Graphic(reference.graphic_type, reference.graphic_data)
        entry = None
        if reference.select_by_reference and context is not None:
            entry = context.library.get(reference.instance.sop_instance_uid)
        if entry is not None:
            item.children.append(_by_reference("SELECTED FROM", entry))
        else:
            item.children.append(_Item("SELECTED FROM", "IMAGE", _SOURCE, reference.instance))
    elif value_type == "SCOORD3D":
        assert reference.graphic_type is not None
        item.value = _Graphic(reference.graphic_type, reference.graphic_data, reference.frame_of_reference_uid)
    else:
        item.value = reference.instance
        if reference.kind is ReferenceKind.REGION_IN_SPACE:
            item.children += [
                _text("HAS CONCEPT MOD", catalog.REFERENCED_ROI_IDENTIFIER, roi) for roi in reference.roi_numbers
            ]
    return item


def _spatial_item(spatial: SpatialItem) -> _Item:
    """A SCOORD (with its own SELECTED FROM IMAGE) or SCOORD3D that is not the group's ROI."""
    value_type = "SCOORD" if spatial.instance is not None else "SCOORD3D"
    graphic = _Graphic(spatial.graphic_type, spatial.graphic_data, spatial.frame_of_reference_uid)
    item = _Item(spatial.relationship, value_type, spatial.concept, graphic, observation_uid=spatial.observation_uid)
    if spatial.instance is not None:
        item.children.append(_Item("SELECTED FROM", "IMAGE", _SOURCE, spatial.instance))
    return item


def _parameter(parameter: DerivationParameter) -> _Item:
    """A derivation parameter by value: INFERRED FROM NUM, CODE or TEXT (TID 1419 rows 13, 14b, 14c)."""
    if isinstance(parameter, NumValue):
        return _Item("INFERRED FROM", "NUM", parameter.concept, _Num(parameter.value, parameter.unit, None))
    if isinstance(parameter, CodedValue):
        return _code("INFERRED FROM", parameter.concept, parameter.value)
    return _text("INFERRED FROM", parameter.concept, parameter.text)


def _measurement(
    measurement: Measurement,
    group_references: list[_Item],
    context: _Context | None = None,
    siblings: list[_Item] | None = None,
) -> _Item:
    """TID 300 / TID 1419 measurement rows; `siblings` are the NUM items of the group's earlier
    measurements (targets of by-reference derivation parameters)."""
    children: list[_Item] = []
    if measurement.tracking_identifier is not None:
        children.append(_text("HAS OBS CONTEXT", catalog.TRACKING_IDENTIFIER, measurement.tracking_identifier))
    if measurement.tracking_uid is not None:
        children.append(_uid("HAS OBS CONTEXT", catalog.TRACKING_UID, measurement.tracking_uid))
    children += _modifiers(measurement.modifiers)
    if measurement.method is not None:
        children.append(_code("HAS CONCEPT MOD", catalog.MEASUREMENT_METHOD, measurement.method))
    if measurement.derivation is not None:
        children.append(_code("HAS CONCEPT MOD", catalog.DERIVATION, measurement.derivation))
    children += _finding_sites(measurement.finding_sites)
    children += [_parameter(p) for p in measurement.derivation_parameters]
    earlier = siblings or []
    for index in measurement.derivation_parameter_references:
        assert index < len(earlier), "a by-reference derivation parameter names an earlier measurement"
        children.append(_by_reference("INFERRED FROM", earlier[index]))
    if measurement.equation is not None:
        children.append(_text("INFERRED FROM", measurement.equation.concept, measurement.equation.text))
    children += [_reference(r, "INFERRED FROM", context) for r in measurement.image_references]
    children += [_by_reference("INFERRED FROM", group_references[i]) for i in measurement.group_references]
    if measurement.equivalent_meaning is not None:
        children.append(_text("HAS CONCEPT MOD", catalog.EQUIVALENT_MEANING, measurement.equivalent_meaning))
    if measurement.equivalent_meaning_code is not None:
        children.append(_code("HAS CONCEPT MOD", catalog.EQUIVALENT_MEANING, measurement.equivalent_meaning_code))
    children += _algorithm(measurement.algorithm)
    unit = measurement.unit
    if unit is not None and measurement.unit_spelling is not None:
        unit = Code(measurement.unit_spelling, unit.scheme, unit.meaning)
    return _Item(
        "CONTAINS",
        "NUM",
        measurement.concept,
        _Num(measurement.value, unit, measurement.qualifier),
        children,
        observation_uid=measurement.observation_uid,
        observation_datetime=measurement.observation_datetime,
    )


def _evaluation(evaluation: QualitativeEvaluation) -> _Item:
    if evaluation.value_code is not None:
        item = _code("CONTAINS", evaluation.concept, evaluation.value_code, *_modifiers(evaluation.modifiers))
    else:
        item = _text("CONTAINS", evaluation.concept, evaluation.value_text or "")
    item.children += _algorithm(evaluation.algorithm)
    item.observation_uid = evaluation.observation_uid
    item.observation_datetime = evaluation.observation_datetime
    return item


def _time_point(group: MeasurementGroup) -> list[_Item]:
    """TID 1502 Time Point Context, in table order (only with the mandatory Time Point row)."""
    if group.time_point is None:
        return []
    context = group.time_point_context or TimePointContext()
    items = []
    if context.subject_time_point_identifier is not None:
        items.append(
            _text("HAS OBS CONTEXT", catalog.SUBJECT_TIME_POINT_IDENTIFIER, context.subject_time_point_identifier)
        )
    if context.protocol_time_point_identifier is not None:
        items.append(
            _text("HAS OBS CONTEXT", catalog.PROTOCOL_TIME_POINT_IDENTIFIER, context.protocol_time_point_identifier)
        )
    items.append(_text("HAS OBS CONTEXT", catalog.TIME_POINT, group.time_point))
    items += [_code("HAS OBS CONTEXT", catalog.TIME_POINT_TYPE, t) for t in context.types]
    if context.order is not None:
        order = _Num(str(context.order), catalog.NO_UNITS, None)
        items.append(_Item("HAS OBS CONTEXT", "NUM", catalog.TIME_POINT_ORDER, order))
    if context.offset_days is not None:
        offset = _Item(
            "HAS OBS CONTEXT", "NUM", catalog.TEMPORAL_OFFSET_FROM_EVENT, _Num(context.offset_days, catalog.DAYS, None)
        )
        if context.offset_event is not None:
            offset.children.append(_code("HAS CONCEPT MOD", catalog.TEMPORAL_EVENT_TYPE, context.offset_event))
        items.append(offset)
    return items


def _group(group: MeasurementGroup, context: _Context | None = None) -> _Item:
    """TID 1410 / 1411 / 1501 rows in template order."""
    children: list[_Item] = []
    if group.tracking_identifier is not None:
        children.append(_text("HAS OBS CONTEXT", catalog.TRACKING_IDENTIFIER, group.tracking_identifier))
    if group.tracking_uid is not None:
        children.append(_uid("HAS OBS CONTEXT", catalog.TRACKING_UID, group.tracking_uid))
    if group.activity_session is not None:
        children.append(_text("HAS OBS CONTEXT", catalog.ACTIVITY_SESSION, group.activity_session))
    children += _time_point(group)
    if group.finding_category is not None:
        children.append(_code("CONTAINS", catalog.FINDING_CATEGORY, group.finding_category))
    if group.finding is not None:
        children.append(_code("CONTAINS", catalog.FINDING, group.finding))
    if group.geometric_purpose is not None:
        children.append(_code("CONTAINS", catalog.GEOMETRIC_PURPOSE, group.geometric_purpose))
    references = [_reference(r, "CONTAINS", context) for r in group.image_references]
    children += references
    children += [
        _Item("CONTAINS", "IMAGE", catalog.SOURCE_IMAGE_FOR_SEGMENTATION, image) for image in group.source_images
    ]
    if group.source_series_uid is not None:
        children.append(_uid("CONTAINS", catalog.SOURCE_SERIES_FOR_SEGMENTATION, group.source_series_uid))
    children += [_spatial_item(s) for s in group.other_spatial_items]
    if group.method is not None:
        children.append(_code("HAS CONCEPT MOD", catalog.MEASUREMENT_METHOD, group.method))
    children += _finding_sites(group.finding_sites)
    children += _algorithm(group.algorithm)
    measurements: list[_Item] = []
    for measurement in group.measurements:
        measurements.append(_measurement(measurement, references, context, measurements))
    children += measurements
    children += [_evaluation(e) for e in group.qualitative_evaluations]
    return _Item(
        "CONTAINS",
        "CONTAINER",
        catalog.MEASUREMENT_GROUP,
        children=children,
        template_id=group.template.value,
        observation_uid=group.observation_uid,
        observation_datetime=group.observation_datetime,
    )


def _person(person: PersonObserver) -> list[_Item]:
    """TID 1002 Observer Type Person, then TID 1003 in table order."""
    items = [
        _code("HAS OBS CONTEXT", catalog.OBSERVER_TYPE, catalog.OBSERVER_PERSON),
        _Item("HAS OBS CONTEXT", "PNAME", catalog.PERSON_OBSERVER_NAME, person.name),
    ]
    if person.login_name is not None:
        items.append(_text("HAS OBS CONTEXT", catalog.PERSON_OBSERVER_LOGIN_NAME, person.login_name))
    if person.organization is not None:
        items.append(_text("HAS OBS CONTEXT", catalog.PERSON_OBSERVER_ORGANIZATION, person.organization))
    if person.role_in_organization is not None:
        items.append(
            _code("HAS OBS CONTEXT", catalog.PERSON_OBSERVER_ROLE_IN_ORGANIZATION, person.role_in_organization)
        )
    if person.role_in_procedure is not None:
        role = _code("HAS OBS CONTEXT", catalog.PERSON_OBSERVER_ROLE_IN_PROCEDURE, person.role_in_procedure)
        if person.identifier_within_role is not None:
            role.children.append(
                _text("HAS CONCEPT MOD", catalog.IDENTIFIER_WITHIN_PERSON_OBSERVER_ROLE, person.identifier_within_role)
            )
        items.append(role)
    return items


def _device(device: DeviceObserver) -> list[_Item]:
    """TID 1002 Observer Type Device, then TID 1004 in table order."""
    items = [
        _code("HAS OBS CONTEXT", catalog.OBSERVER_TYPE, catalog.OBSERVER_DEVICE),
        _uid("HAS OBS CONTEXT", catalog.DEVICE_OBSERVER_UID, device.uid),
    ]
    texts = (
        (catalog.DEVICE_OBSERVER_NAME, device.name),
        (catalog.DEVICE_OBSERVER_MANUFACTURER, device.manufacturer),
        (catalog.DEVICE_OBSERVER_MODEL_NAME, device.model_name),
        (catalog.DEVICE_OBSERVER_SERIAL_NUMBER, device.serial_number),
        (catalog.DEVICE_OBSERVER_PHYSICAL_LOCATION, device.physical_location),
    )
    items += [_text("HAS OBS CONTEXT", concept, value) for concept, value in texts if value is not None]
    items += [_code("HAS OBS CONTEXT", catalog.DEVICE_ROLE_IN_PROCEDURE, role) for role in device.roles]
    if device.station_ae_title is not None:
        items.append(_text("HAS OBS CONTEXT", catalog.STATION_AE_TITLE, device.station_ae_title))
    items += [
        _uid("HAS OBS CONTEXT", catalog.DEVICE_OBSERVER_MANUFACTURER_CLASS_UID, uid)
        for uid in device.manufacturer_class_uids
    ]
    for udi in device.udis:
        container = _Item("HAS OBS CONTEXT", "CONTAINER", catalog.UNIQUE_DEVICE_IDENTIFIERS)
        container.children.append(_text("CONTAINS", catalog.UNIQUE_DEVICE_IDENTIFIER, udi.udi))
        if udi.description is not None:
            container.children.append(_text("CONTAINS", catalog.DEVICE_DESCRIPTION, udi.description))
        items.append(container)
    return items


def _observers(spec: ReportSpec) -> list[_Item]:
    """TID 1001 / 1002 Observer Context: each observer starts with its Observer Type."""
    items: list[_Item] = []
    for person in spec.person_observers:
        items += _person(person)
    for device in spec.device_observers:
        items += _device(device)
    return items


def _image_library(spec: ReportSpec, context: _Context) -> list[_Item]:
    """TID 1600 Image Library: one group listing the referenced images (not SEG, RWVM or RTSTRUCT)."""
    images = [i for i in spec.referenced_instances() if i.sop_class_uid in catalog.SOURCE_IMAGE_CLASSES]
    if not spec.image_library or not images:
        return []
    entries = []
    for image in images:
        entry = _Item("CONTAINS", "IMAGE", None, _without_subsets(image))
        context.library[image.sop_instance_uid] = entry
        entries.append(entry)
    group = _Item("CONTAINS", "CONTAINER", catalog.IMAGE_LIBRARY_GROUP, children=entries)
    return [_Item("CONTAINS", "CONTAINER", catalog.IMAGE_LIBRARY, children=[group])]


def _without_subsets(instance: ReferencedInstance) -> ReferencedInstance:
    """The instance itself, as the Image Library and the evidence list it: no frames, no segments."""
    return dataclasses.replace(instance, frame_numbers=(), segment_numbers=())


def _content_tree(spec: ReportSpec) -> _Item:
    context = _Context()
    children: list[_Item] = []
    if spec.language is not None:
        country = []
        if spec.language_country is not None:
            country.append(_code("HAS CONCEPT MOD", catalog.COUNTRY_OF_LANGUAGE, spec.language_country))
        children.append(_code("HAS CONCEPT MOD", catalog.LANGUAGE_OF_CONTENT, spec.language, *country))
    children += _observers(spec)
    children += [_code("HAS CONCEPT MOD", catalog.PROCEDURE_REPORTED, p) for p in spec.procedures_reported]
    children += _image_library(spec, context)
    groups: list[_Item] = []
    if (
        spec.groups
        or spec.measurements_algorithm is not None
        or not (spec.derived_measurements or spec.qualitative_evaluations)
    ):
        measurements = _Item("CONTAINS", "CONTAINER", catalog.IMAGING_MEASUREMENTS)
        measurements.children += _algorithm(spec.measurements_algorithm)
        groups = [_group(g, context) for g in spec.groups]
        measurements.children += groups
        children.append(measurements)
    if spec.derived_measurements:
        derived = _Item("CONTAINS", "CONTAINER", catalog.DERIVED_IMAGING_MEASUREMENTS)
        derived.children += _algorithm(spec.derived_measurements_algorithm)
        for d in spec.derived_measurements:
            item = _measurement(d.measurement, [], context)
            item.children += [_group(g, context) for g in d.groups]
            item.children += [_by_reference("INFERRED FROM", groups[i]) for i in d.group_references]
            derived.children.append(item)
        children.append(derived)
    if spec.qualitative_evaluations:
        evaluations = _Item("CONTAINS", "CONTAINER", catalog.QUALITATIVE_EVALUATIONS)
        evaluations.children += _algorithm(spec.qualitative_evaluations_algorithm)
        evaluations.children += [_evaluation(e) for e in spec.qualitative_evaluations]
        children.append(evaluations)
    root = _Item(None, "CONTAINER", catalog.IMAGING_MEASUREMENT_REPORT, children=children, template_id="1500")
    _number(root, (1,))
    return root


def _number(item: _Item, position: tuple[int, ...]) -> None:
    """Positions as Referenced Content Item Identifier counts them: the root is (1,), children from 1."""
    item.position = position
    for index, child in enumerate(item.children, start=1):
        _number(child, (*position, index))


def _walk(item: _Item) -> Iterator[_Item]:
    yield item
    for child in item.children:
        yield from _walk(child)


def count_content_items(spec: ReportSpec) -> int:
    """Content items `write_sr` writes for this spec, the root and by-reference items included."""
    return sum(1 for _ in _walk(_content_tree(spec)))


def count_group_items(group: MeasurementGroup) -> int:
    """Content items of one measurement group, its CONTAINER included (sizes reports to a target)."""
    return sum(1 for _ in _walk(_group(group)))


# --- pydicom data sets --------------------------------------------------------------------------------------


class _Coder:
    """Code → Code Sequence item; with `legacy_snomed`, SNOMED CT codes in their SNOMED-RT form. Also
    carries the other per-document writing choices the value setters need."""

    def __init__(self, legacy_snomed: bool, omit_empty_measured_values: bool = False) -> None:
        self.legacy_snomed = legacy_snomed
        self.omit_empty_measured_values = omit_empty_measured_values

    def __call__(self, code: Code) -> Dataset:
        value, scheme = code.value, code.scheme
        if self.legacy_snomed and scheme == "SCT" and value in catalog.SNOMED_RT:
            value, scheme = catalog.SNOMED_RT[value], "SRT"
        item = Dataset()
        if ":" in value:
            item.URNCodeValue = value
        elif len(value) > 16:
            item.LongCodeValue = value
        else:
            item.CodeValue = value
        item.CodingSchemeDesignator = scheme
        item.CodeMeaning = code.meaning
        return item

    def sequence(self, code: Code) -> Sequence:
        return Sequence([self(code)])


def _sop_reference(instance: ReferencedInstance) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = instance.sop_class_uid
    item.ReferencedSOPInstanceUID = instance.sop_instance_uid
    if instance.frame_numbers:
        item.ReferencedFrameNumber = list(instance.frame_numbers)
    if instance.segment_numbers:
        item.ReferencedSegmentNumber = list(instance.segment_numbers)
    return item


def _set_num(ds: Dataset, value: _Value, coder: _Coder) -> None:
    assert isinstance(value, _Num)
    measured: list[Dataset] = []
    if value.value is not None:
        item = Dataset()
        item.NumericValue = value.value
        assert value.unit is not None
        item.MeasurementUnitsCodeSequence = coder.sequence(value.unit)
        measured.append(item)
    if measured or not coder.omit_empty_measured_values:
        ds.MeasuredValueSequence = Sequence(measured)
    if value.qualifier is not None:
        ds.NumericValueQualifierCodeSequence = coder.sequence(value.qualifier)


def _set_code(ds: Dataset, value: _Value, coder: _Coder) -> None:
    assert isinstance(value, Code)
    ds.ConceptCodeSequence = coder.sequence(value)


def _set_text(ds: Dataset, value: _Value, coder: _Coder) -> None:
    ds.TextValue = value


def _set_uid(ds: Dataset, value: _Value, coder: _Coder) -> None:
    ds.UID = value


def _set_pname(ds: Dataset, value: _Value, coder: _Coder) -> None:
    ds.PersonName = value


def _set_scoord(ds: Dataset, value: _Value, coder: _Coder) -> None:
    assert isinstance(value, _Graphic)
    ds.GraphicType = value.graphic_type
    ds.GraphicData = list(value.data)
    if value.frame_of_reference_uid is not None:
        ds.ReferencedFrameOfReferenceUID = value.frame_of_reference_uid


def _set_reference(ds: Dataset, value: _Value, coder: _Coder) -> None:
    assert isinstance(value, ReferencedInstance)
    ds.ReferencedSOPSequence = Sequence([_sop_reference(value)])


def _set_container(ds: Dataset, value: _Value, coder: _Coder) -> None:
    ds.ContinuityOfContent = "SEPARATE"


_VALUE_SETTERS: dict[str, Callable[[Dataset, _Value, _Coder], None]] = {
    "CONTAINER": _set_container,
    "NUM": _set_num,
    "CODE": _set_code,
    "TEXT": _set_text,
    "UIDREF": _set_uid,
    "PNAME": _set_pname,
    "SCOORD": _set_scoord,
    "SCOORD3D": _set_scoord,
    "IMAGE": _set_reference,
    "COMPOSITE": _set_reference,
}
"""Value Type → the attributes that carry the item's value (PS3.3 C.17.3, Table C.17-5 and its macros)."""


def _template(template_id: str) -> Sequence:
    item = Dataset()
    item.MappingResource = "DCMR"
    item.TemplateIdentifier = template_id
    return Sequence([item])


def _content_dataset(item: _Item, coder: _Coder) -> Dataset:
    ds = Dataset()
    assert item.relationship is not None
    ds.RelationshipType = item.relationship
    if item.target is not None:
        ds.ReferencedContentItemIdentifier = list(item.target.position)
        return ds
    _fill(ds, item, coder)
    return ds


def _fill(ds: Dataset, item: _Item, coder: _Coder) -> None:
    """Value Type, concept name, value and children of a content item (or of the root data set)."""
    ds.ValueType = item.value_type
    if item.concept is not None:
        ds.ConceptNameCodeSequence = coder.sequence(item.concept)
    if item.observation_datetime is not None:
        ds.ObservationDateTime = item.observation_datetime
    if item.observation_uid is not None:
        ds.ObservationUID = item.observation_uid
    _VALUE_SETTERS[item.value_type](ds, item.value, coder)
    if item.template_id is not None:
        ds.ContentTemplateSequence = _template(item.template_id)
    if item.children:
        ds.ContentSequence = Sequence([_content_dataset(child, coder) for child in item.children])


def _issuer_qualifiers(issuer: Issuer) -> Dataset:
    item = Dataset()
    if issuer.universal_id is not None:
        item.UniversalEntityID = issuer.universal_id
        item.UniversalEntityIDType = issuer.universal_id_type or "URI"
    return item


def _evidence(spec: ReportSpec) -> tuple[list[Dataset], list[Dataset]]:
    """Hierarchical SOP Instance Reference Macro items: instances of the report's own study go to the
    Current Requested Procedure Evidence Sequence, those of other studies to Pertinent Other Evidence."""
    studies: dict[str, dict[str, list[ReferencedInstance]]] = {}
    for instance in spec.referenced_instances():
        series = studies.setdefault(instance.study_instance_uid, {})
        series.setdefault(instance.series_instance_uid, []).append(instance)
    current: list[Dataset] = []
    other: list[Dataset] = []
    for study_uid, series_map in studies.items():
        study = Dataset()
        study.StudyInstanceUID = study_uid
        series_items = []
        for series_uid, instances in series_map.items():
            series_item = Dataset()
            series_item.SeriesInstanceUID = series_uid
            series_item.ReferencedSOPSequence = Sequence([_sop_reference(_without_subsets(i)) for i in instances])
            series_items.append(series_item)
        study.ReferencedSeriesSequence = Sequence(series_items)
        (current if study_uid == spec.study.study_instance_uid else other).append(study)
    return current, other


def _set_given(dataset: Dataset, **values: object) -> None:
    """Optional attributes by keyword: those given (not None) are set."""
    for keyword, value in values.items():
        if value is not None:
            setattr(dataset, keyword, value)


def _participant(participant: Participant) -> Dataset:
    item = Dataset()
    item.ParticipationType = participant.participation_type
    item.ParticipationDateTime = participant.datetime
    item.ObserverType = participant.observer_type
    _set_given(
        item,
        PersonName=participant.person_name,
        InstitutionName=participant.organization,
        DeviceUID=participant.device_uid,
        Manufacturer=participant.manufacturer,
        ManufacturerModelName=participant.model_name,
    )
    return item


def build_dataset(spec: ReportSpec, encoding: Encoding = DEFAULT_ENCODING) -> Dataset:
    """The SR data set (PS3.3 A.35.1/A.35.2/A.35.13 modules) without file meta."""
    coder = _Coder(spec.legacy_snomed, encoding.omit_empty_measured_values)
    patient, study, equipment, instance = spec.patient, spec.study, spec.equipment, spec.instance
    ds = Dataset()
    if instance.specific_character_set is not None:
        ds.SpecificCharacterSet = instance.specific_character_set
    ds.SOPClassUID = instance.sop_class.value
    ds.SOPInstanceUID = instance.sop_instance_uid
    if instance.timezone_offset is not None:
        ds.TimezoneOffsetFromUTC = instance.timezone_offset
    # Patient
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    if patient.issuer is not None:
        if patient.issuer.local_namespace is not None:
            ds.IssuerOfPatientID = patient.issuer.local_namespace
        if patient.issuer.universal_id is not None:
            ds.IssuerOfPatientIDQualifiersSequence = Sequence([_issuer_qualifiers(patient.issuer)])
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    # General Study
    ds.StudyInstanceUID = study.study_instance_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician_name
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession_number or ""
    if study.accession_issuer is not None:
        issuer = _issuer_qualifiers(study.accession_issuer)
        if study.accession_issuer.local_namespace is not None:
            issuer.LocalNamespaceEntityID = study.accession_issuer.local_namespace
        ds.IssuerOfAccessionNumberSequence = Sequence([issuer])
    if study.description is not None:
        ds.StudyDescription = study.description
    # SR Document Series
    ds.Modality = "SR"
    ds.SeriesInstanceUID = instance.series_instance_uid
    ds.SeriesNumber = instance.series_number
    if instance.series_description is not None:
        ds.SeriesDescription = instance.series_description
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    # General Equipment
    ds.Manufacturer = equipment.manufacturer
    _set_given(
        ds,
        ManufacturerModelName=equipment.model_name,
        DeviceUID=equipment.device_uid,
        DeviceSerialNumber=equipment.serial_number,
        SoftwareVersions=list(equipment.software_versions) if equipment.software_versions else None,
        InstitutionName=equipment.institution_name,
    )
    # SR Document General
    ds.InstanceNumber = instance.instance_number
    ds.ContentDate = instance.content_date
    ds.ContentTime = instance.content_time
    ds.CompletionFlag = instance.completion_flag
    ds.VerificationFlag = instance.verification_flag
    if instance.preliminary_flag is not None:
        ds.PreliminaryFlag = instance.preliminary_flag
    if spec.participants:
        ds.ParticipantSequence = Sequence([_participant(p) for p in spec.participants])
    ds.PerformedProcedureCodeSequence = Sequence()
    current, other = _evidence(spec)
    if current:
        ds.CurrentRequestedProcedureEvidenceSequence = Sequence(current)
    if other:
        ds.PertinentOtherEvidenceSequence = Sequence(other)
    if spec.coding_schemes:
        schemes = []
        for scheme in spec.coding_schemes:
            item = Dataset()
            item.CodingSchemeDesignator = scheme.designator
            item.CodingSchemeName = scheme.name
            if scheme.uid is not None:
                item.CodingSchemeUID = scheme.uid
            if scheme.url is not None:
                item.CodingSchemeURL = scheme.url
            schemes.append(item)
        ds.CodingSchemeIdentificationSequence = Sequence(schemes)
    # SR Document Content: the root content item lives in the data set itself
    _fill(ds, _content_tree(spec), coder)
    return ds


def _set_lengths(ds: Dataset, encoding: Encoding) -> None:
    """Mark every sequence and item for defined or undefined length as the encoding asks."""
    for element in ds:
        if element.VR == "SQ":
            element.is_undefined_length = encoding.undefined_length_sequences
            for item in element.value:
                item.is_undefined_length_sequence_item = encoding.undefined_length_items
                _set_lengths(item, encoding)


def encode_dataset(ds: Dataset, encoding: Encoding = DEFAULT_ENCODING) -> bytes:
    """Part 10 bytes of a data set: 128-byte preamble, file meta, data set in `encoding`."""
    _set_lengths(ds, encoding)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = UID(encoding.transfer_syntax.value)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def write_sr(spec: ReportSpec, encoding: Encoding = DEFAULT_ENCODING) -> bytes:
    """The report as Part 10 bytes in `encoding`."""
    return encode_dataset(build_dataset(spec, encoding), encoding)
