"""The Spark job (`sr2fhir run`) over generated files, as a user runs it: one process per run, its own local
session. While it runs, a sampler reads the RSS of the process tree with psutil: the driver (the Python
process started here), the JVM (its `java` child), and the Python workers (Python processes under the JVM:
the pyspark daemon and the workers it forks). Forked workers share pages with the daemon, so the sum of
their RSS over-counts; their summed PSS (proportional set size) is recorded too.

JVM memory retained, as opposed to taken: the JVM's RSS is heap the parallel collector has sized up toward
`spark.driver.memory` and rarely gives back, so it grows with the allocation rate, not with what the run holds.
With `live_heap_every`, a probe asks the JVM for a full collection (`jcmd <pid> GC.run`) every so many seconds
and the JVM's GC log (`-Xlog:gc`) records the heap left after each one: its peak over the run is the most the
run held at once. The forced collections cost run time, so the throughput runs go without them.

Throughput comes from the run's own summary (`runs/<run-id>.json`): `elapsed_seconds` starts after the
session is up, so session start-up is excluded; it is reported separately as the time from launching the
process to the run's `started` timestamp. Spark's event log (enabled for these runs) gives stages and tasks.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self

import psutil

from .corpora import REPO
from .cpu import machine_busy_seconds, other_cores

if TYPE_CHECKING:
    from jobs.config import SparkConfig

_JAVA_OPTIONS = "spark.driver.extraJavaOptions"


class _Periodic:
    """Calls `tick` on a daemon thread every `interval` seconds while in a `with` block; a process of the tree
    ending meanwhile is no error."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                self.tick()
            if self._stop.wait(self.interval):
                return

    def tick(self) -> None:
        raise NotImplementedError


class TreeSampler(_Periodic):
    """Peak RSS per role over the life of a process tree, sampled every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.25, pss_every: int = 4) -> None:
        super().__init__(interval)
        self.root = psutil.Process(pid)
        self.pss_every = pss_every
        self.peaks = {
            "driver_rss_mb": 0.0,
            "jvm_rss_mb": 0.0,
            "python_workers_rss_mb": 0.0,
            "python_worker_max_rss_mb": 0.0,
            "python_workers_pss_mb": 0.0,
        }
        self.worker_pids: set[int] = set()
        self.cpu: dict[int, tuple[str, float]] = {}
        """Last CPU seconds (user + system) seen per process, with its role: summed at the end."""
        self.timeline: list[tuple[float, dict[str, float]]] = []
        """(time, CPU seconds per role so far) at every sample: CPU spent between two moments of the run."""
        self.max_workers = 0
        self.samples = 0

    def tick(self) -> None:
        peaks = self.peaks
        mb = 2**20
        peaks["driver_rss_mb"] = max(peaks["driver_rss_mb"], self.root.memory_info().rss / mb)
        self._cpu(self.root, "driver")
        jvms = [p for p in self.root.children(recursive=True) if _name(p) == "java"]
        jvm_rss, workers = 0.0, []
        for jvm in jvms:
            jvm_rss += _rss(jvm)
            self._cpu(jvm, "jvm")
            workers += [p for p in jvm.children(recursive=True) if _name(p).startswith("python")]
        for worker in workers:
            self._cpu(worker, "python_workers")
        peaks["jvm_rss_mb"] = max(peaks["jvm_rss_mb"], jvm_rss / mb)
        rss = [_rss(p) for p in workers]
        self.worker_pids.update(p.pid for p in workers)
        self.max_workers = max(self.max_workers, len(workers))
        peaks["python_workers_rss_mb"] = max(peaks["python_workers_rss_mb"], sum(rss) / mb)
        peaks["python_worker_max_rss_mb"] = max(peaks["python_worker_max_rss_mb"], max(rss, default=0) / mb)
        self.samples += 1
        self.timeline.append((time.time(), self._cpu_by_role()))
        if workers and self.samples % self.pss_every == 0:
            pss = 0.0
            for p in workers:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
                    pss += p.memory_full_info().pss
            peaks["python_workers_pss_mb"] = max(peaks["python_workers_pss_mb"], pss / mb)

    def _cpu(self, process: psutil.Process, role: str) -> None:
        try:
            times = process.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return
        self.cpu[process.pid] = (role, times.user + times.system)

    def _cpu_by_role(self) -> dict[str, float]:
        cpu: dict[str, float] = {}
        for role, seconds in self.cpu.values():
            cpu[role] = cpu.get(role, 0.0) + seconds
        return cpu

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds per role spent between two wall-clock times (nearest samples)."""

        def at(moment: float) -> dict[str, float]:
            before = [cpu for t, cpu in self.timeline if t <= moment]
            return before[-1] if before else {}

        first, last = at(start), at(end)
        return {role: round(last.get(role, 0.0) - first.get(role, 0.0), 1) for role in sorted(last)}

    def result(self) -> dict:
        return {
            "cpu_seconds": {role: round(seconds, 1) for role, seconds in sorted(self._cpu_by_role().items())},
            **{k: round(v, 1) for k, v in self.peaks.items()},
            "python_worker_processes_seen": len(self.worker_pids),
            "python_worker_processes_at_once": self.max_workers,
            "samples": self.samples,
        }


