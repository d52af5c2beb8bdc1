"""What the FHIR deletion lookup reads (`jobs/sinks/index.py` `deletions`), against the lake's size.

    PYTHONPATH=. python -m benchmarks.deletions --lake DIR [--lake DIR ...] [--work DIR] [--json FILE]

Per `--lake` (a generated lake, e.g. benchmarks/.cache/lake-10000; copied, never changed), in one local session
with the job's configuration: a first run over a copy, then the lookup a run makes when 1 % of the files
changed or went: `_Deletions.find` for those files (their latest runs as origins, the same files as the scope),
`--repeats` times, each under its own Spark job group. The event log gives what each lookup's tasks read
(records and bytes from storage: the index and the ledger) and the wall time is taken around the call; then a
real run after those files got a new modification time, with its `deletions` step from the run summary.

Prints and writes JSON. Not part of `benchmarks.run` (a first run over each lake: ~1 min per 10,000 files).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path
from urllib.parse import urlparse

from pyspark.sql import SparkSession

from jobs.config import JobConfig, load_config
from jobs.layout import Layout
from jobs.run import run
from jobs.run.context import OutputTables
from jobs.run.deletions import Deletions
from jobs.spark.fs import HadoopFS
from jobs.spark.session import local_session

CHANGED_EVERY = 100
"""One file in this many is looked up (1 %)."""


def config(lake: Path, output: Path, *overrides: str) -> JobConfig:
    return load_config(
        inputs=[lake.as_uri()], output=output.as_uri(), overrides=["output.progress_interval_seconds=0", *overrides]
    )


def chosen_files(spark: SparkSession, output: Path) -> list[str]:
    """1 % of the files the ledger knows, spread over the lake (as Spark names them)."""
    ledger = spark.read.format("delta").load((output / "tables" / "documents").as_uri())
    files = sorted(r[0] for r in ledger.select("source_file").distinct().collect())
    return [file for index, file in enumerate(files) if index % CHANGED_EVERY == 7]


def lookup(spark: SparkSession, output: Path, files: list[str], group: str) -> dict:
    """One deletion lookup for `files` as a run that re-maps them would make it (what it finds, and its wall time)."""
    from pyspark.sql import functions as F

    layout = Layout(output.as_uri())
    fs = HadoopFS(spark)
    tables = OutputTables.open(spark, fs, layout, config(output, output))
    ledger = tables.ledger
    wanted = spark.createDataFrame([(f,) for f in files], "source_file string")
    latest = ledger.file_states(wanted).select("source_file", F.col("known_run_id").alias("run_id")).collect()
    remapped = tuple(sorted((r["source_file"], r["run_id"]) for r in latest))
    spark.sparkContext.setJobGroup(group, group)
    try:
        started = time.monotonic()
        deletions = Deletions.of(spark, tables, remapped, None, replace=False)
        found = deletions.find(produced=None, scope=wanted)
        seconds = time.monotonic() - started
    finally:
        spark.sparkContext.setJobGroup("other", "other")
    return {"files": len(remapped), "deletions": len(found), "seconds": round(seconds, 3), "found": found}


def reads_by_group(events: Path) -> dict[str, dict[str, int]]:
    """Per job group: records and bytes its tasks read from storage, and its jobs and tasks."""
    stage_group: dict[int, str] = {}
    reads: dict[str, dict[str, int]] = {}
    files = sorted(f for f in events.rglob("*") if f.is_file() and not f.name.startswith("."))
    for line in (line for f in files for line in f.open()):
        event = json.loads(line)
        kind = event.get("Event")
        if kind == "SparkListenerJobStart":
            group = (event.get("Properties") or {}).get("spark.jobGroup.id")
            if group:
                for stage in event.get("Stage IDs", []):
                    stage_group[stage] = group
                reads.setdefault(group, {"records": 0, "bytes": 0, "jobs": 0, "tasks": 0})["jobs"] += 1
        elif kind == "SparkListenerTaskEnd" and event["Stage ID"] in stage_group:
            total = reads[stage_group[event["Stage ID"]]]
            metrics = (event.get("Task Metrics") or {}).get("Input Metrics") or {}
            total["records"] += metrics.get("Records Read", 0)
            total["bytes"] += metrics.get("Bytes Read", 0)
            total["tasks"] += 1
    return reads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, action="append", required=True)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/.cache/deletions"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    shutil.rmtree(args.work, ignore_errors=True)
    events = args.work / "events"
    events.mkdir(parents=True)
    logging_overrides = (
        "spark.settings.spark.eventLog.enabled=true",
        f"spark.settings.spark.eventLog.dir={events.as_uri()}",
        "spark.settings.spark.eventLog.compress=false",
    )
    spark = local_session(config(args.lake[0], args.work, *logging_overrides).spark, s3=False)
    results: dict = {"lakes": []}
    try:
        for lake in args.lake:
            target, output = args.work / lake.name, args.work / f"{lake.name}-output"
            shutil.copytree(lake, target)
            first = run(spark, config(target, output))
            uris = chosen_files(spark, output)
            index_uri = (output / "tables" / "resources").as_uri()
            index_rows = spark.read.format("delta").load(index_uri).count()
            detail = spark.sql(f"DESCRIBE DETAIL delta.`{index_uri}`").first()
            lookups = [lookup(spark, output, uris, f"{lake.name}-lookup-{k}") for k in range(args.repeats)]
            assert all(x["found"] == lookups[0]["found"] for x in lookups)
            for uri in uris:
                os.utime(urlparse(uri).path, (2_000_000_000, 2_000_000_000))
            spark.sparkContext.setJobGroup(f"{lake.name}-run", f"{lake.name}-run")
            summary = run(spark, config(target, output))
            spark.sparkContext.setJobGroup("other", "other")
            results["lakes"].append(
                {
                    "lake": lake.name,
                    "files": first["files"]["processed"],
                    "index_rows": index_rows,
                    "index_files": detail["numFiles"] if detail else None,
                    "first_run_seconds": first["elapsed_seconds"],
                    "first_run_index_seconds": first["step_seconds"].get("index"),
                    "looked_up": lookups[0]["files"],
                    "deletions_found": lookups[0]["deletions"],
                    "lookup_seconds": [x["seconds"] for x in lookups],
                    "lookup_seconds_median": statistics.median(x["seconds"] for x in lookups),
                    "run_deletions_seconds": summary["step_seconds"].get("deletions"),
                    "run_seconds": summary["elapsed_seconds"],
                    "run_deleted": summary["deleted"],
                }
            )
            print(json.dumps(results["lakes"][-1]), flush=True)
    finally:
        spark.stop()
    reads = reads_by_group(events)
    for entry in results["lakes"]:
        groups = [reads.get(f"{entry['lake']}-lookup-{k}", {}) for k in range(args.repeats)]
        entry["lookup_reads"] = groups
        entry["run_reads"] = reads.get(f"{entry['lake']}-run", {})
    text = json.dumps(results, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
