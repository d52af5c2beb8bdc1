"""Shared test fixtures. `../shared` (beside the checkout, or $SR2FHIR_SHARED) holds the IG notes and the
real-world corpus; tests that need it skip with a reason when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_path() -> Path:
    return Path(os.environ.get("SR2FHIR_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = shared_path()
    if not (path / "corpus" / "MANIFEST.md").is_file():
        pytest.skip(f"shared corpus not found at {path} (set SR2FHIR_SHARED to its folder)")
    return path


@pytest.fixture(scope="session")
def corpus_dir(shared_dir: Path) -> Path:
    return shared_dir / "corpus"