def _name(process: psutil.Process) -> str:
    try:
        return process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def _rss(process: psutil.Process) -> float:
    try:
        return process.memory_info().rss
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0


class LiveHeapProbe(_Periodic):
    """Forces a full collection in the run's JVM every `interval` seconds (`jcmd <pid> GC.run`); the JVM's own GC
    log then says how much heap each one left (`live_heap`)."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(interval)
        self.root = psutil.Process(pid)
        self.requests = 0

    def tick(self) -> None:
        for jvm in (p for p in self.root.children(recursive=True) if _name(p) == "java"):
            done = subprocess.run(["jcmd", str(jvm.pid), "GC.run"], capture_output=True, timeout=60, check=False)
            self.requests += done.returncode == 0


_FORCED_FULL_GC = re.compile(r"Pause Full \(Diagnostic Command\) (\d+)M->(\d+)M\((\d+)M\)")
"""A full collection `jcmd GC.run` asked for, in the JVM's unified GC log (`-Xlog:gc`): heap before -> after
(committed). The JVM's own full collections (metadata thresholds) are left out: they come at start-up."""


def live_heap(gc_log: Path, requests: int) -> dict:
    """Heap left after each forced full collection (MB): the run's live objects at that moment."""
    after = [int(m.group(2)) for m in _FORCED_FULL_GC.finditer(gc_log.read_text())] if gc_log.exists() else []
    return {
        "forced_collections": len(after),
        "requests": requests,
        "peak_mb": max(after, default=None),
        "last_mb": after[-1] if after else None,
        "after_mb": after,
    }


def prepare_class_archive(inputs: list[Path], work: Path, timeout: float = 180.0) -> dict:
    """Make the local session's JVM class archive (jobs/spark/class_archive.py) before the measured runs, so that all
    of them start alike: one small run, whose JVM writes the archive after the run's process has ended, then
    wait for that JVM. Returns the warm-up run and the seconds waited."""
    from jobs.spark.class_archive import dump_under_way

    run = run_job(inputs, work)
    folder = _job_spark_config().class_archive_dir
    started = time.monotonic()
    while folder and time.monotonic() - started < timeout and dump_under_way(folder):
        time.sleep(0.5)
    waited = time.monotonic() - started
    return {"ok": run["ok"], "elapsed_seconds": run.get("elapsed_seconds"), "waited_seconds": round(waited, 1)}


@functools.cache
def _job_spark_config() -> SparkConfig:
    """The Spark section of the job's default configuration, which the runs use."""
    from jobs.config import load_config

    return load_config(inputs=["unused"], output="unused").spark


