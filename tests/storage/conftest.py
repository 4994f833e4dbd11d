"""Fixtures for the storage tests.

S3: a real S3-compatible HTTP server (moto's server mode) on 127.0.0.1, one per session,
with a fresh bucket per test; boto3 sees dummy credentials only and no proxy settings, so
it can reach nothing but that server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import boto3
import pytest

from codeclab.storage.objects import LocalStore, ObjectStore, S3Options, S3Store

S3_REGION = "eu-west-3"
S3_PREFIX = "lab"
S3_PAGE_SIZE = 10
LINK_SECRET = bytes(range(32))

# -- S3 -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Base URL of a moto S3 server on 127.0.0.1 (a free port)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _isolate_from_aws(monkeypatch: pytest.MonkeyPatch, scratch: Path) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(scratch / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(scratch / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def aws_test_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, no AWS config files, no instance metadata, no proxies."""
    _isolate_from_aws(monkeypatch, tmp_path)


@pytest.fixture(scope="session")
def boto_session(tmp_path_factory: pytest.TempPathFactory) -> boto3.session.Session:
    """One boto3 session for the S3 tests (a client from a warm session costs ~5 ms, from a
    new one ~100 ms), with dummy credentials, loaded while isolated from AWS settings."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate_from_aws(monkeypatch, tmp_path_factory.mktemp("aws"))
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=S3_REGION
        )
        session.client("s3")  # reads the (absent) configuration now, and the S3 model
    return session


@pytest.fixture
def s3_client(moto_endpoint: str, boto_session: boto3.session.Session, aws_test_env: None) -> Any:
    """A plain boto3 client of the moto server, to look behind a store's back."""
    return boto_session.client("s3", endpoint_url=moto_endpoint, region_name=S3_REGION)


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """A new empty bucket in the moto server."""
    name = f"codeclab-test-{uuid4().hex[:12]}"
    s3_client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": S3_REGION}
    )
    return name


@pytest.fixture
def s3_options(moto_endpoint: str) -> S3Options:
    return S3Options(endpoint_url=moto_endpoint, region=S3_REGION, addressing_style="path")


@pytest.fixture
def s3_store(s3_bucket: str, s3_options: S3Options, boto_session: boto3.session.Session) -> S3Store:
    """An S3Store under prefix "lab/" of a fresh bucket, listing 10 keys per request."""
    return S3Store(
        s3_bucket, S3_PREFIX, options=s3_options, page_size=S3_PAGE_SIZE, session=boto_session
    )


# -- local ----------------------------------------------------------------------------------


@pytest.fixture
def file_store(tmp_path: Path) -> LocalStore:
    """A LocalStore in a fresh directory, signing links with a fixed secret."""
    return LocalStore(tmp_path / "store", signing_secret=LINK_SECRET)


# -- both -----------------------------------------------------------------------------------


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    """Each backend in turn, for the contract tests."""
    backend: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    return backend
