"""How long the core takes to decide inputs built to be slow (issue 17), and normal reports, for two checkouts of
the core in the same run: this one and a baseline (`--baseline DIR`, e.g. a worktree of main with its C
extensions built in place).

    PYTHONPATH=. python -m benchmarks.poison --baseline ../main     # writes benchmarks/POISON.md and poison.json

Every measurement runs `map_sr` (default reader) in a fresh process with the checkout first on PYTHONPATH: CPU
time (less disturbed than wall time by other work on a shared machine), wall time, the process's peak RSS and
the record's status/reason; small inputs are mapped several times in their process and the median taken. The
two checkouts alternate input by input, so drift in the machine's speed hits both alike. A measurement that
runs past `TIMEOUT_S` is stopped and reported as such.

Inputs (generated under `--cache`, default benchmarks/.cache/poison; the large synthetic report takes a few
minutes once): zero, 0xFF, random and text bytes of 20 MiB; a Part 10 header followed by zeros; a report
followed by 10 or 20 MiB of zeros or random bytes, or by repeated copies of one private element; a generated
19 MB report of 100,000 content items, as written and with one byte flipped at a few places; the real corpus's
radiomics report with one byte changed at seeded places (point 6 of the issue); and every real report of the
corpus as it is (normal reports: what must not get slower).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / "benchmarks" / ".cache" / "poison"
DEFAULT_CORPUS = Path(os.environ.get("SR2FHIR_SHARED", REPO.parent / "shared")) / "corpus"
MIB = 1 << 20
TIMEOUT_S = 180
RADIOMICS = "tid1500-fhir/rsna2018_dataset3__1.2.276.0.7230010.3.1.4.0.13541.1541454323.848792.dcm"
RADIOMICS_MUTATIONS = 40
LARGE_ITEMS = 100_000

_MEASURE = r"""
import json, os, statistics, sys, time, warnings
warnings.simplefilter("ignore")
from sr2fhir_core import map_sr
path, repeat = sys.argv[1], int(sys.argv[2])
data = open(path, "rb").read()
cpu, wall = [], []
for _ in range(repeat):
    c, w = time.process_time(), time.perf_counter()
    result = map_sr(data)
    cpu.append(time.process_time() - c); wall.append(time.perf_counter() - w)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"cpu": statistics.median(cpu), "wall": statistics.median(wall), "rss_mb": round(peak),
                  "status": result.record.status.value, "reason": result.record.reason}))
