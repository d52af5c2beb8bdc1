"""Fuzz campaign: seeded mutations of the real corpus through `map_sr` with both readers.

    PYTHONPATH=. python -m benchmarks.fuzz run --count 1000000          # or resume: the same command again
    PYTHONPATH=. python -m benchmarks.fuzz run --workers 2              # two worker processes at once
    PYTHONPATH=. python -m benchmarks.fuzz status                       # counts and findings so far
    PYTHONPATH=. python -m benchmarks.fuzz report                       # writes benchmarks/FUZZ.md
    PYTHONPATH=. python -m benchmarks.fuzz reproduce 123456 -o case.dcm  # one mutation's bytes, to debug it
    PYTHONPATH=. python -m benchmarks.fuzz recheck                      # re-time `slow` findings alone

Mutation `i` of a campaign is a function of the campaign's seed, `i` and the corpus alone (`mutate`), so a
campaign resumes where it stopped (its state is saved every few seconds under `--dir`, default
`benchmarks/.cache/fuzz/seed-<seed>`), any finding is reproduced from its index, and a slice of it is a test
(`tests/test_fuzz.py` runs one in CI). Seeds are every DICOM file of the corpus (`../shared/corpus`,
`$SR2FHIR_SHARED`), plus each small SR re-encoded in implicit VR and with undefined lengths, so that every
walker path is mutated (seeds and operators: benchmarks/mutations.py); a seed is drawn with a weight that falls
with its size above `WEIGHT_BYTES`, so the large files (the 1.2 MB radiomics report) are mutated less often,
and cheap small ones more.

Mutations go to worker processes (`--workers`, default 1: the machine is shared), in batches, each worker
bounded in memory (`RLIMIT_AS`) and in time (the coordinator kills it when an input goes unanswered for
`HARD_LIMIT_S`); a worker maps each mutation with `Reader.AUTO` and with `Reader.PYDICOM` and reports, per
reader, its outcome, CPU time and peak RSS. Findings, each with the
index that reproduces it:

- `escaped`: an exception out of `map_sr` (it must turn every bad input into a record);
- `internal_error`: a record `failed/internal_error` (a defect, not a verdict about the input);
- `disagreement`: the two readers give different records (message aside), resources, rows or warnings;
- `scanner_disagreement`: on every `PYTHON_PATH_EVERY`th input, the pure-Python scanner and tree builder
  give another result than the C ones;
- `slow`: a reader took more than `SECONDS_PER_MB` of CPU time per MB of input (inputs under
  `TIME_FLOOR_BYTES` count as that size: a call's fixed cost is not a per-byte cost), in the best of
  `SLOW_REPEATS` + 1 runs (other work on a shared machine stretches CPU time too). Two workers on two cores
  stretch it as well (a report that takes 0.19 s alone took 0.32 s beside the other worker), so `recheck`
  times each kept `slow` finding again in one process, `RECHECK_RUNS` times, when nothing else runs, and the
  report counts those still over apart;
- `memory`: a reader's peak RSS over `RSS_LIMIT_MB` (measured per input: the peak is reset before each);
- `crash`: the worker died from a signal (a segfault in the C extensions), `timeout`: the worker was killed
  after `HARD_LIMIT_S`, `worker_exit`: it exited otherwise.

The counts also say how often the fast reader decided an input itself and why it declined the others.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks.mutations import load_seeds, mutate, weights

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path(os.environ.get("SR2FHIR_SHARED", REPO.parent / "shared")) / "corpus"
DEFAULT_DIR = REPO / "benchmarks" / ".cache" / "fuzz"
DEFAULT_SEED = 1500

SECONDS_PER_MB = 1.0
TIME_FLOOR_BYTES = 100_000
SLOW_REPEATS = 4
RSS_LIMIT_MB = 512
ADDRESS_SPACE_LIMIT = 3 * 2**30
"""RLIMIT_AS of a worker: about 350 MB of it are the interpreter and its libraries; a runaway allocation fails
(MemoryError, a finding) instead of taking the machine's memory."""
HARD_LIMIT_S = 120.0
"""A worker that has not answered for one input in this long is killed (`timeout`)."""
PYTHON_PATH_EVERY = 16
BATCH = 500
SAVE_EVERY_S = 10.0
FINDINGS_KEPT = 2_000
"""Findings kept in the state (with their index); counts go on beyond."""
RECHECK_RUNS = 7

