"""One method over one list of files, in a process of its own (so its peak RSS is its own).

    python -m benchmarks.worker JOB.json OUT.json

The job names the method, the files (path, items, label), how many timings to take per file, and warm-up
files (and, for dcmqi, how many start-up timings and whether to take the untimed peak-RSS pass: the runner
splits a corpus into rounds, one worker per method per round, benchmarks/rounds.py). Protocol:
  1. import the method's libraries (RSS is taken before and after);
  2. run the method on the warm-up files (outside every measured set), untimed;
  3. passes over all files in order, one timed call per file per pass, until each file has `repeat` timings,
     or at least `min_samples` and `budget_seconds` spent on it (large files), or failed once (a failure is
     not timed again). Passes go round the whole list, so a file's repeats are not back to back.
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
from typing import TypedDict

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
    """What the core says it scans with, when it says (`sr2fhir_core.reading.SCANNER`)."""
    reading = sys.modules.get("sr2fhir_core.reading")
    scanner = getattr(reading, "SCANNER", None) if reading else None
    return None if scanner is None else str(scanner)


class FileResult(TypedDict):
    """What the worker measured of one file: wall and CPU seconds per sample, and the last outcome."""

    samples: list[float]
    cpu: list[float]
    ok: bool | None
    found: int | None
    detail: str | None


def run_job(job: dict) -> dict:
    rss_start = _rss_mb()
    method = FACTORIES[job["method"]]()
    rss_imported = _rss_mb()
    started = time.perf_counter()
    for warm in job.get("warmup", []):
        path = Path(warm)
        method(path, path.read_bytes())
    startup = _dcmqi_startup(job.get("startup_samples", STARTUP_SAMPLES)) if job["method"] == "dcmqi" else None

    files = job["files"]
    results: list[FileResult] = [{"samples": [], "cpu": [], "ok": None, "found": None, "detail": None} for _ in files]
    repeat, min_samples, budget = job["repeat"], job["min_samples"], job["budget_seconds"]
    pending = list(range(len(files)))
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
            if outcome.ok and count < repeat and not (count >= min_samples and spent >= budget):
                again.append(index)
        pending = again
    seconds = time.perf_counter() - started
    others = other_cores(busy_before, machine_busy_seconds(), _cpu() - cpu_before, time.perf_counter() - wall_before)
    child_peak = None
    if job["method"] == "dcmqi" and job.get("child_peak", True):
        peak = dcmqi_peak_rss_mb([Path(f["path"]) for f in files])
        child_peak = None if peak is None else round(peak, 1)
    return {
        "method": job["method"],
        "results": results,
        "rss_start_mb": round(rss_start, 1),
        "rss_imported_mb": round(rss_imported, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "child_peak_rss_mb": child_peak,
        "seconds": round(seconds, 3),
        "startup": startup,
        "other_load_cores": others,
        "scanner": _scanner(),
    }


def main(argv: list[str] | None = None) -> int:
    job_path, out_path = argv or sys.argv[1:]
    job = json.loads(Path(job_path).read_text())
    Path(out_path).write_text(json.dumps(run_job(job)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
