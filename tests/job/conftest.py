"""Fixtures of the job tests: moto's S3 server on loopback, a data lake that is not a mock."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from .helpers import BUCKET


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
