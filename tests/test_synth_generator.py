"""The generator itself: its code tables, the bytes it writes, sizing and determinism. Checked with
pydicom directly (not through the mapping), so that a generator defect cannot hide behind a core one."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from typing import cast

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sr._concepts_dict import concepts
from pydicom.sr._snomed_dict import mapping as snomed_mapping

import sr2fhir_synth
from sr2fhir_core import map_sr
from sr2fhir_synth import (
    ENCODINGS,
    Encoding,
    TransferSyntax,
    build_dataset,
    catalog,
    count_content_items,
    random_spec,
    write_sr,
)
from sr2fhir_synth.spec import Code, SRStorage

CHARSET_CODECS = {None: "ascii", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}


def catalog_codes() -> list[Code]:
    codes = [value for value in vars(catalog).values() if isinstance(value, Code)]
    for table in (
        catalog.DERIVATIONS,
        catalog.NUMERIC_VALUE_QUALIFIERS,
        catalog.MEASUREMENT_METHODS,
        catalog.FINDING_CATEGORIES,
        catalog.FINDINGS,
        catalog.FINDING_SITES,
        catalog.LATERALITIES,
        catalog.TOPOGRAPHICAL_MODIFIERS,
        catalog.TEXT_EVALUATIONS,
        catalog.PROCEDURES,
    ):
        codes += table
    for kind in catalog.MEASUREMENT_KINDS + catalog.DERIVED_MEASUREMENT_KINDS:
        codes += [kind.concept, *kind.units]
    codes += [concept for _, concept in catalog.REFERENCE_ITEMS.values()]
    for concept, values in catalog.CODE_EVALUATIONS:
        codes += [concept, *values]
    return codes


def test_catalog_codes_are_in_the_dicom_dictionary() -> None:
    """Every DCM and SCT code the generator writes exists in DICOM PS3.16 (pydicom's copy), and so does
    every UCUM unit but two that PS3.16 lists only in context groups pydicom does not carry."""
    # pydicom's generated table is {scheme: {keyword: {code: (meaning, cids)}}}; its type is inferred loosely.
    table = cast("dict[str, dict[str, dict[str, tuple[str, list[int]]]]]", concepts)
    known = {scheme: {code for entry in table[scheme].values() for code in entry} for scheme in table}
    written = catalog_codes()
    checked = [c for c in written if c.scheme in ("DCM", "SCT", "UCUM")]
    missing = {c.value for c in checked if c.value not in known[c.scheme]}
    assert missing == {"{SUVbw}g/ml", "g"}
    assert len(checked) > 80


def test_snomed_rt_table_matches_dicom_annex_o() -> None:
    srt_to_sct = snomed_mapping["SRT"]
    for sct, srt in catalog.SNOMED_RT.items():
        assert srt_to_sct[srt] == sct
    written_sct = {c.value for c in catalog_codes() if c.scheme == "SCT"}
    assert {sct for sct in written_sct if sct in srt_to_sct.values()} <= set(catalog.SNOMED_RT)


def test_texts_fit_their_character_set() -> None:
    for table in (catalog.TEXTS, catalog.PERSON_NAMES, catalog.ORGANIZATIONS, catalog.LESION_WORDS):
        for charset, texts in table.items():
            for text in texts:
                text.encode(CHARSET_CODECS[charset])
    assert any(not t.isascii() for t in catalog.TEXTS["ISO_IR 100"])
    assert any(ord(ch) > 0xFF for t in catalog.TEXTS["ISO_IR 192"] for ch in t)


def test_writing_is_clean_and_reads_back() -> None:
    """No pydicom warning (e.g. an unencodable character) while writing; every encoding reads back."""
    for seed in range(12):
        spec = random_spec(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            data = write_sr(spec, ENCODINGS[seed % len(ENCODINGS)])
        ds = pydicom.dcmread(io.BytesIO(data))
        assert ds.SOPInstanceUID == spec.instance.sop_instance_uid
        assert ds.file_meta.TransferSyntaxUID == ENCODINGS[seed % len(ENCODINGS)].transfer_syntax.value
        assert ds.file_meta.ImplementationVersionName == "SR2FHIR_SYNTH_1"


def _dataset_bytes(data: bytes, encoding: Encoding) -> bytes:
    """The data set after the file meta, inflated when the transfer syntax is deflated."""
    meta_length = int.from_bytes(data[140:144], "little")
    body = data[144 + meta_length :]
    if encoding.transfer_syntax is TransferSyntax.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return zlib.decompress(body, -zlib.MAX_WBITS)
    return body


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_encodings_write_what_they_say(encoding: Encoding) -> None:
    data = write_sr(random_spec(5), encoding)
    body = _dataset_bytes(data, encoding)
    big = encoding.transfer_syntax is TransferSyntax.EXPLICIT_VR_BIG_ENDIAN
    sequence_end = b"\xff\xfe\xe0\xdd" if big else b"\xfe\xff\xdd\xe0"
    item_end = b"\xff\xfe\xe0\x0d" if big else b"\xfe\xff\x0d\xe0"
    assert (sequence_end in body) is encoding.undefined_length_sequences
    assert (item_end in body) is encoding.undefined_length_items
    implicit = encoding.transfer_syntax is TransferSyntax.IMPLICIT_VR_LITTLE_ENDIAN
    # (0040,A730) Content Sequence: explicit VR writes "SQ" after the tag
    content_tag = b"\x00\x40\xa7\x30" if big else b"\x40\x00\x30\xa7"
    assert (content_tag + b"SQ" in body) is not implicit


def _nums(ds: Dataset) -> list:
    found = []
    for item in ds.get("ContentSequence", []):
        if item.get("ValueType") == "NUM":
            found.append(item)
        found += _nums(item)
    return found


@pytest.mark.parametrize("omit", [False, True])
def test_num_without_value_has_an_empty_or_no_measured_value_sequence(omit: bool) -> None:
    specs = (random_spec(seed) for seed in range(100))
    spec = next(s for s in specs if any(m.value is None for g in s.groups for m in g.measurements))
    ds = pydicom.dcmread(io.BytesIO(write_sr(spec, Encoding(omit_empty_measured_values=omit))))
    empty = [n for n in _nums(ds) if not n.get("MeasuredValueSequence")]
    assert empty
    assert all(("MeasuredValueSequence" in n) is not omit for n in empty)


def test_evidence_lists_every_referenced_instance_with_study_and_series() -> None:
    for seed in range(20):
        spec = random_spec(seed)
        ds = build_dataset(spec)
        listed = {}
        for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
            for study in ds.get(keyword, []):
                if keyword.startswith("Current"):
                    assert study.StudyInstanceUID == spec.study.study_instance_uid
                else:
                    assert study.StudyInstanceUID != spec.study.study_instance_uid
                for series in study.ReferencedSeriesSequence:
                    for instance in series.ReferencedSOPSequence:
                        listed[instance.ReferencedSOPInstanceUID] = (
                            instance.ReferencedSOPClassUID,
                            series.SeriesInstanceUID,
                            study.StudyInstanceUID,
                        )
        expected = {
            i.sop_instance_uid: (i.sop_class_uid, i.series_instance_uid, i.study_instance_uid)
            for i in spec.referenced_instances()
        }
        assert listed == expected


def _value_types(ds: Dataset) -> set[str]:
    found = set()
    for item in ds.get("ContentSequence", []):
        found.add("REF" if "ReferencedContentItemIdentifier" in item else item.ValueType)
        found |= _value_types(item)
    return found


def test_sop_class_allows_what_the_content_uses() -> None:
    """Enhanced SR: no SCOORD3D, no by-reference items; Comprehensive SR: no SCOORD3D (PS3.3 A.35)."""
    for seed in range(40):
        spec = random_spec(seed)
        used = _value_types(build_dataset(spec))
        if spec.instance.sop_class is not SRStorage.COMPREHENSIVE_3D_SR:
            assert "SCOORD3D" not in used
        if spec.instance.sop_class is SRStorage.ENHANCED_SR:
            assert "REF" not in used


def test_random_spec_is_deterministic() -> None:
    assert random_spec(11) == random_spec(11)
    assert random_spec(11) != random_spec(12)
    assert write_sr(random_spec(11)) == write_sr(random_spec(11))
    assert random_spec(3, 700) == random_spec(3, 700)


@pytest.mark.parametrize("target", [10, 25, 100, 400, 2500, 5000])
def test_target_items_are_met_exactly(target: int) -> None:
    spec = random_spec(target, target_items=target)
    assert count_content_items(spec) == target


def test_sized_report_maps_with_that_many_items() -> None:
    spec = random_spec(1, target_items=1000)
    result = map_sr(write_sr(spec))
    assert result.mapped
    assert result.record.content_items == 1000
    assert result.record.measurements == sum(len(g.measurements) for g in spec.all_groups) + len(
        spec.derived_measurements
    )


def test_tiny_targets_give_the_smallest_report() -> None:
    smallest = count_content_items(random_spec(0, target_items=1))
    assert smallest <= 5
    assert map_sr(write_sr(random_spec(0, target_items=1))).mapped


def test_shared_patient_and_study_are_used_as_given() -> None:
    first = random_spec(1)
    other = random_spec(2, patient=first.patient, study=first.study)
    assert (other.patient, other.study) == (first.patient, first.study)
    assert other.instance.sop_instance_uid != first.instance.sop_instance_uid
    latin = dataclasses.replace(first.patient, name="Müller^Jürgen")
    assert random_spec(4, patient=latin).instance.specific_character_set in ("ISO_IR 100", "ISO_IR 192")


def test_generator_needs_neither_the_core_nor_highdicom() -> None:
    code = (
        "import sys, sr2fhir_synth as s; s.write_sr(s.random_spec(1)); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sr2fhir_core', 'highdicom')]; "
        "assert not bad, bad"
    )
    root = str(Path(sr2fhir_synth.__file__).resolve().parent.parent)
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH")))),
    }
    subprocess.run([sys.executable, "-c", code], check=True, env=environment)
