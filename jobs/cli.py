"""`sr2fhir` command line.

sr2fhir map FILE... [-o DIR]     map SR files with the core alone: one FHIR Bundle (collection) per input
sr2fhir run --input URI... --output URI [--conf FILE] [--table-format delta|parquet] [--full-refresh]
                                 the lakehouse job on Spark (also: spark-submit jobs/sr_to_fhir.py ...)
sr2fhir maintain --output URI [--conf FILE] [--set KEY=VALUE]
                                 OPTIMIZE (Z-order) and VACUUM the output's Delta tables, and delete FHIR
                                 exports past maintenance.export_retention_days (jobs/maintenance.py)
sr2fhir sample [--output DIR]    write the built-in sample lake and run the job on it
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from sr2fhir_core import BUNDLE_BASE_URL, FhirVersion, IgVersion, MappingOptions, dumps_json, map_sr

from . import stopping
from .errors import ExitStatus, JobError, failure_line


def _options(args: argparse.Namespace) -> MappingOptions:
    return MappingOptions(
        default_timezone=args.timezone,
        device_fallback=args.device_fallback,
        sop_class_system=args.sop_class_system,
        ig_version=args.ig_version,
        fhir_version=args.fhir_version,
    )


def _add_mapping_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mapping options (docs/mapping-decisions.md)")
    group.add_argument("--timezone", default="+00:00", help="offset for DICOM times without one (default +00:00)")
    group.add_argument("--device-fallback", choices=["inherit", "equipment"], default="inherit")
    group.add_argument("--sop-class-system", choices=["ig", "rfc3986"], default="ig")
    group.add_argument(
        "--ig-version",
        choices=[v.value for v in IgVersion],
        default=IgVersion.BALLOT.value,
        help="IG structure: ballot (1.0.0-ballot, default) or stu1 (post-ballot)",
    )
    group.add_argument(
        "--fhir-version",
        choices=[v.value for v in FhirVersion],
        default=FhirVersion.R5.value,
        help="FHIR version of the resources: r5 (default) or r4 (docs/mapping-decisions.md, R4 output)",
    )


def command_map(args: argparse.Namespace) -> int:
    """Map each file; print the Bundle for a single file without -o, else write <name>.json into -o."""
    options = _options(args)
    files = [Path(f) for f in args.files]
    if args.output is None and len(files) != 1:
        print("sr2fhir map: give -o DIR to map more than one file", file=sys.stderr)
        return ExitStatus.USAGE
    failures = 0
    for path in files:
        result = map_sr(path, options)
        record = result.record
        if not result.mapped:
            failures += 1
            print(f"{path}: {record.status.value} ({record.reason}): {record.message}", file=sys.stderr)
            continue
        bundle = dumps_json(result.bundle(args.base_url), indent=True)
        if args.output is None:
            sys.stdout.buffer.write(bundle + b"\n")
        else:
            target = Path(args.output)
            target.mkdir(parents=True, exist_ok=True)
            (target / f"{path.name}.json").write_bytes(bundle + b"\n")
        print(
            f"{path}: mapped {record.measurements} measurements, {record.qualitative_evaluations} evaluations,"
            f" {record.resources} resources, {record.warnings} warnings",
            file=sys.stderr,
        )
    return ExitStatus.FAILED if failures else ExitStatus.OK


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        nargs="+",
        default=[],
        metavar="URI",
        dest="inputs",
        help="files, folders (read recursively) or glob patterns on any Hadoop file system",
    )
    parser.add_argument(
        "--input-list",
        action="append",
        default=[],
        metavar="URI",
        dest="input_lists",
        help="a text file with one input URI per line (for lakes too large to list); repeatable",
    )
    parser.add_argument("--output", required=True, metavar="URI", help="root of fhir/, tables/ and runs/")
    _add_job_options(parser)


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="FILE",
        help="YAML merged over conf/sr2fhir.yaml; repeatable, later files win",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one setting, e.g. --set input.max_file_bytes=1000000",
    )
    parser.add_argument("--table-format", choices=["delta", "parquet"], help="default: output.table_format")
    parser.add_argument("--full-refresh", action="store_true", help="map every file again and rebuild all tables")
    parser.add_argument(
        "--retry-quarantined",
        action="store_true",
        help="map the inputs quarantined after crashing the mapping again (incremental.quarantine_after)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")


def _job_config(args: argparse.Namespace, inputs: list[str], output: str):
    from .config import load_config

    return load_config(
        inputs=inputs,
        input_lists=args.input_lists if "input_lists" in args else [],
        output=output,
        conf_files=args.conf,
        overrides=args.overrides,
        table_format=args.table_format,
        full_refresh=getattr(args, "full_refresh", False),
        retry_quarantined=getattr(args, "retry_quarantined", False),
        need_inputs=args.handler is not command_maintain,
    )


def _run_job(args: argparse.Namespace, config) -> dict:
    from .run import run

    return _on_session(args, config, run)


def _on_session(args: argparse.Namespace, config, work: Callable):
    """`work(spark, config)` on the given session or a local one started (and stopped) here."""
    from .spark.given import as_given
    from .spark.session import apply_runtime_settings, needs_s3, session_for

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("py4j").setLevel(logging.WARNING)  # not a line per connection it opens or closes
    for handler in logging.getLogger().handlers:
        handler.addFilter(_not_py4j_chatter)
    spark, started_here = session_for(config.spark, s3=needs_s3(config.uris), umask=config.out.umask)
    try:
        with as_given(spark, config.spark, started_here=started_here):  # quiet logs, a JVM shutdown is a stop
            apply_runtime_settings(spark, config.spark, umask=config.out.umask)
            return work(spark, config)
    finally:
        if started_here:
            _stop(spark)


def _not_py4j_chatter(record: logging.LogRecord) -> bool:
    """py4j logs some of its INFO lines on the root logger (a traceback per call that fails when the JVM is gone)."""
    return record.levelno >= logging.WARNING or f"{os.sep}py4j{os.sep}" not in record.pathname


STOP_TIMEOUT_SECONDS = 120


def _stop(spark) -> None:
    """Stop the session we started, but never wait forever: after a failure (an executor lost to an
    OutOfMemoryError, say) stopping can block, and the run must still end with its error."""
    stopper = threading.Thread(target=spark.stop, name="sr2fhir-stop", daemon=True)
    stopper.start()
    stopper.join(STOP_TIMEOUT_SECONDS)
    if stopper.is_alive():
        logging.getLogger("sr2fhir").warning("the Spark session did not stop in %d s; exiting", STOP_TIMEOUT_SECONDS)


def command_run(args: argparse.Namespace) -> int:
    config = _job_config(args, args.inputs, args.output)
    _print_summary(_run_job(args, config))
    return ExitStatus.OK


def command_maintain(args: argparse.Namespace) -> int:
    from .maintenance import maintain

    config = _job_config(args, [], args.output)
    report = _on_session(args, config, maintain)
    if report.exports is not None:
        print(f"FHIR exports: {report.exports.removed} removed, {report.exports.kept} kept")
    for name, table in report.tables.items():
        print(
            f"table {name}: {table.files_before} → {table.files_after} files"
            f" (OPTIMIZE {table.optimize_seconds:.1f} s), {table.stored_before} → {table.stored_after}"
            f" stored (VACUUM {table.vacuum_seconds:.1f} s)"
        )
    if not report.tables:
        print("no table to maintain (no Delta tables under the output, or Parquet tables)")
    return ExitStatus.OK


def command_sample(args: argparse.Namespace) -> int:
    """Write the built-in sample lake under OUTPUT/lake (the sample cohort, or with --count that many random
    reports), run the job on it into OUTPUT."""
    from sr2fhir_synth import write_sample_corpus, write_sample_lake

    output = Path(args.output).resolve()
    lake = output / "lake"
    files = write_sample_lake(lake) if args.count is None else write_sample_corpus(lake, count=args.count)
    print(f"sample lake: {len(files)} files in {lake}", file=sys.stderr)
    config = _job_config(args, [lake.as_uri()], output.as_uri())
    _print_summary(_run_job(args, config))
    return ExitStatus.OK


def _print_summary(summary: dict) -> None:
    files, docs = summary["files"], summary["documents"]
    lines = [
        f"run {summary['run_id']}: {files['found']} files found, {files['unchanged']} unchanged, "
        f"{files['processed']} mapped in {summary['elapsed_seconds']:.1f} s",
        f"  inputs: {docs['mapped']} mapped, {docs['rejected']} rejected, {docs['failed']} failed",
        "  rows: " + ", ".join(f"{k} {v}" for k, v in summary["rows"].items()),
    ]
    if summary["removed"]["files"]:
        removed = summary["removed"]
        lines.append(
            f"  removed: {removed['files']} files gone from the lake ({removed['inputs']} inputs), their rows deleted"
        )
    if summary["fhir"]:
        lines.append(f"  FHIR NDJSON: {summary['fhir']['directory']} (manifest.json)")
    if summary.get("deleted"):
        deleted = ", ".join(f"{t} {n}" for t, n in summary["deleted"].items())
        lines.append(f"  FHIR deletions (manifest's deleted): {deleted}")
    for name, uri in summary["tables"].items():
        lines.append(f"  table {name}: {uri}")
    lines.append(f"  run summary: {summary['output']}/runs/{summary['run_id']}.json")
    print("\n".join(lines))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sr2fhir", description="DICOM SR TID 1500 → FHIR R5 and research tables")
    commands = parser.add_subparsers(dest="command", required=True)
    map_parser = commands.add_parser("map", help="map SR files to FHIR Bundles with the core alone")
    map_parser.add_argument("files", nargs="+", metavar="FILE")
    map_parser.add_argument("-o", "--output", metavar="DIR", help="write one <file>.json Bundle per input here")
    map_parser.add_argument(
        "--base-url",
        default=BUNDLE_BASE_URL,
        metavar="URL",
        help=f"FHIR base of the Bundle entries' fullUrls, against which references resolve (default {BUNDLE_BASE_URL})",
    )
    _add_mapping_options(map_parser)
    map_parser.set_defaults(handler=command_map)
    run_parser = commands.add_parser("run", help="the lakehouse job: SR files on any file system → NDJSON and tables")
    _add_run_arguments(run_parser)
    run_parser.set_defaults(handler=command_run)
    maintain_parser = commands.add_parser(
        "maintain",
        help="OPTIMIZE (Z-order) and VACUUM the Delta tables of an output, delete old FHIR exports if configured"
        " (run between job runs)",
    )
    maintain_parser.add_argument("--output", required=True, metavar="URI", help="the output of `sr2fhir run`")
    maintain_parser.add_argument("--conf", action="append", default=[], metavar="FILE", help="as for run")
    maintain_parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help="as for run"
    )
    maintain_parser.add_argument("--table-format", choices=["delta", "parquet"], help="default: output.table_format")
    maintain_parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    maintain_parser.set_defaults(handler=command_maintain)
    sample_parser = commands.add_parser("sample", help="write the built-in sample lake and run the job on it")
    sample_parser.add_argument("--output", default="sample-output", metavar="DIR", help="default: ./sample-output")
    sample_parser.add_argument(
        "--count",
        type=int,
        default=None,
        help="instead of the sample cohort (7 patients followed over time), that many random generated reports",
    )
    _add_job_options(sample_parser)
    sample_parser.set_defaults(handler=command_sample)
    return parser


STOPPED = {"SIGTERM": ExitStatus.SIGTERM, "SIGINT": ExitStatus.SIGINT}
"""Exit status of a command stopped by a signal: 128 + its number, as a shell reports it."""


def _stopped(command: str, signal_name: str) -> int:
    recovery = "; the next run recovers what this one left uncommitted" if command in ("run", "sample") else ""
    print(f"sr2fhir {command}: stopped by {signal_name}{recovery}", file=sys.stderr)
    return STOPPED[signal_name]


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; every way it can end becomes an exit status and at most one line on stderr (docs/job.md,
    "Exit status")."""
    args = build_parser().parse_args(argv)
    command = args.command
    try:
        with stopping.on_sigterm():
            return int(args.handler(args))
    except KeyboardInterrupt:
        return _stopped(command, "SIGINT")
    except stopping.Stopped:
        return _stopped(command, "SIGTERM")
    except Exception as exc:
        if stopping.requested():  # a failure of the Spark jobs cancelled to stop it
            return _stopped(command, "SIGTERM")
        if isinstance(exc, JobError):
            print(f"sr2fhir {command}: {exc}", file=sys.stderr)
            return exc.exit_status
        # The run failed: nothing was committed to the ledger; the next run maps the same files again.
        logging.getLogger("sr2fhir").debug("%s failed", command, exc_info=True)
        print(f"sr2fhir {command}: failed: {failure_line(exc)}", file=sys.stderr)
        return ExitStatus.FAILED


if __name__ == "__main__":
    raise SystemExit(main())
