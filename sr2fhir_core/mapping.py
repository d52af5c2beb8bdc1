"""`map_sr`: one SR in, FHIR resources, table rows and a document record out. Never raises for bad input.

The flow is one-way: bytes → `reading` (content tree) → `tid1500.parse` (report model) → `fhir` (resources)
and `rows` (table rows). Only this module knows all four.
"""

from __future__ import annotations

import gc
import os
import traceback
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from . import codes, deadline
from .content import count_items
from .errors import MappingWarning, RejectionReason, SRRejected, WarningCode
from .fhir import build_resources
from .options import MappingOptions
from .reading import legacy_snomed_table, read_document
from .rows import build_rows
from .tid1500.model import UnmappedItem
from .tid1500.parse import parse_report

codes.use_legacy_snomed_table(legacy_snomed_table)


MAPPING_VERSION = 2
"""Raised whenever the same input and options map to different output (resources, rows, record columns): a
job's mapping fingerprint includes it, so the first run of a new version maps every report again. 2: every
finding site, device observers, segment numbers, other spatial items, float32 coordinates, UCUM checks,
unmapped-item accounting (issue 16)."""


class DocumentStatus(StrEnum):
    MAPPED = "mapped"
    REJECTED = "rejected"
    """The input is not a mappable TID 1500 report (reason says why)."""
    FAILED = "failed"
    """sr2fhir could not map an input it should have: a defect (internal_error) or unreadable storage."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRecord:
    """What happened to one input; the job's ledger row is built from it."""

    source_path: str | None
    status: DocumentStatus
    reason: str | None = None
    message: str | None = None
    sop_instance_uid: str | None = None
    sop_class_uid: str | None = None
    study_instance_uid: str | None = None
    content_items: int = 0
    measurement_groups: int = 0
    measurements: int = 0
    qualitative_evaluations: int = 0
    resources: int = 0
    warnings: int = 0
    unmapped_items: int = 0
    """Content items that reach neither FHIR nor the tables."""
    unmapped_concepts: str | None = None
    """Which: their concept names, each with its count and first position (`unmapped_listing`); the text of the
    document's one `unmapped_content` warning."""

    def as_dict(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


BUNDLE_BASE_URL = "http://sr2fhir.invalid/fhir"
"""Default base of the fullUrls in `MappingResult.bundle`: the server the resources will live on is unknown when
mapping, and the reserved .invalid domain (RFC 2606) says so; `sr2fhir map --base-url` names the real one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingResult:
    record: DocumentRecord
    resources: list[dict] = field(default_factory=list)
    """FHIR resources (R5, or R4 when `MappingOptions.fhir_version` says so) as dicts, in a stable order; numbers are
    `Decimal` (see `fhir.json.dumps`).
    Resources of one result share read-only parts (references, codings): copy one before changing it."""
    rows: dict[str, list[dict]] = field(default_factory=lambda: {"measurements": [], "qualitative_evaluations": []})
    warnings: list[MappingWarning] = field(default_factory=list)

    @property
    def mapped(self) -> bool:
        return self.record.status is DocumentStatus.MAPPED

    def bundle(self, base_url: str = BUNDLE_BASE_URL) -> dict:
        """A FHIR Bundle of type collection holding every resource.

        Resources refer to each other relatively ("Observation/<id>"); FHIR resolves those inside a Bundle only
        against a RESTful fullUrl ("<base>/Observation/<id>"), not a urn:uuid, so every entry gets one."""
        base = base_url.rstrip("/")
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in self.resources],
        }


_DEFAULT_OPTIONS = MappingOptions()


def map_sr(
    source: bytes | str | os.PathLike[str],
    options: MappingOptions | None = None,
    *,
    source_path: str | None = None,
    time_limit: float | None = None,
) -> MappingResult:
    """Map one DICOM SR (bytes, or a path to read) to FHIR resources and table rows.

    `source_path` names the input in rows and records when bytes are given (a job passes its URI).
    `time_limit`: seconds this call may take (None: no limit). When they are up, the mapping stops at its next
    check (`deadline`) and the record is `failed` with reason `timeout`: a job's per-input budget.
    """
    # The mapping builds large acyclic structures that reference counting frees; the cyclic collector's
    # repeated scans of them cost about a third of the time on large reports, so it pauses meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    limit = deadline.start(time_limit)
    try:
        return _map_source(source, options or _DEFAULT_OPTIONS, source_path, time_limit)
    finally:
        deadline.stop(limit)
        if collecting:
            gc.enable()


def _map_source(
    source: bytes | str | os.PathLike[str],
    options: MappingOptions,
    source_path: str | None,
    time_limit: float | None,
) -> MappingResult:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        source_path = source_path or str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            return _failed(source_path, "io_error", f"cannot read input ({type(exc).__name__}: {exc.strerror})")
    try:
        return _map(data, options, source_path)
    except SRRejected as rejection:
        return MappingResult(
            record=DocumentRecord(
                source_path=source_path,
                status=DocumentStatus.REJECTED,
                reason=rejection.reason.value,
                message=rejection.message,
            )
        )
    except deadline.MappingTimeout:
        return _failed(
            source_path, RejectionReason.TIMEOUT.value, f"not decided within the time limit ({time_limit:g} s)"
        )
    except RecursionError:
        return MappingResult(
            record=DocumentRecord(
                source_path=source_path,
                status=DocumentStatus.REJECTED,
                reason=RejectionReason.CORRUPT.value,
                message="content tree nested too deeply to read",
            )
        )
    except Exception as exc:
        return _failed(source_path, RejectionReason.INTERNAL_ERROR.value, _describe_defect(exc))


def _map(data: bytes, options: MappingOptions, source_path: str | None) -> MappingResult:
    deadline.check()
    document = read_document(data, options.reader)
    deadline.check()
    try:
        report = parse_report(document)
    except SRRejected as rejection:
        # Readable DICOM: the record can say which instance was turned away.
        return MappingResult(
            record=DocumentRecord(
                source_path=source_path,
                status=DocumentStatus.REJECTED,
                reason=rejection.reason.value,
                message=rejection.message,
                sop_instance_uid=document.sop_instance_uid,
                sop_class_uid=document.sop_class_uid,
                study_instance_uid=document.study_instance_uid,
                content_items=count_items(document.root) if document.root else 0,
            )
        )
    systems = codes.CodeSystems(document.coding_schemes, options.code_systems)
    deadline.check()
    resources, warnings = build_resources(report, options, systems)
    unmapped = unmapped_listing(report.unmapped) if report.unmapped else None
    if unmapped is not None:
        warnings.append(
            MappingWarning(
                WarningCode.UNMAPPED_CONTENT, "", f"{len(report.unmapped)} content items not mapped: {unmapped}"
            )
        )
    deadline.check()
    rows = build_rows(report, source_path, systems)
    groups = report.all_groups
    record = DocumentRecord(
        source_path=source_path,
        status=DocumentStatus.MAPPED,
        sop_instance_uid=document.sop_instance_uid,
        sop_class_uid=document.sop_class_uid,
        study_instance_uid=document.study_instance_uid,
        content_items=report.content_items,
        measurement_groups=len(groups),
        measurements=len(rows["measurements"]),
        qualitative_evaluations=len(rows["qualitative_evaluations"]),
        resources=len(resources),
        warnings=len(warnings),
        unmapped_items=len(report.unmapped),
        unmapped_concepts=unmapped,
    )
    return MappingResult(record=record, resources=resources, rows=rows, warnings=warnings)


UNMAPPED_LISTED = 20
"""Concepts an `unmapped_content` warning names at most (each with its count and first position)."""


def unmapped_listing(unmapped: tuple[UnmappedItem, ...]) -> str:
    """The content items no output carries, by concept name (`_concept_name`: codes of public schemes only, so they
    may be named), each with its count and first position: "(121049, DCM) at 1.1; (121058, DCM) x2 at 1.4"."""
    by_concept: dict[str, list[UnmappedItem]] = {}
    for item in unmapped:
        by_concept.setdefault(_concept_name(item.concept), []).append(item)
    parts = []
    for name, items in list(by_concept.items())[:UNMAPPED_LISTED]:
        first = ".".join(map(str, items[0].position))
        parts.append(f"{name} x{len(items)} at {first}" if len(items) > 1 else f"{name} at {first}")
    more = len(by_concept) - UNMAPPED_LISTED
    return "; ".join(parts) + (f"; and {more} more concepts" if more > 0 else "")


def _concept_name(concept: tuple[str, str] | None) -> str:
    """A concept as messages may name it: codes of the public schemes the core knows (DCM, SCT, LOINC, ...);
    a private or unknown scheme's designator and code are values of the file, so they are not quoted."""
    if concept is None:
        return "(no concept name)"
    scheme, value = concept
    if scheme.upper() in codes.CODE_SYSTEMS:
        return f"({value}, {scheme})"
    return "(a code of a private or unknown scheme)"


def _failed(source_path: str | None, reason: str, message: str) -> MappingResult:
    return MappingResult(
        record=DocumentRecord(source_path=source_path, status=DocumentStatus.FAILED, reason=reason, message=message)
    )


def _describe_defect(exc: BaseException) -> str:
    """Exception type and where it happened; not its message, which could quote patient data."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"
