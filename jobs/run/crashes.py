"""Inputs that crash the mapping, pinned down and, once they keep crashing, quarantined, so that one input can never
fail every run of a schedule.

A crash is a Python worker that dies on an input (its task fails, the JVM lives on) or the run's JVM dying while an
input is mapped (out of memory: the whole run ends). Neither names the input: a task holds hundreds of files, and a
dead JVM says nothing. So:
- **Inputs that may crash are mapped alone**, each in its own Spark job behind a marker file
  (`_attempts/<run-id>.json`, naming the input, deleted when its job ends): inputs larger than what the session's
  memory always maps (possible only with `input.max_file_bytes` set over `auto`), and inputs that crashed before. A
  run that dies there leaves the marker, and the next run's recovery ledgers that input `failed/crashed`.
- **A map job that fails because a worker died is split in halves**, and each half mapped in its own job, down to
  the single input that crashes it, ledgered `failed/crashed`; the others are mapped as usual, and the run goes on.
- **An input that crashed `incremental.quarantine_after` times** (counted in the ledger, for the same size and
  modification time) is not mapped again: the run ledgers it `failed/quarantined` and later runs leave it out while it
  stays as it is, until `--retry-quarantined` or a `--full-refresh`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession

from sr2fhir_core import DocumentRecord, DocumentStatus

from .. import staging
from ..layout import Layout
from ..sinks import ledger
from ..sources.inputs import Listed
from ..spark.fs import HadoopFS

log = logging.getLogger("sr2fhir")

CRASHED = ledger.CRASHED
QUARANTINED = ledger.QUARANTINED
CRASH_MESSAGE = "the mapping's Python worker died on this input"
DEATH_MESSAGE = "the run's JVM died while this input was mapped (out of memory?)"
QUARANTINE_MESSAGE = "left out after crashing the mapping {n} times; `sr2fhir run --retry-quarantined` maps it again"
WORKER_DIED = "Python worker exited unexpectedly"
"""What a map job's failure says when a Python worker died (a crash, the OS's out-of-memory killer). Only that can
be an input's doing: the Mapper catches whatever an input makes it raise, so an exception it lets out (Spark's
PythonException) is a defect of its own, and storage or JVM failures are no input's."""
GIVE_UP_AFTER = 3
"""Crashes pinned on single inputs, with none mapped, after which a run takes the crashes for the environment's
(a worker that dies whatever it maps) and fails, rather than ledgering every input as crashed."""


def worker_crash(exc: BaseException) -> bool:
    """Whether a failed map job's error is a Python worker's death."""
    return WORKER_DIED in str(exc)


@dataclass(frozen=True)
class Marker:
    """An input a run was mapping alone, as its marker names it."""

    run_id: str
    file: Listed


def marker_uri(layout: Layout, run_id: str) -> str:
    return f"{layout.attempts}/{run_id}.json"


def mark(fs: HadoopFS, layout: Layout, run_id: str, file: Listed) -> None:
    """The marker of an input about to be mapped alone (one per run: the input it maps now)."""
    fs.write_bytes(marker_uri(layout, run_id), json.dumps({"run_id": run_id, "file": list(file)}).encode())


def unmark(fs: HadoopFS, layout: Layout, run_id: str) -> None:
    """After the input was mapped, or once the run's ledger holds what became of it. A marker stays while neither
    is true: a job that failed can reach the driver before the JVM that runs it dies."""
    fs.delete(marker_uri(layout, run_id))


def leftover_markers(fs: HadoopFS, layout: Layout) -> list[tuple[str, Marker]]:
    """(uri, marker) of the markers runs that died have left."""
    found = []
    for status in sorted(fs.list_dir(layout.attempts), key=lambda s: s.name):
        if not status.name.endswith(".json"):
            continue
        try:
            entry = json.loads(fs.read_bytes(status.uri))
            found.append((status.uri, Marker(str(entry["run_id"]), Listed(*entry["file"]))))
        except (ValueError, KeyError, TypeError):  # cut short while written: its input was not mapped yet
            fs.delete(status.uri)
    return found


def records(spark: SparkSession, entries: Sequence[tuple[Listed, str, str]]) -> DataFrame:
    """Staged document records (`staging.OUTPUT_SCHEMA`) of inputs the mapping did not map: (file, reason,
    message), each failed; the whole stored file is the input (its members, if an archive, are not known)."""
    rows = []
    for file, reason, message in entries:
        values = DocumentRecord(
            source_path=file.source_file, status=DocumentStatus.FAILED, reason=reason, message=message
        ).as_dict()
        record = {field.name: values.get(field.name) for field in staging.RECORD_STRUCT_FIELDS}
        record.update(
            status=DocumentStatus.FAILED.value,
            size=file.size,
            modification_time=datetime.fromtimestamp(file.modification_ms / 1000, UTC),
        )
        rows.append({"kind": staging.RECORD, "source_file": file.source_file, "content_sha256": None, "record": record})
    schema = staging.spark_schema()
    return spark.createDataFrame([tuple(row.get(name) for name in schema.names) for row in rows], schema=schema)
