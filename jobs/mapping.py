"""The mapping step: `map_sr` over Arrow batches of input files, inside `DataFrame.mapInArrow`.

Input rows are files (`source_file`, `size`, `modification_time`, `content`); output rows are inputs,
one per plain file and one per archive member (`archive!member`), each with its document record, its FHIR
resources as JSON text and its table rows as nested lists. One map_sr per input, nothing else of weight:
the core does the mapping, this module only moves bytes in and results out, and never raises (a bad file
or archive becomes a `failed`/`rejected` record, never a failed task).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import tarfile
import traceback
import typing
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath

import pyarrow as pa

from sr2fhir_core import TABLE_SCHEMAS, DocumentRecord, DocumentStatus, MappingOptions, dumps_json, map_sr

# Job-level reasons, beside the core's RejectionReason codes, in the same `reason` column.
TOO_LARGE = "too_large"
"""rejected: larger than input.max_file_bytes, not read."""
EMPTY_ARCHIVE = "empty_archive"
"""rejected: a zip or tar archive without any file member."""
ARCHIVE_ERROR = "archive_error"
"""failed: an archive that cannot be opened or read to the end (members read before the error are kept)."""
JOB_ERROR = "internal_error"
"""failed: a defect in the job's own worker code (the core's reason code of the same name)."""

ARCHIVE_SEPARATOR = "!"

def _record_fields() -> list[pa.Field]:
    """The document record's columns, from the core's `DocumentRecord` (source_path is an input column)."""
    hints = typing.get_type_hints(DocumentRecord)
    return [
        pa.field(name, pa.int32() if hints[name] is int else pa.string(), nullable=name != "status")
        for name in (f.name for f in dataclasses.fields(DocumentRecord))
        if name != "source_path"
    ]


RECORD_FIELDS: list[pa.Field] = _record_fields()

RESOURCE_TYPE = pa.struct(
    [
        pa.field("resource_type", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("json", pa.string(), nullable=False),
    ]
)

INPUT_FIELDS = [
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_path", pa.string(), nullable=False),
    pa.field("size", pa.int64()),
    pa.field("modification_time", pa.timestamp("us", tz="UTC")),
    pa.field("content_sha256", pa.string()),
]

RESOURCES_COLUMN = "fhir_resources"
ROWS_COLUMNS = {table: f"rows_{table}" for table in TABLE_SCHEMAS}
"""Nested output columns (the record's own `resources`, `measurements`, ... are its counts)."""

OUTPUT_SCHEMA = pa.schema(
    [
        *INPUT_FIELDS,
        *RECORD_FIELDS,
        pa.field("resource_types", pa.map_(pa.string(), pa.int32())),
        pa.field(RESOURCES_COLUMN, pa.list_(pa.field("element", RESOURCE_TYPE, nullable=False))),
        *(
            pa.field(ROWS_COLUMNS[table], pa.list_(pa.field("element", pa.struct(list(schema)), nullable=False)))
            for table, schema in TABLE_SCHEMAS.items()
        ),
    ]
)
"""One row per input (file or archive member). `size`/`modification_time` are the stored file's (for a
member: the archive's), which is what incremental runs compare; `content_sha256` is of the input's bytes."""


@dataclasses.dataclass(frozen=True, slots=True)
class MapperSettings:
    options: MappingOptions
    max_file_bytes: int


class _Output:
    """Column buffers for one output batch."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {f.name: [] for f in OUTPUT_SCHEMA}

    def __len__(self) -> int:
        return len(self.columns["source_path"])

    def add(self, source: dict, record: DocumentRecord, resources: list[dict], rows: dict[str, list[dict]]) -> None:
        """Append one input's row; everything that can fail runs before the first append."""
        serialised = [
            {"resource_type": r["resourceType"], "id": r["id"], "json": dumps_json(r).decode()} for r in resources
        ]
        types: dict[str, int] = {}
        for resource in serialised:
            types[resource["resource_type"]] = types.get(resource["resource_type"], 0) + 1
        values = {**source, **{f.name: getattr(record, f.name) for f in RECORD_FIELDS},
                  "resource_types": list(types.items()), RESOURCES_COLUMN: serialised,
                  **{column: rows.get(table, []) for table, column in ROWS_COLUMNS.items()}}
        for name, column in self.columns.items():
            column.append(values[name])

    def batch(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pydict(self.columns, schema=OUTPUT_SCHEMA)


def _record(source_path: str, status: DocumentStatus, reason: str, message: str) -> DocumentRecord:
    return DocumentRecord(source_path=source_path, status=status, reason=reason, message=message)


def _describe(exc: BaseException) -> str:
    """Type and place of an exception, never its message (it could quote a patient's data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {PurePosixPath(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def is_archive(head: bytes) -> bool:
    return (
        head.startswith((b"PK\x03\x04", b"PK\x05\x06"))  # zip (or an empty zip)
        or head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))  # gzip, bzip2, xz: compressed tar
        or head[257:262] == b"ustar"  # plain tar
    )


def _members(content: bytes, limit: int) -> Iterator[tuple[str, int, bytes | None]]:
    """(name, size, bytes or None when over the limit) of each file member of a zip or tar archive."""
    if content.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size, (archive.read(info) if info.file_size <= limit else None)
        return
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:*") as archive:
        for info in archive:
            if info.isfile():
                data = None
                if info.size <= limit:
                    handle = archive.extractfile(info)
                    data = handle.read() if handle is not None else b""
                yield info.name, info.size, data


Result = tuple[dict, DocumentRecord, list[dict], dict[str, list[dict]]]
"""One input's output: its source columns, document record, resources and table rows."""

FLUSH_ROWS = 256
"""Output rows per Arrow batch at most (a batch of inputs is usually far fewer)."""


class Mapper:
    """The function given to mapInArrow: picklable, with its settings, and nothing else."""

    def __init__(self, settings: MapperSettings, progress: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.progress = progress

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            out = _Output()
            for row in batch.to_pylist():
                for item in self._file(row):
                    out.add(*item)
                    if len(out) >= FLUSH_ROWS:  # an archive of thousands of members: bounded batches
                        yield self._flush(out)
                        out = _Output()
            if len(out):
                yield self._flush(out)

    def _flush(self, out: _Output) -> pa.RecordBatch:
        if self.progress is not None:
            self.progress(len(out))
        return out.batch()

    def _file(self, row: dict) -> Iterator[Result]:
        path = row["source_file"]
        stored = {"source_file": path, "size": row["size"], "modification_time": _utc(row["modification_time"])}
        content = row["content"]
        try:
            if content is None:
                limit = self.settings.max_file_bytes
                yield self._input(stored, path, None, f"larger than input.max_file_bytes ({limit:,} bytes)")
            elif is_archive(content[:512]):
                yield from self._archive(stored, path, content)
            else:
                yield self._input(stored, path, content)
        except Exception as exc:  # one bad file never fails a task
            yield ({**stored, "source_path": path, "content_sha256": None},
                   _record(path, DocumentStatus.FAILED, JOB_ERROR, _describe(exc)), [], {})

    def _archive(self, stored: dict, path: str, content: bytes) -> Iterator[Result]:
        found = 0
        try:
            for name, size, data in _members(content, self.settings.max_file_bytes):
                found += 1
                member = f"{path}{ARCHIVE_SEPARATOR}{name}"
                yield self._input(stored, member, data, f"member of {size:,} bytes over input.max_file_bytes")
        except Exception as exc:  # corrupt or truncated archive: the members read so far are kept
            record = _record(path, DocumentStatus.FAILED, ARCHIVE_ERROR,
                             f"archive unreadable after {found} members: {_describe(exc)}")
            yield {**stored, "source_path": path, "content_sha256": _sha256(content)}, record, [], {}
            return
        if not found:
            record = _record(path, DocumentStatus.REJECTED, EMPTY_ARCHIVE, "archive without file members")
            yield {**stored, "source_path": path, "content_sha256": _sha256(content)}, record, [], {}

    def _input(self, stored: dict, source_path: str, data: bytes | None, too_large: str = "") -> Result:
        if data is None:
            return ({**stored, "source_path": source_path, "content_sha256": None},
                    _record(source_path, DocumentStatus.REJECTED, TOO_LARGE, too_large), [], {})
        result = map_sr(data, self.settings.options, source_path=source_path)
        return ({**stored, "source_path": source_path, "content_sha256": _sha256(data)},
                result.record, result.resources, result.rows)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
