"""Where the Spark job's map step spends its time: the same generated files through cut-down versions of the
step, in one local session (the job's own configuration and mapper), each timed by wall clock and by the CPU of
the JVM and of the Python workers.

    PYTHONPATH=. python -m benchmarks.spark_profile [--files 5000] [--repeat 2]

Variants, all over the same files:
  read        binaryFile listing + reading every file's bytes (sum of lengths)
  python-min  mapInArrow with a Python function that returns one tiny row per file: the Python worker round
              trip without the mapping
  map-noop    the job's Mapper, output discarded on the JVM side (`noop` sink): mapping + Arrow both ways
  map-parquet the job's Mapper written to Parquet, as the job's map step does (its `_staging` folder)
Generated files come from the benchmark's cache (`python -m benchmarks.run` writes them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pyarrow as pa

from .corpora import DEFAULT_CACHE, LAKE_SHARD, lake_corpus, lake_shards


def _tree_cpu() -> dict[str, float]:
    """CPU seconds so far of the JVM (this process's java child) and of the Python workers under it."""
    me = psutil.Process()
    cpu = {"jvm": 0.0, "python_workers": 0.0, "driver": sum(me.cpu_times()[:2])}
    for child in me.children(recursive=True):
        try:
            name, times = child.name(), child.cpu_times()
        except psutil.Error:
            continue
        role = "jvm" if name == "java" else "python_workers" if name.startswith("python") else None
        if role:
            cpu[role] += times.user + times.system
    return cpu


def _tiny(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        yield pa.RecordBatch.from_pydict({"n": [len(c) if c else 0 for c in batch.column("content").to_pylist()]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5_000, help="a multiple of 2,500 up to 10,000")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--output", type=Path, help="write the measurements here as JSON")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="job configuration override, as `sr2fhir run --set`",
    )
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from jobs import staging
    from jobs.config import load_config
    from jobs.limits import session_memory
    from jobs.mapping import Mapper, MapperSettings
    from jobs.run import with_limits
    from jobs.sources.inputs import open_inputs
    from jobs.spark.session import apply_runtime_settings, local_session

    root, _ = lake_corpus(args.cache, max(args.files, LAKE_SHARD * 4) if args.files > 200 else args.files)
    inputs_uris = [p.as_uri() for p in lake_shards(root, args.files)]
    scratch = Path(tempfile.mkdtemp(prefix="sr2fhir-spark-profile-"))
    config = load_config(inputs=inputs_uris, output=(scratch / "out").as_uri(), overrides=args.overrides)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = local_session(config.spark, s3=False)
    apply_runtime_settings(spark, config.spark)
    config = with_limits(config, session_memory(spark))
    settings = MapperSettings(
        options=config.mapping,
        max_file_bytes=config.input.file_limit,
        max_archive_bytes=config.input.max_archive_bytes,
    )
    schema = staging.spark_schema()

    def read() -> None:
        open_inputs(spark, config).with_content().agg(F.sum(F.length("content"))).collect()

    def python_min() -> None:
        content = open_inputs(spark, config).with_content()
        content.mapInArrow(_tiny, "n long").write.format("noop").mode("overwrite").save()

    def map_noop() -> None:
        content = open_inputs(spark, config).with_content()
        content.mapInArrow(Mapper(settings), schema).write.format("noop").mode("overwrite").save()

    def map_parquet() -> None:
        target = scratch / "staging"
        shutil.rmtree(target, ignore_errors=True)
        content = open_inputs(spark, config).with_content()
        staging.write(content.mapInArrow(Mapper(settings), schema), target.as_uri())

    variants = {"read": read, "python-min": python_min, "map-noop": map_noop, "map-parquet": map_parquet}
    read()  # the session's first job (JIT, worker start-up) is not charged to a variant
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for round_ in range(args.repeat):
        for name, run in variants.items():
            before, start = _tree_cpu(), time.monotonic()
            run()
            wall = time.monotonic() - start
            after = _tree_cpu()
            cpu = {role: round(after[role] - before[role], 2) for role in after}
            results[name].append({"wall": round(wall, 2), "cpu": cpu})
            print(
                f"round {round_ + 1} {name:12s} {wall:7.1f} s  {args.files / wall:7.1f} files/s  CPU {cpu}",
                file=sys.stderr,
                flush=True,
            )
    spark.stop()
    shutil.rmtree(scratch, ignore_errors=True)
    summary = {"files": args.files, "overrides": args.overrides, "variants": results}
    text = json.dumps(summary, indent=1)
    if args.output:
        args.output.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
