"""Document-level resources (Patient, ImagingStudy, ServiceRequest, Practitioner) and the context every
Observation and ImagingSelection of one report shares: references, status, default times, codings.

The IG assumes Patient, ImagingStudy and ServiceRequest already exist on the target server and maps only
their identifiers. A bulk `$import` needs the referenced resources in the same feed, so they are created
here with those identifiers and ids that any SR of the same patient, study or order gives alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..codes import V2_0203, CodeSystems
from ..datetimes import from_date_time, normalise_offset
from ..document import Issuer, SRDocument
from ..errors import MappingWarning, WarningCode
from ..options import MappingOptions
from ..tid1500.model import MeasurementReport, PersonObserver
from . import profiles
from .datatypes import CodingContext, fixed, reference, uid_identifier
from .ids import resource_id

FHIR_CORE = "http://hl7.org/fhir/StructureDefinition/"
GENDER = {"M": "male", "F": "female", "O": "other"}


@dataclass(slots=True)
class ReportContext:
    """What every resource of one report refers to; built once per report."""

    report: MeasurementReport
    options: MappingOptions
    facts: profiles.IgFacts
    """The IG version's structure, looked up once per report."""
    codings: CodingContext
    timezone: str
    status: str
    patient: dict
    imaging_study: dict
    service_request: dict | None
    issued: str | None
    effective: str | None
    performers: list[dict] = field(default_factory=list)
    resources: list[dict] = field(default_factory=list)
    warnings: list[MappingWarning] = field(default_factory=list)
    _refs: dict[str, dict] = field(default_factory=dict)
    subject: dict = field(init=False)
    """Reference to the Patient; this and the two below are shared by every resource that names them."""
    based_on: list[dict] | None = field(init=False)
    """`basedOn`: the ServiceRequest, when the SR has an accession number."""
    study: list[dict] = field(init=False)
    """The ImagingStudy, as the one-element list Observation.partOf and ImagingSelection.derivedFrom hold."""

    def __post_init__(self) -> None:
        self.subject = self.ref(self.patient)
        self.based_on = [self.ref(self.service_request)] if self.service_request is not None else None
        self.study = [self.ref(self.imaging_study)]

    @property
    def sop_instance_uid(self) -> str:
        uid = self.report.document.sop_instance_uid
        assert uid is not None
        return uid

    def add(self, resource: dict) -> dict:
        self.resources.append(resource)
        return resource

    def warn(self, code: WarningCode, position: tuple[int, ...], message: str) -> None:
        """A mapping warning about the content item at `position` (the report as a whole when empty)."""
        self.warnings.append(MappingWarning(code, ".".join(map(str, position)), message))

    def ref(self, resource: dict) -> dict:
        """A literal Reference to a resource of this report, made once per resource."""
        key = resource["id"]
        cached = self._refs.get(key)
        if cached is None:
            cached = self._refs[key] = reference(resource["resourceType"], key)
        return cached


_META: dict[str, dict] = {}


def meta(profile: str) -> dict:
    """`meta` naming one profile, made once per profile and shared by the resources that claim it (they treat
    what they share as read-only); the profiles are the IG's few constants."""
    shared = _META.get(profile)
    if shared is None:
        shared = _META[profile] = {"profile": [profile]}
    return shared


_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")


def _issuer_system(issuer: Issuer | None) -> str | None:
    """An issuer's Universal Entity ID as a URI: a URI stays, an ISO OID becomes urn:oid:."""
    if issuer is None or not issuer.universal_id:
        return None
    kind = (issuer.universal_id_type or "").upper()
    value = issuer.universal_id
    if kind == "ISO" or (not kind and value.replace(".", "").isdigit()):
        return f"urn:oid:{value}"
    # Identifier.system must be an absolute URI: a "URI" without a scheme (the IG example's "test-hospital.org")
    # is not a system (the validator rejects it as a local reference); assigner still names a local issuer.
    if _ABSOLUTE_URI.match(value):
        return value
    return None


def _issuer_fields(issuer: Issuer | None) -> dict:
    result: dict = {}
    system = _issuer_system(issuer)
    if system:
        result["system"] = system
    return result


def _assigner(issuer: Issuer | None) -> dict | None:
    if issuer is not None and issuer.local_namespace:
        return {"display": issuer.local_namespace}
    return None


def _human_name(person_name: str) -> dict:
    """DICOM PN "Family^Given^Middle^Prefix^Suffix" (first, alphabetic, group only) → HumanName."""
    alphabetic = person_name.split("=")[0]
    parts = [*alphabetic.split("^"), "", "", "", ""][:5]
    family, given, middle, prefix, suffix = (p.strip() for p in parts)
    name: dict = {}
    if family:
        name["family"] = family
    givens = [g for g in (given, middle) if g]
    if givens:
        name["given"] = givens
    if prefix:
        name["prefix"] = [prefix]
    if suffix:
        name["suffix"] = [suffix]
    if not name:
        name["text"] = alphabetic.strip()
    return name


