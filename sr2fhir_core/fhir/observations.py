"""Observations: measurement groups, measurements, qualitative evaluations and derived measurements
(profiles imaging-measurement-group, imaging-measurement, imaging-qualitative-evaluation,
derived-imaging-measurement). Image references go to `focus` (ballot) or `derivedFrom` (STU1).

A radiomics report has thousands of measurements that differ only in code, value and id, so everything
the Observations of one report share (references, status, category, meta) is built once and the same
read-only objects are placed in every resource. Elements are written in R5 order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import NamedTuple

from .. import codes
from ..content import Code
from ..datetimes import from_dicom_datetime
from ..errors import WarningCode
from ..tid1500.model import FindingSite, Measurement, MeasurementGroup, QualitativeEvaluation
from . import profiles
from .context import ReportContext, meta
from .datatypes import fixed, quantity, uid_identifier
from .devices import DeviceRegistry
from .ids import document_resource_id


class SiteLink(NamedTuple):
    """Where an Observation's finding site goes: `bodyStructure` (a reference) or, STU1 for a site without
    laterality or topographical modifier, `bodySite` (a CodeableConcept)."""

    body_structure: dict | None
    body_site: dict | None

    def codeable_reference(self, facts: profiles.IgFacts) -> dict | None:
        """`ImagingSelection.bodySite` (STU1, FHIR-47943): the same site as a CodeableReference."""
        if not facts.selection_body_site:
            return None
        if self.body_structure is not None:
            return {"reference": self.body_structure}
        if self.body_site is not None:
            return {"concept": self.body_site}
        return None


NO_SITE = SiteLink(None, None)


def _profile(resource: dict) -> str:
    return resource["meta"]["profile"][0]


class SelectionOwner(NamedTuple):
    """What the ImagingSelections of one observation carry under STU1: its site, the source SR content
    item (and the group's source image for segmentation) in `focus`. Empty under the ballot."""

    body_site: dict | None
    focus: list[dict]
    source_image: dict | None = None


NO_OWNER = SelectionOwner(None, [])

_UNKNOWN_ABSENT_REASON = {"coding": [{"system": profiles.DATA_ABSENT_REASON, "code": "unknown", "display": "Unknown"}]}


class _Kind:
    """What the Observations of one profile share: meta and category, built once per report."""

    __slots__ = ("category", "meta")

    def __init__(self, profile: str, category: Mapping | None) -> None:
        self.meta = meta(profile)
        self.category = [fixed(category)] if category is not None else None


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
        {"system": profiles.DATA_ABSENT_REASON, "code": reason, "display": profiles.DATA_ABSENT_REASON_DISPLAYS[reason]}
    ]
    if qualifier is not None:
        codings.append(context.codings.coding(qualifier))
    result: dict = {"coding": codings}
    if measurement.numeric_value is not None and reason in ("error", "not-a-number"):
        value = measurement.numeric_value
        result["text"] = f"Numeric Value {value!r} is not a finite decimal FHIR and a 64-bit float can hold"
    return result