def run_job(
    inputs: list[Path],
    work: Path,
    overrides: Sequence[str] = (),
    *,
    live_heap_every: float | None = None,
    output: Path | None = None,
) -> dict:
    """One `sr2fhir run` over `inputs` into a fresh output under `work`, or into `output`, which is kept (an
    incremental run); returns what was measured. With `live_heap_every`, the JVM's live heap is probed that
    often (see LiveHeapProbe)."""
    shutil.rmtree(work, ignore_errors=True)
    keep = output is not None
    output, events = output or work / "output", work / "events"
    events.mkdir(parents=True)
    gc_log = work / "gc.log"
    if live_heap_every:
        java_options = _job_spark_config().settings.get(_JAVA_OPTIONS, "")
        overrides = [*overrides, f"spark.settings.{_JAVA_OPTIONS}={java_options} -Xlog:gc:file={gc_log}"]
    command = [
        sys.executable,
        "-m",
        "jobs.cli",
        "run",
        "--input",
        *(p.as_uri() for p in inputs),
        "--output",
        output.as_uri(),
        "--set",
        "spark.settings.spark.eventLog.enabled=true",
        "--set",
        f"spark.settings.spark.eventLog.dir={events.as_uri()}",
        "--set",
        "spark.settings.spark.eventLog.compress=false",
        *(arg for o in overrides for arg in ("--set", o)),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log_path = work / "job.log"
    launched = time.time()
    busy_before = machine_busy_seconds()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work)
        with TreeSampler(process.pid) as sampler:
            if live_heap_every:
                with LiveHeapProbe(process.pid, live_heap_every) as probe:
                    process.wait()
            else:
                process.wait()
    wall = time.time() - launched
    memory = sampler.result()
    tree_cpu = sum(memory["cpu_seconds"].values())
    others = other_cores(busy_before, machine_busy_seconds(), tree_cpu, wall)
    summaries = sorted(glob.glob(str(output / "runs" / "*.json")))  # run ids sort by time: the last is this one
    if process.returncode != 0 or not summaries:
        tail = log_path.read_text(errors="replace")[-3000:]
        return {"ok": False, "returncode": process.returncode, "log_tail": tail, "memory": memory}
    summary = json.loads(Path(summaries[-1]).read_text())
    started = datetime.fromisoformat(summary["started"]).timestamp()
    elapsed = summary["elapsed_seconds"]
    processed = summary["files"]["processed"]
    map_seconds = summary["step_seconds"].get("map")
    run_cpu = sampler.cpu_between(started, started + elapsed)  # session start-up and shutdown excluded
    result = {
        "ok": True,
        "command": " ".join(command[1:]),
        "files": processed,
        "files_found": summary["files"]["found"],
        "removed": summary.get("removed"),
        "documents": summary["documents"],
        "wall_seconds": round(wall, 2),
        "session_startup_seconds": round(started - launched, 2),
        "shutdown_seconds": round(wall - (started - launched) - elapsed, 2),
        "elapsed_seconds": elapsed,
        "files_per_second": round(processed / elapsed, 2) if elapsed else None,
        "map_step_files_per_second": round(processed / map_seconds, 2) if map_seconds else None,
        "step_seconds": summary["step_seconds"],
        "memory": memory,
        "cpu_seconds": memory["cpu_seconds"],
        "run_cpu_seconds": run_cpu,
        "run_cpu_ms_per_file": round(sum(run_cpu.values()) / processed * 1e3, 2) if processed else None,
        "run_cores_used": round(sum(run_cpu.values()) / elapsed, 2),
        "other_load_cores": others,
        "event_log": event_log_profile(events),
    }
    if live_heap_every:
        result["live_heap"] = {"every_seconds": live_heap_every, **live_heap(gc_log, probe.requests)}
    if not keep:
        shutil.rmtree(output, ignore_errors=True)  # FHIR NDJSON and tables of 10,000 files: not kept
    return result


INCREMENTAL_CHANGE_EVERY = 100
"""The incremental pass holds back, changes (a new modification time) and deletes one file in this many each."""
INCREMENTAL_SCENARIOS = ("first", "nothing changed", "1 % new", "1 % changed, 1 % deleted")