def build_patient(document: SRDocument, options: MappingOptions, warnings: list[MappingWarning]) -> dict:
    patient = document.patient
    resource: dict = {"resourceType": "Patient"}
    if patient.id:
        system = _issuer_system(patient.issuer)
        key = (system or (patient.issuer.local_namespace if patient.issuer else None) or "", patient.id)
        identifier: dict = {"type": fixed(profiles.IDENTIFIER_TYPE_MEDICAL_RECORD)}
        if patient.id_type_code and patient.id_type_code != "MR":
            identifier["type"] = {"coding": [{"system": V2_0203, "code": patient.id_type_code}]}
        identifier.update(_issuer_fields(patient.issuer))
        identifier["value"] = patient.id
        assigner = _assigner(patient.issuer)
        if assigner:
            identifier["assigner"] = assigner
        resource["id"] = resource_id("Patient", *key)
        resource["meta"] = meta(FHIR_CORE + "Patient")
        resource["identifier"] = [identifier]
    else:
        # Without a Patient ID the study is the only thing that ties observations to one subject.
        warnings.append(MappingWarning(WarningCode.MISSING_PATIENT_ID, "", "no Patient ID; Patient keyed by study"))
        resource["id"] = resource_id("Patient", "study", document.study_instance_uid or "")
        resource["meta"] = meta(FHIR_CORE + "Patient")
    if options.include_patient_demographics:
        if patient.name:
            resource["name"] = [_human_name(patient.name)]
        if patient.sex:
            resource["gender"] = GENDER.get(patient.sex.upper(), "unknown")
        birth = from_date_time(patient.birth_date, None, "+00:00", instant=False)
        if birth:
            resource["birthDate"] = birth
    return resource


def build_service_request(document: SRDocument, patient: dict) -> dict | None:
    if not document.accession_number:
        return None
    issuer = document.accession_issuer
    identifier: dict = {"type": fixed(profiles.IDENTIFIER_TYPE_ACCESSION)}
    identifier.update(_issuer_fields(issuer))
    identifier["value"] = document.accession_number
    assigner = _assigner(issuer)
    if assigner:
        identifier["assigner"] = assigner
    # An accession number is unique within its issuer; without one, within the patient's record.
    scope = _issuer_system(issuer) or (issuer.local_namespace if issuer else None) or patient["id"]
    return {
        "resourceType": "ServiceRequest",
        "id": resource_id("ServiceRequest", scope or "", document.accession_number),
        "meta": meta(FHIR_CORE + "ServiceRequest"),
        "identifier": [identifier],
        "status": "unknown",
        "intent": "order",
        "subject": reference("Patient", patient["id"]),
    }


def build_imaging_study(document: SRDocument, patient: dict, service_request: dict | None, timezone: str) -> dict:
    study_uid = document.study_instance_uid or ""
    resource: dict = {
        "resourceType": "ImagingStudy",
        "id": resource_id("ImagingStudy", study_uid),
        "meta": meta(FHIR_CORE + "ImagingStudy"),
        "identifier": [uid_identifier(study_uid)],
        "status": "available",
        "subject": reference("Patient", patient["id"]),
    }
    started = from_date_time(document.study_date, document.study_time, timezone, instant=False)
    if started:
        resource["started"] = started
    if service_request is not None:
        resource["basedOn"] = [reference("ServiceRequest", service_request["id"])]
    return resource


def build_practitioner(person: PersonObserver, profile: str = FHIR_CORE + "Practitioner") -> dict:
    return {
        "resourceType": "Practitioner",
        "id": resource_id("Practitioner", person.name, person.organization or ""),
        "meta": meta(profile),
        "name": [_human_name(person.name)],
    }


def _participant_persons(document: SRDocument) -> list[PersonObserver]:
    """Participant Sequence (0040,A07A) PSN entries (STU1 ParticipantPractitioner)."""
    return [
        PersonObserver(name=p.person_name, organization=p.organization)
        for p in document.participants
        if (p.observer_type or "").upper() == "PSN" and p.person_name
    ]


def build_context(report: MeasurementReport, options: MappingOptions, systems: CodeSystems) -> ReportContext:
    document = report.document
    warnings: list[MappingWarning] = list(report.warnings)
    timezone = normalise_offset(document.timezone_offset) or options.default_timezone
    patient = build_patient(document, options, warnings)
    service_request = build_service_request(document, patient)
    imaging_study = build_imaging_study(document, patient, service_request, timezone)
    issued = from_date_time(document.content_date, document.content_time, timezone, instant=True)
    effective = from_date_time(document.study_date, document.study_time, timezone, instant=False)
    preliminary = (document.preliminary_flag or "").upper() == "PRELIMINARY"
    context = ReportContext(
        report=report,
        options=options,
        facts=profiles.IG_FACTS[options.ig_version],
        codings=CodingContext(systems),
        timezone=timezone,
        status="preliminary" if preliminary else "final",
        patient=patient,
        imaging_study=imaging_study,
        service_request=service_request,
        issued=issued,
        effective=effective or issued,
        warnings=warnings,
    )
    context.add(patient)
    context.add(imaging_study)
    if service_request is not None:
        context.add(service_request)
    for person in report.person_observers:
        practitioner = context.add(build_practitioner(person))
        context.performers.append(context.ref(practitioner))
    if context.facts.participants:
        # The same person as observer context and participant is one Practitioner (ids agree).
        known = {p["reference"] for p in context.performers}
        for person in _participant_persons(document):
            practitioner = build_practitioner(person, profiles.PARTICIPANT_PERSON)
            if (ref := context.ref(practitioner))["reference"] not in known:
                known.add(ref["reference"])
                context.add(practitioner)
                context.performers.append(ref)
    if issued is None:
        context.warn(WarningCode.INVALID_VALUE, (), "no usable Content Date/Time for Observation.issued")
    return context
