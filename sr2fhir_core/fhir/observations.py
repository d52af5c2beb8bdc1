"""Observations: measurement groups, measurements, qualitative evaluations and derived measurements
(ballot profiles imaging-measurement-group, imaging-measurement, imaging-qualitative-evaluation,
derived-imaging-measurement). Elements are written in R5 order so the JSON reads like the spec."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .. import codes
from ..datetimes import from_dicom_datetime
from ..errors import MappingWarning, WarningCode
from ..tid1500.model import FindingSite, ImageReference, Measurement, MeasurementGroup, QualitativeEvaluation
from . import profiles
from .context import ReportContext, meta
from .datatypes import decimal_value, fixed, quantity, uid_identifier
from .devices import DeviceRegistry
from .ids import document_resource_id

# Observation elements in R5 order; `_ordered` sorts each resource by it before it is returned.
_ORDER = (
    "resourceType", "id", "meta", "identifier", "basedOn", "partOf", "status", "category", "code", "subject",
    "focus", "effectiveDateTime", "issued", "performer", "valueQuantity", "valueCodeableConcept",
    "dataAbsentReason", "note", "bodyStructure", "method", "device", "hasMember", "derivedFrom", "component",
)  # fmt: skip
_RANK = {name: index for index, name in enumerate(_ORDER)}


def _ordered(resource: dict) -> dict:
    return dict(sorted(resource.items(), key=lambda item: _RANK[item[0]]))


def _observation(
    context: ReportContext,
    *,
    position: tuple[int, ...],
    profile: str,
    category: Mapping | None,
    code: dict,
    observation_uid: str | None,
    observation_datetime: str | None,
    device: dict,
) -> dict:
    resource: dict = {
        "resourceType": "Observation",
        "id": document_resource_id("Observation", context.sop_instance_uid, position),
        "meta": meta(profile),
    }
    if observation_uid:
        resource["identifier"] = [uid_identifier(observation_uid, profiles.IDENTIFIER_TYPE_OBSERVATION_UID)]
    if context.service_request is not None:
        resource["basedOn"] = [context.ref(context.service_request)]
    resource["partOf"] = [context.ref(context.imaging_study)]
    resource["status"] = context.status
    if category is not None:
        resource["category"] = [fixed(category)]
    resource["code"] = code
    resource["subject"] = context.ref(context.patient)
    # Observation DateTime (0040,A032) of the item overrides the document's times (IG example page).
    own_time = from_dicom_datetime(observation_datetime, context.timezone, instant=True)
    if observation_datetime and own_time is None:
        context.warnings.append(
            MappingWarning(
                WarningCode.INVALID_VALUE,
                ".".join(map(str, position)),
                f"Observation DateTime {observation_datetime!r} is not a complete date and time",
            )
        )
    effective = own_time or context.effective
    if effective:
        resource["effectiveDateTime"] = effective
    issued = own_time or context.issued
    if issued:
        resource["issued"] = issued
    if context.performers:
        resource["performer"] = list(context.performers)
    resource["device"] = device
    return resource


def _value_absent(measurement: Measurement, context: ReportContext) -> dict:
    """dataAbsentReason for a NUM without a finite value; the DICOM qualifier rides along as a second
    coding of the same concept, so nothing the SR said is lost."""
    qualifier = measurement.qualifier
    if qualifier is not None and qualifier.scheme == "DCM":
        reason = codes.NUMERIC_VALUE_QUALIFIER_ABSENT_REASON.get(qualifier.value, "unknown")
    elif measurement.numeric_value is not None:
        reason = "not-a-number" if "nan" in measurement.numeric_value.lower() else "error"
    else:
        reason = "unknown"
    codings = [
        {
            "system": profiles.DATA_ABSENT_REASON,
            "code": reason,
            "display": profiles.DATA_ABSENT_REASON_DISPLAYS[reason],
        }
    ]
    if qualifier is not None:
        codings.append(context.codings.coding(qualifier))
    result: dict = {"coding": codings}
    if measurement.numeric_value is not None and reason in ("error", "not-a-number"):
        result["text"] = f"Numeric Value {measurement.numeric_value!r} is not a finite decimal"
    return result


class ObservationBuilder:
    """Builds the Observations of one report, given the shared resources (devices, selections, sites)."""

    def __init__(
        self,
        context: ReportContext,
        devices: DeviceRegistry,
        selections_for: Callable[[tuple[ImageReference, ...]], list[dict]],
        finding_site_for: Callable[[FindingSite | None, tuple[int, ...]], dict | None],
    ) -> None:
        self.context = context
        self.devices = devices
        self.selections_for = selections_for
        self.finding_site_for = finding_site_for

    def group(self, group: MeasurementGroup, focus: list[dict], site: dict | None) -> tuple[dict, list[dict]]:
        """The group Observation and its members; `focus` holds the group's selections and tracking."""
        context = self.context
        code = (
            context.codings.concept(group.finding_category)
            if group.finding_category is not None
            else fixed(profiles.CATEGORY_MEASUREMENT_GROUP)
        )
        resource = _observation(
            context,
            position=group.position,
            profile=profiles.MEASUREMENT_GROUP,
            category=profiles.CATEGORY_MEASUREMENT_GROUP,
            code=code,
            observation_uid=group.observation_uid,
            observation_datetime=group.observation_datetime,
            device=self.devices.reference_for(group.algorithm, own=group.own_algorithm),
        )
        if focus:
            resource["focus"] = list(focus)
        if group.finding is not None:
            resource["valueCodeableConcept"] = context.codings.concept(group.finding)
        if site is not None:
            resource["bodyStructure"] = site
        if group.method is not None:
            resource["method"] = context.codings.concept(group.method)
        members = [self.measurement(m, group, focus, site) for m in group.measurements]
        members += [self.qualitative_evaluation(e, focus, site) for e in group.qualitative_evaluations]
        if members:
            resource["hasMember"] = [context.ref(m) for m in members]
        return context.add(_ordered(resource)), members

    def measurement(
        self,
        measurement: Measurement,
        group: MeasurementGroup | None,
        focus: list[dict],
        site: dict | None,
        derived_from: list[dict] | None = None,
    ) -> dict:
        context = self.context
        is_derived = group is None
        resource = _observation(
            context,
            position=measurement.position,
            profile=profiles.DERIVED_MEASUREMENT if is_derived else profiles.MEASUREMENT,
            category=profiles.CATEGORY_DERIVED_MEASUREMENTS if is_derived else profiles.CATEGORY_MEASUREMENT_GROUP,
            code=context.codings.concept(measurement.concept),
            observation_uid=measurement.observation_uid,
            observation_datetime=measurement.observation_datetime,
            device=self.devices.reference_for(measurement.algorithm, own=measurement.own_algorithm),
        )
        own_focus = [self.context.ref(s) for s in self.selections_for(measurement.image_references)]
        if focus or own_focus:
            resource["focus"] = list(focus) + own_focus
        value = decimal_value(measurement.numeric_value)
        if value is not None:
            resource["valueQuantity"] = quantity(value, measurement.unit, context.codings)
            if measurement.qualifier is not None:
                resource["note"] = [{"text": f"Numeric Value Qualifier: {measurement.qualifier}"}]
        else:
            resource["dataAbsentReason"] = _value_absent(measurement, context)
        if not is_derived:
            own_site = (
                self.finding_site_for(measurement.finding_site, measurement.position)
                if group is not None and measurement.finding_site != group.finding_site
                else site
            )
            if own_site is not None:
                resource["bodyStructure"] = own_site
        if measurement.method is not None:
            resource["method"] = context.codings.concept(measurement.method)
        if measurement.derivation is not None:
            resource["component"] = [
                {
                    "code": context.codings.concept(codes.DERIVATION),
                    "valueCodeableConcept": context.codings.concept(measurement.derivation),
                }
            ]
        if derived_from:
            resource["derivedFrom"] = [context.ref(g) for g in derived_from]
        return context.add(_ordered(resource))

    def qualitative_evaluation(self, evaluation: QualitativeEvaluation, focus: list[dict], site: dict | None) -> dict:
        context = self.context
        resource = _observation(
            context,
            position=evaluation.position,
            profile=profiles.QUALITATIVE_EVALUATION,
            category=profiles.CATEGORY_QUALITATIVE_EVALUATIONS,
            code=context.codings.concept(evaluation.concept),
            observation_uid=evaluation.observation_uid,
            observation_datetime=evaluation.observation_datetime,
            device=self.devices.reference_for(evaluation.algorithm, own=evaluation.own_algorithm),
        )
        if focus:
            resource["focus"] = list(focus)
        if evaluation.value_code is not None:
            resource["valueCodeableConcept"] = context.codings.concept(evaluation.value_code)
        elif evaluation.value_text:
            resource["valueCodeableConcept"] = {"text": evaluation.value_text}
        else:
            resource["dataAbsentReason"] = {
                "coding": [{"system": profiles.DATA_ABSENT_REASON, "code": "unknown", "display": "Unknown"}]
            }
        if site is not None:
            resource["bodyStructure"] = site
        return context.add(_ordered(resource))

    def derived(self, measurement: Measurement, groups: list[dict]) -> dict:
        if not groups:
            self.context.warnings.append(
                MappingWarning(
                    WarningCode.UNRESOLVED_REFERENCE,
                    ".".join(map(str, measurement.position)),
                    "derived measurement without measurement groups to derive from",
                )
            )
        return self.measurement(measurement, None, [], None, derived_from=groups)
