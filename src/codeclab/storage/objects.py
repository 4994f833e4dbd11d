"""Objects (preview videos, decoder sources, bitstreams, decode packages) in a store chosen
by URL, and expiring links to them.

``open_store("file:///abs/path")`` gives a :class:`LocalStore`, ``open_store("s3://bucket/
prefix")`` an :class:`S3Store` (AWS, MinIO, R2, ... through boto3).  Both answer the same
:class:`ObjectStore` operations, and both refuse a key that :func:`check_key` refuses.

Content type: the caller's, else guessed from the key's suffix with Python's built-in table
(the same on every machine: ``.mp4`` -> ``video/mp4``, ``.py`` -> ``text/x-python``), else
``application/octet-stream``.  It is stored with the object, as is the sha256 of its bytes
(S3: ``Content-Type`` and user metadata ``sha256``; local: a sidecar, see :class:`LocalStore`).

Links: :meth:`ObjectStore.url` returns a link good for `expires_in` (default 7 days, the
longest S3 allows).  S3 links are SigV4 presigned GETs; local links are HMAC-signed (see
:mod:`codeclab.storage.signing`) and served by the dashboard (:mod:`codeclab.web.objects`).
A link is made without checking that the object exists.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import mimetypes
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol, cast, get_args
from urllib.parse import urlsplit
from urllib.request import url2pathname

from codeclab.storage.signing import DEFAULT_PUBLIC_BASE_URL, signed_url

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

log = logging.getLogger(__name__)

DEFAULT_LINK_LIFETIME = timedelta(days=7)
S3_MAX_LINK_LIFETIME = timedelta(days=7)
MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
SUPPORTED_SCHEMES = ("file", "s3")

_CHUNK = 1 << 20
_SHA256_HEX = frozenset("0123456789abcdef")
_COMPRESSED_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
}
# A private table: the module-level functions of `mimetypes` also read /etc/mime.types,
# which differs between machines.
_MIME_TYPES = mimetypes.MimeTypes()

AddressingStyle = Literal["path", "virtual", "auto"]


class InvalidKey(ValueError):  # noqa: N818 (the name says what happened)
    """A key breaks one of the rules of :func:`check_key`."""

    def __init__(self, key: str, rule: str) -> None:
        super().__init__(f"invalid object key {key!r}: {rule}")
        self.key = key
        self.rule = rule


class ObjectNotFound(LookupError):  # noqa: N818 (the name says what happened)
    """No object has this key in this store."""

    def __init__(self, store_url: str, key: str) -> None:
        super().__init__(f"no object {key!r} in {store_url}")
        self.store_url = store_url
        self.key = key


class KeyConflict(ValueError):  # noqa: N818 (the name says what happened)
    """A local store cannot hold both ``a`` and ``a/b`` (a file cannot also be a folder)."""


class StoreError(RuntimeError):
    """The store refused or failed an operation for a reason other than a missing object."""


def check_key(key: str) -> None:
    """Refuse (with :class:`InvalidKey`) a key that is not a plain relative object name.

    Rules: not empty; at most 1024 bytes of UTF-8; no control characters; no backslash;
    no leading '/'; '/'-separated segments, none empty, none '.' or '..', none longer than
    255 bytes (so that every key is a valid path in a local store, as in S3).
    """
    if not key:
        raise InvalidKey(key, "must not be empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(key, "must be valid Unicode text (it holds a lone surrogate)") from None
    if size > MAX_KEY_BYTES:
        raise InvalidKey(key, f"is {size} bytes in UTF-8; the limit is {MAX_KEY_BYTES}")
    for position, char in enumerate(key):
        if ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
            raise InvalidKey(
                key, f"must not hold control characters (U+{ord(char):04X} at {position})"
            )
    if "\\" in key:
        raise InvalidKey(key, "must not hold a backslash; separate segments with '/'")
    if key.startswith("/"):
        raise InvalidKey(key, "must be relative (no leading '/')")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(key, "must not have empty segments ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise InvalidKey(key, "must not have '.' or '..' segments")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise InvalidKey(
                key,
                f"has a segment of {len(segment.encode('utf-8'))} bytes; the limit is "
                f"{MAX_SEGMENT_BYTES} (a file name's)",
            )


def check_prefix(prefix: str) -> None:
    """A listing prefix is "" or a key, optionally followed by one '/'."""
    if prefix:
        check_key(prefix.removesuffix("/"))


def guess_content_type(key: str) -> str:
    """The content type a key's suffix suggests, ``application/octet-stream`` if none."""
    content_type, encoding = _MIME_TYPES.guess_type(key, strict=False)
    if encoding is not None:
        return _COMPRESSED_TYPES.get(encoding, "application/octet-stream")
    return content_type or "application/octet-stream"


