"""The object store: one contract for both backends, then what is particular to each."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import boto3
import botocore.auth
import httpx
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from codeclab.storage.objects import (
    DEFAULT_LINK_LIFETIME,
    InvalidKey,
    KeyConflict,
    LocalStore,
    ObjectNotFound,
    ObjectStore,
    S3Options,
    S3Store,
    StoredObject,
    StoreError,
    check_key,
    open_store,
)
from codeclab.storage.signing import verify

from .conftest import LINK_SECRET, S3_PAGE_SIZE, S3_PREFIX, S3_REGION


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def payload() -> bytes:
    """100 kB that are not all alike."""
    return os.urandom(100_000)


# == the contract, on both backends ==========================================================


def test_put_bytes_then_get_bytes_returns_the_same_bytes(
    store: ObjectStore, payload: bytes
) -> None:
    stored = store.put_bytes("bitstreams/exp-1.bin", payload)

    assert store.get_bytes("bitstreams/exp-1.bin") == payload
    assert stored == StoredObject(
        "bitstreams/exp-1.bin", len(payload), "application/octet-stream", sha256(payload)
    )


def test_an_empty_object_round_trips(store: ObjectStore) -> None:
    store.put_bytes("empty", b"")

    assert store.get_bytes("empty") == b""
    assert store.stat("empty") == StoredObject("empty", 0, "application/octet-stream", sha256(b""))


def test_put_file_stores_the_file_and_reports_its_size_and_sha256(
    store: ObjectStore, tmp_path: Path
) -> None:
    # 9 MiB: above boto3's 8 MiB multipart threshold, so S3 gets a multipart upload.
    data = os.urandom(9 << 20)
    source = tmp_path / "reconstruction.mp4"
    source.write_bytes(data)

    stored = store.put_file("previews/exp-1.mp4", source)

    assert stored == StoredObject("previews/exp-1.mp4", len(data), "video/mp4", sha256(data))
    assert store.stat("previews/exp-1.mp4") == stored
    assert store.get_bytes("previews/exp-1.mp4") == data


def test_put_file_of_a_missing_file_names_it_and_stores_nothing(
    store: ObjectStore, tmp_path: Path
) -> None:
    missing = tmp_path / "never-written.mp4"

    with pytest.raises(FileNotFoundError, match=r"never-written\.mp4"):
        store.put_file("previews/exp-1.mp4", missing)
    assert not store.exists("previews/exp-1.mp4")


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("previews/exp-1.mp4", "video/mp4"),
        ("decoders/exp-1_decoder.py", "text/x-python"),
        ("packages/exp-1.zip", "application/zip"),
        ("packages/exp-1.tar.gz", "application/gzip"),
        ("bitstreams/exp-1.codeclab", "application/octet-stream"),
        ("no-suffix", "application/octet-stream"),
    ],
)
def test_content_type_is_guessed_from_the_key_suffix(
    store: ObjectStore, key: str, content_type: str
) -> None:
    assert store.put_bytes(key, b"x").content_type == content_type
    stat = store.stat(key)
    assert stat is not None
    assert stat.content_type == content_type


def test_a_given_content_type_wins_over_the_suffix(store: ObjectStore) -> None:
    store.put_bytes("decoders/exp-1_decoder.py", b"print()", "text/plain; charset=utf-8")

    stat = store.stat("decoders/exp-1_decoder.py")
    assert stat is not None
    assert stat.content_type == "text/plain; charset=utf-8"


def test_stat_reports_size_content_type_and_sha256(store: ObjectStore, payload: bytes) -> None:
    store.put_bytes("previews/a.mp4", payload)

    assert store.stat("previews/a.mp4") == StoredObject(
        "previews/a.mp4", len(payload), "video/mp4", sha256(payload)
    )


def test_stat_of_a_missing_object_is_none(store: ObjectStore) -> None:
    store.put_bytes("a/b", b"x")

    assert store.stat("a/c") is None
    assert store.stat("a") is None  # a folder of keys is not an object
    assert store.stat("a/b/c") is None


def test_exists_follows_put_and_delete(store: ObjectStore) -> None:
    assert not store.exists("previews/a.mp4")
    store.put_bytes("previews/a.mp4", b"video")
    assert store.exists("previews/a.mp4")

    store.delete("previews/a.mp4")

    assert not store.exists("previews/a.mp4")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("previews/a.mp4")


def test_deleting_a_missing_object_is_not_an_error(store: ObjectStore) -> None:
    store.delete("never/stored")
    assert not store.exists("never/stored")


def test_a_missing_object_error_names_the_store_and_the_key(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as raised:
        store.get_bytes("previews/missing.mp4")

    assert raised.value.key == "previews/missing.mp4"
    assert store.store_url in str(raised.value)
    assert "'previews/missing.mp4'" in str(raised.value)
    with pytest.raises(ObjectNotFound, match=r"missing\.mp4"):
        store.open("previews/missing.mp4")


def test_overwriting_replaces_bytes_content_type_and_sha256(store: ObjectStore) -> None:
    store.put_bytes("decoders/d.py", b"first version, longer", "text/x-python")
    store.put_bytes("decoders/d.py", b"second", "text/plain")

    assert store.get_bytes("decoders/d.py") == b"second"
    assert store.stat("decoders/d.py") == StoredObject(
        "decoders/d.py", 6, "text/plain", sha256(b"second")
    )
    assert [o.key for o in store.list()] == ["decoders/d.py"]


def test_open_streams_the_object_in_pieces(store: ObjectStore, payload: bytes) -> None:
    store.put_bytes("bitstreams/b.bin", payload)

    with store.open("bitstreams/b.bin") as stream:
        head = stream.read(10)
        pieces = iter(lambda: stream.read(4096), b"")
        rest = b"".join(pieces)

    assert head + rest == payload
    assert stream.closed


def test_list_gives_every_object_under_a_prefix_sorted_by_key(store: ObjectStore) -> None:
    for key in ["b/1", "a/2", "ab", "a/1", "a-b", "a/sub/3"]:
        store.put_bytes(key, key.encode())

    assert [o.key for o in store.list()] == ["a-b", "a/1", "a/2", "a/sub/3", "ab", "b/1"]
    assert [o.key for o in store.list("a")] == ["a-b", "a/1", "a/2", "a/sub/3", "ab"]
    assert [o.key for o in store.list("a/")] == ["a/1", "a/2", "a/sub/3"]
    assert [o.key for o in store.list("a/s")] == ["a/sub/3"]
    assert list(store.list("c")) == []


def test_list_reports_what_stat_reports(store: ObjectStore) -> None:
    store.put_bytes("previews/a.mp4", b"video")
    store.put_bytes("decoders/a.py", b"code")

    assert list(store.list()) == [store.stat("decoders/a.py"), store.stat("previews/a.mp4")]


def test_list_walks_every_page(store: ObjectStore) -> None:
    keys = [f"bitstreams/{i:02d}.bin" for i in range(25)]
    for key in reversed(keys):
        store.put_bytes(key, key.encode())
    store.put_bytes("other/x", b"x")

    assert [o.key for o in store.list("bitstreams/")] == keys


def test_unicode_and_punctuation_keys_round_trip(store: ObjectStore) -> None:
    keys = ["vidéos/ünïcode ✓.mp4", "odd/a b+c?d#e%20&f=g.bin"]
    for key in keys:
        store.put_bytes(key, key.encode())

    assert [store.get_bytes(key) for key in keys] == [key.encode() for key in keys]
    assert [o.key for o in store.list()] == sorted(keys)


def test_the_longest_valid_key_works(store: ObjectStore) -> None:
    key = "/".join(["k" * 255] * 3 + ["k" * 254, "k"])  # 1024 bytes, no segment over 255
    assert len(key.encode()) == 1024

    store.put_bytes(key, b"long")

    assert store.get_bytes(key) == b"long"


BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/previews/a.mp4", id="leading-slash"),
    pytest.param("previews//a.mp4", id="empty-segment"),
    pytest.param("previews/", id="trailing-slash"),
    pytest.param("./a.mp4", id="dot-segment"),
    pytest.param("previews/../a.mp4", id="dotdot-segment"),
    pytest.param("..", id="dotdot"),
    pytest.param("previews\\a.mp4", id="backslash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x7fb", id="del"),
    pytest.param("a\x85b", id="c1-control"),
    pytest.param("k" * 1025, id="1025-bytes"),
    pytest.param("é" * 513, id="1026-utf8-bytes"),
    pytest.param("a/" + "k" * 256, id="256-byte-segment"),
    pytest.param("a\ud800b", id="lone-surrogate"),
]

OPERATIONS: dict[str, Callable[[ObjectStore, str, Path], Any]] = {
    "put_bytes": lambda s, key, _: s.put_bytes(key, b"x"),
    "put_file": lambda s, key, path: s.put_file(key, path),
    "get_bytes": lambda s, key, _: s.get_bytes(key),
    "open": lambda s, key, _: s.open(key),
    "exists": lambda s, key, _: s.exists(key),
    "stat": lambda s, key, _: s.stat(key),
    "delete": lambda s, key, _: s.delete(key),
    "url": lambda s, key, _: s.url(key),
}


@pytest.mark.parametrize("key", BAD_KEYS)
def test_every_operation_refuses_an_invalid_key(
    store: ObjectStore, key: str, tmp_path: Path
) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"x")

    for name, operation in OPERATIONS.items():
        with pytest.raises(InvalidKey) as raised:
            operation(store, key, source)
        assert raised.value.key == key, name
    assert list(store.list()) == []


@pytest.mark.parametrize("prefix", ["/a", "a//", "../", "a\\"])
def test_list_refuses_an_invalid_prefix(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        list(store.list(prefix))


# == key rules ===============================================================================


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("", "must not be empty"),
        ("/a", "no leading '/'"),
        ("a//b", "empty segments"),
        ("a/../b", "'..' segments"),
        ("a\\b", "backslash"),
        ("a\tb", "control characters (U+0009 at 1)"),
        ("k" * 1025, "1025 bytes in UTF-8; the limit is 1024"),
    ],
)
def test_an_invalid_key_error_names_the_key_and_the_rule(key: str, rule: str) -> None:
    with pytest.raises(InvalidKey) as raised:
        check_key(key)

    assert rule in raised.value.rule
    assert repr(key) in str(raised.value)


@pytest.mark.parametrize("key", ["a", "a/b/c.mp4", ".hidden/x", "a/.b", "a..b", "é/✓", "a b"])
def test_plain_keys_are_valid(key: str) -> None:
    check_key(key)


# == open_store ==============================================================================


def test_a_file_url_opens_a_local_store_at_that_path(tmp_path: Path) -> None:
    root = tmp_path / "with space" / "objects"

    store = open_store(root.as_uri(), signing_secret=LINK_SECRET)

    assert isinstance(store, LocalStore)
    assert store.root == root
    assert store.store_url == root.as_uri()
    store.put_bytes("a/b.txt", b"hello")
    assert (root / "objects" / "a" / "b.txt").read_bytes() == b"hello"


@pytest.mark.usefixtures("aws_test_env")
def test_an_s3_url_opens_an_s3_store_of_that_bucket_and_prefix(s3_options: S3Options) -> None:
    store = open_store("s3://results/lab/run-1/", s3_options=s3_options)

    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("results", "lab/run-1")
    assert store.store_url == "s3://results/lab/run-1"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/objects", "unsupported scheme; use one of file://, s3://"),
        ("/var/lib/objects", "unsupported scheme"),
        ("file://relative/objects", "three slashes"),
        ("s3:///prefix", "name a bucket"),
        ("s3://bucket/a/../b", "bad prefix"),
    ],
)
def test_a_bad_store_url_is_refused_with_the_url_named(url: str, message: str) -> None:
    with pytest.raises(ValueError, match="object store URL") as raised:
        open_store(url)

    assert repr(url) in str(raised.value)
    assert message in str(raised.value)


def test_s3_options_come_from_codeclab_environment_variables() -> None:
    env = {
        "CODECLAB_S3_ENDPOINT_URL": "http://minio:9000",
        "CODECLAB_S3_PUBLIC_ENDPOINT_URL": "https://objects.example.org",
        "CODECLAB_S3_ADDRESSING_STYLE": "path",
        "CODECLAB_S3_REGION": "",
    }

    assert S3Options.from_env(env) == S3Options(
        endpoint_url="http://minio:9000",
        region=None,
        addressing_style="path",
        public_endpoint_url="https://objects.example.org",
    )
    assert S3Options.from_env({}) == S3Options()


def test_an_unknown_addressing_style_is_refused() -> None:
    with pytest.raises(ValueError, match="CODECLAB_S3_ADDRESSING_STYLE must be one of path"):
        S3Options.from_env({"CODECLAB_S3_ADDRESSING_STYLE": "subdomain"})
    with pytest.raises(ValueError, match="addressing_style must be one of"):
        S3Options(addressing_style="subdomain")  # type: ignore[arg-type]


# == local store =============================================================================


def test_local_writes_leave_no_temporary_files(file_store: LocalStore, tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"abc")
    file_store.put_bytes("a/b.bin", b"x")
    file_store.put_file("a/c.bin", source)
    with pytest.raises(FileNotFoundError):
        file_store.put_file("a/d.bin", tmp_path / "missing")

    assert list((file_store.root / "tmp").iterdir()) == []
    assert not (file_store.root / "objects" / "a" / "d.bin").exists()


def test_a_local_object_replaced_by_hand_loses_its_sha256_not_its_bytes(
    file_store: LocalStore,
) -> None:
    file_store.put_bytes("decoders/d.py", b"print(1)", "text/plain")
    (file_store.root / "objects" / "decoders" / "d.py").write_bytes(b"print(22)")

    assert file_store.stat("decoders/d.py") == StoredObject(
        "decoders/d.py", 9, "text/x-python", None
    )
    assert file_store.get_bytes("decoders/d.py") == b"print(22)"


def test_a_local_object_replaced_by_hand_with_as_many_bytes_loses_its_sha256(
    file_store: LocalStore,
) -> None:
    stored = file_store.put_bytes("bitstreams/b.bin", b"12345678")
    path = file_store.root / "objects" / "bitstreams" / "b.bin"
    mtime_ns = path.stat().st_mtime_ns
    path.write_bytes(b"87654321")
    os.utime(path, ns=(mtime_ns + 1_000_000, mtime_ns + 1_000_000))

    assert file_store.stat("bitstreams/b.bin") == StoredObject(
        "bitstreams/b.bin", 8, stored.content_type, None
    )


def test_a_local_store_refuses_an_object_below_an_object(file_store: LocalStore) -> None:
    file_store.put_bytes("runs/exp-1", b"x")

    with pytest.raises(KeyConflict, match="object 'runs/exp-1' exists"):
        file_store.put_bytes("runs/exp-1/preview.mp4", b"y")


def test_a_local_store_refuses_an_object_that_is_a_folder_of_objects(
    file_store: LocalStore,
) -> None:
    file_store.put_bytes("runs/exp-1/preview.mp4", b"y")

    with pytest.raises(KeyConflict, match=r"e\.g\. 'runs/exp-1/preview.mp4'"):
        file_store.put_bytes("runs/exp-1", b"x")
    assert file_store.get_bytes("runs/exp-1/preview.mp4") == b"y"


def test_deleting_the_last_local_object_of_a_folder_removes_the_folder(
    file_store: LocalStore,
) -> None:
    file_store.put_bytes("runs/exp-1/preview.mp4", b"y")

    file_store.delete("runs/exp-1/preview.mp4")
    file_store.put_bytes("runs/exp-1", b"now a plain object")

    assert [o.key for o in file_store.list()] == ["runs/exp-1"]
    assert not (file_store.root / "objects" / "runs" / "exp-1" / "preview.mp4").exists()


def test_a_local_link_is_signed_for_the_key_and_seven_days(file_store: LocalStore) -> None:
    key = "previews/exp 1.mp4"
    before = int(time.time())

    link = file_store.url(key)

    after = int(time.time())
    parts = urlsplit(link)
    query = dict(parse_qsl(parts.query))
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.1:8000"
    assert parts.path == "/objects/previews/exp%201.mp4"
    assert before + 7 * 86400 <= int(query["expires"]) <= after + 7 * 86400
    verify(key, query["expires"], query["signature"], LINK_SECRET, now=after)


def test_a_local_link_honours_the_public_base_url_and_lifetime(tmp_path: Path) -> None:
    store = LocalStore(
        tmp_path, signing_secret=LINK_SECRET, public_base_url="https://lab.example.org/dash/"
    )

    link = store.url("a.mp4", timedelta(hours=1))

    assert link.startswith("https://lab.example.org/dash/objects/a.mp4?expires=")
    expires = int(dict(parse_qsl(urlsplit(link).query))["expires"])
    assert expires - time.time() <= 3600


def test_a_local_store_without_a_secret_cannot_make_links(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)

    with pytest.raises(StoreError, match="without a signing secret"):
        store.url("a.mp4")


@pytest.mark.parametrize("lifetime", [timedelta(0), timedelta(seconds=-5)])
def test_a_link_must_live_at_least_a_second(store: ObjectStore, lifetime: timedelta) -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        store.url("a.mp4", lifetime)


# == S3 store ================================================================================


def test_s3_objects_live_under_the_prefix_with_type_and_sha256_metadata(
    s3_store: S3Store, s3_client: Any
) -> None:
    s3_store.put_bytes("previews/a.mp4", b"video")

    head = s3_client.head_object(Bucket=s3_store.bucket, Key=f"{S3_PREFIX}/previews/a.mp4")

    assert head["ContentType"] == "video/mp4"
    assert head["Metadata"] == {"sha256": sha256(b"video")}


def test_s3_list_ignores_objects_outside_the_prefix(s3_store: S3Store, s3_client: Any) -> None:
    s3_client.put_object(Bucket=s3_store.bucket, Key="elsewhere/a", Body=b"x")
    s3_client.put_object(Bucket=s3_store.bucket, Key=f"{S3_PREFIX}x/a", Body=b"x")
    s3_store.put_bytes("a", b"mine")

    assert [o.key for o in s3_store.list()] == ["a"]


def test_s3_list_asks_for_one_page_per_page_size_keys(s3_store: S3Store) -> None:
    for i in range(25):
        s3_store.put_bytes(f"k/{i:02d}", b"x")
    requests: list[str] = []
    s3_store.client.meta.events.register(
        "before-call.s3.ListObjectsV2", lambda **kwargs: requests.append("list")
    )

    listed = list(s3_store.list("k/"))

    assert len(listed) == 25
    assert S3_PAGE_SIZE == 10
    assert len(requests) == 3


def test_s3_objects_made_by_other_tools_with_invalid_keys_are_skipped(
    s3_store: S3Store, s3_client: Any
) -> None:
    s3_client.put_object(Bucket=s3_store.bucket, Key=f"{S3_PREFIX}/folder/", Body=b"")
    s3_client.put_object(Bucket=s3_store.bucket, Key=f"{S3_PREFIX}/a//b", Body=b"")
    s3_store.put_bytes("folder/a", b"x")

    assert [o.key for o in s3_store.list()] == ["folder/a"]


def test_a_missing_bucket_is_a_store_error_naming_the_store(
    s3_options: S3Options, aws_test_env: None
) -> None:
    store = S3Store("no-such-bucket-here", "lab", options=s3_options)

    with pytest.raises(StoreError, match=r"s3://no-such-bucket-here/lab: cannot store 'a'"):
        store.put_bytes("a", b"x")
    with pytest.raises(StoreError, match="NoSuchBucket"):
        list(store.list())


def test_an_s3_link_lives_seven_days_by_default(s3_store: S3Store) -> None:
    link = s3_store.url("previews/a.mp4")

    query = dict(parse_qsl(urlsplit(link).query))
    assert timedelta(days=7) == DEFAULT_LINK_LIFETIME
    assert query["X-Amz-Expires"] == "604800"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-SignedHeaders"] == "host"
    access_key, date, region, service, terminator = query["X-Amz-Credential"].split("/")
    assert (access_key, region, service, terminator) == ("testing", S3_REGION, "s3", "aws4_request")
    assert query["X-Amz-Date"].startswith(date)


def test_an_s3_link_points_at_the_object_on_the_endpoint(
    s3_store: S3Store, moto_endpoint: str
) -> None:
    parts = urlsplit(s3_store.url("vidéos/a b.mp4", timedelta(minutes=5)))

    assert f"{parts.scheme}://{parts.netloc}" == moto_endpoint
    assert parts.path == f"/{s3_store.bucket}/{S3_PREFIX}/" + quote("vidéos/a b.mp4")
    assert dict(parse_qsl(parts.query))["X-Amz-Expires"] == "300"


def test_an_s3_link_may_not_outlive_seven_days(s3_store: S3Store) -> None:
    s3_store.url("a.mp4", timedelta(days=7))

    with pytest.raises(ValueError, match=r"at most 7 days, 0:00:00 \(604800 s, the S3 limit"):
        s3_store.url("a.mp4", timedelta(days=7, seconds=1))


@pytest.fixture
def public_s3_store(
    s3_bucket: str, s3_options: S3Options, boto_session: boto3.session.Session
) -> S3Store:
    """Reaches moto directly but signs links for a public host (never contacted)."""
    options = S3Options(
        endpoint_url=s3_options.endpoint_url,
        region=S3_REGION,
        addressing_style="path",
        public_endpoint_url="https://objects.lab.example.org:9443",
    )
    return S3Store(s3_bucket, S3_PREFIX, options=options, session=boto_session)


def test_an_s3_link_uses_the_public_endpoint_when_one_is_set(public_s3_store: S3Store) -> None:
    public_s3_store.put_bytes("a.mp4", b"stored through the internal endpoint")

    parts = urlsplit(public_s3_store.url("a.mp4"))

    assert (parts.scheme, parts.netloc) == ("https", "objects.lab.example.org:9443")
    assert parts.path == f"/{public_s3_store.bucket}/{S3_PREFIX}/a.mp4"
    assert public_s3_store.get_bytes("a.mp4") == b"stored through the internal endpoint"


@pytest.mark.parametrize("which", ["s3_store", "public_s3_store"])
def test_an_s3_link_carries_the_sigv4_signature_of_its_get(
    request: pytest.FixtureRequest, which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: S3Store = request.getfixturevalue(which)
    link = store.url("previews/exp 1.mp4")
    parts = urlsplit(link)
    query = dict(parse_qsl(parts.query))
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ")

    def recompute(secret_key: str) -> str:
        """botocore's presigner, at the instant the link was signed, on a bare GET."""
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)
        bare = AWSRequest(method="GET", url=f"{parts.scheme}://{parts.netloc}{parts.path}")
        credentials = Credentials("testing", secret_key)
        S3SigV4QueryAuth(credentials, "s3", S3_REGION, expires=604800).add_auth(bare)
        return str(dict(parse_qsl(urlsplit(bare.url).query))["X-Amz-Signature"])

    assert query["X-Amz-Signature"] == recompute("testing")
    assert query["X-Amz-Signature"] != recompute("another-secret")


@pytest.fixture
def http() -> httpx.Client:
    """An HTTP client that ignores proxy settings (it only talks to 127.0.0.1)."""
    return httpx.Client(trust_env=False)


def test_an_s3_link_serves_the_bytes_and_byte_ranges(
    s3_store: S3Store, http: httpx.Client, payload: bytes
) -> None:
    s3_store.put_bytes("previews/exp 1.mp4", payload)
    link = s3_store.url("previews/exp 1.mp4")

    whole = http.get(link)
    part = http.get(link, headers={"Range": "bytes=0-99"})

    assert whole.status_code == 200
    assert whole.content == payload
    assert whole.headers["content-type"] == "video/mp4"
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 0-99/{len(payload)}"
    assert part.content == payload[:100]
