"""Reading: bytes of one DICOM instance → `SRDocument` with its typed content tree.

`read_document` is the only entry point the rest of the core uses. Two readers sit behind it: the fast
reader (`fast_reader`, a purpose-built parser of the few attributes an SR needs) and the reference reader
(`pydicom_reader`). With `Reader.AUTO` the fast reader runs first and hands anything unusual to the
reference reader; `Reader.PYDICOM` uses the reference reader alone. Both give the same `SRDocument` and
the same rejections: `tests/test_reader_differential.py` holds them to it.

`SCANNER` says which element walker the fast reader uses: "c" (the `_scan` extension, built at install
time when a C compiler is there) or "python" (no compiler, or `SR2FHIR_PURE_PYTHON=1`); `TREE_BUILDER` says
the same of what builds the content tree from the walker's output (the `_tree` extension or Python). Results
are the same.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..document import SRDocument
from ..options import Reader
from .fast_parser import SCANNER, FastReaderUnsupported
from .fast_reader import TREE_BUILDER
from .fast_reader import read_document as read_fast
from .pydicom_reader import read_document as read_with_pydicom


def legacy_snomed_table() -> Mapping[str, str]:
    """DICOM's SNOMED-RT → SNOMED CT concept ids (PS3.16 Annex O), as pydicom ships them: a plain dict, imported
    on first use, that keeps this project from carrying an 8,000-row copy (`codes.canonical` uses it)."""
    from pydicom.sr._snomed_dict import mapping

    return mapping["SRT"]


def read_document(data: bytes, reader: Reader = Reader.AUTO) -> SRDocument:
    if reader is Reader.PYDICOM:
        return read_with_pydicom(data)
    try:
        return read_fast(data)
    except FastReaderUnsupported:
        return read_with_pydicom(data)


__all__ = [
    "SCANNER",
    "TREE_BUILDER",
    "FastReaderUnsupported",
    "legacy_snomed_table",
    "read_document",
    "read_fast",
    "read_with_pydicom",
]
