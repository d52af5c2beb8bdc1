"""The benchmark's inputs: the shared real corpus, a generated size curve, and a generated 10,000-file lake.

Generated files are cached under the cache directory (gitignored) with a manifest that records the
generator's fingerprint (a hash of `sr2fhir_synth`'s sources): a cache written by another generator
version is written again, never silently reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # at run time this module imports sr2fhir_synth only inside the functions that use it
    from sr2fhir_synth import Encoding, ReportSpec
    from sr2fhir_synth.spec import PatientSpec, StudySpec

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / "benchmarks" / ".cache"
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus"

CURVE_SIZES = (10, 30, 100, 300, 1000, 3000, 5000)
CURVE_SEEDS = 3
QUICK_CURVE_SIZES = (10, 100)
QUICK_CURVE_SEEDS = 1

LAKE_SHARD = 2_500
"""Files per shard folder of the generated lake: runs over 2,500 / 5,000 / 10,000 files take 1 / 2 / 4 shards."""
FILES_PER_FOLDER = 500
SRS_PER_STUDY = 4
STUDIES_PER_PATIENT = 2
LAKE_SEED = 1_000_000


def _lake_mix() -> tuple[tuple[str, Encoding, int], ...]:
    from sr2fhir_synth import Encoding, TransferSyntax

    explicit = TransferSyntax.EXPLICIT_VR_LITTLE_ENDIAN
    return (
        ("explicit VR little endian, defined lengths", Encoding(explicit), 14),
        ("explicit VR little endian, undefined-length sequences and items", Encoding(explicit, True, True), 3),
        ("implicit VR little endian", Encoding(TransferSyntax.IMPLICIT_VR_LITTLE_ENDIAN), 2),
        (
            "deflated explicit VR little endian, undefined-length sequences",
            Encoding(TransferSyntax.DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, undefined_length_sequences=True),
            1,
        ),
    )


LAKE_MIX_VERSION = "realistic-v1"
"""The lake's encodings, in a cycle of 20 files: 14 explicit VR little endian with defined lengths (what most
modalities and PACS write), 3 with undefined lengths (DCMTK-style), 2 implicit VR little endian (the default
syntax, still common in archives), 1 deflated. No Explicit VR Big Endian: retired since 2004 and rare in real
archives, while the fast reader hands it to pydicom (it was 65 % of the core's time when the lake cycled through
every encoding of the generator). The generator's `ENCODINGS` still cover all of them in the tests."""


def lake_encoding(index: int) -> tuple[str, Encoding]:
    """(label, Encoding) of lake file `index`: the mix in a fixed cycle, so any prefix of the lake has it."""
    slot = index % sum(weight for _, _, weight in _lake_mix())
    for label, encoding, weight in _lake_mix():
        if slot < weight:
            return label, encoding
        slot -= weight
    raise AssertionError("unreachable")


RADIOMICS_MIN_ITEMS = 4_000
"""The one real file this large (4,602 content items, a pyradiomics + dcmqi report) is its own corpus."""
NOT_TID1500_FOLDERS = ("negative", "inputs-dcmqi")


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    items: int
    label: str

    def as_dict(self) -> dict:
        return {"path": self.path, "items": self.items, "label": self.label}


