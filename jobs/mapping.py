"""The mapping function: `map_sr` over Arrow batches of input files, inside `DataFrame.mapInArrow` (it runs in
the Python workers).

Input rows are files (`source_file`, `size`, `modification_time`, `content`). Inputs are those files, and
the members of zip and tar archives (`archive!member`). The output is the staged rows (`jobs/staging.py`): one
per document record (one per input), per FHIR resource (its JSON text) and per table row.

One map_sr per input, nothing else of weight: the core does the mapping, this module only moves bytes in and
results out, straight into Arrow column arrays, and never raises (a bad file or archive becomes a
`failed`/`rejected` record, never a failed task).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

import pyarrow as pa
from pyspark.accumulators import AccumulatorParam

from sr2fhir_core import READER_CODE, DocumentRecord, DocumentStatus, MappingOptions, dumps_json, map_sr

from . import archives
from .staging import (
    KINDS,
    OUTPUT_SCHEMA,
    RECORD,
    RECORD_FIELDS,
    RECORD_STRUCT_FIELDS,
    RESOURCE,
    RESOURCE_TYPE,
    STRUCT_TYPES,
    TABLES,
)

# Job-level reasons, beside the core's RejectionReason codes, in the same `reason` column.
TOO_LARGE = "too_large"
"""rejected: larger than input.max_file_bytes, not read."""
EMPTY_FILE = "empty_file"
"""rejected: zero bytes, a file (a failed or unfinished upload, a truncated copy) or an archive member."""
EMPTY_ARCHIVE = "empty_archive"
"""rejected: a zip or tar archive without any file member."""
ARCHIVE_ERROR = "archive_error"
"""failed: an archive that cannot be opened or read to the end (members read before the error are kept)."""
JOB_ERROR = "internal_error"
"""failed: a defect in the job's own worker code (the core's reason code of the same name)."""

CORRUPT_MEMBER = "corrupt_member"
"""rejected: a zip member that cannot be inflated (the zip's other members are read)."""
DUPLICATE_MEMBER = "duplicate_member"
"""rejected: an archive member shadowed by a later member of the same name (`archive!name#<n>`, not read)."""

ARCHIVE_SEPARATOR = "!"
_DUPLICATE_MESSAGE = "a later member of the archive has the same name (extraction keeps that one)"


@dataclasses.dataclass(frozen=True, slots=True)
class MapperSettings:
    options: MappingOptions
    max_file_bytes: int
    max_archive_bytes: int
    max_seconds_per_input: float | None = None


FLUSH_ROWS = 4096
"""Output rows per Arrow batch at most, whatever the input (an archive of thousands of members, a report of
thousands of measurements): bounded batches for the worker and the JVM."""
FLUSH_INPUTS = 256
"""Inputs mapped before their rows are handed over at the latest (progress is counted per flush)."""

FAULT_ENVIRONMENT = "SR2FHIR_TEST_FAULT"
"""Test hook, when a worker's environment sets it: `mapper` makes the Mapper fail its task (a stage failure), so
the tests can check that a failed run ends with a clear error and a non-zero exit; `stall` makes its task wait
until it is cancelled (a run stopped in its map step); `crash:<text>` makes the worker die (exit 134, as from a
segmentation fault) when it meets an input whose path holds <text> (`run.crashes`). Never set it otherwise."""
CRASH_FAULT = "crash:"


WorkerKey = tuple[str, int, str, str, str]
"""Where inputs were mapped: (host, pid of the Python worker, its interpreter, the folder `jobs` was imported
from there, the reader's code: `sr2fhir_core.READER_CODE`). What a run says of its executors' environments."""
WORKER_FIELDS = ("host", "pid", "python", "package", "reader")


def this_worker() -> WorkerKey:
    return (socket.gethostname(), os.getpid(), sys.executable, str(Path(__file__).resolve().parent), READER_CODE)


class WorkerCounts(AccumulatorParam[dict[WorkerKey, int]]):
    """A Spark accumulator's sum of `{worker: inputs}` counts (it lives here: executors unpickle it, and this module
    is what they import of the job)."""

    def zero(self, value: dict[WorkerKey, int]) -> dict[WorkerKey, int]:
        return {}

    def addInPlace(self, value1: dict[WorkerKey, int], value2: dict[WorkerKey, int]) -> dict[WorkerKey, int]:
        for key, n in value2.items():
            value1[key] = value1.get(key, 0) + n
        return value1


class Output:
    """Column buffers of the rows not yet handed over, per kind."""

    def __init__(self) -> None:
        self.inputs = 0
        self.rows = 0
        self.files: dict[str, list[str]] = {kind: [] for kind in KINDS}
        self.hashes: dict[str, list[str | None]] = {kind: [] for kind in KINDS}
        self.records: list[dict] = []
        self.resource_types: list[str] = []
        self.resource_ids: list[str] = []
        self.resource_json: list[bytes] = []
        self.table_rows: dict[str, list[dict]] = {table: [] for table in TABLES}

    def add(self, source: dict, record: DocumentRecord, resources: list[dict], rows: dict[str, list[dict]]) -> None:
        """Append one input's rows; everything that can fail runs before the first append."""
        serialised = [dumps_json(r) for r in resources]
        types = [r["resourceType"] for r in resources]
        ids = [r["id"] for r in resources]
        values = {f.name: getattr(record, f.name) for f in RECORD_FIELDS}
        values["status"] = record.status.value
        values.update(source)
        file, sha = source["source_file"], source["content_sha256"]
        self.records.append(values)
        counts = {RECORD: 1, RESOURCE: len(resources)}
        self.resource_types += types
        self.resource_ids += ids
        self.resource_json += serialised
        for table in TABLES:
            table_rows = rows.get(table, ())
            self.table_rows[table] += table_rows
            counts[table] = len(table_rows)
        for kind, n in counts.items():
            self.files[kind] += [file] * n
            self.hashes[kind] += [sha] * n
        self.inputs += 1
        self.rows += sum(counts.values())

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The buffered rows as record batches of one kind each, at most FLUSH_ROWS rows per batch."""
        records = {f.name: pa.array([r[f.name] for r in self.records], f.type) for f in RECORD_STRUCT_FIELDS}
        structs = {
            RECORD: pa.StructArray.from_arrays(list(records.values()), fields=RECORD_STRUCT_FIELDS),
            RESOURCE: pa.StructArray.from_arrays(
                [
                    pa.array(self.resource_types, pa.string()),
                    pa.array(self.resource_ids, pa.string()),
                    pa.array(self.resource_json, pa.string()),  # UTF-8 bytes as they are: no decode
                ],
                fields=list(RESOURCE_TYPE),
            ),
            **{table: pa.array(self.table_rows[table], STRUCT_TYPES[table]) for table in TABLES},
        }
        for kind, values in structs.items():
            n = len(values)
            if not n:
                continue
            columns = [
                pa.array([kind] * n, pa.string()),
                pa.array(self.files[kind], pa.string()),
                pa.array(self.hashes[kind], pa.string()),
                *(values if other == kind else pa.nulls(n, STRUCT_TYPES[other]) for other in KINDS),
            ]
            batch = pa.RecordBatch.from_arrays(columns, schema=OUTPUT_SCHEMA)
            for offset in range(0, n, FLUSH_ROWS):
                yield batch.slice(offset, FLUSH_ROWS)


def _record(source_path: str, status: DocumentStatus, reason: str, message: str) -> DocumentRecord:
    return DocumentRecord(source_path=source_path, status=status, reason=reason, message=message)


def _describe(exc: BaseException) -> str:
    """Type and place of an exception, never its message (it could quote a patient's data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {PurePosixPath(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


Result = tuple[dict, DocumentRecord, list[dict], dict[str, list[dict]]]
"""One input's output: its source columns, document record, resources and table rows."""


class Mapper:
    """The function given to mapInArrow: picklable, with its settings, and nothing else."""

    def __init__(
        self,
        settings: MapperSettings,
        progress: Callable[[int], None] | None = None,
        workers: Callable[[dict[WorkerKey, int]], None] | None = None,
    ) -> None:
        """`progress(n)`: n more inputs mapped; `workers({worker: n})`: n more inputs mapped by that worker."""
        self.settings = settings
        self.progress = progress
        self.workers = workers
        self._crash_on: str | None = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fault = os.environ.get(FAULT_ENVIRONMENT) or ""
        self._crash_on = fault.removeprefix(CRASH_FAULT) if fault.startswith(CRASH_FAULT) else None
        if fault == "mapper":
            raise RuntimeError(f"fault injected by {FAULT_ENVIRONMENT}=mapper (a test hook)")
        if fault == "stall":
            time.sleep(3600)
        out = Output()
        for batch in batches:
            # Column by column: only the small columns become Python lists; contents are taken one at a time.
            files = batch.column("source_file").to_pylist()
            sizes = batch.column("size").to_pylist()
            times = batch.column("modification_time").cast(pa.timestamp("us", tz="UTC")).to_pylist()
            contents = batch.column("content")
            for i, path in enumerate(files):
                stored = {"source_file": path, "size": sizes[i], "modification_time": times[i]}
                for item in self._file(stored, contents[i].as_py()):
                    try:
                        out.add(*item)
                    except Exception as exc:  # a result that cannot be serialised: its input failed
                        source = {**item[0], "content_sha256": None}
                        failed = _record(source["source_path"], DocumentStatus.FAILED, JOB_ERROR, _describe(exc))
                        out.add(source, failed, [], {})
                    if out.rows >= FLUSH_ROWS or out.inputs >= FLUSH_INPUTS:
                        yield from self._flush(out)
                        out = Output()
            if out.inputs:
                yield from self._flush(out)
                out = Output()

    def _flush(self, out: Output) -> Iterator[pa.RecordBatch]:
        yield from out.batches()
        if self.progress is not None:
            self.progress(out.inputs)
        if self.workers is not None:
            self.workers({this_worker(): out.inputs})

    def _file(self, stored: dict, content: bytes | None) -> Iterator[Result]:
        path = stored["source_file"]
        if self._crash_on and self._crash_on in path:
            os._exit(134)  # the test hook: this worker dies on this input, as a segmentation fault would end it
        try:
            if content is None:
                limit = self.settings.max_file_bytes
                yield self._rejected(stored, path, TOO_LARGE, f"larger than input.max_file_bytes ({limit:,} bytes)")
            elif archives.is_archive(content[:512]):
                yield from self._archive(stored, path, content)
            else:
                yield self._input(stored, path, content)
        except Exception as exc:  # one bad file never fails a task
            yield (
                {**stored, "source_path": path, "content_sha256": None},
                _record(path, DocumentStatus.FAILED, JOB_ERROR, _describe(exc)),
                [],
                {},
            )

    def _archive(self, stored: dict, path: str, content: bytes) -> Iterator[Result]:
        found = 0
        settings = self.settings
        try:
            for member in archives.members(
                content, max_member_bytes=settings.max_file_bytes, max_archive_bytes=settings.max_archive_bytes
            ):
                found += 1
                source_path = f"{path}{ARCHIVE_SEPARATOR}{member.name}"
                if member.skipped is archives.Skipped.DUPLICATE:
                    yield self._rejected(stored, source_path, DUPLICATE_MEMBER, _DUPLICATE_MESSAGE)
                elif member.skipped is archives.Skipped.UNREADABLE:
                    message = f"member cannot be inflated: {member.error}"
                    yield self._rejected(stored, source_path, CORRUPT_MEMBER, message)
                elif member.data is None:
                    limit = settings.max_file_bytes
                    yield self._rejected(stored, source_path, TOO_LARGE, f"member inflates past {limit:,} bytes")
                else:
                    yield self._input(stored, source_path, member.data)
        except archives.ArchiveTooLarge as exc:  # the members read so far are kept
            yield self._rejected(stored, path, TOO_LARGE, f"archive {exc}", _sha256(content))
            return
        except Exception as exc:  # corrupt or truncated archive: the members read so far are kept
            record = _record(
                path,
                DocumentStatus.FAILED,
                ARCHIVE_ERROR,
                f"archive unreadable after {found} members: {_describe(exc)}",
            )
            yield {**stored, "source_path": path, "content_sha256": _sha256(content)}, record, [], {}
            return
        if not found:
            record = _record(path, DocumentStatus.REJECTED, EMPTY_ARCHIVE, "archive without file members")
            yield {**stored, "source_path": path, "content_sha256": _sha256(content)}, record, [], {}

    def _rejected(self, stored: dict, source_path: str, reason: str, message: str, sha256: str | None = None) -> Result:
        source = {**stored, "source_path": source_path, "content_sha256": sha256}
        return source, _record(source_path, DocumentStatus.REJECTED, reason, message), [], {}

    def _input(self, stored: dict, source_path: str, data: bytes) -> Result:
        if not data:  # the core would call it `not_dicom`; nothing is there to be anything
            return (
                {**stored, "source_path": source_path, "content_sha256": _sha256(data)},
                _record(source_path, DocumentStatus.REJECTED, EMPTY_FILE, "zero bytes"),
                [],
                {},
            )
        result = map_sr(
            data, self.settings.options, source_path=source_path, time_limit=self.settings.max_seconds_per_input
        )
        return (
            {**stored, "source_path": source_path, "content_sha256": _sha256(data)},
            result.record,
            result.resources,
            result.rows,
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
