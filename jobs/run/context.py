"""What every step of a run is given: the session, the configuration, where the output is, the run's id and
clock, its lock, and the output's tables (each opened once, in the output's table format)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import SparkSession

from sr2fhir_core import MAPPING_VERSION

from ..config import JobConfig
from ..layout import Layout, new_run_id
from ..output_lock import OutputLock
from ..sinks import index, tables
from ..sinks.ledger import SPEC as LEDGER_SPEC
from ..sinks.ledger import Ledger
from ..sinks.store import TableStore, open_store
from ..spark.fs import HadoopFS
from .execution import Steps


def mapping_fingerprint(config: JobConfig) -> str:
    """Identity of the mapping: a file mapped with other options, or by a core whose `MAPPING_VERSION` differs
    (its output for the same input changed), is mapped again. Version 1 hashed the options alone, so an output
    written then keeps matching until the version moves."""
    identity: dict[str, object] = dict(config.mapping.as_dict())
    if MAPPING_VERSION > 1:
        identity["mapping_version"] = MAPPING_VERSION
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class OutputTables:
    """The tables of an output, in its table format."""

    research: dict[str, TableStore]
    ledger: Ledger
    index: TableStore

    @classmethod
    def open(cls, spark: SparkSession, fs: HadoopFS, layout: Layout, config: JobConfig) -> OutputTables:
        table_format, auto_compact = config.out.table_format, config.maintenance.auto_compact
        uris = {name: layout.table(name) for name in tables.TABLES}
        return cls(
            research=tables.stores(spark, fs, uris, config),
            ledger=Ledger(open_store(spark, fs, layout.ledger, LEDGER_SPEC, table_format, auto_compact=auto_compact)),
            index=open_store(spark, fs, layout.index, index.SPEC, table_format, auto_compact=auto_compact),
        )

    def all(self) -> dict[str, TableStore]:
        return {**self.research, LEDGER_SPEC.name: self.ledger.store, index.NAME: self.index}


@dataclass(frozen=True)
class Run:
    spark: SparkSession
    fs: HadoopFS
    config: JobConfig
    layout: Layout
    lock: OutputLock
    tables: OutputTables
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    clock: float = field(default_factory=time.monotonic)
    steps: Steps = field(default_factory=Steps)
    run_id: str = ""
    fingerprint: str = ""
    safe_input_bytes: int = 0
    """The largest input the session's memory always maps (`limits.Memory.max_input_bytes`)."""

    def __post_init__(self) -> None:
        if not self.run_id:
            object.__setattr__(self, "run_id", new_run_id(self.started))
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", mapping_fingerprint(self.config))

    @property
    def table_format(self) -> str:
        return self.config.out.table_format

    @property
    def replace(self) -> bool:
        """A full refresh: everything is mapped again and every table rewritten."""
        return self.config.full_refresh

    @property
    def staging(self) -> str:
        return self.layout.staging(self.run_id)
