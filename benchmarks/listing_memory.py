"""The driver's memory per listed file (docs/scaling.md): `sr2fhir run` over lakes of N tiny files that are not
DICOM (each mapped at once to rejected/not_dicom, so the run is listing, selection, planning and ledger: what the
driver holds per file), with the live-heap probe of `benchmarks/spark.py` (a full collection forced every 2 s, the
heap each leaves read from the JVM's GC log). In local mode the driver's JVM is the executor too; the tiny files
keep the executors' share near nothing. The Python driver's RSS is sampled beside it.

    PYTHONPATH=. python -m benchmarks.listing_memory /tmp/listing-memory 5000 40000
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .spark import run_job

FILES_PER_FOLDER = 1000
CONTENT = b"not a DICOM file: sr2fhir listing benchmark\n"


def write_lake(root: Path, files: int) -> Path:
    lake = root / f"tiny-{files}"
    if not lake.is_dir():
        for number in range(files):
            folder = lake / f"{number // FILES_PER_FOLDER:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{number:08d}.bin").write_bytes(CONTENT)
    return lake


def measure(root: Path, files: int) -> dict:
    result = run_job([write_lake(root, files)], root / f"work-{files}", live_heap_every=2.0)
    if not result["ok"]:
        raise RuntimeError(result["log_tail"])
    memory = result["memory"]
    return {
        "files": result["files_found"],
        "elapsed_seconds": result["elapsed_seconds"],
        "step_seconds": result["step_seconds"],
        "live_heap_mb": result["live_heap"],
        "jvm_rss_mb": memory["jvm_rss_mb"],
        "driver_rss_mb": memory["driver_rss_mb"],
    }


def main(argv: list[str]) -> None:
    root = Path(argv[0])
    root.mkdir(parents=True, exist_ok=True)
    runs = [measure(root, int(files)) for files in argv[1:]]
    small, large = runs[0], runs[-1]
    extra = large["files"] - small["files"]
    per_file = {
        "live_heap_peak_bytes": (large["live_heap_mb"]["peak_mb"] - small["live_heap_mb"]["peak_mb"]) * 2**20 / extra,
        "python_driver_rss_bytes": (large["driver_rss_mb"] - small["driver_rss_mb"]) * 2**20 / extra,
    }
    print(json.dumps({"runs": runs, "per_extra_file": per_file}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
