"""The import contracts in pyproject.toml (`lint-imports`, run by `make lint`) hold, and they would catch a break:
on a copy of the packages, each deliberately bad import below fails its contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("sr2fhir_core", "sr2fhir_synth", "jobs")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    if not LINT_IMPORTS.exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[dev]')")
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_project_keeps_its_contracts(copy: Path) -> None:
    done = _lint(copy)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("sr2fhir_core/rows.py", "import pyspark", "The core is pure"),
        ("sr2fhir_core/fhir/observations.py", "import pydicom", "Only the reading layer knows DICOM encoding"),
        ("sr2fhir_core/rows.py", "from .reading import read_document", "the rows read the content tree"),
        ("jobs/staging.py", "from sr2fhir_core.rows import build_rows", "public names only"),
        ("jobs/sinks/tables.py", "import sr2fhir_synth", "the generator only for the sample command"),
        ("jobs/spark/fs.py", "from jobs.run import context", "No import cycles"),
    ],
)
def test_a_bad_import_breaks_its_contract(copy: Path, module: str, line: str, contract: str) -> None:
    path = copy / module
    text = path.read_text()
    marker = "from __future__ import annotations\n"
    assert marker in text
    path.write_text(text.replace(marker, f"{marker}\n{line}  # noqa\n", 1))
    done = _lint(copy)
    assert done.returncode != 0
    broken = done.stdout.split("Broken contracts")[-1]
    assert contract in broken, done.stdout[-3000:]
