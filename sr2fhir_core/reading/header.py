"""The document outside its content tree, built once for both readers (PS3.3 A.35).

The two readers read the same header attributes with the same meaning and differ only in how one value is
read: `fast_reader` decodes raw bytes in the character set in force, `pydicom_reader` converts with pydicom.
So each reader offers its data set as a `HeaderSource`, and `build_document` alone says which attributes
make the `SRDocument`. The content tree and the evidence list stay with the readers (the fast reader builds
them in C): `build_document` asks for them, as callables, where it needs them.

The attributes are read in one fixed order, the one both readers always used: the reference reader rejects
the first value it cannot read and names its error, so another order could change a rejection's message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from ..content import Code, ContainerItem, ContentItem
from ..document import (
    CodingSchemeIdentification,
    Equipment,
    EvidenceInstance,
    Issuer,
    Participant,
    Patient,
    SRDocument,
    Udi,
)
from ..errors import RejectionReason, SRRejected
from ..sop_classes import NOT_AN_SR_DOCUMENT, is_sr_storage
from . import tags as t

__all__ = ["HeaderSource", "build_document", "sr_sop_class_uid"]


class HeaderSource(Protocol):
    """A data set or sequence item as one reader reads it. Values are those of the reference reader's
    accessors, which the fast reader reproduces to the character (`fast_values`)."""

    def text(self, tag: int) -> str | None:
        """The value as one string: several values joined with backslashes, stripped; None when absent or
        empty."""
        ...

    def texts(self, tag: int) -> tuple[str, ...]:
        """Each value stripped; () when absent or empty."""
        ...

    def code(self, tag: int) -> Code | None:
        """The first item of a Code Sequence Macro sequence (PS3.3 Table 8.8-1); None when it has none or
        the item has no code value."""
        ...

    def first(self, tag: int) -> HeaderSource | None:
        """The first item of a sequence, read in the character set in force there; None when it has none."""
        ...

    def items(self, tag: int) -> Iterable[HeaderSource]:
        """Every item of a sequence, each read in the character set in force there."""
        ...


def sr_sop_class_uid(source: HeaderSource) -> str:
    """The SOP Class UID of an SR document; `SRRejected` `not_sr` for any other instance: one without a SOP
    Class UID, of a class that is not SR storage, or without a CONTAINER at the top level."""
    sop_class_uid = source.text(t.SOP_CLASS_UID)
    if sop_class_uid is None:
        raise SRRejected(RejectionReason.NOT_SR, "no SOP Class UID")
    value_type = (source.text(t.VALUE_TYPE) or "").upper()
    if not is_sr_storage(sop_class_uid) or value_type != "CONTAINER":
        raise SRRejected(RejectionReason.NOT_SR, NOT_AN_SR_DOCUMENT)
    return sop_class_uid


def build_document(
    source: HeaderSource,
    sop_class_uid: str,
    *,
    children: Callable[[], tuple[ContentItem, ...]],
    evidence: Callable[[], tuple[EvidenceInstance, ...]],
) -> SRDocument:
    """The `SRDocument` of the top-level data set `source`, whose SOP Class is `sop_class_uid`
    (`sr_sop_class_uid`). `children` builds the content items of the root CONTAINER, `evidence` the
    referenced instances of the evidence sequences (PS3.3 C.17.2): each reader's own, called in turn."""
    template = source.first(t.CONTENT_TEMPLATE_SEQUENCE)
    root = ContainerItem(
        position=(1,),
        relationship=None,
        concept=source.code(t.CONCEPT_NAME_CODE_SEQUENCE),
        observation_uid=source.text(t.OBSERVATION_UID),
        observation_datetime=source.text(t.OBSERVATION_DATETIME),
        children=children(),
        continuity=source.text(t.CONTINUITY_OF_CONTENT),
        template_id=template.text(t.TEMPLATE_IDENTIFIER) if template is not None else None,
        mapping_resource=template.text(t.MAPPING_RESOURCE) if template is not None else None,
    )
    accession_issuer = source.first(t.ISSUER_OF_ACCESSION_NUMBER_SEQUENCE)
    return SRDocument(
        sop_class_uid=sop_class_uid,
        sop_instance_uid=source.text(t.SOP_INSTANCE_UID),
        study_instance_uid=source.text(t.STUDY_INSTANCE_UID),
        series_instance_uid=source.text(t.SERIES_INSTANCE_UID),
        modality=source.text(t.MODALITY),
        specific_character_set=source.texts(t.SPECIFIC_CHARACTER_SET),
        patient=_patient(source),
        accession_number=source.text(t.ACCESSION_NUMBER),
        accession_issuer=_issuer(None, accession_issuer) if accession_issuer is not None else None,
        study_date=source.text(t.STUDY_DATE),
        study_time=source.text(t.STUDY_TIME),
        study_description=source.text(t.STUDY_DESCRIPTION),
        series_number=source.text(t.SERIES_NUMBER),
        instance_number=source.text(t.INSTANCE_NUMBER),
        content_date=source.text(t.CONTENT_DATE),
        content_time=source.text(t.CONTENT_TIME),
        timezone_offset=source.text(t.TIMEZONE_OFFSET_FROM_UTC),
        equipment=_equipment(source),
        preliminary_flag=source.text(t.PRELIMINARY_FLAG),
        completion_flag=source.text(t.COMPLETION_FLAG),
        verification_flag=source.text(t.VERIFICATION_FLAG),
        participants=_participants(source),
        evidence=evidence(),
        coding_schemes=_coding_schemes(source),
        root=root,
    )


