"""`codeclab serve`: its settings, and the real command serving over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codeclab.config import Settings
from codeclab.web.command import dashboard_settings


def test_a_default_public_url_follows_the_served_address(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert dashboard_settings(settings, "127.0.0.1", 9100).public_url == "http://127.0.0.1:9100"
    assert dashboard_settings(settings, "0.0.0.0", 80).public_url == "http://127.0.0.1:80"
    assert dashboard_settings(settings, "::1", 8000).public_url == "http://[::1]:8000"


def test_a_configured_public_url_is_kept(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, public_url="https://lab.example.org")
    assert dashboard_settings(settings, "0.0.0.0", 8000).public_url == "https://lab.example.org"


SERVE = "import typer; from codeclab.web.command import serve_command; typer.run(serve_command)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=[1, 2], ids=["one-process", "two-workers"])
def serving(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODECLAB_")}
    env["CODECLAB_ADMIN_TOKEN"] = "admin-token-from-the-env-123"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVE,
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "data"),
            "--workers",
            str(request.param),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                httpx.get(f"{url}/api/overview", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output = process.communicate(timeout=10)[1].decode()
                    raise RuntimeError(f"codeclab serve did not start: {output}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_runs_the_dashboard_with_the_admin_token_from_the_environment(
    serving: str,
) -> None:
    assert httpx.get(f"{serving}/").status_code == 200
    assert httpx.get(f"{serving}/api/overview").json()["experiments"] == 0
    unknown = f"{serving}/api/experiments/exp-none"
    assert httpx.delete(unknown).status_code == 401
    admin = {"Authorization": "Bearer admin-token-from-the-env-123"}
    assert httpx.delete(unknown, headers=admin).status_code == 404


def test_serve_takes_the_tokens_from_the_config_file_and_never_prints_them(
    tmp_path: Path,
) -> None:
    admin, reader = "admin-token-from-the-toml-456", "read-token-from-the-toml-789"
    config = tmp_path / "lab.toml"
    config.write_text(f'admin_token = "{admin}"\nread_token = "{reader}"\n', encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODECLAB_")}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--port", str(port), "--config", str(config),
         "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                answer = httpx.get(f"{url}/api/overview", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("codeclab serve did not start") from None
                time.sleep(0.1)
        assert answer.status_code == 401  # reading needs the read token
        reading = {"Authorization": f"Bearer {reader}"}
        assert httpx.get(f"{url}/api/overview", headers=reading).status_code == 200
        unknown = f"{url}/api/experiments/exp-none"
        assert httpx.delete(unknown, headers=reading).status_code == 401
        admin_header = {"Authorization": f"Bearer {admin}"}
        assert httpx.delete(unknown, headers=admin_header).status_code == 404
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    printed = out + err
    assert b"needs a token" in printed  # it says reading is private...
    assert admin.encode() not in printed and reader.encode() not in printed  # ...not with what