class ObservationBuilder:
    """Builds the Observations of one report, given the shared resources (devices, selections, sites)."""

    def __init__(
        self,
        context: ReportContext,
        devices: DeviceRegistry,
        selections_for: Callable[..., list[dict]],
        finding_site_for: Callable[[tuple[FindingSite, ...], tuple[int, ...]], SiteLink],
        source_item_for: Callable[[tuple[int, ...], str | None], dict | None],
        selection_profile: Callable[[str], str | None],
    ) -> None:
        self.context = context
        self.facts = facts = context.facts
        self.devices = devices
        self.selections_for = selections_for
        self.finding_site_for = finding_site_for
        self.source_item_for = source_item_for
        self.selection_profile = selection_profile
        self.references_in_focus = facts.image_references == "focus"
        self.sop = context.sop_instance_uid
        self.based_on = context.based_on
        self.part_of = context.study
        self.subject = context.subject
        self.performer = list(context.performers) or None
        self.group_kind = _Kind(profiles.MEASUREMENT_GROUP, profiles.CATEGORY_MEASUREMENT_GROUP)
        self.measurement_kind = _Kind(profiles.MEASUREMENT, facts.measurement_category)
        self.derived_kind = _Kind(profiles.DERIVED_MEASUREMENT, profiles.CATEGORY_DERIVED_MEASUREMENTS)
        self.evaluation_kind = _Kind(profiles.QUALITATIVE_EVALUATION, profiles.CATEGORY_QUALITATIVE_EVALUATIONS)
        self.group_code = fixed(profiles.CATEGORY_MEASUREMENT_GROUP)
        self.status = context.status
        self._times: dict[str | None, tuple[str | None, str | None]] = {None: (context.effective, context.issued)}

    def times(self, observation_datetime: str | None, position: tuple[int, ...]) -> tuple[str | None, str | None]:
        """(effectiveDateTime, issued): Observation DateTime (0040,A032) of the item overrides the document's
        times (IG example page)."""
        cached = self._times.get(observation_datetime)
        if cached is None:
            context = self.context
            own = from_dicom_datetime(observation_datetime, context.timezone, instant=True)
            if own is None:
                context.warn(
                    WarningCode.INVALID_VALUE,
                    position,
                    "Observation DateTime (0040,A032) is not a complete date and time",
                )
                return self._times[None]
            cached = self._times[observation_datetime] = (own, own)
        return cached

    def _observation(
        self,
        kind: _Kind,
        position: tuple[int, ...],
        code: dict,
        observation_uid: str | None,
        observation_datetime: str | None,
        device: dict,
        *,
        focus: list[dict] | None = None,
        value: tuple[str, dict] | None = None,
        note: list[dict] | None = None,
        site: SiteLink = NO_SITE,
        method: dict | None = None,
        has_member: list[dict] | None = None,
        derived_from: list[dict] | None = None,
        component: list[dict] | None = None,
    ) -> dict:
        resource: dict = {
            "resourceType": "Observation",
            "id": document_resource_id("Observation", self.sop, position),
            "meta": kind.meta,
        }
        if observation_uid:
            resource["identifier"] = [uid_identifier(observation_uid, profiles.IDENTIFIER_TYPE_OBSERVATION_UID)]
        if self.based_on is not None:
            resource["basedOn"] = self.based_on
        resource["partOf"] = self.part_of
        resource["status"] = self.status
        if kind.category is not None:
            resource["category"] = kind.category
        resource["code"] = code
        resource["subject"] = self.subject
        if focus:
            resource["focus"] = focus
        effective, issued = self.times(observation_datetime, position)
        if effective:
            resource["effectiveDateTime"] = effective
        if issued:
            resource["issued"] = issued
        if self.performer is not None:
            resource["performer"] = self.performer
        if value is not None:
            resource[value[0]] = value[1]
        if note is not None:
            resource["note"] = note
        if site.body_site is not None:
            resource["bodySite"] = site.body_site
        if site.body_structure is not None:
            resource["bodyStructure"] = site.body_structure
        if method is not None:
            resource["method"] = method
        resource["device"] = device
        if has_member:
            resource["hasMember"] = has_member
        if derived_from:
            resource["derivedFrom"] = derived_from
        if component is not None:
            resource["component"] = component
        return self.context.add(resource)

    def _links(
        self, references: list[dict], position: tuple[int, ...], observation_uid: str | None
    ) -> tuple[list[dict] | None, list[dict] | None]:
        """(focus, derivedFrom): the image references in `focus` (ballot) or `derivedFrom` (STU1, then the
        Observation's own source SR content item)."""
        if self.references_in_focus:
            return references, None
        source = self.source_item_for(position, observation_uid)
        return None, [*references, source] if source is not None else references

    def group(
        self, group: MeasurementGroup, references: list[dict], site: SiteLink, own: list[dict] | None = None
    ) -> tuple[dict, list[dict]]:
        """The group Observation and its members; `references` holds the group's selections (ballot: and
        its tracking BodyStructure), which its members copy; `own` the selections of its other spatial items
        (not its region: members do not copy them)."""
        codings = self.context.codings
        members = [self.measurement(m, group, references, site) for m in group.measurements]
        evaluation_site = site if self.facts.evaluation_site else NO_SITE
        members += [self.qualitative_evaluation(e, references, evaluation_site) for e in group.qualitative_evaluations]
        focus, derived_from = self._links(
            [*references, *own] if own else references, group.position, group.observation_uid
        )
        resource = self._observation(
            self.group_kind,
            group.position,
            codings.concept(group.finding_category) if group.finding_category is not None else self.group_code,
            group.observation_uid,
            group.observation_datetime,
            self.devices.reference_for(group.algorithm, own=group.own_algorithm),
            value=("valueCodeableConcept", codings.concept(group.finding)) if group.finding is not None else None,
            site=site,
            method=codings.concept(group.method) if group.method is not None else None,
            has_member=[self.context.ref(m) for m in members],
            focus=focus,
            derived_from=derived_from,
        )
        return resource, members

    def measurement(
        self,
        measurement: Measurement,
        group: MeasurementGroup | None,
        references: list[dict],
        site: SiteLink,
        derived_from: list[dict] | None = None,
    ) -> dict:
        context = self.context
        codings = context.codings
        # Usually the very object the group has (inherited): `is` spares the dataclass comparison.
        own_site = (
            group is not None
            and measurement.finding_sites is not group.finding_sites
            and measurement.finding_sites != group.finding_sites
        )
        if self.references_in_focus:
            own_selections = self.selections_for(measurement.image_references) if measurement.image_references else ()
            if own_site:
                site = self.finding_site_for(measurement.finding_sites, measurement.position)
        else:
            # STU1: the measurement's own selections carry its site and source item, so these come first.
            if own_site:
                site = self.finding_site_for(measurement.finding_sites, measurement.position)
            own_selections = ()
            if measurement.image_references:
                source = self.source_item_for(measurement.position, measurement.observation_uid)
                owner = SelectionOwner(site.codeable_reference(self.facts), [source] if source is not None else [])
                fresh: list[dict] = []
                own_selections = self.selections_for(measurement.image_references, owner, fresh)
                if self.facts.one_selection_per_profile and fresh:
                    # A new selection of a profile takes the place of the group's one the measurement names
                    # by reference (0..1 slices).
                    fresh_profiles = {_profile(s) for s in fresh} - {profiles.IMAGING_SELECTION_BASE}
                    own_selections = [
                        s for s in own_selections if _profile(s) not in fresh_profiles or any(s is f for f in fresh)
                    ]
        if group is None:
            site = NO_SITE
        if own_selections and self.facts.one_selection_per_profile:
            # STU1: one selection per profile (0..1 slices); the measurement's own replaces its group's, which
            # stays reachable through the group.
            own_profiles = {_profile(s) for s in own_selections} - {profiles.IMAGING_SELECTION_BASE}
            references = [r for r in references if self.selection_profile(r["reference"]) not in own_profiles]
        if own_selections:
            references = list(references)
            for selection in own_selections:
                # A NUM INFERRED FROM its group's region by reference resolves to the group's selection: once.
                if (own := context.ref(selection)) not in references:
                    references.append(own)
        number = measurement.number
        if number is not None:
            value = ("valueQuantity", quantity(number, measurement.unit, codings, measurement.position))
            note = (
                [{"text": f"Numeric Value Qualifier: {measurement.qualifier}"}]
                if measurement.qualifier is not None
                else None
            )
        else:
            value, note = ("dataAbsentReason", _value_absent(measurement, context)), None
        derivation = measurement.derivation
        focus: list[dict] | None = None
        # Derivation parameters that are other measurements of the group (R-INFERRED FROM) are Observations of
        # their own: `derivedFrom` names them rather than a component copying their value.
        linked = self.measured_sources(measurement, group)
        sources = [
            self.context.ref({"resourceType": "Observation", "id": document_resource_id("Observation", self.sop, p)})
            for p in linked
        ]
        if derived_from is not None:  # a derived measurement: its groups, then (STU1) its source item
            if not self.references_in_focus:
                source = self.source_item_for(measurement.position, measurement.observation_uid)
                if source is not None:
                    derived_from = [*derived_from, source]
        else:
            focus, derived_from = self._links(references, measurement.position, measurement.observation_uid)
        if sources:
            derived_from = [*(derived_from or ()), *sources]
        return self._observation(
            self.measurement_kind if group is not None else self.derived_kind,
            measurement.position,
            codings.concept(measurement.concept),
            measurement.observation_uid,
            measurement.observation_datetime,
            self.devices.reference_for(measurement.algorithm, own=measurement.own_algorithm, derived=group is None),
            value=value,
            note=note,
            site=site,
            method=codings.concept(measurement.method) if measurement.method is not None else None,
            component=self.components(measurement, derivation, linked),
            focus=focus,
            derived_from=derived_from,
        )

    @staticmethod
    def measured_sources(measurement: Measurement, group: MeasurementGroup | None) -> list[tuple[int, ...]]:
        """Positions of the group's measurements this one names as derivation parameters (by reference)."""
        if group is None or not any(p.by_reference for p in measurement.derivation_parameters):
            return []
        measured = {m.position for m in group.measurements}
        return [p.position for p in measurement.derivation_parameters if p.by_reference and p.position in measured]

    def components(
        self, measurement: Measurement, derivation: Code | None, linked: list[tuple[int, ...]]
    ) -> list[dict] | None:
        """The measurement's Derivation (§2), open concept modifiers and derivation parameters (§17), in that
        order; None without any. `linked`: positions of the parameters that are measurements of the group,
        which `derivedFrom` names instead. A parameter of the measurement's own concept is no component (obs-7:
        the value would then belong in the component) but stays in the table's `derivation_parameters`, with a
        warning."""
        if derivation is None and not measurement.concept_modifiers and not measurement.derivation_parameters:
            return None
        codings = self.context.codings
        own_code = codings.concept(measurement.concept)
        components = []
        if derivation is not None:
            components.append(
                {"code": codings.concept(codes.DERIVATION), "valueCodeableConcept": codings.concept(derivation)}
            )
        for modifier in measurement.concept_modifiers:
            components.append(
                {"code": codings.concept(modifier.concept), "valueCodeableConcept": codings.concept(modifier.value)}
            )
        for parameter in measurement.derivation_parameters:
            if parameter.position in linked:
                continue
            code = codings.concept(parameter.concept)
            if code == own_code:
                self.context.warn(
                    WarningCode.UNMAPPED_CONTENT,
                    parameter.position,
                    "derivation parameter of the measurement's own concept: no component (obs-7), table row only",
                )
                continue
            component: dict = {"code": code}
            if parameter.number is not None:
                component["valueQuantity"] = quantity(parameter.number, parameter.unit, codings)
            else:
                component["dataAbsentReason"] = _UNKNOWN_ABSENT_REASON
            components.append(component)
        return components or None

    def qualitative_evaluation(self, evaluation: QualitativeEvaluation, references: list[dict], site: SiteLink) -> dict:
        codings = self.context.codings
        if evaluation.value_code is not None:
            value = ("valueCodeableConcept", codings.concept(evaluation.value_code))
        elif evaluation.value_text:
            value = ("valueCodeableConcept", {"text": evaluation.value_text})
        else:
            value = ("dataAbsentReason", _UNKNOWN_ABSENT_REASON)
        focus, derived_from = self._links(references, evaluation.position, evaluation.observation_uid)
        return self._observation(
            self.evaluation_kind,
            evaluation.position,
            codings.concept(evaluation.concept),
            evaluation.observation_uid,
            evaluation.observation_datetime,
            self.devices.reference_for(evaluation.algorithm, own=evaluation.own_algorithm),
            value=value,
            site=site,
            focus=focus,
            derived_from=derived_from,
            component=[
                {"code": codings.concept(m.concept), "valueCodeableConcept": codings.concept(m.value)}
                for m in evaluation.concept_modifiers
            ]
            or None,
        )

    def derived(self, measurement: Measurement, groups: list[dict]) -> dict:
        if not groups:
            self.context.warn(
                WarningCode.UNRESOLVED_REFERENCE,
                measurement.position,
                "derived measurement without measurement groups to derive from",
            )
        return self.measurement(
            measurement, None, [], NO_SITE, derived_from=[self.context.ref(g) for g in groups] or None
        )
