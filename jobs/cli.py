"""`sr2fhir` command line.

    sr2fhir map FILE... [-o DIR]     map SR files with the core alone: one FHIR Bundle (collection) per input
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sr2fhir_core import MappingOptions, dumps_json, map_sr


def _options(args: argparse.Namespace) -> MappingOptions:
    return MappingOptions(
        default_timezone=args.timezone,
        device_fallback=args.device_fallback,
        sop_class_system=args.sop_class_system,
    )


def _add_mapping_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("mapping options (docs/mapping-decisions.md)")
    group.add_argument("--timezone", default="+00:00", help="offset for DICOM times without one (default +00:00)")
    group.add_argument("--device-fallback", choices=["inherit", "equipment"], default="inherit")
    group.add_argument("--sop-class-system", choices=["ig", "rfc3986"], default="ig")


def command_map(args: argparse.Namespace) -> int:
    """Map each file; print the Bundle for a single file without -o, else write <name>.json into -o."""
    options = _options(args)
    files = [Path(f) for f in args.files]
    if args.output is None and len(files) != 1:
        print("sr2fhir map: give -o DIR to map more than one file", file=sys.stderr)
        return 2
    failures = 0
    for path in files:
        result = map_sr(path, options)
        record = result.record
        if not result.mapped:
            failures += 1
            print(f"{path}: {record.status.value} ({record.reason}): {record.message}", file=sys.stderr)
            continue
        bundle = dumps_json(result.bundle(), indent=True)
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
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sr2fhir", description="DICOM SR TID 1500 → FHIR R5 and research tables")
    commands = parser.add_subparsers(dest="command", required=True)
    map_parser = commands.add_parser("map", help="map SR files to FHIR Bundles with the core alone")
    map_parser.add_argument("files", nargs="+", metavar="FILE")
    map_parser.add_argument("-o", "--output", metavar="DIR", help="write one <file>.json Bundle per input here")
    _add_mapping_options(map_parser)
    map_parser.set_defaults(handler=command_map)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
