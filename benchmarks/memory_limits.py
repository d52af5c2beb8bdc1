"""What input size a local session can map, against its driver memory: the measurement behind the default of
`input.max_file_bytes` (jobs/limits.py).

    python -m benchmarks.memory_limits [--memory 1g,2g] [--mb 32,64,...] [--files 2]

For each driver memory and size, a lake of `--files` SRs of that size (a generated report with a private OB element
making up the size: the JVM holds bytes as bytes whatever they are; the reader skips the element by its length)
and `sr2fhir run` on it in its own process, local[2] as by default (two tasks, so two inputs in flight at once).
Records exit status, wall time and whether the JVM ran out of memory; prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydicom import dcmread
from pydicom.filebase import DicomBytesIO

from sr2fhir_synth import random_spec, write_sr

REPO = Path(__file__).resolve().parent.parent


def padded_sr(size: int, seed: int) -> bytes:
    """A valid TID 1500 SR of about `size` bytes: a generated report with a private OB element."""
    data = write_sr(random_spec(seed, target_items=30))
    dataset = dcmread(DicomBytesIO(data))
    dataset.add_new(0x00090010, "LO", "SR2FHIR PADDING")
    dataset.add_new(0x00091010, "OB", b"\x5a" * max(size - len(data), 0))
    out = DicomBytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def attempt(memory: str, megabytes: int, files: int, workdir: Path) -> dict:
    lake = workdir / f"lake-{megabytes}"
    if not lake.exists():
        lake.mkdir(parents=True)
        for i in range(files):
            (lake / f"big-{i}.dcm").write_bytes(padded_sr(megabytes << 20, seed=i))
    output = workdir / f"out-{memory}-{megabytes}"
    command = [
        sys.executable,
        "-m",
        "jobs.cli",
        "run",
        "-q",
        "--input",
        str(lake),
        "--output",
        str(output),
        "--set",
        f"input.max_file_bytes={1 << 40}",
        "--set",
        f"spark.settings.spark.driver.memory={memory}",
        "--set",
        "spark.class_archive_dir=null",
    ]
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False
    )
    return {
        "memory": memory,
        "mb": megabytes,
        "files": files,
        "exit": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "out_of_memory": "OutOfMemoryError" in done.stderr or "Java heap space" in done.stderr,
        "last_line": (done.stderr.strip().splitlines() or [""])[-1][:300],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory", default="1g,2g")
    parser.add_argument("--mb", default="32,64,96,128,160,200")
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / ".cache" / "memory_limits.json")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for memory in args.memory.split(","):
            for megabytes in (int(m) for m in args.mb.split(",")):
                result = attempt(memory, megabytes, args.files, Path(tmp))
                results.append(result)
                print(json.dumps(result), flush=True)
                if result["exit"] != 0:
                    break  # larger sizes fail too
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
