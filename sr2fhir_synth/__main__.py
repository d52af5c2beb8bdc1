"""`python -m sr2fhir_synth`: write synthetic TID 1500 reports.

python -m sr2fhir_synth corpus DIR [--count 24] [--seed 0]
python -m sr2fhir_synth report FILE --seed N [--target-items N] [--transfer-syntax UID] [--feature NAME ...]
python -m sr2fhir_synth report FILE --seed N --every-row
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .corpus import write_sample_corpus
from .every_row import every_row_spec
from .generate import Feature, random_spec
from .writer import Encoding, TransferSyntax, count_content_items, write_sr


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sr2fhir_synth", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    corpus = commands.add_parser("corpus", help="write the sample lake (valid reports and three bad inputs)")
    corpus.add_argument("directory", type=Path)
    corpus.add_argument("--count", type=int, default=24, help="valid reports to write (default 24)")
    corpus.add_argument("--seed", type=int, default=0)
    report = commands.add_parser("report", help="write one random report")
    report.add_argument("file", type=Path)
    report.add_argument("--seed", type=int, required=True)
    report.add_argument("--target-items", type=int, default=None, help="content items the report should have")
    report.add_argument(
        "--transfer-syntax",
        choices=[t.value for t in TransferSyntax],
        default=TransferSyntax.EXPLICIT_VR_LITTLE_ENDIAN.value,
    )
    report.add_argument(
        "--feature",
        action="append",
        default=[],
        choices=[f.value for f in Feature],
        help="an opt-in case to add (repeatable)",
    )
    report.add_argument(
        "--every-row", action="store_true", help="write every_row_spec(seed): every row of the TID 1500 templates"
    )
    args = parser.parse_args(argv)
    if args.command == "corpus":
        paths = write_sample_corpus(args.directory, count=args.count, seed=args.seed)
        print(f"wrote {len(paths)} files under {args.directory}", file=sys.stderr)
        return 0
    if args.every_row:
        spec = every_row_spec(args.seed)
    else:
        spec = random_spec(args.seed, args.target_items, features=args.feature)
    args.file.parent.mkdir(parents=True, exist_ok=True)
    args.file.write_bytes(write_sr(spec, Encoding(TransferSyntax(args.transfer_syntax))))
    print(f"wrote {args.file}: {count_content_items(spec)} content items", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
