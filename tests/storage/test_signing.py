"""Signed links to local objects, and the secret that signs them."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from codeclab.storage.signing import (
    LinkRefused,
    load_or_create_secret,
    sign,
    signed_url,
    verify,
)

SECRET = b"s" * 32
KEY = "previews/exp-1.mp4"
EXPIRES = 1_800_000_000


def refusal(key: str, expires: str, signature: str, *, now: float = EXPIRES - 60) -> str:
    with pytest.raises(LinkRefused) as raised:
        verify(key, expires, signature, SECRET, now=now)
    return raised.value.reason


def test_a_signed_link_is_accepted_until_it_expires() -> None:
    signature = sign(KEY, EXPIRES, SECRET)

    verify(KEY, str(EXPIRES), signature, SECRET, now=EXPIRES - 1)
    assert refusal(KEY, str(EXPIRES), signature, now=EXPIRES) == "link expired"
    assert refusal(KEY, str(EXPIRES), signature, now=EXPIRES + 86400) == "link expired"


def test_a_signature_is_64_hex_digits_that_depend_on_key_expiry_and_secret() -> None:
    signature = sign(KEY, EXPIRES, SECRET)

    assert len(signature) == 64
    assert int(signature, 16) >= 0
    assert signature == sign(KEY, EXPIRES, SECRET)
    others = {
        sign("previews/exp-2.mp4", EXPIRES, SECRET),
        sign(KEY, EXPIRES + 1, SECRET),
        sign(KEY, EXPIRES, b"t" * 32),
    }
    assert signature not in others
    assert len(others) == 3


def test_a_link_for_another_key_is_refused() -> None:
    signature = sign(KEY, EXPIRES, SECRET)

    reason = refusal("decoders/exp-1_decoder.py", str(EXPIRES), signature)

    assert reason.startswith("invalid signature")


def test_a_link_with_a_later_expiry_is_refused() -> None:
    signature = sign(KEY, EXPIRES, SECRET)

    assert refusal(KEY, str(EXPIRES + 86400), signature).startswith("invalid signature")


def test_an_altered_signature_is_refused() -> None:
    signature = sign(KEY, EXPIRES, SECRET)
    flipped = ("1" if signature[0] == "0" else "0") + signature[1:]

    assert refusal(KEY, str(EXPIRES), flipped).startswith("invalid signature")


def test_a_link_signed_with_another_secret_is_refused() -> None:
    signature = sign(KEY, EXPIRES, b"another secret, 32 bytes long!!!")

    assert refusal(KEY, str(EXPIRES), signature).startswith("invalid signature")


def test_an_altered_expired_link_is_reported_as_altered() -> None:
    signature = sign(KEY, EXPIRES, SECRET)

    reason = refusal("other", str(EXPIRES), signature, now=EXPIRES + 1)

    assert reason.startswith("invalid signature")


@pytest.mark.parametrize(
    "expires",
    ["", "soon", "-5", "+5", " 5", "5 ", "1_800_000_000", "1.8e9", "١٨٠٠", "9" * 13],
)
def test_a_malformed_expiry_is_refused(expires: str) -> None:
    signature = sign(KEY, EXPIRES, SECRET)

    assert refusal(KEY, expires, signature) == "malformed link: expires must be unix seconds"


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda s: "", id="empty"),
        pytest.param(lambda s: s[:-1], id="short"),
        pytest.param(lambda s: s + "0", id="long"),
        pytest.param(lambda s: s.upper(), id="uppercase"),
        pytest.param(lambda s: "g" + s[1:], id="not-hex"),
    ],
)
def test_a_malformed_signature_is_refused(mangle: Callable[[str], str]) -> None:
    signature = mangle(sign(KEY, EXPIRES, SECRET))

    reason = refusal(KEY, str(EXPIRES), signature)

    assert reason == "malformed link: signature must be 64 hex digits"


def test_signing_refuses_an_empty_secret_and_a_negative_expiry() -> None:
    with pytest.raises(ValueError, match="empty secret"):
        sign(KEY, EXPIRES, b"")
    with pytest.raises(ValueError, match="unix time >= 0"):
        sign(KEY, -1, SECRET)


def test_a_signed_url_quotes_the_key_and_carries_expiry_and_signature() -> None:
    key = "odd/a b?c#d%e.mp4"

    link = signed_url("https://lab.example.org/", key, EXPIRES, SECRET)

    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc) == ("https", "lab.example.org")
    assert parts.path == "/objects/odd/a%20b%3Fc%23d%25e.mp4"
    assert parts.fragment == ""
    query = dict(parse_qsl(parts.query))
    assert query == {"expires": str(EXPIRES), "signature": sign(key, EXPIRES, SECRET)}


# -- the secret -----------------------------------------------------------------------------


def test_a_new_secret_is_32_random_bytes_only_its_owner_may_read(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "link-secret"

    secret = load_or_create_secret(path)

    assert len(secret) == 32
    assert path.read_bytes() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(tmp_path / "other") != secret


def test_an_existing_secret_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "link-secret"
    first = load_or_create_secret(path)

    assert load_or_create_secret(path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["link-secret"]


def test_callers_racing_to_create_the_secret_all_get_the_same_one(tmp_path: Path) -> None:
    path = tmp_path / "link-secret"

    start = threading.Barrier(16)

    def create(_: int) -> bytes:
        start.wait()
        return load_or_create_secret(path)

    with ThreadPoolExecutor(max_workers=16) as pool:
        secrets = set(pool.map(create, range(16)))

    assert secrets == {path.read_bytes()}
    assert [p.name for p in tmp_path.iterdir()] == ["link-secret"]


def test_a_secret_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "link-secret"
    load_or_create_secret(path)
    path.chmod(0o644)

    with pytest.raises(PermissionError, match=r"chmod 600 .*link-secret"):
        load_or_create_secret(path)


@pytest.mark.parametrize("size", [0, 16, 33])
def test_a_secret_of_the_wrong_size_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "link-secret"
    path.write_bytes(b"x" * size)
    path.chmod(0o600)

    with pytest.raises(ValueError, match=r"link-secret: .* exactly 32 bytes"):
        load_or_create_secret(path)
