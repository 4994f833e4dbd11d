"""The route that serves the local store's signed links, in-process and over real HTTP."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from codeclab.storage.objects import LocalStore
from codeclab.storage.signing import signed_url
from codeclab.web.objects import objects_router

SECRET = bytes(range(32))
KEY = "previews/exp 1.mp4"


@pytest.fixture
def video() -> bytes:
    return os.urandom(1000)


@pytest.fixture
def store(tmp_path: Path, video: bytes) -> LocalStore:
    """A local store holding a 1000-byte video at KEY, making links for the test client."""
    store = LocalStore(
        tmp_path / "store", signing_secret=SECRET, public_base_url="http://testserver"
    )
    store.put_bytes(KEY, video)
    return store


@pytest.fixture
def app(store: LocalStore) -> FastAPI:
    app = FastAPI()
    app.include_router(objects_router(store, SECRET))
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def link(key: str, *, expires_at: int | None = None, base: str = "http://testserver") -> str:
    """A link to `key` signed with SECRET, by default good for an hour."""
    expires = int(time.time()) + 3600 if expires_at is None else expires_at
    return signed_url(base, key, expires, SECRET)


def tamper_key(url: str, new_key_path: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path=f"/objects/{new_key_path}").geturl()


def tamper_signature(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    signature = query["signature"]
    query["signature"] = ("1" if signature[0] == "0" else "0") + signature[1:]
    return parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()


# -- in-process (Starlette's TestClient) ----------------------------------------------------


def test_a_link_from_the_store_serves_the_object_with_its_content_type(
    client: TestClient, store: LocalStore, video: bytes
) -> None:
    response = client.get(store.url(KEY))

    assert response.status_code == 200
    assert response.content == video
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"].startswith("inline;")


def test_a_byte_range_is_answered_with_206_and_content_range(
    client: TestClient, video: bytes
) -> None:
    response = client.get(link(KEY), headers={"Range": "bytes=0-99"})

    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 0-99/1000"
    assert response.content == video[:100]


def test_an_open_ended_range_gives_the_tail(client: TestClient, video: bytes) -> None:
    response = client.get(link(KEY), headers={"Range": "bytes=900-"})

    assert response.status_code == 206
    assert response.headers["content-range"] == "bytes 900-999/1000"
    assert response.content == video[900:]


def test_head_gives_the_headers_without_the_body(client: TestClient) -> None:
    response = client.head(link(KEY))

    assert response.status_code == 200
    assert response.headers["content-length"] == "1000"
    assert response.headers["content-type"] == "video/mp4"
    assert response.content == b""


def test_an_expired_link_is_refused_with_403(client: TestClient) -> None:
    response = client.get(link(KEY, expires_at=int(time.time()) - 1))

    assert response.status_code == 403
    assert response.text == "link expired\n"
    assert response.headers["content-type"].startswith("text/plain")


def test_a_link_with_another_key_is_refused_with_403(client: TestClient, store: LocalStore) -> None:
    store.put_bytes("previews/secret.mp4", b"not yours")

    response = client.get(tamper_key(link(KEY), "previews/secret.mp4"))

    assert response.status_code == 403
    assert response.text.startswith("invalid signature")


def test_a_link_with_an_altered_signature_is_refused_with_403(client: TestClient) -> None:
    response = client.get(tamper_signature(link(KEY)))

    assert response.status_code == 403
    assert response.text.startswith("invalid signature")


@pytest.mark.parametrize(
    "query", ["", "?expires=soon&signature=" + "0" * 64, "?expires=1800000000&signature=abc"]
)
def test_an_unsigned_or_malformed_link_is_refused_with_403(client: TestClient, query: str) -> None:
    response = client.get("/objects/previews/exp%201.mp4" + query)

    assert response.status_code == 403
    assert response.text.startswith("malformed link")


def test_a_signed_link_to_a_missing_object_is_404(client: TestClient) -> None:
    response = client.get(link("previews/never.mp4"))

    assert response.status_code == 404
    assert response.text == "no such object\n"


def test_an_unsigned_request_for_a_missing_object_is_403_not_404(client: TestClient) -> None:
    response = client.get("/objects/previews/never.mp4")

    assert response.status_code == 403


@pytest.mark.parametrize("path", ["previews//exp.mp4", "previews%5Cexp.mp4", "a%00b", ""])
def test_a_bad_key_is_refused_with_400(client: TestClient, path: str) -> None:
    response = client.get(f"/objects/{path}?expires=1800000000&signature={'0' * 64}")

    assert response.status_code == 400
    assert response.text.startswith("bad object key: ")


# -- over real HTTP (uvicorn on 127.0.0.1) --------------------------------------------------


@pytest.fixture
def server_url(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on 127.0.0.1 at a free port, in a thread."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start on 127.0.0.1")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join()


def test_links_work_over_real_http(server_url: str, store: LocalStore, video: bytes) -> None:
    store.public_base_url = server_url
    good = store.url(KEY)
    expired = link(KEY, expires_at=int(time.time()) - 1, base=server_url)

    with httpx.Client(trust_env=False) as http:
        whole = http.get(good)
        part = http.get(good, headers={"Range": "bytes=0-99"})
        too_late = http.get(expired)
        other_key = http.get(tamper_key(good, "previews/other.mp4"))
        altered = http.get(tamper_signature(good))
        missing = http.get(link("previews/never.mp4", base=server_url))

    assert (whole.status_code, whole.content) == (200, video)
    assert whole.headers["content-type"] == "video/mp4"
    assert (part.status_code, part.content) == (206, video[:100])
    assert part.headers["content-range"] == "bytes 0-99/1000"
    assert (too_late.status_code, too_late.text) == (403, "link expired\n")
    assert other_key.status_code == 403
    assert altered.status_code == 403
    assert missing.status_code == 404