@dataclass(frozen=True)
class StoredObject:
    """What a store knows of one object; `sha256` (hex) is None when the store lost it."""

    key: str
    size: int
    content_type: str
    sha256: str | None


class ObjectStore(Protocol):
    """Operations every store offers.  Each validates its key with :func:`check_key`."""

    @property
    def store_url(self) -> str:
        """The URL that opens this store (names it in error messages)."""
        ...

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject:
        """Store the bytes of file `path` under `key`, replacing any object there."""
        ...

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        """Store `data` under `key`, replacing any object there."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """All the bytes of the object; :class:`ObjectNotFound` if there is none."""
        ...

    def open(self, key: str) -> BinaryIO:
        """A binary stream of the object (close it); :class:`ObjectNotFound` if none."""
        ...

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> StoredObject | None:
        """Size, content type and sha256 of the object, None if there is none."""
        ...

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Objects whose key starts with `prefix` (a plain string prefix), sorted by key."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing object is not an error."""
        ...

    def url(self, key: str, expires_in: timedelta = DEFAULT_LINK_LIFETIME) -> str:
        """A link that lets a browser GET the object for `expires_in`."""
        ...


def open_store(
    url: str,
    *,
    signing_secret: bytes | None = None,
    public_base_url: str | None = None,
    s3_options: S3Options | None = None,
) -> ObjectStore:
    """The store `url` names: ``file:///abs/path`` or ``s3://bucket[/prefix]``.

    `signing_secret` and `public_base_url` serve a local store's links (without a secret
    it cannot make links); `s3_options` configures an S3 store (default: ``S3Options()``,
    i.e. boto3's own configuration).  Options for the other kind of store are ignored.
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"object store URL {url!r}: a file URL names a local absolute path, "
                "e.g. file:///var/lib/codeclab/objects (three slashes)"
            )
        root = Path(url2pathname(parts.path))
        if not root.is_absolute():
            raise ValueError(f"object store URL {url!r}: the path must be absolute")
        return LocalStore(
            root,
            signing_secret=signing_secret,
            public_base_url=public_base_url or DEFAULT_PUBLIC_BASE_URL,
        )
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"object store URL {url!r}: name a bucket, s3://bucket/prefix")
        prefix = parts.path.strip("/")
        if prefix:
            try:
                check_key(prefix)
            except InvalidKey as exc:
                raise ValueError(f"object store URL {url!r}: bad prefix: {exc.rule}") from None
        return S3Store(parts.netloc, prefix, options=s3_options or S3Options())
    schemes = ", ".join(f"{scheme}://" for scheme in SUPPORTED_SCHEMES)
    raise ValueError(f"object store URL {url!r}: unsupported scheme; use one of {schemes}")


def _link_seconds(expires_in: timedelta, limit: timedelta | None) -> int:
    seconds = int(expires_in.total_seconds())
    if seconds < 1:
        raise ValueError(f"a link must live at least 1 second, got {expires_in}")
    if limit is not None and expires_in > limit:
        raise ValueError(
            f"a link may live at most {limit} ({int(limit.total_seconds())} s, the S3 limit "
            f"for presigned URLs), got {expires_in}"
        )
    return seconds


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _sha256_or_none(value: object) -> str | None:
    if isinstance(value, str) and len(value) == 64 and set(value) <= _SHA256_HEX:
        return value
    return None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """Objects as files under a root directory.

    Layout: the bytes of key ``k`` are in ``root/objects/k``; its sidecar is
    ``root/meta/<h[:2]>/<h>.json`` where ``h`` is the sha256 of ``k`` (so no key can collide
    with a sidecar), holding the key, content type, sha256, and the size and mtime of the
    file it describes; a sidecar that does not match its file (the file was replaced by
    hand, or a put was interrupted) is ignored: the content type is then guessed from the key
    and the sha256 is unknown.  Writes go to ``root/tmp`` and are synced, then renamed into
    place (``os.replace``), so a reader sees the old object or the new one, never a part.

    A file cannot also be a folder, so this store refuses (:class:`KeyConflict`) a key that
    is a folder of a stored key, or lies below one (``a`` and ``a/b``); S3 accepts both.
    """

    def __init__(
        self,
        root: Path,
        *,
        signing_secret: bytes | None = None,
        public_base_url: str = DEFAULT_PUBLIC_BASE_URL,
    ) -> None:
        if not root.is_absolute():
            raise ValueError(f"a local object store needs an absolute root, got {root}")
        self.root = root
        self.signing_secret = signing_secret
        self.public_base_url = public_base_url.rstrip("/")
        self._objects = root / "objects"
        self._meta = root / "meta"
        self._tmp = root / "tmp"
        for directory in (self._objects, self._meta, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)

    @property
    def store_url(self) -> str:
        return self.root.as_uri()

    def local_path(self, key: str) -> Path:
        """The file holding the object (for serving it); :class:`ObjectNotFound` if none."""
        check_key(key)
        path = self._objects / key
        if not path.is_file():
            raise ObjectNotFound(self.store_url, key)
        return path

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject:
        def copy(out: BinaryIO, digest: Any) -> int:
            size = 0
            with path.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            return size

        return self._put(key, content_type, copy)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        def write(out: BinaryIO, digest: Any) -> int:
            digest.update(data)
            out.write(data)
            return len(data)

        return self._put(key, content_type, write)

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def open(self, key: str) -> BinaryIO:
        check_key(key)
        try:
            return (self._objects / key).open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(self.store_url, key) from None

    def exists(self, key: str) -> bool:
        check_key(key)
        return (self._objects / key).is_file()

    def stat(self, key: str) -> StoredObject | None:
        check_key(key)
        try:
            st = (self._objects / key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not S_ISREG(st.st_mode):
            return None
        meta = self._read_meta(key)
        if (
            meta is not None
            and meta.get("size") == st.st_size
            and meta.get("mtime_ns") == (st.st_mtime_ns)
        ):
            content_type = meta.get("content_type")
            if isinstance(content_type, str) and content_type:
                return StoredObject(
                    key, st.st_size, content_type, _sha256_or_none(meta.get("sha256"))
                )
        return StoredObject(key, st.st_size, guess_content_type(key), None)

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        check_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        start = self._objects / folder if folder else self._objects
        keys: list[str] = []
        for directory, _, files in os.walk(start):
            for name in files:
                key = Path(directory, name).relative_to(self._objects).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            try:
                check_key(key)
            except InvalidKey as exc:
                log.warning("%s: skipping file %s, not a valid key (%s)", self.store_url, key, exc)
                continue
            stored = self.stat(key)
            if stored is not None:
                yield stored

    def delete(self, key: str) -> None:
        check_key(key)
        path = self._objects / key
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return
        self._meta_path(key).unlink(missing_ok=True)
        parent = path.parent
        while parent != self._objects:
            try:
                parent.rmdir()
            except OSError:  # not empty, or already gone
                break
            parent = parent.parent

    def url(self, key: str, expires_in: timedelta = DEFAULT_LINK_LIFETIME) -> str:
        check_key(key)
        seconds = _link_seconds(expires_in, None)
        if self.signing_secret is None:
            raise StoreError(
                f"{self.store_url}: cannot make links without a signing secret; pass "
                "signing_secret (see codeclab.storage.signing.load_or_create_secret)"
            )
        expires_at = int(time.time()) + seconds
        return signed_url(self.public_base_url, key, expires_at, self.signing_secret)

    # -- internals -------------------------------------------------------------------------

    def _meta_path(self, key: str) -> Path:
        h = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self._meta / h[:2] / f"{h}.json"

    def _read_meta(self, key: str) -> dict[str, Any] | None:
        try:
            meta = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s: ignoring unreadable sidecar of %r (%s)", self.store_url, key, exc)
            return None
        if not isinstance(meta, dict) or meta.get("key") != key:
            return None
        return meta

    def _put(
        self,
        key: str,
        content_type: str | None,
        write: Callable[[BinaryIO, Any], int],
    ) -> StoredObject:
        check_key(key)
        content_type = content_type or guess_content_type(key)
        target = self._objects / key
        self._make_parents(key)
        if target.is_dir():
            raise KeyConflict(
                f"{self.store_url}: cannot store {key!r}: it is the folder of other objects "
                f"(e.g. {self._some_key_below(target)!r}); a local store cannot hold an object "
                "and keys below it"
            )
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="object-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                size = write(out, digest)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            stored = StoredObject(key, size, content_type, digest.hexdigest())
            # The sidecar goes first: once the object is visible its sidecar is in place.
            self._write_meta(stored, tmp.stat().st_mtime_ns)
            self._replace(tmp, target, key)
        finally:
            tmp.unlink(missing_ok=True)
        return stored

    def _replace(self, tmp: Path, target: Path, key: str) -> None:
        for attempt in range(3):
            try:
                os.replace(tmp, target)
            except FileNotFoundError:  # a concurrent delete removed the emptied folder
                if attempt == 2:
                    raise
                self._make_parents(key)
            else:
                _fsync_directory(target.parent)
                return

    def _write_meta(self, stored: StoredObject, mtime_ns: int) -> None:
        meta = {
            "key": stored.key,
            "content_type": stored.content_type,
            "sha256": stored.sha256,
            "size": stored.size,
            "mtime_ns": mtime_ns,
        }
        path = self._meta_path(stored.key)
        path.parent.mkdir(exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix="meta-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(meta, out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, path)
        finally:
            Path(tmp_name).unlink(missing_ok=True)

    def _make_parents(self, key: str) -> None:
        parent = (self._objects / key).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocking = next(p for p in (parent, *parent.parents) if p.is_file())
            other = blocking.relative_to(self._objects).as_posix()
            raise KeyConflict(
                f"{self.store_url}: cannot store {key!r}: object {other!r} exists, and a "
                "local store cannot hold an object and keys below it"
            ) from None

    def _some_key_below(self, directory: Path) -> str:
        for inner, _, files in os.walk(directory):
            if files:
                return Path(inner, files[0]).relative_to(self._objects).as_posix()
        return directory.relative_to(self._objects).as_posix() + "/..."


@dataclass(frozen=True)
class S3Options:
    """How to reach an S3-compatible service; None means "as boto3 would decide".

    Credentials are never options: boto3 finds them (``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws``, instance roles).  The region
    likewise falls back to ``AWS_REGION`` / ``AWS_DEFAULT_REGION``.
    `public_endpoint_url` is used only to sign links, for when the lab reaches the service
    at an internal address (``http://minio:9000``) but browsers need another.
    """

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: AddressingStyle = "auto"
    public_endpoint_url: str | None = None

    def __post_init__(self) -> None:
        styles = get_args(AddressingStyle)
        if self.addressing_style not in styles:
            raise ValueError(
                f"S3 addressing_style must be one of {', '.join(styles)}, "
                f"got {self.addressing_style!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Options:
        """Options from ``CODECLAB_S3_ENDPOINT_URL``, ``CODECLAB_S3_PUBLIC_ENDPOINT_URL``,
        ``CODECLAB_S3_ADDRESSING_STYLE`` and ``CODECLAB_S3_REGION`` (empty means unset)."""
        env = os.environ if environ is None else environ
        style = env.get("CODECLAB_S3_ADDRESSING_STYLE") or "auto"
        styles = get_args(AddressingStyle)
        if style not in styles:
            raise ValueError(
                f"CODECLAB_S3_ADDRESSING_STYLE must be one of {', '.join(styles)}, got {style!r}"
            )
        return cls(
            endpoint_url=env.get("CODECLAB_S3_ENDPOINT_URL") or None,
            region=env.get("CODECLAB_S3_REGION") or None,
            addressing_style=cast(AddressingStyle, style),
            public_endpoint_url=env.get("CODECLAB_S3_PUBLIC_ENDPOINT_URL") or None,
        )


class _StreamingBodyReader(io.RawIOBase):
    """botocore's StreamingBody as a raw stream, so io.BufferedReader can wrap it."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Store:
    """Objects in an S3 bucket, under an optional key prefix (``prefix/key``).

    `page_size` is the number of keys asked for per listing request (S3 answers at most
    1000).  :meth:`list` sends one HEAD per object it yields, to report content type and
    sha256 like :meth:`stat` does.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        options: S3Options | None = None,
        page_size: int = 1000,
        session: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        if not 1 <= page_size <= 1000:
            raise ValueError(f"S3 page_size must be between 1 and 1000, got {page_size}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.options = options or S3Options()
        self.page_size = page_size
        session = session or boto3.session.Session()
        config = Config(
            signature_version="s3v4", s3={"addressing_style": self.options.addressing_style}
        )
        self.client: Any = session.client(
            "s3",
            endpoint_url=self.options.endpoint_url,
            region_name=self.options.region,
            config=config,
        )
        self.presign_client: Any = (
            session.client(
                "s3",
                endpoint_url=self.options.public_endpoint_url,
                region_name=self.options.region,
                config=config,
            )
            if self.options.public_endpoint_url
            else self.client
        )

    @property
    def store_url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> StoredObject:
        check_key(key)
        content_type = content_type or guess_content_type(key)
        sha256, size = _hash_file(path)
        extra = {"ContentType": content_type, "Metadata": {"sha256": sha256}}
        with self._errors("store", key):
            self.client.upload_file(str(path), self.bucket, self._full(key), ExtraArgs=extra)
        return StoredObject(key, size, content_type, sha256)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> StoredObject:
        check_key(key)
        content_type = content_type or guess_content_type(key)
        sha256 = hashlib.sha256(data).hexdigest()
        with self._errors("store", key):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._full(key),
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": sha256},
            )
        return StoredObject(key, len(data), content_type, sha256)

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def open(self, key: str) -> BinaryIO:
        check_key(key)
        with self._errors("read", key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        return io.BufferedReader(_StreamingBodyReader(response["Body"]), buffer_size=_CHUNK)

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def stat(self, key: str) -> StoredObject | None:
        check_key(key)
        try:
            with self._errors("inspect", key):
                head = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ObjectNotFound:
            return None
        metadata = head.get("Metadata") or {}
        return StoredObject(
            key,
            int(head["ContentLength"]),
            head.get("ContentType") or guess_content_type(key),
            _sha256_or_none(metadata.get("sha256")),
        )

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        check_prefix(prefix)
        root = self._root()
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=root + prefix,
            PaginationConfig={"PageSize": self.page_size},
        )
        with self._errors("list keys starting with", prefix):
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][len(root) :]
                    try:
                        check_key(key)
                    except InvalidKey as exc:
                        log.warning(
                            "%s: skipping %r, not a valid key (%s)", self.store_url, key, exc
                        )
                        continue
                    stored = self.stat(key)
                    if stored is not None:  # else deleted since the listing
                        yield stored

    def delete(self, key: str) -> None:
        check_key(key)
        with self._errors("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def url(self, key: str, expires_in: timedelta = DEFAULT_LINK_LIFETIME) -> str:
        check_key(key)
        seconds = _link_seconds(expires_in, S3_MAX_LINK_LIFETIME)
        with self._errors("sign a link to", key):
            url = self.presign_client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._full(key)},
                ExpiresIn=seconds,
            )
        return cast(str, url)

    # -- internals -------------------------------------------------------------------------

    def _root(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _full(self, key: str) -> str:
        return self._root() + key

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Turn boto errors into ObjectNotFound (missing object) or StoreError (the rest)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFound(self.store_url, key) from None
            message = error.get("Message") or exc
            raise StoreError(
                f"{self.store_url}: cannot {action} {key!r}: {code}: {message}"
            ) from exc
        except BotoCoreError as exc:
            raise StoreError(f"{self.store_url}: cannot {action} {key!r}: {exc}") from exc
