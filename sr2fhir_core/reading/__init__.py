"""Reading: bytes of one DICOM instance → `SRDocument` with its typed content tree.

`read_document` is the only entry point the rest of the core uses. Two readers sit behind it: the fast
reader (`fast_reader`, a purpose-built parser of the few attributes an SR needs) and the reference reader
(`pydicom_reader`); each builds the content tree, and `header` builds the rest of the document from either
one's values. With `Reader.AUTO` the fast reader runs first and hands anything unusual to the
reference reader; `Reader.PYDICOM` uses the reference reader alone. Both give the same `SRDocument` and
the same rejections: `tests/test_reader_differential.py` holds them to it. The reference reader reads
inputs up to `REFERENCE_READER_MAX_BYTES`; a larger one is read by the fast reader or rejected `too_large`,
whichever reader is asked for (`Reader.PYDICOM` then reads it with pydicom too, for its verdict).

`SCANNER` says which element walker the fast reader uses: "c" (the `_scan` extension, built at install
time when a C compiler is there) or "python" (no compiler, or `SR2FHIR_PURE_PYTHON=1`); `TREE_BUILDER` says
the same of what builds the content tree from the walker's output (the `_tree` extension or Python). Results
are the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from ..document import SRDocument
from ..errors import RejectionReason, SRRejected
from ..options import Reader
from .fast_parser import SCANNER, FastReaderUnsupported
from .fast_reader import TREE_BUILDER
from .fast_reader import read_document as read_fast
from .pydicom_reader import read_document as read_with_pydicom

READER_CODE: Literal["c", "python", "mixed"] = (
    "c" if SCANNER == TREE_BUILDER == "c" else "python" if SCANNER == TREE_BUILDER == "python" else "mixed"
)
"""What code the fast reader runs in this process: "c" (both C extensions loaded), "python" (the pure-Python
fallback: the extensions are not built or not loadable here, e.g. from a zip, or SR2FHIR_PURE_PYTHON is set),
"mixed" (one of them). Results are the same; the fallback takes about 1.5 times as long per input."""

REFERENCE_READER_MAX_BYTES = 4 * 2**20
"""The largest input the reference reader reads: about three times the largest real report known (1.2 MB). It
takes about 1 s and 35 MB of memory per MB of SR content (pydicom's data model), the fast reader some 0.02 s and
8 MB, so above this size an input must be one the fast reader reads, or it is rejected `too_large`: the time
and memory to decide any input stay linear in its size with the fast reader's constants. With either reader, so
both give the same verdict on every input (docs/limits.md)."""


def legacy_snomed_table() -> Mapping[str, str]:
    """DICOM's SNOMED-RT → SNOMED CT concept ids (PS3.16 Annex O), as pydicom ships them: a plain dict, imported
    on first use, that keeps this project from carrying an 8,000-row copy (`codes.canonical` uses it)."""
    from pydicom.sr._snomed_dict import mapping

    return mapping["SRT"]


def read_document(data: bytes, reader: Reader = Reader.AUTO) -> SRDocument:
    large = len(data) > REFERENCE_READER_MAX_BYTES
    if reader is Reader.PYDICOM and not large:
        return read_with_pydicom(data)
    try:
        document = read_fast(data)
    except FastReaderUnsupported:
        if large:
            raise SRRejected(
                RejectionReason.TOO_LARGE,
                f"over {REFERENCE_READER_MAX_BYTES // 2**20} MiB and in a form only the reference reader reads, "
                "which reads inputs up to that size",
            ) from None
        return read_with_pydicom(data)
    if reader is Reader.PYDICOM:
        return read_with_pydicom(data)  # a large input the fast reader reads: the reference reader's verdict
    return document


__all__ = [
    "READER_CODE",
    "REFERENCE_READER_MAX_BYTES",
    "SCANNER",
    "TREE_BUILDER",
    "FastReaderUnsupported",
    "legacy_snomed_table",
    "read_document",
    "read_fast",
    "read_with_pydicom",
]
