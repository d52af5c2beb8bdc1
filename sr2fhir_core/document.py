"""The SR document outside its content tree: the header modules a reader extracts (PS3.3 A.35).

Like `content`, these are plain values, filled by any reader. Patient-identifying values live only in
`Patient`; nothing in the project formats them into log lines, warnings or error messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from .content import ContainerItem


@dataclass(frozen=True, slots=True, kw_only=True)
class Issuer:
    """An issuer of identifiers: Issuer of Patient ID (0010,0021) and its qualifiers, or an HL7v2
    Hierarchic Designator Macro (Table 10-17) as in Issuer of Accession Number Sequence (0008,0051)."""

    local_namespace: str | None = None
    universal_id: str | None = None
    universal_id_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Patient:
    id: str | None = None
    issuer: Issuer | None = None
    id_type_code: str | None = None
    """Identifier Type Code (0040,0035) from the Issuer of Patient ID Qualifiers Sequence, e.g. MR."""
    name: str | None = None
    birth_date: str | None = None
    sex: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Udi:
    """One item of the UDI Sequence (0018,100A) (PS3.3 Table 10.29-1)."""

    unique_device_identifier: str
    """Unique Device Identifier (0018,1009): the UDI as printed, e.g. GS1 "(01)00844588003288(17)141120"."""
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Equipment:
    """General Equipment Module (PS3.3 C.7.5.1)."""

    manufacturer: str | None = None
    model_name: str | None = None
    device_uid: str | None = None
    serial_number: str | None = None
    software_versions: tuple[str, ...] = ()
    station_name: str | None = None
    institution_name: str | None = None
    udi: tuple[Udi, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    """One item of the Participant Sequence (0040,A07A)."""

    participation_type: str | None = None
    observer_type: str | None = None
    """PSN or DEV."""
    person_name: str | None = None
    organization: str | None = None
    device_uid: str | None = None
    manufacturer: str | None = None
    model_name: str | None = None
    serial_number: str | None = None
    datetime: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceInstance:
    """One referenced instance of the Current Requested Procedure Evidence Sequence (0040,A375) or the
    Pertinent Other Evidence Sequence (0040,A385): where IMAGE items find their study and series."""

    study_instance_uid: str | None
    series_instance_uid: str | None
    sop_class_uid: str
    sop_instance_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CodingSchemeIdentification:
    """One item of the Coding Scheme Identification Sequence (0008,0110)."""

    designator: str
    uid: str | None = None
    url: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SRDocument:
    """One SR instance: header values and the content tree rooted at the document's own CONTAINER."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    modality: str | None = None
    specific_character_set: tuple[str, ...] = ()
    patient: Patient = Patient()
    accession_number: str | None = None
    accession_issuer: Issuer | None = None
    study_date: str | None = None
    study_time: str | None = None
    study_description: str | None = None
    series_number: str | None = None
    instance_number: str | None = None
    content_date: str | None = None
    content_time: str | None = None
    timezone_offset: str | None = None
    """Timezone Offset From UTC (0008,0201), e.g. "+0100"."""
    equipment: Equipment = Equipment()
    preliminary_flag: str | None = None
    completion_flag: str | None = None
    verification_flag: str | None = None
    participants: tuple[Participant, ...] = ()
    evidence: tuple[EvidenceInstance, ...] = ()
    coding_schemes: tuple[CodingSchemeIdentification, ...] = ()
    root: ContainerItem | None = None
    """None when the instance is not an SR document (no Value Type CONTAINER at the top level)."""
