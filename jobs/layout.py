"""Where everything goes under `--output`, and the run ids that name a run's parts."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from .spark.fs import HadoopFS

LEDGER = "documents"
INDEX = "resources"


@dataclass(frozen=True)
class Layout:
    root: str

    @property
    def exports(self) -> str:
        """The folder of the runs' FHIR exports, one folder each."""
        return f"{self.root}/fhir"

    def fhir(self, run_id: str) -> str:
        return f"{self.exports}/{run_id}"

    def table(self, name: str) -> str:
        return f"{self.root}/tables/{name}"

    @property
    def ledger(self) -> str:
        return self.table(LEDGER)

    @property
    def index(self) -> str:
        return self.table(INDEX)

    @property
    def summaries(self) -> str:
        """The folder of the run summaries: a run has one once it has committed."""
        return f"{self.root}/runs"

    def summary(self, run_id: str) -> str:
        return f"{self.summaries}/{run_id}.json"

    @property
    def staging_root(self) -> str:
        return f"{self.root}/_staging"

    def staging(self, run_id: str) -> str:
        return f"{self.staging_root}/{run_id}"

    def selection(self, run_id: str) -> str:
        """The log the content scan of the run's selected files is made from (`Inputs.with_content`): beside the
        staging folder, which its write replaces, and removed with it."""
        return f"{self.staging_root}/{run_id}.selected"

    def append_marker(self, run_id: str) -> str:
        """File in a run's staging folder: the run appends its table rows (the next start deletes them if it was
        killed before its ledger commit)."""
        return f"{self.staging(run_id)}/_appends"

    @property
    def attempts(self) -> str:
        """The markers of inputs mapped alone (`run.crashes`): one is left behind by a run whose JVM died there."""
        return f"{self.root}/_attempts"

    @property
    def merge_marker(self) -> str:
        """Empty file under the output, written by earlier versions after a killed MERGE: runs merge instead of
        appending until one that merged has committed. `recovery` lists a killed run's files instead now; an
        existing marker is still honoured."""
        return f"{self.root}/_merge_next"


def new_run_id(now: datetime) -> str:
    """Sortable by start time (the ledger's 'latest run' relies on it), unique by a random suffix."""
    return f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def run_started(run_id: str) -> datetime | None:
    """When a run started, from its id (`new_run_id`); None for a name that is not a run id."""
    try:
        return datetime.strptime(run_id.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def committed_runs(fs: HadoopFS, layout: Layout) -> set[str]:
    """The ids of the runs that have committed: those with a run summary (written last)."""
    return {status.name.removesuffix(".json") for status in fs.list_dir(layout.summaries)}
