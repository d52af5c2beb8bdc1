"""sr2fhir_core: DICOM SR TID 1500 Measurement Reports → FHIR R5 (HL7 DICOM SR to FHIR Resource Mapping IG)
and flat measurement rows. Pure: bytes in, dicts and rows out; no Spark, no I/O beyond reading a given path.
"""

from .errors import MappingWarning, RejectionReason, SRRejected, WarningCode
from .fhir.ids import DOCUMENT_SCOPED_TYPES
from .fhir.json import dumps as dumps_json
from .fhir.r4 import R5_ONLY_TYPES
from .mapping import BUNDLE_BASE_URL, MAPPING_VERSION, DocumentRecord, DocumentStatus, MappingResult, map_sr
from .options import DeviceFallback, FhirVersion, IgVersion, MappingOptions, SopClassSystem
from .reading import READER_CODE
from .rows import MEASUREMENTS_SCHEMA, QUALITATIVE_EVALUATIONS_SCHEMA, TABLE_SCHEMAS

__all__ = [
    "BUNDLE_BASE_URL",
    "DOCUMENT_SCOPED_TYPES",
    "MAPPING_VERSION",
    "MEASUREMENTS_SCHEMA",
    "QUALITATIVE_EVALUATIONS_SCHEMA",
    "R5_ONLY_TYPES",
    "READER_CODE",
    "TABLE_SCHEMAS",
    "DeviceFallback",
    "DocumentRecord",
    "DocumentStatus",
    "FhirVersion",
    "IgVersion",
    "MappingOptions",
    "MappingResult",
    "MappingWarning",
    "RejectionReason",
    "SRRejected",
    "SopClassSystem",
    "WarningCode",
    "dumps_json",
    "map_sr",
]
