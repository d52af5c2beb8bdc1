"""Why an input is not mapped: a closed set of reason codes, and the one exception type that carries them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectionReason(StrEnum):
    """Reason codes written to the document record and the job's ledger. Stable: downstream queries use them."""

    NOT_DICOM = "not_dicom"
    """The bytes are not a DICOM Part 10 file nor a bare DICOM data set."""
    CORRUPT = "corrupt"
    """DICOM, but truncated or structurally broken so that it cannot be read to the end."""
    UNSUPPORTED_ENCODING = "unsupported_encoding"
    """A transfer syntax an SR cannot legally use (e.g. a compressed pixel-data syntax) or an unreadable one."""
    NOT_SR = "not_sr"
    """DICOM, but not a Structured Report document (an image, a segmentation, an annotation object, ...)."""
    NOT_TID1500 = "not_tid1500"
    """An SR of another template (Basic Text, a private template, the 2015 'TID 1000' draft, ...)."""
    MISSING_REQUIRED = "missing_required"
    """A TID 1500 report without content the mapping needs (SOP Instance UID, Study Instance UID, ...)."""
    TOO_LARGE = "too_large"
    """Larger than the core reads it: over `reading.REFERENCE_READER_MAX_BYTES` with a structure only the
    reference reader reads (the job also ledgers inputs over `input.max_file_bytes` with this code)."""
    INTERNAL_ERROR = "internal_error"
    """A defect of sr2fhir itself; the document record says so instead of the job failing."""
    TIMEOUT = "timeout"
    """Not decided within the time given to `map_sr` (`time_limit`); status `failed`, as the input may map
    with more time."""


class SRRejected(Exception):
    """Raised inside the core when an input cannot be mapped; `map_sr` turns it into a document record.

    The message must never contain patient-identifying values: it ends up in logs and ledgers.
    """

    def __init__(self, reason: RejectionReason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class WarningCode(StrEnum):
    """What a mapped document lost or bent on its way to FHIR; stable codes for ledgers and queries."""

    VALUE_ABSENT = "value_absent"
    """A NUM without a measured value, or with a Numeric Value Qualifier (NaN, infinity, failure)."""
    UNRESOLVED_REFERENCE = "unresolved_reference"
    """A by-reference item or image reference that points at nothing usable."""
    REGION_WITHOUT_IMAGE = "region_without_image"
    """A SCOORD with no IMAGE it is selected from: no ImagingSelection can carry it."""
    MULTIPOINT_AS_POINTS = "multipoint_as_points"
    """SCOORD MULTIPOINT has no FHIR R5 region type; written as one point region per point."""
    UNKNOWN_CODING_SCHEME = "unknown_coding_scheme"
    """A coding scheme without a registered FHIR system; the documented fallback system was used."""
    MISSING_PATIENT_ID = "missing_patient_id"
    TEMPLATE_QUIRK = "template_quirk"
    """Recognised as TID 1500 despite a non-standard template identifier or root concept."""
    INVALID_VALUE = "invalid_value"
    """A value that does not fit its FHIR type (e.g. an unparseable date) and was left out."""
    INVALID_UNIT = "invalid_unit"
    """A unit code under UCUM that is not valid UCUM: corrected when it is a known misspelling, else kept
    under a non-UCUM system (sr2fhir_core/units.py)."""
    NONCONFORMANT_CONTENT = "nonconformant_content"
    """Content the templates or the SR IOD do not allow (a mandatory TID 1500 row missing, a relationship the
    SR rules forbid); mapped as far as it goes."""
    UNMAPPED_CONTENT = "unmapped_content"
    """Content items that reach neither FHIR nor the tables (docs/mapping-decisions.md says which and why);
    one warning per document, listing their concept codes and positions."""


@dataclass(frozen=True, slots=True)
class MappingWarning:
    code: WarningCode
    position: str
    """Content item position ("1.4.2") or "" for the header."""
    message: str
