"""Reader benchmark on the shared corpus: pydicom read + full walk, the reference reader, the fast reader
with each element scanner (C extension and pure Python), and `map_sr` end to end with each reader.

    PYTHONPATH=. python benchmarks/readers.py [corpus_dir] [--repeat N] [--only SUBSTRING]

Reports the median ms per file and µs per content item for each, and ratios within the same run (absolute
times on shared machines drift by a third; ratios measured side by side do not). `map_sr auto` uses the
scanner the process would use (`SCANNER`, printed first); the fast reader is measured with both when the
C scanner is built.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pydicom

from sr2fhir_core import MappingOptions, map_sr
from sr2fhir_core.content import count_items
from sr2fhir_core.options import Reader
from sr2fhir_core.reading import SCANNER, fast_parser, read_fast, read_with_pydicom

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def pydicom_walk(data: bytes) -> int:
    """What a plain pydicom job does: read, then touch every element of every nested data set."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    count = 0
    stack = [dataset]
    while stack:
        current = stack.pop()
        for element in current:
            count += 1
            if element.VR == "SQ":
                stack.extend(element.value)
    return count


def with_scanner(name: fast_parser.ScannerName, run: Callable[[bytes], object]) -> Callable[[bytes], object]:
    def scanned(data: bytes) -> object:
        with fast_parser.using_scanner(name):
            return run(data)

    return scanned


def median_seconds(run: Callable[[bytes], object], data: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default="", help="only files whose path contains this")
    args = parser.parse_args()

    files = sorted(path for path in args.corpus.rglob("*.dcm") if args.only in str(path))
    measures: dict[str, Callable[[bytes], object]] = {
        "pydicom walk": pydicom_walk,
        "pydicom reader": read_with_pydicom,
    }
    if fast_parser.C_SCANNER_AVAILABLE:
        measures["fast reader C"] = with_scanner("c", read_fast)
    measures["fast reader py"] = with_scanner("python", read_fast)
    measures["map_sr pydicom"] = lambda data: map_sr(data, MappingOptions(reader=Reader.PYDICOM))
    measures["map_sr auto"] = lambda data: map_sr(data, MappingOptions(reader=Reader.AUTO))
    fast = "fast reader C" if fast_parser.C_SCANNER_AVAILABLE else "fast reader py"
    print(f"scanner in use: {SCANNER} (C scanner built: {fast_parser.C_SCANNER_AVAILABLE})")
    header = f"{'file':58s} {'items':>6s}" + "".join(f" {name:>15s}" for name in measures)
    print("median ms per file (µs per content item)\n" + header)
    totals = dict.fromkeys(measures, 0.0)
    total_items = 0
    for path in files:
        data = path.read_bytes()
        try:
            document = read_with_pydicom(data)
        except Exception:  # not an SR: not part of the per-item numbers
            continue
        items = count_items(document.root) if document.root else 0
        if not items:
            continue
        repeat = max(1, args.repeat if len(data) < 500_000 else args.repeat // 2)
        row = f"{str(path.relative_to(args.corpus))[:58]:58s} {items:6d}"
        for name, run in measures.items():
            seconds = median_seconds(run, data, repeat)
            totals[name] += seconds
            row += f" {seconds * 1e3:7.2f} ({seconds * 1e6 / items:5.1f})"
        total_items += items
        print(row, flush=True)

    print(f"\nall SR files: {total_items} content items")
    for name, seconds in totals.items():
        print(f"  {name:15s} {seconds * 1e3:9.1f} ms  {seconds * 1e6 / total_items:7.2f} µs/item")
    walk, fastest = totals["pydicom walk"], totals[fast]
    print(
        f"\nratios (same run): pydicom walk / {fast} = {walk / fastest:.1f}x, "
        f"pydicom reader / {fast} = {totals['pydicom reader'] / fastest:.1f}x, "
        f"fast reader py / {fast} = {totals['fast reader py'] / fastest:.1f}x, "
        f"map_sr pydicom / map_sr auto = {totals['map_sr pydicom'] / totals['map_sr auto']:.1f}x, "
        f"pydicom walk / map_sr auto = {walk / totals['map_sr auto']:.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
