"""sr2fhir_synth: synthetic DICOM SR TID 1500 Measurement Reports, written with pydicom alone.

    spec = random_spec(seed=7)                 # the truth: a typed description of one report
    data = write_sr(spec, Encoding(...))       # Part 10 bytes in any of the encodings readers meet
    write_sample_corpus(Path("lake"))          # a small lake of valid and deliberately bad inputs

Deterministic: the same seed gives the same spec, and the same spec and encoding the same bytes.
"""

from .corpus import write_sample_corpus
from .generate import random_spec, uid_for
from .spec import ReportSpec
from .writer import (
    DEFAULT_ENCODING,
    ENCODINGS,
    Encoding,
    TransferSyntax,
    build_dataset,
    count_content_items,
    write_sr,
)

__all__ = [
    "DEFAULT_ENCODING",
    "ENCODINGS",
    "Encoding",
    "ReportSpec",
    "TransferSyntax",
    "build_dataset",
    "count_content_items",
    "random_spec",
    "uid_for",
    "write_sample_corpus",
    "write_sr",
]