# --- one input, both readers (worker side) ----------------------------------------------------------------


def _reset_peak_rss() -> None:
    with contextlib.suppress(OSError):  # Linux: resets this process's VmHWM
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _comparable(result: Any) -> str:
    """A mapping result as one digest: the record (without the free-text message of a rejection), resources,
    rows and warnings."""
    from sr2fhir_core import dumps_json

    record = result.record.as_dict()
    if record["status"] != "mapped":
        record.pop("message")
    text = repr(
        (
            record,
            b"\n".join(dumps_json(r) for r in result.resources),
            repr(result.rows),
            [(w.code, w.position, w.message) for w in result.warnings],
        )
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _describe_exception(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}{where}"


def _cpu_seconds(data: bytes, reader: Any) -> float:
    from sr2fhir_core import MappingOptions, map_sr

    started = time.process_time()
    map_sr(data, MappingOptions(reader=reader))
    return time.process_time() - started


def check(data: bytes, python_path: bool) -> dict[str, Any]:
    """Map `data` with each reader; the report the coordinator counts."""
    from sr2fhir_core import MappingOptions, map_sr
    from sr2fhir_core.options import Reader
    from sr2fhir_core.reading import FastReaderUnsupported, fast_parser, fast_reader, read_fast

    report: dict[str, Any] = {"size": len(data), "findings": []}
    findings: list[dict[str, Any]] = report["findings"]
    try:
        read_fast(data)
        report["fast"] = "decided"
    except FastReaderUnsupported as declined:
        report["fast"] = f"declined: {declined}"
    except Exception:
        report["fast"] = "decided"  # a rejection, or an error map_sr will report below
    digests = {}
    budget = SECONDS_PER_MB * max(len(data), TIME_FLOOR_BYTES) / 1e6
    for reader in (Reader.AUTO, Reader.PYDICOM):
        _reset_peak_rss()
        started = time.process_time()
        try:
            result = map_sr(data, MappingOptions(reader=reader))
        except BaseException as exc:  # anything out of map_sr is the finding
            findings.append({"kind": "escaped", "reader": reader.value, "detail": _describe_exception(exc)})
            digests[reader] = f"escaped {type(exc).__name__}"
            continue
        finally:
            cpu = time.process_time() - started
            rss = _peak_rss_mb()
        report[reader.value] = {"status": result.record.status.value, "reason": result.record.reason, "cpu": cpu}
        digests[reader] = _comparable(result)
        if result.record.reason == "internal_error":
            findings.append({"kind": "internal_error", "reader": reader.value, "detail": result.record.message})
        if cpu > budget:
            # Other load stretches CPU time too (a shared machine): an input is slow if it stays over in the
            # best of `SLOW_REPEATS` more runs.
            cpu = min([cpu, *(_cpu_seconds(data, reader) for _ in range(SLOW_REPEATS))])
            report[reader.value]["cpu"] = cpu
            if cpu > budget:
                detail = f"{cpu:.2f} s CPU (best of {SLOW_REPEATS + 1}), budget {budget:.2f}"
                findings.append({"kind": "slow", "reader": reader.value, "detail": detail})
        if rss > RSS_LIMIT_MB:
            findings.append({"kind": "memory", "reader": reader.value, "detail": f"peak RSS {rss:.0f} MB"})
    if digests[Reader.AUTO] != digests[Reader.PYDICOM]:
        auto, reference = report.get("auto", {}), report.get("pydicom", {})
        detail = (
            f"auto {auto.get('status')}/{auto.get('reason')}, "
            f"pydicom {reference.get('status')}/{reference.get('reason')}"
        )
        findings.append({"kind": "disagreement", "reader": "both", "detail": detail})
    if python_path and fast_parser.C_SCANNER_AVAILABLE and fast_reader.C_TREE_BUILDER_AVAILABLE:
        with fast_parser.using_scanner("python"), fast_reader.using_tree_builder("python"):
            try:
                python = _comparable(map_sr(data, MappingOptions(reader=Reader.AUTO)))
            except BaseException as exc:
                python = f"escaped {type(exc).__name__}"
        if python != digests[Reader.AUTO]:
            findings.append({"kind": "scanner_disagreement", "reader": "auto", "detail": "pure-Python path differs"})
        report["python_path"] = True
    return report


def worker_main(corpus: Path, campaign_seed: int) -> None:
    """Answer index ranges from stdin ("start stop" lines) with one JSON line per index on the protocol pipe."""
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printing to stdout goes to the log, not into the protocol
    warnings.simplefilter("ignore")
    seeds = load_seeds(corpus)
    seed_weights = weights(seeds)
    protocol.write(json.dumps({"ready": len(seeds)}) + "\n")
    for line in sys.stdin:
        start, stop = map(int, line.split())
        for index in range(start, stop):
            seed, operators, data = mutate(seeds, seed_weights, campaign_seed, index)
            report = check(data, python_path=index % PYTHON_PATH_EVERY == 0)
            report.update(index=index, seed=seed.name, operators=operators)
            protocol.write(json.dumps(report) + "\n")


# --- the coordinator --------------------------------------------------------------------------------------


def core_fingerprint() -> str:
    """A hash of the core's sources and built extensions: a campaign's counts belong to one version of it."""
    digest = hashlib.sha256()
    core = REPO / "sr2fhir_core"
    for path in sorted(core.rglob("*")):
        if path.suffix in (".py", ".c") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(core)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class State:
    seed: int
    core: str
    next_index: int = 0
    elapsed_seconds: float = 0.0
    workers: int = 1
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    findings: list[dict[str, Any]] = field(default_factory=list)
    rechecks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """`slow` findings timed again alone (`recheck`), by "<index> <reader>": best CPU seconds, budget, still over."""

    def count(self, table: str, key: str, n: int = 1) -> None:
        self.counts.setdefault(table, Counter())[key] += n

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "core": self.core,
            "next_index": self.next_index,
            "elapsed_seconds": round(self.elapsed_seconds, 1),
            "workers": self.workers,
            "counts": {table: dict(sorted(counter.items())) for table, counter in sorted(self.counts.items())},
            "findings": self.findings,
            "rechecks": self.rechecks,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> State:
        return cls(
            seed=raw["seed"],
            core=raw["core"],
            next_index=raw["next_index"],
            elapsed_seconds=raw["elapsed_seconds"],
            workers=raw.get("workers", 1),
            counts={table: Counter(counter) for table, counter in raw["counts"].items()},
            findings=raw["findings"],
            rechecks=raw.get("rechecks", {}),
        )


FINDING_KINDS = (
    "escaped",
    "internal_error",
    "disagreement",
    "scanner_disagreement",
    "slow",
    "memory",
    "crash",
    "timeout",
    "worker_exit",
)


class Worker:
    def __init__(self, corpus: Path, seed: int, log: IO[str], environment: dict[str, str]) -> None:
        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))

        command = [sys.executable, "-m", "benchmarks.fuzz", "worker", "--corpus", str(corpus), "--seed", str(seed)]
        env = {**os.environ, "PYTHONPATH": str(REPO), **environment}
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, preexec_fn=limit, bufsize=0
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin, self.output = self.process.stdin, self.process.stdout.fileno()
        self.pending = b""
        ready = self.read(300.0)
        if ready is None or "ready" not in ready:
            self.stop()
            raise RuntimeError("the fuzz worker did not start (see its log)")

    def send(self, start: int, stop: int) -> None:
        self.stdin.write(f"{start} {stop}\n".encode())

    def read(self, timeout: float) -> dict[str, Any] | None:
        """The next report, or None if the worker ended or `timeout` passed (then it is killed)."""
        deadline = time.monotonic() + timeout
        while (report := self.take()) is None:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.output], [], [], max(remaining, 0))
            if not ready:
                self.stop()
                return None
            if not self.fill():
                return None
        return report

    def fill(self) -> bool:
        """Read what the pipe holds (it is readable); False at its end. Reads unbuffered, keeping what follows
        a line: select() cannot see lines already in a file object's buffer."""
        chunk = os.read(self.output, 1 << 16)
        self.pending += chunk
        return bool(chunk)

    def take(self) -> dict[str, Any] | None:
        """The next whole report already read, if any."""
        if b"\n" not in self.pending:
            return None
        line, self.pending = self.pending.split(b"\n", 1)
        return json.loads(line)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.kill()
        return self.process.wait()