def incremental_runs(shards: list[Path], work: Path) -> list[dict]:
    """What scheduled runs cost after the first: a copy of the lake less 1 % of its files mapped once, then a run
    with nothing to do, then one after the held-back 1 % arrived (new files: appended), then one after 1 % of the
    files changed and another 1 % were deleted (a MERGE; removed files leave the tables). Each entry is
    `run_job`'s result with the scenario's name."""
    shutil.rmtree(work, ignore_errors=True)
    lake, held = work / "lake", work / "held"
    for shard in shards:
        shutil.copytree(shard, lake / shard.name)
    for index, path in enumerate(sorted(p for p in lake.rglob("*") if p.is_file())):
        if index % INCREMENTAL_CHANGE_EVERY == 2:
            target = held / path.relative_to(lake)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
    output = work / "output"
    runs: list[dict] = []
    for name in INCREMENTAL_SCENARIOS:
        if name == "1 % new":
            for path in sorted(p for p in held.rglob("*") if p.is_file()):
                target = lake / path.relative_to(held)
                target.parent.mkdir(parents=True, exist_ok=True)
                path.rename(target)
        elif name.startswith("1 % changed"):
            files = sorted(p for p in lake.rglob("*") if p.is_file())
            for index, path in enumerate(files):
                if index % INCREMENTAL_CHANGE_EVERY == 0:
                    os.utime(path, (2_000_000_000, 2_000_000_000))
                elif index % INCREMENTAL_CHANGE_EVERY == 1:
                    path.unlink()
        run = run_job([lake], work / f"run-{len(runs) + 1}", output=output)
        runs.append({"scenario": name, **run})
        if not run["ok"]:
            break
    shutil.rmtree(work, ignore_errors=True)
    return runs


JVM_METRICS = {
    "JVMHeapMemory": "jvm_heap_used",
    "JVMOffHeapMemory": "jvm_off_heap_used",
    "DirectPoolMemory": "jvm_direct_buffers",
}
"""Executor metrics that Spark polls and reports with each task's end (peaks, bytes)."""


def _part(name: str) -> int:
    parts = name.split("_")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def event_log_profile(events: Path) -> dict:
    """Stages (name, tasks, wall seconds, summed task run time) and job/SQL descriptions from the event log."""
    # Spark 4 writes a folder per application (eventlog_v2_*) holding events_<n>_* files, read in order.
    files = sorted(
        (f for f in events.rglob("*") if f.is_file() and not f.name.startswith(".")),
        key=lambda f: (str(f.parent), _part(f.name)),
    )
    if not files:
        return {}
    stages, jobs, sql = {}, {}, {}
    task_time: dict[int, float] = {}
    peaks: dict[str, int] = {}
    deserialise: dict[int, float] = {}
    gc: dict[int, float] = {}
    for line in (line for f in files for line in f.open()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("Event", "")
        if kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            stages[info["Stage ID"]] = {
                "stage": info["Stage ID"],
                "name": info["Stage Name"],
                "tasks": info["Number of Tasks"],
                "seconds": round((info.get("Completion Time", 0) - info.get("Submission Time", 0)) / 1e3, 3),
            }
        elif kind == "SparkListenerTaskEnd":
            for name, value in (event.get("Task Executor Metrics") or {}).items():
                if name in JVM_METRICS:
                    peaks[name] = max(peaks.get(name, 0), value)
            metrics = event.get("Task Metrics") or {}
            stage = event["Stage ID"]
            task_time[stage] = task_time.get(stage, 0) + metrics.get("Executor Run Time", 0) / 1e3
            deserialise[stage] = deserialise.get(stage, 0) + metrics.get("Executor Deserialize Time", 0) / 1e3
            gc[stage] = gc.get(stage, 0) + metrics.get("JVM GC Time", 0) / 1e3
        elif kind == "SparkListenerJobStart":
            execution = (event.get("Properties") or {}).get("spark.sql.execution.id")
            for stage in event.get("Stage IDs", []):
                jobs[stage] = (event["Job ID"], execution)
        elif kind.endswith("SparkListenerSQLExecutionStart"):
            sql[str(event.get("executionId"))] = event.get("description", "")[:80]
    rows = []
    for stage_id, stage in sorted(stages.items()):
        job, execution = jobs.get(stage_id, (None, None))
        rows.append(
            {
                **stage,
                "job": job,
                "sql": sql.get(str(execution)) if execution is not None else None,
                "task_seconds": round(task_time.get(stage_id, 0), 3),
                "deserialize_seconds": round(deserialise.get(stage_id, 0), 3),
                "gc_seconds": round(gc.get(stage_id, 0), 3),
            }
        )
    return {
        "stages": rows,
        "stage_count": len(rows),
        "task_count": sum(r["tasks"] for r in rows),
        "jobs": len({j for j, _ in jobs.values()}),
        "peak_mb": {JVM_METRICS[name]: round(value / 2**20, 1) for name, value in sorted(peaks.items())},
    }
