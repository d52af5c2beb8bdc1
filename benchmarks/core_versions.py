"""CPU per file of `map_sr` + `dumps_json` for two checkouts of the core in the same run: this one and a baseline
(`--baseline DIR`, e.g. a worktree of an earlier commit with its C extensions built in place).

    PYTHONPATH=. python -m benchmarks.core_versions --baseline /tmp/old

Each checkout maps the same inputs in a process of its own (the checkout first on PYTHONPATH): the real corpus
(`../shared/corpus`, negatives left out) and 300 generated reports (`random_spec` seeds 0–299, written by this
checkout's generator once, so both cores read the same bytes). Five rounds after a warm-up; the minimum CPU time
per file is reported (least disturbed by other work), and the checkouts alternate `--pairs` times so that drift in
the machine's speed hits both alike. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path(os.environ.get("SR2FHIR_SHARED", REPO.parent / "shared")) / "corpus"
ROUNDS = 5

_MEASURE = r"""
import json, sys, time
from pathlib import Path
from sr2fhir_core import dumps_json, map_sr
folders = json.loads(sys.argv[1])
sets = {name: [p.read_bytes() for p in sorted(Path(folder).glob("*.dcm"))] for name, folder in folders.items()}

def run(data):
    start = time.process_time()
    for report in data:
        for resource in map_sr(report).resources:
            dumps_json(resource)
    return time.process_time() - start

for data in sets.values():
    run(data)
best = {name: min(run(data) for _ in range(int(sys.argv[2]))) * 1000 / len(data) for name, data in sets.items()}
print(json.dumps(best))
"""


def _inputs(corpus: Path, work: Path) -> dict[str, str]:
    from sr2fhir_synth import random_spec, write_sr

    real, generated = work / "corpus", work / "generated"
    real.mkdir()
    generated.mkdir()
    files = [p for p in sorted(corpus.rglob("*.dcm")) if "negative" not in p.parts and "inputs-dcmqi" not in p.parts]
    for index, path in enumerate(files):
        (real / f"{index:03d}.dcm").write_bytes(path.read_bytes())
    for seed in range(300):
        (generated / f"{seed:03d}.dcm").write_bytes(write_sr(random_spec(seed)))
    return {"corpus": str(real), "generated": str(generated)}


def _measure(checkout: Path, inputs: dict[str, str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(inputs), str(ROUNDS)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the core to compare with")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--pairs", type=int, default=2, help="alternations of the two checkouts")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        inputs = _inputs(args.corpus, Path(work))
        for _ in range(args.pairs):
            for name, checkout in (("baseline", args.baseline.resolve()), ("this", REPO)):
                result = _measure(checkout, inputs)
                print(name, {k: round(v, 3) for k, v in result.items()}, "CPU ms per file (min of rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
