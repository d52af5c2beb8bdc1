"""Fixtures of the job tests: moto's S3 server on loopback, a data lake that is not a mock."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sr2fhir_synth import write_sample_corpus

from .helpers import BUCKET


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in sample lake (8 reports), written once: a test copies it (`helpers.copy_lake`) to change it."""
    lake = tmp_path_factory.mktemp("sample") / "lake"
    write_sample_corpus(lake, count=8)
    return lake


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[tuple[str, Any]]:
    """(endpoint URL, boto3 client) of a server with the bucket BUCKET; `helpers.s3_settings` points the job at it.
    One for the session: Hadoop caches the s3a file system of a bucket, endpoint included."""
    server_module = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()