def generator_fingerprint() -> str:
    digest = hashlib.sha256()
    for source in sorted((REPO / "sr2fhir_synth").glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def count_items(data: bytes) -> int:
    """Content items in the tree, counted by the core's reference (pydicom) reader."""
    from sr2fhir_core.content import count_items as count
    from sr2fhir_core.reading import read_with_pydicom

    document = read_with_pydicom(data)
    return count(document.root) if document.root else 0


def real_corpus(corpus: Path) -> tuple[list[Entry], list[Entry]]:
    """(the real TID 1500 files but the radiomics one, [the radiomics file]); negatives and dcmqi's inputs
    are not TID 1500 reports and are left out."""
    real: list[Entry] = []
    radiomics: list[Entry] = []
    for path in sorted(corpus.rglob("*.dcm")):
        relative = path.relative_to(corpus)
        if relative.parts[0] in NOT_TID1500_FOLDERS:
            continue
        entry = Entry(str(path), count_items(path.read_bytes()), str(relative))
        (radiomics if entry.items >= RADIOMICS_MIN_ITEMS else real).append(entry)
    return real, radiomics


def _manifest_ok(manifest: Path, expected: dict) -> dict | None:
    if not manifest.exists():
        return None
    try:
        stored = json.loads(manifest.read_text())
    except ValueError:
        return None
    if any(stored.get(key) != value for key, value in expected.items()):
        return None
    if not all(Path(e["path"]).exists() for e in stored["entries"]):
        return None
    return stored


def _curve_file(job: tuple[str, int, int]) -> dict:
    from sr2fhir_synth import count_content_items, random_spec, write_sr

    directory, items, seed = job
    spec = random_spec(seed, target_items=items)
    path = Path(directory) / f"items-{items:05d}-seed-{seed}.dcm"
    path.write_bytes(write_sr(spec))
    return Entry(str(path), count_content_items(spec), f"{items} items, seed {seed}").as_dict()


def curve_corpus(cache: Path, sizes: tuple[int, ...], seeds: int) -> list[Entry]:
    """Reports of exactly N content items (default encoding: explicit VR little endian, defined lengths),
    `seeds` different reports per size."""
    directory = cache / "curve"
    expected = {"generator": generator_fingerprint(), "sizes": list(sizes), "seeds": seeds}
    stored = _manifest_ok(directory / "manifest.json", expected)
    if stored is None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        jobs = [(str(directory), items, seed) for items in sizes for seed in range(1, seeds + 1)]
        with Pool(os.cpu_count() or 1) as pool:
            entries = pool.map(_curve_file, jobs, chunksize=1)
        stored = {**expected, "entries": entries}
        (directory / "manifest.json").write_text(json.dumps(stored, indent=1))
    return [Entry(**e) for e in stored["entries"]]


LAKE_KINDS = ("typical", "rich")
"""`typical`: random sizes, median ~65 content items and ~14 measurements per report (the sample lake's kind).
`rich`: 200-260 content items and at least `RICH_MIN_MEASUREMENTS` measurements per report (median ~38; what an
AI algorithm or a radiomics pipeline writes per study)."""
RICH_MIN_MEASUREMENTS = 30
RICH_ITEMS = (200, 260)
RICH_SEED = 20_000_000


def _spec(kind: str, index: int, patient: PatientSpec, study: StudySpec) -> ReportSpec:
    from sr2fhir_synth import random_spec, write_sr

    if kind == "typical":
        return random_spec(LAKE_SEED + index, patient=patient, study=study)
    from sr2fhir_core import map_sr

    # Draws until the report has enough measurements (as the mapped table counts them): sizes alone give 24-54.
    for attempt in range(100):
        seed = RICH_SEED + 100 * index + attempt
        items = random.Random(seed).randint(*RICH_ITEMS)
        spec = random_spec(seed, items, patient=patient, study=study)
        if len(map_sr(write_sr(spec)).rows["measurements"]) >= RICH_MIN_MEASUREMENTS:
            return spec
    raise RuntimeError(f"no rich report for lake file {index} in 100 draws")


def _lake_file(job: tuple[str, str, int]) -> dict:
    from sr2fhir_synth import count_content_items, random_spec, write_sr

    root, kind, index = job
    study = index // SRS_PER_STUDY
    patient = study // STUDIES_PER_PATIENT
    spec = _spec(
        kind,
        index,
        patient=random_spec(LAKE_SEED + 7_000_000 + patient).patient,
        study=random_spec(LAKE_SEED + 3_000_000 + study).study,
    )
    shard, folder = index // LAKE_SHARD, (index % LAKE_SHARD) // FILES_PER_FOLDER
    path = Path(root) / f"shard-{shard}" / f"{folder:02d}" / f"sr-{index:05d}.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(write_sr(spec, lake_encoding(index)[1]))
    return Entry(str(path), count_content_items(spec), f"lake {index}").as_dict()


def lake_corpus(cache: Path, count: int, kind: str = "typical") -> tuple[Path, list[Entry]]:
    """`count` (a multiple of 2,500, or fewer than 2,500) reports of `kind` (`LAKE_KINDS`), encodings in the
    realistic mix of `lake_encoding`, 4 SRs per study and 2 studies per patient. Written once with one process
    per core; reused while the generator, the kind, the mix and the count are unchanged."""
    root = cache / (f"lake-{count}" if kind == "typical" else f"lake-{kind}-{count}")
    mix = [[label, repr(encoding), weight] for label, encoding, weight in _lake_mix()]
    expected = {
        "generator": generator_fingerprint(),
        "count": count,
        "shard": LAKE_SHARD,
        "encodings": {"version": LAKE_MIX_VERSION, "mix": mix},
        **({} if kind == "typical" else {"kind": kind, "min_measurements": RICH_MIN_MEASUREMENTS}),
    }
    stored = _manifest_ok(root / "manifest.json", expected)
    if stored is None:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        with Pool(os.cpu_count() or 1) as pool:
            entries = pool.map(_lake_file, [(str(root), kind, i) for i in range(count)], chunksize=50)
        stored = {**expected, "entries": entries}
        (root / "manifest.json").write_text(json.dumps(stored))
    return root, [Entry(**e) for e in stored["entries"]]


def lake_shards(root: Path, files: int) -> list[Path]:
    """Shard folders holding the first `files` files of the lake."""
    shards = max(1, -(-files // LAKE_SHARD))
    return [root / f"shard-{k}" for k in range(shards)]


WARMUP_SEEDS = (424_242, 424_246)
"""Two warm-up reports: the second uses legacy SNOMED RT codes, whose first sight costs a one-off import."""


def warmup_files(cache: Path) -> list[Path]:
    """Small generated reports outside every measured set: each worker maps them first, so imports and
    first-call costs are not charged to a measured file."""
    from sr2fhir_synth import random_spec, write_sr

    paths = []
    for seed in WARMUP_SEEDS:
        path = cache / "warmup" / f"warmup-30-items-{seed}.dcm"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(write_sr(random_spec(seed, target_items=30)))
        paths.append(path)
    return paths