def _issuer(local: str | None, qualifiers: HeaderSource | None) -> Issuer | None:
    """Issuer of Patient ID with its qualifiers, or an HL7v2 Hierarchic Designator item (`local` None):
    None when neither names a namespace or a universal id, since a type alone identifies no issuer."""
    universal = qualifiers.text(t.UNIVERSAL_ENTITY_ID) if qualifiers is not None else None
    universal_type = qualifiers.text(t.UNIVERSAL_ENTITY_ID_TYPE) if qualifiers is not None else None
    namespace = local or (qualifiers.text(t.LOCAL_NAMESPACE_ENTITY_ID) if qualifiers is not None else None)
    if not (namespace or universal):
        return None
    return Issuer(local_namespace=namespace, universal_id=universal, universal_id_type=universal_type)


def _patient(source: HeaderSource) -> Patient:
    qualifiers = source.first(t.ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE)
    return Patient(
        id=source.text(t.PATIENT_ID),
        issuer=_issuer(source.text(t.ISSUER_OF_PATIENT_ID), qualifiers),
        id_type_code=qualifiers.text(t.IDENTIFIER_TYPE_CODE) if qualifiers is not None else None,
        name=source.text(t.PATIENT_NAME),
        birth_date=source.text(t.PATIENT_BIRTH_DATE),
        sex=source.text(t.PATIENT_SEX),
    )


def _equipment(source: HeaderSource) -> Equipment:
    return Equipment(
        manufacturer=source.text(t.MANUFACTURER),
        model_name=source.text(t.MANUFACTURER_MODEL_NAME),
        device_uid=source.text(t.DEVICE_UID),
        serial_number=source.text(t.DEVICE_SERIAL_NUMBER),
        software_versions=tuple([value for value in source.texts(t.SOFTWARE_VERSIONS) if value]),
        station_name=source.text(t.STATION_NAME),
        institution_name=source.text(t.INSTITUTION_NAME),
        udi=tuple(
            [
                Udi(unique_device_identifier=udi, description=item.text(t.DEVICE_DESCRIPTION))
                for item in source.items(t.UDI_SEQUENCE)
                if (udi := item.text(t.UNIQUE_DEVICE_IDENTIFIER))
            ]
        ),
    )


def _participants(source: HeaderSource) -> tuple[Participant, ...]:
    return tuple(
        [
            Participant(
                participation_type=item.text(t.PARTICIPATION_TYPE),
                observer_type=item.text(t.OBSERVER_TYPE),
                person_name=item.text(t.PERSON_NAME),
                organization=item.text(t.INSTITUTION_NAME),
                device_uid=item.text(t.DEVICE_UID),
                manufacturer=item.text(t.MANUFACTURER),
                model_name=item.text(t.MANUFACTURER_MODEL_NAME),
                serial_number=item.text(t.DEVICE_SERIAL_NUMBER),
                datetime=item.text(t.PARTICIPATION_DATETIME),
            )
            for item in source.items(t.PARTICIPANT_SEQUENCE)
        ]
    )


def _coding_schemes(source: HeaderSource) -> tuple[CodingSchemeIdentification, ...]:
    """Items without a Coding Scheme Designator are left out: the designator is what a code's scheme is
    matched against."""
    return tuple(
        [
            CodingSchemeIdentification(
                designator=designator,
                uid=item.text(t.CODING_SCHEME_UID),
                url=item.text(t.CODING_SCHEME_URL),
                name=item.text(t.CODING_SCHEME_NAME),
            )
            for item in source.items(t.CODING_SCHEME_IDENTIFICATION_SEQUENCE)
            if (designator := item.text(t.CODING_SCHEME_DESIGNATOR))
        ]
    )
