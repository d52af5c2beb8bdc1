"""Shared test fixtures. `../shared` (beside the checkout, or $SR2FHIR_SHARED) holds the IG notes and the
real-world corpus; tests that need it skip with a reason when it is absent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

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


@pytest.fixture(scope="session")
def spark(request: pytest.FixtureRequest) -> Iterator[SparkSession]:
    """One local[2] session for the Spark tests of a process. `make test` runs them in two xdist workers, each with its
    own JVM, a module to a worker (`--dist loadfile`), so a module-scoped run is made once. Delta always; hadoop-aws
    (and its ~690 MB AWS SDK bundle, fetched from Maven Central once per jar cache) only when the collected tests
    include one on the loopback S3 server (fixture `s3_endpoint`)."""
    pytest.importorskip("pyspark")
    from jobs.config import load_config
    from jobs.spark.session import local_session

    s3 = any("s3_endpoint" in getattr(item, "fixturenames", ()) for item in request.session.items)
    config = load_config(inputs=["unused"], output="unused", overrides=["output.progress_interval_seconds=0"])
    session = local_session(config.spark, s3=s3, umask=config.out.umask)
    yield session
    session.stop()
