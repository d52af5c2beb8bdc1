"""The fast reader on small SRs built here (no corpus needed): value semantics at the edges, encodings,
the reader option, and the tag table against the data dictionary."""

from __future__ import annotations

import io
from typing import NoReturn

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from sr2fhir_core import MappingOptions, dumps_json, map_sr
from sr2fhir_core.errors import RejectionReason, SRRejected
from sr2fhir_core.options import Reader
from sr2fhir_core.reading import FastReaderUnsupported, read_document, read_fast, read_with_pydicom
from sr2fhir_core.reading.tags import READ_VR

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _report(**values: object) -> Dataset:
    """A small TID 1500-shaped SR; `values` override attributes of the NUM item's measured value."""
    ds = Dataset()
    ds.SOPClassUID = COMPREHENSIVE_SR
    ds.SOPInstanceUID = "1.2.3.4"
    ds.StudyInstanceUID = "1.2.3"
    ds.SeriesInstanceUID = "1.2.3.5"
    ds.Modality = "SR"
    ds.PatientID = "P1"
    ds.PatientName = values.pop("PatientName", "Doe^John")
    ds.SeriesNumber = values.pop("SeriesNumber", "1")
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = Sequence([_code("126000", "DCM", "Imaging Measurement Report")])
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "1500"
    ds.ContentTemplateSequence = Sequence([template])
    measured = Dataset()
    measured.NumericValue = values.pop("NumericValue", "12.5")
    measured.MeasurementUnitsCodeSequence = Sequence([_code("mm", "UCUM", "millimeter")])
    num = Dataset()
    num.RelationshipType = "CONTAINS"
    num.ValueType = "NUM"
    meaning = values.pop("Meaning", "Length")
    assert isinstance(meaning, str)
    num.ConceptNameCodeSequence = Sequence([_code("410668003", "SCT", meaning)])
    num.MeasuredValueSequence = Sequence([measured])
    text = Dataset()
    text.RelationshipType = "HAS OBS CONTEXT"
    text.ValueType = "TEXT"
    text.ConceptNameCodeSequence = Sequence([_code("121106", "DCM", "Comment")])
    text.TextValue = values.pop("TextValue", "ok")
    image = Dataset()
    image.RelationshipType = "INFERRED FROM"
    image.ValueType = "IMAGE"
    reference = Dataset()
    reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    reference.ReferencedSOPInstanceUID = "1.2.3.6"
    reference.ReferencedFrameNumber = values.pop("ReferencedFrameNumber", "1")
    image.ReferencedSOPSequence = Sequence([reference])
    scoord = Dataset()
    scoord.RelationshipType = "INFERRED FROM"
    scoord.ValueType = "SCOORD"
    scoord.GraphicType = "POINT"
    scoord.GraphicData = values.pop("GraphicData", [1.5, 2.25])
    scoord.ContentSequence = Sequence([image])
    by_reference = Dataset()
    by_reference.RelationshipType = "INFERRED FROM"
    by_reference.ReferencedContentItemIdentifier = [1, 2]
    num.ContentSequence = Sequence([scoord, by_reference])
    ds.ContentSequence = Sequence([num, text])
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def _encode(ds: Dataset, syntax: UID = ExplicitVRLittleEndian) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = syntax
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _assert_same(data: bytes) -> None:
    expected = read_with_pydicom(data)
    assert read_fast(data) == expected


def test_tag_table_matches_the_data_dictionary() -> None:
    for tag, vr in READ_VR.items():
        assert pydicom.datadict.dictionary_VR(tag) == vr.decode(), hex(tag)


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian])
def test_small_report_in_each_transfer_syntax(syntax: UID) -> None:
    data = _encode(_report(), syntax)
    _assert_same(data)
    root = read_fast(data).root
    assert root is not None and root.template_id == "1500"


@pytest.mark.parametrize(
    "values",
    [
        {"NumericValue": " 12.50 "},
        {"NumericValue": "1e3"},
        {"NumericValue": "-0"},
        {"NumericValue": ""},
        {"ReferencedFrameNumber": ["1", "2", "3"]},
        {"ReferencedFrameNumber": " 007"},
        {"SeriesNumber": "+5"},
        {"PatientName": "Doe^John=="},
        {"PatientName": "Doe^John=山田^太郎", "SpecificCharacterSet": "ISO_IR 192"},
        {"Meaning": "Length \\ width"},
        {"TextValue": "line one\r\nline two \\ not split  "},
        {"GraphicData": [0.1, 1e-7, 3.4028234e38]},
        {"SoftwareVersions": ["1.0", "", "2.0 "]},
        {"SpecificCharacterSet": ["", "ISO 2022 IR 87"], "Meaning": "長さ", "PatientName": "山田^太郎"},
        {"SpecificCharacterSet": "GB18030", "Meaning": "长度"},
        {"SpecificCharacterSet": "ISO_IR 100", "Meaning": "Länge"},
    ],
)
def test_value_semantics_match_pydicom(values: dict) -> None:
    _assert_same(_encode(_report(**values)))