@dataclass
class _Batch:
    """Indices `start` to `stop` of a campaign, answered up to `next`, with their reports in order."""

    start: int
    stop: int
    next: int = -1
    answered: float = 0.0
    entries: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.next = self.start


class Campaign:
    def __init__(
        self,
        directory: Path,
        corpus: Path,
        seed: int,
        environment: dict[str, str] | None = None,
        *,
        read_only: bool = False,
    ) -> None:
        self.directory = directory
        self.corpus = corpus
        self.environment = environment or {}
        self.path = directory / "state.json"
        core = core_fingerprint()
        if self.path.exists():
            self.state = State.from_json(json.loads(self.path.read_text()))
            if self.state.seed != seed:
                raise SystemExit(f"{self.path} is a campaign with seed {self.state.seed}, not {seed}")
            if self.state.core != core and not read_only:
                raise SystemExit(
                    f"{self.path} was run on another version of sr2fhir_core ({self.state.core}, now {core}): "
                    "its counts would mix two versions; start a new campaign (--restart)"
                )
        else:
            self.state = State(seed=seed, core=core)

    def save(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state.to_json(), indent=1) + "\n")
        temporary.replace(self.path)

    def run(self, count: int, progress: Callable[[State], None] | None = None, workers: int = 1) -> State:
        """Run mutations until `count` are done (resuming from the saved state) on `workers` worker processes;
        return the state.

        Batches of `BATCH` indices go to the workers in turn; a batch's reports are counted only once every
        batch before it is done, so the saved state is always a prefix of the campaign (`next_index`) and a
        resumed run neither skips nor counts twice what was in flight when it stopped."""
        self.directory.mkdir(parents=True, exist_ok=True)
        state = self.state
        state.workers = max(state.workers, workers)
        pool: list[Worker | None] = [None] * workers
        batches: dict[int, _Batch] = {}  # by first index, in flight or done but not yet counted
        running: dict[int, _Batch] = {}  # by worker slot
        next_batch = state.next_index
        with open(self.directory / "worker.log", "a") as log:
            saved = started = time.monotonic()
            try:
                while state.next_index < count:
                    for slot in range(workers):
                        if slot not in running and next_batch < count:
                            batch = _Batch(next_batch, min(next_batch + BATCH, count))
                            next_batch = batches.setdefault(batch.start, batch).stop
                            pool[slot] = self._assign(pool[slot], batch, log)
                            running[slot] = batch
                    by_worker = {slot: worker for slot in running if (worker := pool[slot]) is not None}
                    by_output = {worker.output: slot for slot, worker in by_worker.items()}
                    readable, _, _ = select.select(list(by_output), [], [], 1.0)
                    ended = {slot for output in readable if not by_worker[(slot := by_output[output])].fill()}
                    for slot, batch in list(running.items()):
                        worker = pool[slot]
                        assert worker is not None
                        while (report := worker.take()) is not None:
                            batch.entries.append(report)
                            batch.next += 1
                            batch.answered = time.monotonic()
                        if batch.next < batch.stop and (
                            slot in ended or time.monotonic() - batch.answered > HARD_LIMIT_S
                        ):
                            batch.entries.append(self._lost(worker, batch.next))
                            batch.next += 1
                            pool[slot] = self._assign(None, batch, log) if batch.next < batch.stop else None
                        if batch.next == batch.stop:
                            del running[slot]
                    while (done := batches.get(state.next_index)) is not None and done.next == done.stop:
                        for entry in batches.pop(done.start).entries:
                            self._record(entry)
                        state.next_index = done.stop
                    now = time.monotonic()
                    if now - saved > SAVE_EVERY_S:
                        state.elapsed_seconds += now - started
                        started = saved = now
                        self.save()
                        if progress:
                            progress(state)
            finally:
                for worker in pool:
                    if worker is not None:
                        worker.stdin.close()
                        worker.stop()
                state.elapsed_seconds += time.monotonic() - started
                self.save()
        return state

    def _assign(self, worker: Worker | None, batch: _Batch, log: IO[str]) -> Worker:
        """Send the rest of `batch` to `worker`, or to a new one."""
        worker = worker or Worker(self.corpus, self.state.seed, log, self.environment)
        worker.send(batch.next, batch.stop)
        batch.answered = time.monotonic()
        return worker

    def _record(self, report: dict[str, Any]) -> None:
        state = self.state
        state.count("mutations", "total")
        if "lost" in report:
            self._finding(report["lost"], "both", report["index"], "", {}, report["detail"])
            return
        state.count("fast_reader", "decided" if report["fast"] == "decided" else "declined")
        if report["fast"] != "decided":
            state.count("declined_because", report["fast"].removeprefix("declined: "))
        for reader in ("auto", "pydicom"):
            if reader in report:
                outcome = report[reader]
                state.count(f"{reader}_outcomes", f"{outcome['status']}/{outcome['reason'] or '-'}")
        if report.get("python_path"):
            state.count("mutations", "pure_python_checked")
        for finding in report["findings"]:
            kind, reader, detail = finding["kind"], finding["reader"], finding["detail"]
            self._finding(kind, reader, report["index"], report["seed"], report, detail)

    @staticmethod
    def _lost(worker: Worker, index: int) -> dict[str, Any]:
        """Stop a worker that ended or stopped answering; the entry that counts its input."""
        returncode = worker.stop()
        if returncode < 0 and returncode != -signal.SIGKILL:
            kind, detail = "crash", f"worker killed by {signal.Signals(-returncode).name}"
        elif returncode == -signal.SIGKILL:
            kind, detail = "timeout", f"no answer within {HARD_LIMIT_S:.0f} s"
        else:
            kind, detail = "worker_exit", f"worker exited with status {returncode}"
        return {"lost": kind, "index": index, "detail": detail}

    def _finding(self, kind: str, reader: str, index: int, seed: str, report: dict[str, Any], detail: str) -> None:
        state = self.state
        state.count("findings", f"{kind}" if reader == "both" else f"{kind} [{reader}]")
        if len(state.findings) < FINDINGS_KEPT:
            state.findings.append(
                {
                    "index": index,
                    "kind": kind,
                    "reader": reader,
                    "seed": seed,
                    "operators": report.get("operators", ""),
                    "size": report.get("size"),
                    "detail": detail,
                }
            )


