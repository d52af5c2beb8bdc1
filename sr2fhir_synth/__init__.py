"""sr2fhir_synth: synthetic DICOM SR TID 1500 Measurement Reports, written with pydicom alone.

    spec = random_spec(seed=7)                 # the truth: a typed description of one report
    spec = random_spec(7, features=FIDELITY_FEATURES)  # plus opt-in cases a mapping tends to lose
    spec = every_row_spec()                    # one report with every row of the TID 1500 templates
    data = write_sr(spec, Encoding(...))       # Part 10 bytes in any of the encodings readers meet
    write_sample_lake(Path("lake"))            # the sample cohort: patients followed over time, and bad inputs
    write_sample_corpus(Path("lake"))          # random valid reports and deliberately bad inputs

Deterministic: the same seed gives the same spec, and the same spec and encoding the same bytes.
"""

from .corpus import write_sample_corpus
from .every_row import every_row_spec
from .generate import FIDELITY_FEATURES, ROOT_OMISSIONS, Feature, random_spec, uid_for
from .sample import write_sample_lake
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
    "FIDELITY_FEATURES",
    "ROOT_OMISSIONS",
    "Encoding",
    "Feature",
    "ReportSpec",
    "TransferSyntax",
    "build_dataset",
    "count_content_items",
    "every_row_spec",
    "random_spec",
    "uid_for",
    "write_sample_corpus",
    "write_sample_lake",
    "write_sr",
]
