"""sr2fhir benchmark suite: one run, the same files for every method, ratios within the run.

    PYTHONPATH=. python -m benchmarks.run            # full run (~30-45 min on 2 cores); writes benchmarks/RESULTS.md
    PYTHONPATH=. python -m benchmarks.run --quick    # smoke run (a few files, 200-file Spark run), to .cache/quick/

Measures pydicom (read + full walk: the baseline), highdicom, dcmqi's tid1500reader and the sr2fhir core (both
readers) on the shared real corpus, the 4,602-item radiomics file and a generated size curve, each corpus in
rounds of every method (benchmarks/rounds.py); then the core and the Spark job (`sr2fhir run`, local[2]) on
2,500 / 5,000 / 10,000 generated files. Writes results.json (every measurement) and RESULTS.md (the tables).
Measures whatever is installed: re-run it after reader or mapping changes. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import psutil

from . import corpora, report, spark
from .corpora import DEFAULT_CACHE, DEFAULT_CORPUS, REPO
from .methods import BASELINE, FACTORIES
from .rounds import measure as measure_rounds

ALL_METHODS = ("pydicom_walk", "highdicom", "dcmqi", "core_auto", "core_pydicom", "core_reader")
FULL = {
    "real": {"repeat": 7, "min_samples": 3, "budget_seconds": 3.0},
    "radiomics": {"repeat": 5, "min_samples": 2, "budget_seconds": 10.0},
    "curve": {"repeat": 5, "min_samples": 2, "budget_seconds": 4.0},
}
QUICK = {"repeat": 2, "min_samples": 1, "budget_seconds": 0.5}
ROUNDS, QUICK_ROUNDS = 3, 1
"""Rounds per corpus (benchmarks/rounds.py): the samples above are split across them, not multiplied."""
SPARK_FILES = (2_500, 5_000, 10_000)
QUICK_SPARK_FILES = (200,)
LIVE_HEAP_EVERY = 3.0
"""Seconds between the full collections the memory pass forces (each costs the run ~0.1-0.3 s of pause)."""


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_start": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "platform": platform.platform(),
    }


def versions() -> dict:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    found = {"python": platform.python_version()}
    for name in ("pydicom", "highdicom", "dcmqi", "pyspark", "delta-spark", "pyarrow", "orjson"):
        found[name] = version(name)
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr
        found["java"] = java.splitlines()[0].split('"')[1] if '"' in java else java.strip()[:40]
    except OSError:
        found["java"] = "not found"
    return found


def git_state() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{git('rev-parse', '--short', 'HEAD')} ({git('rev-parse', '--abbrev-ref', 'HEAD')})" + (
        ", with uncommitted changes" if dirty else ""
    )


def run_worker(method: str, entries: list[dict], settings: dict, warmup: list[str], scratch: Path) -> dict:
    """One method over the entries, in a fresh process."""
    job = {"method": method, "files": entries, "warmup": warmup, **settings}
    job_path = scratch / f"job-{method}.json"
    out_path = scratch / f"out-{method}.json"
    job_path.write_text(json.dumps(job))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "benchmarks.worker", str(job_path), str(out_path)], env=env, check=True)
    return json.loads(out_path.read_text())


class Workers:
    """One worker process per method for a corpus (`python -m benchmarks.worker --serve`), started at the method's
    first round and kept, idle between its rounds, until the corpus is done: its caches and peak RSS last over
    the rounds as over one worker's passes, and start-up and warm-up are paid once."""

    def __init__(self, data: list[dict], warmup: list[str], scratch: Path) -> None:
        self.data, self.warmup, self.scratch = data, warmup, scratch
        self.processes: dict[str, subprocess.Popen] = {}
        self.rounds: dict[str, int] = {}

    def _start(self, method: str) -> subprocess.Popen:
        job_path = self.scratch / f"job-{method}.json"
        job_path.write_text(json.dumps({"method": method, "files": self.data, "warmup": self.warmup}))
        command = [sys.executable, "-m", "benchmarks.worker", "--serve", str(job_path)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._reply(method, process, "ready")
        return process

    @staticmethod
    def _reply(method: str, process: subprocess.Popen, expected: str) -> None:
        assert process.stdout is not None
        reply = process.stdout.readline().strip()
        if reply != expected:
            raise RuntimeError(f"{method} worker: expected {expected!r}, got {reply!r} (exit {process.poll()})")

    def round(self, method: str, settings: dict) -> dict:
        if method not in self.processes:
            self.processes[method] = self._start(method)
        process = self.processes[method]
        self.rounds[method] = index = self.rounds.get(method, 0) + 1
        out_path = self.scratch / f"out-{method}-{index}.json"
        assert process.stdin is not None
        process.stdin.write(json.dumps({**settings, "out": str(out_path)}) + "\n")
        process.stdin.flush()
        self._reply(method, process, "done")
        return json.loads(out_path.read_text())

    def close(self) -> None:
        failed = []
        for method, process in self.processes.items():
            assert process.stdin is not None and process.stdout is not None
            process.stdin.close()
            if process.wait() != 0:
                failed.append(f"{method} (exit {process.returncode})")
            process.stdout.close()
        self.processes.clear()
        if failed:
            raise RuntimeError("workers failed: " + ", ".join(failed))


def measure_corpus(
    name: str,
    entries: list[corpora.Entry],
    methods: list[str],
    settings: dict,
    warmup: list[str],
    scratch: Path,
    rounds: int = 1,
) -> dict:
    """Every method over one corpus, in rounds (benchmarks/rounds.py), one lasting worker process per method."""
    data = [e.as_dict() for e in entries]
    workers = Workers(data, warmup, scratch)
    try:
        return measure_rounds(name, data, methods, settings, rounds, workers.round, log)
    finally:
        workers.close()


def spark_findings(results: dict) -> list[str]:
    """Plain statements read off the Spark runs (where the time goes), for the report."""
    runs = [r for r in results.get("spark", []) if r["ok"]]
    if not runs:
        return []
    findings = []
    largest = runs[-1]
    steps = largest["step_seconds"]
    mapping = steps.get("map", 0)
    rest = largest["elapsed_seconds"] - mapping
    findings.append(
        f"{largest['requested_files']:,} files: the map step (listing excluded) takes {mapping:.1f} s of "
        f"{largest['elapsed_seconds']:.1f} s; the other steps (listing, statistics, Delta tables, FHIR NDJSON, "
        f"ledger) {rest:.1f} s."
    )
    if len(runs) >= 2 and runs[0].get("run_cpu_seconds") and largest.get("run_cpu_seconds"):
        small = runs[0]
        d_files = largest["requested_files"] - small["requested_files"]
        for role in ("jvm", "python_workers"):
            low, high = small["run_cpu_seconds"].get(role, 0.0), largest["run_cpu_seconds"].get(role, 0.0)
            marginal = (high - low) / d_files
            fixed = max(low - marginal * small["requested_files"], 0.0)
            findings.append(
                f"{role} CPU: {marginal * 1e3:.2f} ms per extra file between {small['requested_files']:,} and "
                f"{largest['requested_files']:,} files, and ≈ {fixed:.0f} s "
                "per run whatever the file count (CPU is not stretched by other load the way wall time is)."
            )
    profile = largest.get("event_log") or {}
    if profile:
        findings.append(
            f"Event log of the {largest['requested_files']:,}-file run: {profile.get('jobs')} Spark jobs, "
            f"{profile.get('stage_count')} stages, {profile.get('task_count')} tasks."
        )
    longest = max(profile.get("stages", []), key=lambda s: s["seconds"], default=None)
    if longest:
        findings.append(
            f"Longest stage: {longest['stage']} ({longest['name'][:50]}), {longest['tasks']} tasks, "
            f"{longest['seconds']} s wall, {longest['task_seconds']} s of task time"
            " (task time is wall time of the tasks, waiting for a core included)."
            if longest["seconds"]
            else ""
        )
    cpu = largest.get("run_cpu_seconds") or {}
    if cpu:
        files = largest["requested_files"]
        findings.append(
            f"CPU of the {files:,}-file run: JVM {cpu.get('jvm', 0) / files * 1e3:.2f} ms/file, Python workers "
            f"{cpu.get('python_workers', 0) / files * 1e3:.2f} ms/file, driver {cpu.get('driver', 0) / files * 1e3:.2f}"
            f" ms/file; the job's processes kept {largest['run_cores_used']} of 2 cores busy on average while other "
            f"work on the machine used {largest['other_load_cores']} cores."
        )
    return [f for f in findings if f]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a few files per corpus, one small Spark run")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="the real TID 1500 corpus")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="generated files (gitignored)")
    parser.add_argument(
        "--output",
        type=Path,
        help="folder for RESULTS.md and results.json (default: benchmarks/, or <cache>/quick with --quick)",
    )
    parser.add_argument(
        "--methods", default=",".join(ALL_METHODS), help="comma-separated subset of " + ", ".join(ALL_METHODS)
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated: real, radiomics, curve, lake, spark, spark-memory, spark-incremental, spark-profile",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"rounds per corpus, the method order rotated each round (default {ROUNDS}; quick {QUICK_ROUNDS})",
    )
    parser.add_argument("--curve-files", type=int, help="use only this many curve files (smallest first)")
    parser.add_argument("--spark-files", help="comma-separated Spark run sizes (default 2500,5000,10000; quick 200)")
    parser.add_argument("--lake-files", type=int, help="generated lake size (default 10,000; quick 200)")
    parser.add_argument(
        "--lake-kind",
        choices=corpora.LAKE_KINDS,
        default="typical",
        help="typical reports (median ~65 content items) or rich ones (≥ 30 measurements each)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: summarise an existing results.json again and rewrite its RESULTS.md",
    )
    args = parser.parse_args(argv)
    if args.render:
        rendered = json.loads(args.render.read_text())
        rendered["notes"] = notes(rendered)
        report.summarise(rendered)
        args.render.write_text(json.dumps(rendered, indent=1, default=str) + "\n")
        (args.render.parent / "RESULTS.md").write_text(report.render(rendered))
        log(f"rewrote {args.render.parent / 'RESULTS.md'} from {args.render}")
        return 0

    started = time.monotonic()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in FACTORIES]
    if unknown:
        parser.error(f"unknown methods {unknown}")
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else ROUNDS)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    if BASELINE in methods:
        methods.remove(BASELINE)
        methods.insert(0, BASELINE)
    output = args.output or (args.cache / "quick" if args.quick else REPO / "benchmarks")
    output.mkdir(parents=True, exist_ok=True)
    cache = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    command = " ".join(["PYTHONPATH=. python -m benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
    results: dict = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command,
            "quick": args.quick,
            "git": git_state(),
            "machine": machine(),
            "versions": versions(),
            "methods": methods,
            "rounds": rounds,
        },
        "corpora": {},
        "notes": [],
    }
    log(f"load average {results['meta']['machine']['load_start']}; methods {', '.join(methods)}")
    warmup = [str(p) for p in corpora.warmup_files(cache)]
    scratch = cache / ("scratch-quick" if args.quick else "scratch")  # job files, worker outputs, Spark logs
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)

    # --- the corpora -----------------------------------------------------------------------------------
    plans: dict[str, list[corpora.Entry]] = {}
    if not {"real", "radiomics"} <= skip:
        if args.corpus.is_dir():
            real, radiomics = corpora.real_corpus(args.corpus)
            if args.quick:
                real, radiomics = sorted(real, key=lambda e: e.items)[:3], []
            if "real" not in skip:
                plans["real"] = real
            if "radiomics" not in skip and radiomics:
                plans["radiomics"] = radiomics
            elif "radiomics" not in skip:
                results["corpora"]["radiomics"] = {
                    "skipped": "not part of a quick run"
                    if args.quick
                    else "no file of 4,000 content items or more in the corpus"
                }
        else:
            message = f"real corpus not found at {args.corpus}: real and radiomics corpora skipped"
            log(message)
            for name in ("real", "radiomics"):
                results["corpora"][name] = {"skipped": message}
    if "curve" not in skip:
        sizes, seeds = (
            (corpora.QUICK_CURVE_SIZES, corpora.QUICK_CURVE_SEEDS)
            if args.quick
            else (corpora.CURVE_SIZES, corpora.CURVE_SEEDS)
        )
        curve = corpora.curve_corpus(cache, sizes, seeds)
        plans["curve"] = curve[: args.curve_files] if args.curve_files else curve
    for name, entries in plans.items():
        settings = QUICK if args.quick else FULL[name]
        log(f"{name}: {len(entries)} files, {sum(e.items for e in entries):,} content items")
        results["corpora"][name] = measure_corpus(name, entries, methods, settings, warmup, scratch, rounds)

    # --- the lake: core single pass and the Spark job -----------------------------------------------------
    lake_files = args.lake_files or (200 if args.quick else max(SPARK_FILES))
    default_sizes = QUICK_SPARK_FILES if args.quick else SPARK_FILES
    requested = [int(n) for n in args.spark_files.split(",")] if args.spark_files else default_sizes
    spark_sizes = [n for n in requested if n <= lake_files]
    if "lake" in skip:
        results["lake"] = {"skipped": "--skip lake"}
    else:
        log(f"lake: {lake_files:,} generated {args.lake_kind} reports (written once into {cache})")
        root, entries = corpora.lake_corpus(cache, lake_files, args.lake_kind)
        data = [e.as_dict() for e in entries]
        results["lake"] = {"root": str(root), "kind": args.lake_kind, "entries": data}
        if "core_auto" in methods:
            log("lake: the core, one process, each file once")
            results["lake"]["raw"] = run_worker(
                "core_auto", data, {"repeat": 1, "min_samples": 1, "budget_seconds": 0}, warmup, scratch
            )
        results["spark"] = []
        if "spark" not in skip and spark_sizes:
            log("spark: a warm-up run, so that every measured run maps the JVM's class archive")
            results["spark_warmup"] = spark.prepare_class_archive(
                corpora.lake_shards(root, min(spark_sizes)), scratch / "spark-warmup"
            )
            for count in spark_sizes:
                log(f"spark: sr2fhir run over {count:,} files")
                run = spark.run_job(corpora.lake_shards(root, count), scratch / f"spark-{count}")
                run["requested_files"] = count
                if not run["ok"]:
                    log(f"spark: run failed (exit {run['returncode']}):\n{run['log_tail']}")
                else:
                    log(f"spark: {run['files_per_second']} files/s, start-up {run['session_startup_seconds']} s")
                results["spark"].append(run)
        results["spark_memory"] = []
        if "spark" not in skip and "spark-memory" not in skip and len(spark_sizes) >= 2:
            for count in (spark_sizes[0], spark_sizes[-1]):
                log(f"spark: live heap over {count:,} files (a full collection forced every {LIVE_HEAP_EVERY:g} s)")
                run = spark.run_job(
                    corpora.lake_shards(root, count), scratch / f"spark-memory-{count}", live_heap_every=LIVE_HEAP_EVERY
                )
                results["spark_memory"].append(
                    {
                        "requested_files": count,
                        "ok": run["ok"],
                        "live_heap": run.get("live_heap"),
                        "jvm_rss_mb": run["memory"]["jvm_rss_mb"],
                        "elapsed_seconds": run.get("elapsed_seconds"),
                    }
                )
        if "spark" not in skip and "spark-incremental" not in skip and spark_sizes:
            count = spark_sizes[0]
            log(
                f"spark: incremental runs over a copy of {count:,} files "
                "(first, unchanged, 1 % new, 1 % changed + 1 % deleted)"
            )
            results["spark_incremental"] = spark.incremental_runs(
                corpora.lake_shards(root, count), scratch / "spark-incremental"
            )
            for run in results["spark_incremental"]:
                if not run["ok"]:
                    log(f"spark: incremental run failed (exit {run['returncode']}):\n{run['log_tail']}")
        if "spark" not in skip and "spark-profile" not in skip and not args.quick and lake_files >= 5_000:
            log("spark: map step profile (benchmarks.spark_profile) over 5,000 files")
            profile_path = scratch / "spark-profile.json"
            with open(scratch / "spark-profile.log", "w") as profile_log:
                subprocess.run(
                    [sys.executable, "-m", "benchmarks.spark_profile", "--files", "5000", "--repeat", "2",
                     "--cache", str(cache), "--output", str(profile_path)],
                    env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.DEVNULL, stderr=profile_log,
                    check=False,
                )  # fmt: skip
            if profile_path.exists():
                results["spark_profile"] = json.loads(profile_path.read_text())
        if results["spark"] and "core_auto" in methods:
            log("lake: the core again, after the Spark runs (the machine's load drifts)")
            results["lake"]["raw_after"] = run_worker(
                "core_auto", data, {"repeat": 1, "min_samples": 1, "budget_seconds": 0}, warmup, scratch
            )
        results["spark_findings"] = spark_findings(results)

    # --- the report ------------------------------------------------------------------------------------------
    scanners = {raw.get("scanner") for c in results["corpora"].values() for raw in c.get("raw", {}).values()}
    scanners.discard(None)
    results["meta"]["scanner"] = ", ".join(sorted(scanners)) or None
    results["meta"]["machine"]["load_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    results["meta"]["seconds"] = round(time.monotonic() - started, 1)
    results["notes"] += notes(results)
    report.summarise(results)
    results = report.slim(results)
    (output / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (output / "RESULTS.md").write_text(report.render(results))
    log(f"wrote {output / 'RESULTS.md'} and results.json in {results['meta']['seconds'] / 60:.1f} min")
    return 0


def notes(results: dict) -> list[str]:
    found = []
    rounds = max((c.get("rounds", 1) for c in results["corpora"].values() if c.get("raw")), default=1)
    if rounds > 1:
        found.append(
            f"Each corpus ran in {rounds} rounds: round 1 of every method, then round 2 of every method, and so on, "
            "the method order rotated by one each round. A method keeps one worker process over a corpus's rounds, "
            "idle while the others run, so start-up and warm-up are paid once and a file's later rounds meet warm "
            "caches as one worker's later passes did. A file's repeats, its minimum of samples and its time budget "
            "are split across the rounds (at least one sample per round; not multiplied), its samples pooled and "
            "their median taken as in one round. The 'per round' ranges are the min–max of the ratio computed "
            "within each round from that round's per-file medians (round 1 without its first-sight call when it "
            "has another): how much the machine's drift moved the ratio while the run was under way."
        )
    if results["corpora"].get("curve", {}).get("entries"):
        found.append(
            "Curve files use the generator's default encoding (explicit VR little endian, defined lengths); "
            "the lake uses a realistic mix of encodings (see the lake notes)."
        )
    if any("core_reader" in c.get("raw", {}) for c in results["corpora"].values()):
        found.append(
            "core_reader (the reader alone) runs with Python's cyclic GC on; map_sr pauses it while mapping, "
            "so on large files the reader alone can take as long as the whole core."
        )
    if results.get("lake", {}).get("root"):
        found.append(
            "The lake's encodings are a realistic mix in a cycle of 20 files (benchmarks/corpora.py): 14 "
            "explicit VR little endian with defined lengths, 3 with undefined lengths, 2 implicit VR little "
            "endian, 1 deflated; no Explicit VR Big Endian (retired; the fast reader hands it to pydicom)."
        )
    if results.get("spark"):
        found.append(
            "Spark runs write Delta tables, FHIR NDJSON and the ledger as a real run does (fresh output "
            "each time), with Spark's event log enabled for the profile; outputs are deleted afterwards."
        )
    return found


if __name__ == "__main__":
    sys.exit(main())