def recheck(state: State, corpus: Path) -> dict[str, dict[str, Any]]:
    """Time every kept `slow` finding again in this process, `RECHECK_RUNS` times per reader, best run counts
    (run it when nothing else runs on the machine: that is the point)."""
    from sr2fhir_core.options import Reader

    seeds = load_seeds(corpus)
    chances = weights(seeds)
    for finding in state.findings:
        if finding["kind"] != "slow":
            continue
        _, _, data = mutate(seeds, chances, state.seed, finding["index"])
        reader = Reader(finding["reader"])
        _cpu_seconds(data, reader)  # first sight (imports, caches) is not the input's cost
        cpu = min(_cpu_seconds(data, reader) for _ in range(RECHECK_RUNS))
        budget = SECONDS_PER_MB * max(len(data), TIME_FLOOR_BYTES) / 1e6
        state.rechecks[f"{finding['index']} {reader.value}"] = {
            "cpu": round(cpu, 4),
            "budget": round(budget, 4),
            "slow": cpu > budget,
        }
    return state.rechecks


def _rechecked(state: State, kind: str, reader: str) -> str:
    """The report's cell for re-timed `slow` findings of `reader`: still over / re-timed."""
    if kind != "slow":
        return ""
    timed = [v for k, v in state.rechecks.items() if k.endswith(f" {reader}")]
    return f"{sum(v['slow'] for v in timed):,} of {len(timed):,}" if timed else "–"