@pytest.mark.parametrize(
    ("values", "written", "patched"),
    [
        ({}, b"12.5", b"12,5"),  # not a DS: pydicom re-reads it as text
        ({"ReferencedFrameNumber": "1.50"}, b"", b""),  # not an integer: pydicom makes it an ISfloat
    ],
)
def test_values_pydicom_guesses_at_are_left_to_it(values: dict, written: bytes, patched: bytes) -> None:
    data = _encode(_report(**values))
    if written:
        data = data.replace(written, patched)
    with pytest.raises(FastReaderUnsupported):
        read_fast(data)
    assert read_document(data) == read_with_pydicom(data)


def test_unsupported_transfer_syntax_falls_back() -> None:
    data = bytearray(_encode(_report()))
    # Claim explicit VR big endian without re-encoding: the fast reader must not guess.
    big_endian = b"1.2.840.10008.1.2.2\x00"
    at = data.find(b"1.2.840.10008.1.2.1\x00")
    data[at : at + len(big_endian)] = big_endian
    with pytest.raises(FastReaderUnsupported):
        read_fast(bytes(data))
    auto = map_sr(bytes(data), MappingOptions(reader=Reader.AUTO))
    reference = map_sr(bytes(data), MappingOptions(reader=Reader.PYDICOM))
    assert auto.record == reference.record


def test_reader_option_selects_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(_report())
    auto = map_sr(data, MappingOptions(reader=Reader.AUTO))
    reference = map_sr(data, MappingOptions(reader=Reader.PYDICOM))
    assert dumps_json(auto.resources) == dumps_json(reference.resources)
    assert auto.rows == reference.rows and auto.record == reference.record

    def refuse(data: bytes) -> NoReturn:
        raise AssertionError("the fast reader ran with Reader.PYDICOM")

    monkeypatch.setattr("sr2fhir_core.reading.read_fast", refuse)
    assert map_sr(data, MappingOptions(reader=Reader.PYDICOM)).record == reference.record

    def decline(data: bytes) -> NoReturn:
        raise FastReaderUnsupported("test")

    monkeypatch.setattr("sr2fhir_core.reading.read_fast", decline)
    assert map_sr(data, MappingOptions(reader=Reader.AUTO)).record == reference.record


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", RejectionReason.NOT_DICOM),
        (b"hello", RejectionReason.NOT_DICOM),
        (b'{"resourceType": "Bundle"}', RejectionReason.NOT_DICOM),
        (b"\x00" * 128 + b"DICM", RejectionReason.CORRUPT),
    ],
)
def test_rejections(data: bytes, reason: RejectionReason) -> None:
    for read in (read_fast, read_with_pydicom):
        with pytest.raises(SRRejected) as rejected:
            read(data)
        assert rejected.value.reason is reason


def test_truncation_is_corrupt_for_both() -> None:
    data = _encode(_report())
    for cut in (len(data) - 1, len(data) - 5, len(data) // 2):
        for read in (read_fast, read_with_pydicom):
            with pytest.raises(SRRejected) as rejected:
                read(data[:cut])
            assert rejected.value.reason is RejectionReason.CORRUPT


def test_not_an_sr() -> None:
    ds = _report()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.add_new(0x7FE00010, "OB", b"\x00" * 4096)  # Pixel Data, skipped by length
    data = _encode(ds)
    for read in (read_fast, read_with_pydicom):
        with pytest.raises(SRRejected) as rejected:
            read(data)
        assert rejected.value.reason is RejectionReason.NOT_SR


def test_deeply_nested_content_is_left_to_pydicom() -> None:
    ds = _report()
    item = ds.ContentSequence[1]
    for _ in range(150):
        child = Dataset()
        child.RelationshipType = "CONTAINS"
        child.ValueType = "CONTAINER"
        item.ContentSequence = Sequence([child])
        item = child
    data = _encode(ds)
    with pytest.raises(FastReaderUnsupported):
        read_fast(data)
    assert map_sr(data).record.status.value in ("mapped", "rejected")
