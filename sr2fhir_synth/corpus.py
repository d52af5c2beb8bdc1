"""`write_sample_corpus`: a small, deterministic lake of SR files for first runs, demos and job tests.

Valid reports spread over a few patients and studies (several SRs per study, so that shared Patient and
ImagingStudy resources must be de-duplicated), in nested folders, some without a `.dcm` extension, in
every encoding the writer knows; plus three inputs a job must reject and record: a text file, a truncated
SR and an SR of another template. Folder and file names carry no patient data.

Its values are random (`random_spec`), so they are not clinically plausible: job tests use it for its
shape. The lake `sr2fhir sample` is meant to show a researcher is `sample.write_sample_lake`.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .generate import random_spec, uid_for
from .spec import Code
from .writer import DEFAULT_ENCODING, ENCODINGS, build_dataset, encode_dataset, write_sr

PATIENTS = 4
STUDIES = 6
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
DIAGNOSTIC_IMAGING_REPORT = Code("18748-4", "LN", "Diagnostic Imaging Report")
FINDING = Code("121071", "DCM", "Finding")

README_TEXT = (
    "sr2fhir sample lake\n"
    "===================\n"
    "Synthetic TID 1500 Measurement Reports written by sr2fhir_synth. This file is not DICOM:\n"
    "a job run over this folder must record it as rejected (not_dicom) and carry on.\n"
)


def _seed(seed: int, *labels: object) -> int:
    return uuid.uuid5(uuid.NAMESPACE_OID, "/".join(map(str, ("sr2fhir-sample", seed, *labels)))).int % 2**31


def _report_path(index: int, patient: int, study: int) -> str:
    folder = f"site-{'ab'[patient % 2]}/subject-{patient + 1:02d}/study-{study + 1:02d}"
    if index % 5 == 4:
        return f"{folder}/SR{index + 1:06d}"  # as PACS exports often are: no extension
    return f"{folder}/sr-{index + 1:03d}.dcm"


def _other_template_sr(seed: int) -> bytes:
    """A Basic Text SR of TID 2000 (Basic Diagnostic Imaging Report): valid DICOM, not TID 1500."""
    ds = build_dataset(random_spec(_seed(seed, "other-template")))
    ds.SOPClassUID = BASIC_TEXT_SR
    ds.SOPInstanceUID = uid_for("sample", seed, "other-template")
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence"):
        if keyword in ds:
            del ds[keyword]
    ds.ConceptNameCodeSequence = Sequence([_code(DIAGNOSTIC_IMAGING_REPORT)])
    ds.ContentTemplateSequence[0].TemplateIdentifier = "2000"
    finding = Dataset()
    finding.RelationshipType = "CONTAINS"
    finding.ValueType = "TEXT"
    finding.ConceptNameCodeSequence = Sequence([_code(FINDING)])
    finding.TextValue = "No focal lesion."
    ds.ContentSequence = Sequence([finding])
    return encode_dataset(ds, DEFAULT_ENCODING)


def _code(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning
    return item


def write_sample_corpus(directory: Path, count: int = 24, seed: int = 0) -> list[Path]:
    """Write `count` valid reports and three bad inputs under `directory`; return every path, sorted.

    Report i belongs to study i mod 6, and study s to patient s mod 4; encodings cycle through
    `writer.ENCODINGS`. The same (count, seed) always gives byte-identical files.
    """
    patients = [random_spec(_seed(seed, "patient", p)).patient for p in range(PATIENTS)]
    studies = [random_spec(_seed(seed, "study", s)).study for s in range(STUDIES)]
    files: dict[str, bytes] = {}
    first_report = b""
    for index in range(count):
        study = index % STUDIES
        patient = study % PATIENTS
        spec = random_spec(_seed(seed, "report", index), patient=patients[patient], study=studies[study])
        data = write_sr(spec, ENCODINGS[index % len(ENCODINGS)])
        first_report = first_report or data
        files[_report_path(index, patient, study)] = data
    files.update(bad_inputs(first_report or write_sr(random_spec(seed)), seed))
    return write_files(directory, files)


def bad_inputs(report: bytes, seed: int) -> dict[str, bytes]:
    """The three inputs a job must reject and record, by relative path: a text file (not_dicom), `report` cut
    inside its content tree (corrupt) and a Basic Text SR of another template (not_tid1500). Shared by
    `write_sample_corpus` and `sample.write_sample_lake`, so that both ledgers show the same rejections."""
    return {
        "site-b/notes/README.txt": README_TEXT.encode(),
        "site-b/incoming/truncated-sr.dcm": report[: len(report) * 2 // 3],
        "site-a/other-templates/basic-text-report.dcm": _other_template_sr(seed),
    }


def write_files(directory: Path, files: dict[str, bytes]) -> list[Path]:
    """Write `files` (relative path → bytes) under `directory`; return their paths, sorted."""
    paths = []
    for relative, data in sorted(files.items()):
        path = Path(directory) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths
