"""The measured methods. Each is a factory that imports what it needs (so a worker process holds only its own
method's libraries) and returns `run(path, data) -> Outcome` for one file.

    pydicom_walk   the baseline: `dcmread`, then touch every element of every nested data set
    highdicom      `highdicom.sr.srread` + every measurement group, its measurements and evaluations
    dcmqi          dcmqi's `tid1500reader` binary, one process per file writing JSON, which is then loaded
    core_auto      sr2fhir: `map_sr` (default reader) + `dumps_json` of every resource (rows are built by map_sr)
    core_pydicom   the same with `Reader.PYDICOM`
    core_reader    the core's reader alone (`read_document`, default reader): how the core's time splits
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    found: int | None = None
    """Measurements + evaluations (peers), resources (core), elements (walk), content items (reader)."""
    detail: str | None = None
    """Why a file failed, or what is odd about it (an empty result)."""


Run = Callable[[Path, bytes], Outcome]

LABELS = {
    "pydicom_walk": "pydicom dcmread + full walk (baseline)",
    "highdicom": "highdicom srread + TID 1500 groups",
    "dcmqi": "dcmqi tid1500reader (process per file)",
    "core_auto": "sr2fhir core, default reader",
    "core_pydicom": "sr2fhir core, pydicom reader",
    "core_reader": "sr2fhir reader only (default)",
}
BASELINE = "pydicom_walk"
CORE = "core_auto"


def pydicom_walk() -> Run:
    import pydicom

    def run(path: Path, data: bytes) -> Outcome:
        dataset = pydicom.dcmread(io.BytesIO(data))
        count = 0
        stack = [dataset]
        while stack:
            current = stack.pop()
            for element in current:
                count += 1
                if element.VR == "SQ":
                    stack.extend(element.value)
        return Outcome(True, count)

    return run


def highdicom() -> Run:
    import warnings

    import highdicom as hd

    getters = (
        "get_planar_roi_measurement_groups",
        "get_volumetric_roi_measurement_groups",
        "get_image_measurement_groups",
    )

    def run(path: Path, data: bytes) -> Outcome:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                report = hd.sr.srread(io.BytesIO(data))
                content = report.content
                groups = [group for getter in getters for group in getattr(content, getter)()]
                found = 0
                for group in groups:
                    for measurement in group.get_measurements():
                        _ = (measurement.name, measurement.value, measurement.unit, measurement.qualifier)
                        found += 1
                    for evaluation in group.get_qualitative_evaluations():
                        _ = (evaluation.name, evaluation.value)
                        found += 1
            except Exception as exc:
                return Outcome(False, None, f"{type(exc).__name__}: {str(exc)[:120]}")
        if not found:
            return Outcome(False, 0, "no measurements found")
        return Outcome(True, found)

    return run


def dcmqi_binary() -> Path:
    """The native `tid1500reader` inside the dcmqi wheel. The console script of the same name is a Python
    wrapper that starts an interpreter first (~0.1 s a call), which is not dcmqi's cost."""
    import dcmqi

    return dcmqi._lookup("tid1500reader")


def dcmqi() -> Run:
    import orjson

    binary = str(dcmqi_binary())
    scratch = Path(tempfile.mkdtemp(prefix="bench-dcmqi-"))
    output = str(scratch / "out.json")

    def run(path: Path, data: bytes) -> Outcome:
        done = subprocess.run(
            [binary, "--inputDICOM", str(path), "--outputMetadata", output],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        out = Path(output)
        if done.returncode != 0 or not out.exists():
            return Outcome(False, None, f"exit status {done.returncode}")
        metadata = orjson.loads(out.read_bytes())
        out.unlink()
        found = sum(
            len(group.get("measurementItems", [])) + len(group.get("qualitativeEvaluations", []))
            for group in metadata.get("Measurements", [])
        )
        if not found:
            return Outcome(False, 0, "no measurements found")
        return Outcome(True, found)

    return run


def dcmqi_peak_rss_mb(paths: list[Path]) -> float | None:
    """dcmqi's own peak RSS over the files, by GNU time (`%M`) in an untimed pass. Not from `wait4` in this
    process: Linux carries the parent's RSS high-water mark across fork and exec into the child's ru_maxrss."""
    time_binary = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    if time_binary is None:
        return None
    binary = str(dcmqi_binary())
    scratch = Path(tempfile.mkdtemp(prefix="bench-dcmqi-rss-"))
    peak = 0
    for path in paths:
        done = subprocess.run(
            [time_binary, "-f", "%M", binary, "--inputDICOM", str(path), "--outputMetadata", str(scratch / "o.json")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        lines = done.stderr.strip().splitlines()
        if lines and lines[-1].strip().isdigit():
            peak = max(peak, int(lines[-1]))
    shutil.rmtree(scratch, ignore_errors=True)
    return peak / 1024 if peak else None


def _core(reader_name: str) -> Run:
    from sr2fhir_core import MappingOptions, dumps_json, map_sr
    from sr2fhir_core.options import Reader

    options = MappingOptions(reader=Reader(reader_name))

    def run(path: Path, data: bytes) -> Outcome:
        result = map_sr(data, options)
        for resource in result.resources:
            dumps_json(resource)
        if not result.mapped:
            return Outcome(False, None, f"{result.record.status.value}/{result.record.reason}")
        return Outcome(True, len(result.resources))

    return run


def core_auto() -> Run:
    return _core("auto")


def core_pydicom() -> Run:
    return _core("pydicom")


def core_reader() -> Run:
    from sr2fhir_core.content import count_items
    from sr2fhir_core.reading import read_document

    def run(path: Path, data: bytes) -> Outcome:
        try:
            document = read_document(data)
        except Exception as exc:
            return Outcome(False, None, type(exc).__name__)
        return Outcome(True, count_items(document.root) if document.root else 0)

    return run


FACTORIES: dict[str, Callable[[], Run]] = {
    "pydicom_walk": pydicom_walk,
    "highdicom": highdicom,
    "dcmqi": dcmqi,
    "core_auto": core_auto,
    "core_pydicom": core_pydicom,
    "core_reader": core_reader,
}
