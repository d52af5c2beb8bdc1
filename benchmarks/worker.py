"""One method over one list of files, in a process of its own (so its peak RSS is its own).

    python -m benchmarks.worker JOB.json OUT.json     # one round
    python -m benchmarks.worker --serve JOB.json      # rounds on request (stdin), for benchmarks/run.py

The job names the method, the files (path, items, label), how many timings to take per file, and warm-up
files (and, for dcmqi, how many start-up timings and whether to take the untimed peak-RSS pass). The runner
measures a corpus in rounds (benchmarks/rounds.py): one worker per method lasts over the corpus's rounds and
runs each round when asked, so a file's later rounds find the process as its later passes would. Protocol:
  1. import the method's libraries (RSS is taken before and after);
  2. run the method on the warm-up files (outside every measured set), untimed;
  3. per round, passes over all files in order, one timed call per file per pass, until each file has `repeat`
     timings, or at least `min_samples` and `budget_seconds` spent on it (large files), or failed once (a
     failure is not timed again, in this round or a later one). Passes go round the whole list, so a file's
     repeats are not back to back.
Each call is timed by wall clock (perf_counter) and by CPU time of this process and its children
(process_time + RUSAGE_CHILDREN: dcmqi runs as a child); CPU time is less disturbed by other load on a
shared machine. A file's bytes are read before its timed call (the page cache serves them): I/O is not timed.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO, TypedDict

from .cpu import machine_busy_seconds, other_cores
from .methods import FACTORIES, dcmqi_binary, dcmqi_peak_rss_mb
from .rounds import STARTUP_SAMPLES


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """This process's RSS high-water mark (VmHWM). Not ru_maxrss: Linux carries the parent's high-water mark
    across fork and exec, so every worker would report at least the runner's RSS."""
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _dcmqi_startup(samples: int) -> dict:
    """Process start-up of the native binary (`--version`) and of the `tid1500reader` console script."""

    def timed(command: list[str], count: int) -> list[float]:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times.append(time.perf_counter() - start)
        return times

    binary = str(dcmqi_binary())
    script = str(Path(sys.executable).parent / "tid1500reader")
    result = {"binary": binary, "binary_version_seconds": timed([binary, "--version"], samples)}
    if Path(script).exists():
        result["script_version_seconds"] = timed([script, "--version"], max(3, samples // 4))
    return result


def _scanner() -> str | None:
    """What the core says it reads with, when it says: the element scanner (`sr2fhir_core.reading.SCANNER`)
    and, when there is one, the content-tree builder (`TREE_BUILDER`)."""
    reading = sys.modules.get("sr2fhir_core.reading")
    scanner = getattr(reading, "SCANNER", None) if reading else None
    tree_builder = getattr(reading, "TREE_BUILDER", None) if reading else None
    if scanner is None:
        return None
    return str(scanner) if tree_builder is None else f"{scanner} (content tree builder: {tree_builder})"


class FileResult(TypedDict):
    """What the worker measured of one file: wall and CPU seconds per sample, and the last outcome."""

    samples: list[float]
    cpu: list[float]
    ok: bool | None
    found: int | None
    detail: str | None


class Session:
    """One method in this process: its libraries imported and the warm-up files mapped once, then any number of
    rounds over the job's files (`round`), each round its own samples."""

    def __init__(self, job: dict) -> None:
        self.name: str = job["method"]
        self.files: list[dict] = job["files"]
        self.rss_start = _rss_mb()
        self.method = FACTORIES[self.name]()
        self.rss_imported = _rss_mb()
        started = time.perf_counter()
        for warm in job.get("warmup", []):
            path = Path(warm)
            self.method(path, path.read_bytes())
        self.warmup_seconds = time.perf_counter() - started
        self.failed: dict[int, FileResult] = {}
        """Files a round failed on: a failure is not timed again in later rounds (nor in later passes)."""

    def round(self, settings: dict) -> dict:
        """Passes over the files until each has this round's `repeat` timings (or its minimum and budget, or
        failed once). The first round's seconds include the warm-up, as they did before rounds."""
        started = time.perf_counter()
        dcmqi = self.name == "dcmqi"
        startup = _dcmqi_startup(settings.get("startup_samples", STARTUP_SAMPLES)) if dcmqi else None
        files, method = self.files, self.method
        results: list[FileResult] = [
            {**self.failed[index], "samples": [], "cpu": []}
            if index in self.failed
            else {"samples": [], "cpu": [], "ok": None, "found": None, "detail": None}
            for index in range(len(files))
        ]
        repeat, min_samples, budget = settings["repeat"], settings["min_samples"], settings["budget_seconds"]
        pending = [index for index in range(len(files)) if index not in self.failed]
        busy_before, cpu_before, wall_before = machine_busy_seconds(), _cpu(), time.perf_counter()
        while pending:
            again = []
            for index in pending:
                path = Path(files[index]["path"])
                data = path.read_bytes()
                cpu0 = _cpu()
                start = time.perf_counter()
                outcome = method(path, data)
                wall = time.perf_counter() - start
                cpu = _cpu() - cpu0
                result = results[index]
                result["samples"].append(wall)
                result["cpu"].append(cpu)
                result["ok"], result["found"], result["detail"] = outcome.ok, outcome.found, outcome.detail
                count, spent = len(result["samples"]), sum(result["samples"])
                if not outcome.ok:
                    self.failed[index] = result
                elif count < repeat and not (count >= min_samples and spent >= budget):
                    again.append(index)
            pending = again
        seconds = time.perf_counter() - started + self.warmup_seconds
        self.warmup_seconds = 0.0
        others = other_cores(
            busy_before, machine_busy_seconds(), _cpu() - cpu_before, time.perf_counter() - wall_before
        )
        child_peak = None
        if dcmqi and settings.get("child_peak", True):
            peak = dcmqi_peak_rss_mb([Path(f["path"]) for f in files])
            child_peak = None if peak is None else round(peak, 1)
        return {
            "method": self.name,
            "results": results,
            "rss_start_mb": round(self.rss_start, 1),
            "rss_imported_mb": round(self.rss_imported, 1),
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "child_peak_rss_mb": child_peak,
            "seconds": round(seconds, 3),
            "startup": startup,
            "other_load_cores": others,
            "scanner": _scanner(),
        }


def run_job(job: dict) -> dict:
    """The job's method over its files, one round with the job's settings."""
    return Session(job).round(job)


def serve(job: dict, commands: TextIO, replies: TextIO) -> None:
    """Rounds on request: each line of `commands` is one round's settings with an `out` path; the round's result
    is written there and `done` is replied. The process (and so its caches and peak RSS) lasts over the rounds."""
    session = Session(job)
    replies.write("ready\n")
    replies.flush()
    for line in commands:
        settings = json.loads(line)
        Path(settings["out"]).write_text(json.dumps(session.round(settings)))
        replies.write("done\n")
        replies.flush()


def main(argv: list[str] | None = None) -> int:
    args = argv or sys.argv[1:]
    if args[0] == "--serve":
        job = json.loads(Path(args[1]).read_text())
        # Replies go on the original stdout; anything a library prints goes to stderr instead.
        replies = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)
        serve(job, sys.stdin, replies)
        return 0
    job_path, out_path = args
    job = json.loads(Path(job_path).read_text())
    Path(out_path).write_text(json.dumps(run_job(job)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