"""


def measure(tree: Path, path: Path, repeat: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(path), str(repeat)],
            env=env,
            cwd=tree,  # `python -c` puts the working directory first on sys.path, before PYTHONPATH
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return {"timeout": TIMEOUT_S}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _write(path: Path, data: bytes) -> Path:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def _report(seed: int = 3) -> bytes:
    from sr2fhir_synth import random_spec, write_sr

    return write_sr(random_spec(seed=seed))


def adversarial_inputs(cache: Path) -> list[tuple[str, Path]]:
    rng = random.Random(17)
    report = _report()
    header_end = report.index(b"\x08\x00", 132 + 12)  # past the file meta (group 0002)
    private = b"\x09\x00\x10\x10LO\x02\x00x "  # (0009,1010) LO: the same element again and again
    inputs = [
        ("20 MiB of zeros", lambda: bytes(20 * MIB)),
        ("20 MiB of 0xFF", lambda: b"\xff" * (20 * MIB)),
        ("20 MiB of random bytes", lambda: rng.randbytes(20 * MIB)),
        ("20 MiB of text", lambda: b"not a DICOM file at all\n" * (20 * MIB // 24)),
        ("Part 10 header + 20 MiB of zeros", lambda: report[:header_end] + bytes(20 * MIB)),
        ("report + 10 MiB of zeros", lambda: report + bytes(10 * MIB)),
        ("report + 20 MiB of zeros", lambda: report + bytes(20 * MIB)),
        ("report + 20 MiB of random bytes", lambda: report + rng.randbytes(20 * MIB)),
        ("report + 20 MiB of one element repeated", lambda: report + private * (20 * MIB // len(private))),
    ]
    return [(name, _write(cache / f"{index:02d}.bin", make())) for index, (name, make) in enumerate(inputs)]


def large_inputs(cache: Path) -> list[tuple[str, Path]]:
    path = cache / f"large-{LARGE_ITEMS}.dcm"
    if not path.exists():
        from sr2fhir_synth import random_spec, write_sr

        print(f"writing a {LARGE_ITEMS:,}-item report (once, a few minutes)", file=sys.stderr)
        _write(path, write_sr(random_spec(seed=1, target_items=LARGE_ITEMS)))
    data = path.read_bytes()
    inputs = [(f"generated report, {LARGE_ITEMS:,} items ({len(data) / 1e6:.0f} MB)", path)]
    rng = random.Random(1500)
    for index in range(3):
        mutated = bytearray(data)
        mutated[rng.randrange(1000, len(data))] ^= 1 << rng.randrange(8)
        inputs.append(
            (f"the same, one bit flipped (#{index + 1})", _write(cache / f"large-flip-{index}.dcm", bytes(mutated)))
        )
    return inputs


def radiomics_mutations(cache: Path, corpus: Path) -> list[tuple[str, Path]]:
    source = corpus / RADIOMICS
    if not source.exists():
        return []
    data = source.read_bytes()
    rng = random.Random(6)
    inputs = []
    for index in range(RADIOMICS_MUTATIONS):
        mutated = bytearray(data)
        mutated[rng.randrange(132, len(data))] = rng.randrange(256)
        inputs.append(
            (
                f"radiomics, one byte changed (#{index + 1})",
                _write(cache / f"radiomics-{index:02d}.dcm", bytes(mutated)),
            )
        )
    return inputs


def corpus_reports(corpus: Path) -> list[tuple[str, Path]]:
    """The real TID 1500 reports (MANIFEST.md): every .dcm outside negative/ and inputs-dcmqi/."""
    paths = sorted(
        p for p in corpus.rglob("*.dcm") if p.relative_to(corpus).parts[0] not in ("negative", "inputs-dcmqi")
    )
    return [(str(path.relative_to(corpus)), path) for path in paths]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the core to compare with")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks")
    args = parser.parse_args(argv)
    trees = {"baseline": args.baseline.resolve(), "this": REPO}
    groups = {
        "adversarial": adversarial_inputs(args.cache),
        "large": large_inputs(args.cache),
        "radiomics": radiomics_mutations(args.cache, args.corpus),
        "normal": corpus_reports(args.corpus) if (args.corpus / "MANIFEST.md").exists() else [],
    }
    results: dict[str, list[dict]] = {}
    started = time.monotonic()
    for group, inputs in groups.items():
        results[group] = []
        for name, path in inputs:
            size = path.stat().st_size
            repeat = 1 if size > 4 * MIB else 3 if size > 200_000 else 15
            row: dict = {"input": name, "bytes": size}
            for label, tree in trees.items():
                row[label] = measure(tree, path, repeat)
            results[group].append(row)
            print(
                f"[{time.monotonic() - started:6.0f} s] {group}: {name}: {row['baseline']} -> {row['this']}",
                file=sys.stderr,
            )
    meta = {"load_average": os.getloadavg(), "cpus": os.cpu_count(), "baseline": str(trees["baseline"])}
    (args.output / "poison.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1) + "\n")
    (args.output / "POISON.md").write_text(report(results, meta))
    return 0


def _cell(measured: dict) -> str:
    if "timeout" in measured:
        return f"> {measured['timeout']} s"
    reason = f"/{measured['reason']}" if measured["reason"] else ""
    return f"{measured['cpu']:.3f} s ({measured['status']}{reason}, {measured['rss_mb']} MB)"


def report(results: dict[str, list[dict]], meta: dict) -> str:
    load = " / ".join(f"{x:.1f}" for x in meta["load_average"])
    lines = [
        "# Deciding inputs built to be slow, and normal reports (benchmarks/poison.py)",
        "",
        "Written by `python -m benchmarks.poison`; CPU seconds of one `map_sr` call (default reader; the median of",
        "several calls for inputs under 4 MiB), the verdict and the process's peak RSS, for the baseline checkout",
        f"and this one, in the same run (load average at the end: {load} on {meta['cpus']} cores).",
    ]
    for group, title in (
        ("adversarial", "Junk, padding and repetition"),
        ("large", "A large generated report"),
        ("radiomics", "The real radiomics report, one byte changed"),
        ("normal", "Normal reports (the real corpus)"),
    ):
        rows = results.get(group) or []
        if not rows:
            continue
        lines += ["", f"## {title}", "", "| input | bytes | baseline | this | ratio |", "|---|---|---|---|---|"]
        for row in rows:
            base, this = row["baseline"], row["this"]
            ratio = f"{base['cpu'] / this['cpu']:.1f}x" if "cpu" in base and "cpu" in this and this["cpu"] else "-"
            lines.append(f"| {row['input']} | {row['bytes']:,} | {_cell(base)} | {_cell(this)} | {ratio} |")
        timed = [row for row in rows if "cpu" in row["baseline"] and "cpu" in row["this"]]
        if group in ("radiomics", "normal") and timed:
            base_total = sum(row["baseline"]["cpu"] for row in timed)
            this_total = sum(row["this"]["cpu"] for row in timed)
            worst = max(timed, key=lambda row: row["this"]["cpu"] / row["bytes"])
            lines += [
                "",
                f"Total CPU over these inputs: baseline {base_total:.3f} s, this {this_total:.3f} s "
                f"(ratio {base_total / this_total:.2f}x); median per input baseline "
                f"{statistics.median(r['baseline']['cpu'] for r in timed):.4f} s, this "
                f"{statistics.median(r['this']['cpu'] for r in timed):.4f} s; slowest per MB here: "
                f"{worst['this']['cpu'] / worst['bytes'] * 1e6:.2f} s per MB ({worst['input']}).",
            ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