def summary(state: State) -> str:
    counts = state.counts
    total = counts.get("mutations", Counter())["total"]
    findings = counts.get("findings", Counter())
    lines = [
        f"seed {state.seed}, core {state.core}: {total:,} mutations in {state.elapsed_seconds / 3600:.2f} h",
        "findings: " + (", ".join(f"{k} {v:,}" for k, v in sorted(findings.items())) or "none"),
    ]
    for table in ("fast_reader", "auto_outcomes", "pydicom_outcomes", "declined_because"):
        counter = counts.get(table, Counter())
        lines.append(f"{table}: " + ", ".join(f"{k} {v:,}" for k, v in counter.most_common()))
    return "\n".join(lines)


def markdown(state: State) -> str:
    """The campaign's counts as benchmarks/FUZZ.md (written by `report`, like RESULTS.md by the runner)."""
    counts = state.counts
    total = counts.get("mutations", Counter())["total"]
    findings = counts.get("findings", Counter())

    def table(name: str, title: str) -> list[str]:
        counter = counts.get(name, Counter())
        rows = [f"| {key} | {value:,} | {value / total:.2%} |" for key, value in counter.most_common()]
        return ["", f"## {title}", "", "| | count | of mutations |", "|---|---|---|", *rows]

    kinds = [
        f"| {kind} [{reader}] | {findings.get(kind if reader == 'both' else f'{kind} [{reader}]', 0):,} | "
        f"{_rechecked(state, kind, reader)} |"
        for kind, readers in (
            ("escaped", ("auto", "pydicom")),
            ("internal_error", ("auto", "pydicom")),
            ("slow", ("auto", "pydicom")),
            ("memory", ("auto", "pydicom")),
            ("disagreement", ("both",)),
            ("scanner_disagreement", ("auto",)),
            ("crash", ("both",)),
            ("timeout", ("both",)),
            ("worker_exit", ("both",)),
        )
        for reader in readers
    ]
    lines = [
        "# Fuzz campaign (benchmarks/fuzz.py)",
        "",
        "Written by `python -m benchmarks.fuzz report`. Seed "
        f"{state.seed}; sr2fhir_core fingerprint `{state.core}`; {total:,} mutations of the real corpus, each mapped "
        f"by `map_sr` with `Reader.AUTO` and with `Reader.PYDICOM` in a worker bounded by RLIMIT_AS "
        f"({ADDRESS_SPACE_LIMIT // 2**30} GiB) and a {HARD_LIMIT_S:.0f} s kill; up to {state.workers} "
        f"worker(s) at once, {state.elapsed_seconds / 3600:.1f} h. `slow`: over {SECONDS_PER_MB:g} s of CPU per MB "
        f"(inputs under {TIME_FLOOR_BYTES // 1000} kB count as that size), best of {SLOW_REPEATS + 1} runs; "
        f"`memory`: peak RSS over {RSS_LIMIT_MB} MB; the pure-Python scanner and tree builder against the C ones on "
        f"every {PYTHON_PATH_EVERY}th input ({counts.get('mutations', Counter())['pure_python_checked']:,}).",
        "",
        "## Findings",
        "",
        f"| kind [reader] | count | still over when re-timed alone (`recheck`, best of {RECHECK_RUNS}) |",
        "|---|---|---|",
        *kinds,
    ]
    lines += table("auto_outcomes", "Outcomes, Reader.AUTO")
    lines += table("pydicom_outcomes", "Outcomes, Reader.PYDICOM")
    lines += table("fast_reader", "The fast reader decided, or left the input to pydicom")
    lines += table("declined_because", "Why the fast reader left an input to pydicom")
    if state.findings:
        lines += ["", "## Findings kept (index reproduces: `python -m benchmarks.fuzz reproduce INDEX`)", ""]
        lines += [
            f"- {f['index']}: {f['kind']} [{f['reader']}] {f['seed']} {f['operators']}: {f['detail']}"
            + _retimed(state, f)
            for f in state.findings
        ]
    return "\n".join(lines) + "\n"


