"""The dashboard on an S3 store (a real S3-compatible server: moto on 127.0.0.1): links in
pages and from the API are presigned by the store, and serve the objects."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from fastapi.testclient import TestClient

from codeclab.config import Settings
from codeclab.lab import Lab
from codeclab.storage.objects import S3Options, S3Store
from codeclab.storage.publish import artifact_keys
from codeclab.storage.records import RecordStore
from codeclab.web.access import Access
from codeclab.web.app import create_app

boto3 = pytest.importorskip("boto3")
REGION = "eu-west-3"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_lab(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Lab, str]]:
    """A lab whose objects are in a fresh bucket, holding one published experiment."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    bucket = f"codeclab-web-{uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    options = S3Options(endpoint_url=moto_endpoint, region=REGION, addressing_style="path")
    store = S3Store(bucket, "lab", options=options)
    settings = Settings(data_dir=tmp_path / "data", store_url=f"s3://{bucket}/lab")
    records = RecordStore.open(settings.database)
    record = records.create_experiment(designer="test", rationale="On S3")
    keys = artifact_keys(record.id, "0" * 64)
    for name, key in keys.items():
        store.put_bytes(key, f"{name} of {record.id}".encode())
    records.update_experiment(
        record.id, status="completed", publish_status="published", artifacts=keys
    )
    yield Lab(settings, records, store), record.id


def test_pages_and_api_hand_out_presigned_links_that_serve_the_objects(
    s3_lab: tuple[Lab, str], moto_endpoint: str
) -> None:
    lab, exp_id = s3_lab
    app = create_app(lab.settings, access=Access(), lab=lab)
    with TestClient(app) as client:
        page = client.get("/blog")
        assert f"media-src 'self' blob: {moto_endpoint}" in page.headers["content-security-policy"]
        assert f"{moto_endpoint}/" in page.text and "X-Amz-Signature=" in page.text
        links = client.post(f"/api/experiments/{exp_id}/links", params={"expires": "1h"}).json()
        decoder = links["links"]["decoder"]
        assert parse_qs(urlsplit(decoder).query)["X-Amz-Expires"] == ["3600"]
        assert httpx.get(decoder).content == f"decoder of {exp_id}".encode()
        package = client.get(f"/api/experiments/{exp_id}/package", follow_redirects=False)
        assert package.status_code == 307
        assert httpx.get(package.headers["location"]).content == f"package of {exp_id}".encode()
        key = lab.records.get_experiment(exp_id).artifacts["decoder"]
        assert client.get(f"/objects/{key}").status_code == 404  # no local-link route (403)
