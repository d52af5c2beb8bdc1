"""The document header (`reading.header`), which both readers build through their `HeaderSource`: the same
values from either reader at the header's edges (items in their own character set, empty items, items left
out), and the one order of reading that keeps the readers' rejections alike."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from sr2fhir_core.content import Code
from sr2fhir_core.document import Issuer, SRDocument, Udi
from sr2fhir_core.reading import read_fast, read_with_pydicom
from sr2fhir_core.reading import tags as t
from sr2fhir_core.reading.header import HeaderSource, build_document

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def _report(change: Callable[[Dataset], None]) -> Dataset:
    ds = _item(
        SOPClassUID=COMPREHENSIVE_SR,
        SOPInstanceUID="1.2.3.4",
        StudyInstanceUID="1.2.3",
        SeriesInstanceUID="1.2.3.5",
        Modality="SR",
        PatientID="P1",
        ValueType="CONTAINER",
        ContinuityOfContent="SEPARATE",
    )
    ds.ConceptNameCodeSequence = Sequence(
        [_item(CodeValue="126000", CodingSchemeDesignator="DCM", CodeMeaning="Imaging Measurement Report")]
    )
    change(ds)
    return ds


def _encode(ds: Dataset, implicit: bool) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _participant_in_its_own_charset(ds: Dataset) -> None:
    ds.ParticipantSequence = Sequence(
        [_item(SpecificCharacterSet="ISO_IR 192", PersonName="Müller^Jörg", ObserverType="PSN"), Dataset()]
    )


def _qualifiers_name_the_issuer(ds: Dataset) -> None:
    ds.IssuerOfPatientID = ""
    ds.IssuerOfPatientIDQualifiersSequence = Sequence(
        [_item(SpecificCharacterSet="ISO_IR 100", LocalNamespaceEntityID="Hôpital", IdentifierTypeCode="MR")]
    )


def _a_type_alone_is_no_issuer(ds: Dataset) -> None:
    ds.IssuerOfPatientIDQualifiersSequence = Sequence([_item(UniversalEntityIDType="ISO", IdentifierTypeCode="MR")])
    ds.IssuerOfAccessionNumberSequence = Sequence([Dataset()])


def _items_without_their_key_are_left_out(ds: Dataset) -> None:
    ds.UDISequence = Sequence(
        [_item(DeviceDescription="no UDI"), _item(UniqueDeviceIdentifier="(01)1", DeviceDescription="d")]
    )
    ds.CodingSchemeIdentificationSequence = Sequence(
        [_item(CodingSchemeName="no designator"), _item(CodingSchemeDesignator="99X", CodingSchemeUID="1.2.9")]
    )
    ds.SoftwareVersions = ["", "1.0", " "]
    ds.ContentTemplateSequence = Sequence([Dataset()])


CASES: dict[str, tuple[Callable[[Dataset], None], Callable[[SRDocument], object], object]] = {
    "participant in its own character set": (
        _participant_in_its_own_charset,
        lambda d: [(p.person_name, p.observer_type) for p in d.participants],
        [("Müller^Jörg", "PSN"), (None, None)],
    ),
    "qualifiers name the issuer": (
        _qualifiers_name_the_issuer,
        lambda d: (d.patient.issuer, d.patient.id_type_code),
        (Issuer(local_namespace="Hôpital"), "MR"),
    ),
    "a type alone is no issuer": (
        _a_type_alone_is_no_issuer,
        lambda d: (d.patient.issuer, d.patient.id_type_code, d.accession_issuer),
        (None, "MR", None),
    ),
    "items without their key are left out": (
        _items_without_their_key_are_left_out,
        lambda d: (
            d.equipment.udi,
            [s.designator for s in d.coding_schemes],
            d.equipment.software_versions,
            d.root and d.root.template_id,
        ),
        ((Udi(unique_device_identifier="(01)1", description="d"),), ["99X"], ("1.0",), None),
    ),
}


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit", "implicit"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_both_readers_build_the_same_header(case: str, implicit: bool) -> None:
    change, select, expected = CASES[case]
    data = _encode(_report(change), implicit)
    document = read_with_pydicom(data)
    assert read_fast(data) == document
    assert select(document) == expected


@dataclass
class _Recorder:
    """A `HeaderSource` over nothing that notes what is read, in order."""

    log: list[object] = field(default_factory=list)

    def text(self, tag: int) -> str | None:
        self.log.append(tag)
        return None

    def texts(self, tag: int) -> tuple[str, ...]:
        self.log.append(tag)
        return ()

    def code(self, tag: int) -> Code | None:
        self.log.append(tag)
        return None

    def first(self, tag: int) -> HeaderSource | None:
        self.log.append(tag)
        return None

    def items(self, tag: int) -> Iterable[HeaderSource]:
        self.log.append(tag)
        return ()


def test_the_tree_and_the_evidence_are_built_where_both_readers_always_built_them() -> None:
    """The reference reader names the first error it meets, so the order of reading is part of its verdict."""
    source = _Recorder()

    def children() -> tuple[()]:
        source.log.append("children")
        return ()

    def evidence() -> tuple[()]:
        source.log.append("evidence")
        return ()

    document = build_document(source, COMPREHENSIVE_SR, children=children, evidence=evidence)
    log = source.log
    assert log.index(t.OBSERVATION_DATETIME) < log.index("children") < log.index(t.CONTINUITY_OF_CONTENT)
    assert (
        log.index(t.PARTICIPANT_SEQUENCE) < log.index("evidence") < log.index(t.CODING_SCHEME_IDENTIFICATION_SEQUENCE)
    )
    assert log.index(t.CONTENT_TEMPLATE_SEQUENCE) == 0
    assert document.sop_class_uid == COMPREHENSIVE_SR
    assert document.root is not None and document.root.children == ()