def _retimed(state: State, finding: dict[str, Any]) -> str:
    again = state.rechecks.get(f"{finding['index']} {finding['reader']}")
    if again is None:
        return ""
    return f"; alone {again['cpu']:.2f} s ({'still over' if again['slow'] else 'within budget'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("run", "status", "report", "reproduce", "recheck", "worker"))
    parser.add_argument("index", nargs="?", type=int, help="reproduce: the mutation's index")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--count", type=int, default=1_000_000, help="run: mutations to reach")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--dir", type=Path, help="campaign state (default benchmarks/.cache/fuzz/seed-<seed>)")
    parser.add_argument("--restart", action="store_true", help="run: discard the saved state first")
    parser.add_argument("--workers", type=int, default=1, help="run: worker processes at once (default 1)")
    parser.add_argument("-o", "--output", type=Path, help="reproduce: write the bytes here; report: the file")
    args = parser.parse_args(argv)
    if args.command == "worker":
        worker_main(args.corpus, args.seed)
        return 0
    if not (args.corpus / "MANIFEST.md").is_file():
        print(f"corpus not found at {args.corpus} (set SR2FHIR_SHARED or --corpus)", file=sys.stderr)
        return 2
    directory = args.dir or DEFAULT_DIR / f"seed-{args.seed}"
    if args.command == "reproduce":
        if args.index is None:
            parser.error("reproduce needs an index")
        seeds = load_seeds(args.corpus)
        seed, operators, data = mutate(seeds, weights(seeds), args.seed, args.index)
        print(f"mutation {args.index}: {seed.name}, {operators}, {len(data):,} bytes", file=sys.stderr)
        if args.output:
            args.output.write_bytes(data)
        else:
            warnings.simplefilter("ignore")
            print(json.dumps(check(data, python_path=True), indent=1))
        return 0
    if args.restart and (directory / "state.json").exists():
        (directory / "state.json").unlink()
    campaign = Campaign(directory, args.corpus, args.seed, read_only=args.command in ("status", "report"))
    if campaign.state.core != core_fingerprint():
        print(f"note: counts of another version of sr2fhir_core ({campaign.state.core})", file=sys.stderr)
    # SIGTERM ends a run as Ctrl-C does: the state is saved and the worker stopped (finally blocks run).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.command == "status":
        print(summary(campaign.state))
        return 0
    if args.command == "report":
        (args.output or REPO / "benchmarks" / "FUZZ.md").write_text(markdown(campaign.state))
        return 0
    if args.command == "recheck":
        warnings.simplefilter("ignore")
        rechecked = recheck(campaign.state, args.corpus)
        campaign.save()
        still = sum(v["slow"] for v in rechecked.values())
        print(f"{len(rechecked)} slow findings re-timed alone: {still} still over budget")
        return 0

    def progress(state: State) -> None:
        total = state.counts.get("mutations", Counter())["total"]
        findings = sum(state.counts.get("findings", Counter()).values())
        rate = total / state.elapsed_seconds if state.elapsed_seconds else 0.0
        print(f"[{time.strftime('%H:%M:%S')}] {total:,} mutations, {rate:.0f}/s, {findings} findings", flush=True)

    print(summary(campaign.run(args.count, progress, args.workers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
