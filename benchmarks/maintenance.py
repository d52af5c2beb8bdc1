"""What many scheduled runs do to the Delta tables, and what maintenance (`jobs/maintenance.py`) buys back.

    PYTHONPATH=. python -m benchmarks.maintenance --lake DIR [--runs 50] [--per-run 20] [--fragments 5000]

`--lake`: a generated lake (e.g. benchmarks/.cache/lake-10000, with shard-N folders), copied, never changed. In
one local session (the job's configuration):

1. small runs: `--runs` incremental runs, each after `--per-run` new files arrived (taken from the lake's first
   shard), into a fresh output, once with auto compaction and once without: files per table, wall time of the
   runs; then a research query (measurements counted by code for one year) before and after `maintain`;
2. MERGE on a fragmented table: a full run over a copy of the lake, its research tables rewritten into
   ~`--fragments` files each, spread by source_file (as many small runs leave them), then runs after 1 % of the
   files changed (spread, or clustered in one folder), before and after `maintain` (Z-order); with Delta's own
   MERGE metrics (target files before and after skipping, scan time) and the files a literal `source_file IN`
   filter of the run's scope would read (`scope_in`: measured no skipping, so the job names no literals); last,
   the same with deletion vectors on (`delta.enableDeletionVectors`).

Writes the numbers as JSON (`--json`) and prints them. Not part of `benchmarks.run`: the small runs took ~11 and
~19 min per configuration on 2 loaded cores (benchmarks/FINDINGS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from jobs import maintenance
from jobs.config import JobConfig, load_config
from jobs.layout import Layout
from jobs.run import run
from jobs.sinks import delta_maintenance
from jobs.spark.fs import HadoopFS
from jobs.spark.session import local_session

RESEARCH_TABLES = ("measurements", "qualitative_evaluations")
QUERY_YEAR = 2015
MIN_FILES = "spark.databricks.delta.autoCompact.minNumFiles"
AUTO_COMPACT_MIN_FILES = 10


def config(lake: Path, output: Path, *overrides: str) -> JobConfig:
    return load_config(
        inputs=[lake.as_uri()],
        output=output.as_uri(),
        overrides=["output.progress_interval_seconds=0", *overrides],
    )


def table_files(spark, output: Path) -> dict[str, dict[str, int]]:
    """Per table: files in the current version, and Parquet files stored in its folder."""
    from delta.tables import DeltaTable

    fs = HadoopFS(spark)
    counts = {}
    for name in ("measurements", "qualitative_evaluations", "documents", "resources"):
        uri = Layout(output.as_uri()).table(name)
        if (output / "tables" / name / "_delta_log").exists():
            table = DeltaTable.forPath(spark, uri)
            counts[name] = {
                "current": delta_maintenance.data_files(table),
                "stored": delta_maintenance.stored_files(fs, uri),
            }
    return counts


def research_query(spark, output: Path, repeats: int = 5) -> dict[str, float]:
    """Measurements counted by code for one year (partition-pruned), median and min of `repeats` seconds."""
    uri = (output / "tables" / "measurements").as_uri()
    seconds = []
    for _ in range(repeats):
        started = time.monotonic()
        (
            spark.read.format("delta")
            .load(uri)
            .where(f"study_year = {QUERY_YEAR}")
            .groupBy("measurement_code")
            .count()
            .collect()
        )
        seconds.append(time.monotonic() - started)
    return {"median_seconds": round(statistics.median(seconds), 3), "min_seconds": round(min(seconds), 3)}


def small_runs(spark, lake: Path, work: Path, runs: int, per_run: int, auto_compact: bool) -> dict:
    """`runs` incremental runs, each after `per_run` new files arrived."""
    arriving = sorted(p for p in (lake / "shard-0").rglob("*") if p.is_file())[: runs * per_run]
    target, output = work / "lake", work / "output"
    shutil.rmtree(work, ignore_errors=True)
    target.mkdir(parents=True)
    conf = config(target, output, f"maintenance.auto_compact={str(auto_compact).lower()}")
    elapsed, started = [], time.monotonic()
    # Delta compacts a partition once it holds 50 small files: a year of hourly runs reaches that many times over,
    # 50 runs of 20 files (spread over 20 years) do not, so the threshold here is 10.
    spark.conf.set(MIN_FILES, str(AUTO_COMPACT_MIN_FILES))
    try:
        for number in range(runs):
            for path in arriving[number * per_run : (number + 1) * per_run]:
                shutil.copy2(path, target / path.name)
            summary = run(spark, conf)
            elapsed.append(summary["elapsed_seconds"])
    finally:
        spark.conf.unset(MIN_FILES)
    wall = time.monotonic() - started
    result: dict = {
        "auto_compact": auto_compact,
        "runs": runs,
        "files_per_run": per_run,
        "auto_compact_min_files": AUTO_COMPACT_MIN_FILES,
        "wall_seconds": round(wall, 1),
        "run_seconds_first_last_5": [round(statistics.mean(elapsed[:5]), 2), round(statistics.mean(elapsed[-5:]), 2)],
        "files": table_files(spark, output),
        "query_before": research_query(spark, output),
    }
    started = time.monotonic()
    result["maintain"] = maintenance.maintain(spark, conf).as_dict()
    result["maintain_seconds"] = round(time.monotonic() - started, 1)
    result["query_after_maintain"] = research_query(spark, output)
    result["files_after_maintain"] = table_files(spark, output)
    return result


def fragment(spark, output: Path, fragments: int) -> None:
    """Rewrite each research table into ~`fragments` files spread by source_file (rows of a file together, files
    at random), as many small runs leave it; optimized writes off so the files stay as many."""
    from pyspark.sql import functions as F

    spark.conf.set("spark.databricks.delta.optimizeWrite.enabled", "false")
    try:
        for name in RESEARCH_TABLES:
            uri = (output / "tables" / name).as_uri()
            rows = spark.read.format("delta").load(uri)
            partitions = max(rows.select("study_year").distinct().count(), 1)
            (
                rows.repartition(max(fragments // partitions, 1), F.xxhash64("source_file"))
                .write.format("delta")
                .mode("overwrite")
                .save(uri)
            )
    finally:
        spark.conf.unset("spark.databricks.delta.optimizeWrite.enabled")


def change(lake: Path, remainder: int, *, every: int = 100, clustered: bool = False) -> int:
    """Give 1 % of the files a new modification time: one in `every` (index % every == remainder), or with
    `clustered` a run of consecutive paths (a folder re-exported, say)."""
    files = sorted(p for p in lake.rglob("*") if p.is_file())
    if clustered:
        start = remainder * len(files) // every % len(files)
        chosen = files[start : start + len(files) // every]
    else:
        chosen = [path for index, path in enumerate(files) if index % every == remainder]
    stamp = 2_000_000_000 + remainder
    for path in chosen:
        os.utime(path, (stamp, stamp))
    return len(chosen)


def merge_metrics(spark, output: Path) -> dict[str, dict[str, object]]:
    """Delta's metrics of each research table's last commit (the run's MERGE)."""
    from delta.tables import DeltaTable

    wanted = (
        "numTargetFilesBeforeSkipping",
        "numTargetFilesAfterSkipping",
        "numTargetFilesRemoved",
        "numTargetFilesAdded",
        "numTargetDeletionVectorsAdded",
        "numTargetRowsDeleted",
        "scanTimeMs",
        "rewriteTimeMs",
        "executionTimeMs",
    )
    metrics = {}
    for name in RESEARCH_TABLES:
        last = DeltaTable.forPath(spark, (output / "tables" / name).as_uri()).history(1).first()
        assert last is not None
        values = last["operationMetrics"] or {}
        metrics[name] = {"operation": last["operation"], **{k: int(values[k]) for k in wanted if k in values}}
    return metrics


def files_read(spark, frame) -> int:
    """Data files a query's scan read, after Delta's partition and statistics skipping (Spark's scan metric)."""
    spark.conf.set("spark.sql.adaptive.enabled", "false")  # the scan is a leaf of the plan only without AQE
    try:
        frame.collect()
        leaves = frame._jdf.queryExecution().executedPlan().collectLeaves()
        return sum(
            int(leaves.apply(i).metrics().apply("numFiles").value())
            for i in range(leaves.size())
            if leaves.apply(i).metrics().contains("numFiles")
        )
    finally:
        spark.conf.unset("spark.sql.adaptive.enabled")


def scope_reads(spark, output: Path, run_id: str) -> dict[str, dict[str, int]]:
    """Per research table: its files, and the files `source_file IN (the run's files)` reads."""
    from pyspark.sql import functions as F

    ledger = spark.read.format("delta").load((output / "tables" / "documents").as_uri())
    scope = [r[0] for r in ledger.where(F.col("run_id") == run_id).select("source_file").distinct().collect()]
    reads = {}
    for name in RESEARCH_TABLES:
        table = spark.read.format("delta").load((output / "tables" / name).as_uri()).select("source_path")
        reads[name] = {
            "all": files_read(spark, table),
            "scope_in": files_read(spark, table.where(F.col("source_file").isin(scope))),
        }
    return reads


PHASES: dict[str, tuple[bool, ...]] = {
    "fragmented": (False,),
    "z-ordered": (False,),
    "z-ordered, small files": (False, True),
    "z-ordered, small files, deletion vectors": (False, True),
}
"""Per table layout, the runs: whether the changed 1 % is clustered (one folder) or spread over the lake."""


def merge_runs(spark, lake: Path, work: Path, fragments: int) -> dict:
    """1 %-changed runs on fragmented tables, before and after maintain."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    target, output = work / "lake", work / "output"
    shutil.copytree(lake, target)
    first = run(spark, config(target, output))
    fragment(spark, output, fragments)
    result: dict = {"first_run_seconds": first["elapsed_seconds"], "files_fragmented": table_files(spark, output)}
    result["runs"] = []
    remainder = 10
    for phase in PHASES:
        if phase != "fragmented":
            # "z-ordered, small files": OPTIMIZE's target file size cut from 1 GB to 64 KB, so that this 12 MB
            # table has ~10 files per year, as a table a thousand times larger has with 1 GB files.
            small = "small files" in phase
            if small:
                spark.conf.set("spark.databricks.delta.optimize.maxFileSize", str(64 * 1024))
            started = time.monotonic()
            result[f"maintain ({phase})"] = maintenance.maintain(spark, config(target, output)).as_dict()
            result[f"maintain_seconds ({phase})"] = round(time.monotonic() - started, 1)
            result[f"files ({phase})"] = table_files(spark, output)
            if small:
                spark.conf.unset("spark.databricks.delta.optimize.maxFileSize")
            if "deletion vectors" in phase:
                # A MERGE then marks the replaced rows deleted in a small file beside each data file it touches,
                # where it otherwise rewrites those files whole.
                for name in RESEARCH_TABLES:
                    uri = (output / "tables" / name).as_uri()
                    spark.sql(f"ALTER TABLE delta.`{uri}` SET TBLPROPERTIES (delta.enableDeletionVectors = true)")
        for clustered in PHASES[phase]:
            changed = change(target, remainder, clustered=clustered)
            remainder += 1
            summary = run(spark, config(target, output))
            steps = summary["step_seconds"]
            result["runs"].append(
                {
                    "phase": phase,
                    "change": "clustered" if clustered else "spread",
                    "changed_files": changed,
                    "processed": summary["files"]["processed"],
                    "elapsed_seconds": summary["elapsed_seconds"],
                    **{f"table {t}": steps.get(f"table {t}") for t in RESEARCH_TABLES},
                    "sinks": steps.get("sinks"),
                    "delta": merge_metrics(spark, output),
                    "files_read": scope_reads(spark, output, summary["run_id"]),
                }
            )
            print(json.dumps(result["runs"][-1]), flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("benchmarks/.cache/maintenance"))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--per-run", type=int, default=20)
    parser.add_argument("--fragments", type=int, default=5000)
    parser.add_argument("--skip", default="", help="small,merge")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    spark = local_session(config(args.lake, args.work).spark, s3=False)
    skip = set(args.skip.split(","))
    results: dict = {}

    def save() -> None:
        text = json.dumps(results, indent=2)
        if args.json:
            args.json.write_text(text + "\n")
        print(text, flush=True)

    try:
        warmup = args.work / "warmup"
        shutil.rmtree(warmup, ignore_errors=True)
        run(spark, config(args.lake / "shard-0", warmup))  # the JVM's JIT and caches warm
        if "small" not in skip:
            for auto_compact in (False, True):
                key = f"small_runs_auto_compact_{str(auto_compact).lower()}"
                results[key] = small_runs(spark, args.lake, args.work / key, args.runs, args.per_run, auto_compact)
                save()
        if "merge" not in skip:
            results["merge"] = merge_runs(spark, args.lake, args.work / "merge", args.fragments)
            save()
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
