"""A throwaway PostgreSQL server for tests: initdb in a temporary folder, listen on 127.0.0.1.

The server runs from the Debian binaries (``/usr/lib/postgresql/*/bin``) with trust
authentication and fsync off, on a free loopback port, and is removed by ``stop()``.
``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user
(through ``runuser``); as any other user it runs as that user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

SERVER_GLOB = "/usr/lib/postgresql/*/bin"
SERVER_USER = "postgres"
SUPERUSER = "postgres"


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, or None."""
    candidates = [Path(p) for p in glob.glob(SERVER_GLOB) if (Path(p) / "initdb").exists()]
    if not candidates:
        return None

    def major(path: Path) -> float:
        try:
            return float(path.parent.name)
        except ValueError:
            return 0.0

    return max(candidates, key=major)


def unavailable_reason() -> str | None:
    """Why a throwaway server cannot be started here, or None if it can."""
    if find_bin_dir() is None:
        return f"no PostgreSQL server binaries at {SERVER_GLOB} (apt-get install postgresql)"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser: cannot run initdb as another user"
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run initdb as"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresError(RuntimeError):
    pass


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str, schema: str | None = None) -> str:
        """SQLAlchemy URL of ``database``, with ``schema`` as the only search path if given."""
        url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
        return url if schema is None else f"{url}?options=-csearch_path%3D{schema}"

    def _admin(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database, autocommit=True
        )

    def create_schema(self, database: str) -> str:
        """Create an empty schema with a fresh name in ``database`` and return its name.

        Much cheaper than a database per test (CREATE DATABASE copies a template).
        """
        name = f"t_{uuid.uuid4().hex[:12]}"
        with self._admin(database) as connection:
            connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return name

    def drop_schema(self, database: str, name: str) -> None:
        with self._admin(database) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
            )

    def create_database(self, name: str) -> None:
        with self._admin() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def stop(self) -> None:
        try:
            if (self.data_dir / "postmaster.pid").exists():
                _run_as_server_user(
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "-D",
                        str(self.data_dir),
                        "-m",
                        "immediate",
                        "-w",
                        "stop",
                    ],
                    self.root,
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _run_as_server_user(args: Sequence[str], root: Path) -> None:
    command = list(args)
    if os.geteuid() == 0:
        command = ["runuser", "-u", SERVER_USER, "--", *command]
    result = subprocess.run(
        command, cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise PostgresError(
            f"{' '.join(command)} exited with {result.returncode}:\n"
            f"{result.stdout}{result.stderr}{tail}"
        )


def start() -> PostgresServer:
    """initdb a fresh cluster in a new temporary folder and start it; raises PostgresError."""
    reason = unavailable_reason()
    if reason is not None:
        raise PostgresError(reason)
    bin_dir = find_bin_dir()
    assert bin_dir is not None
    # Short path under /tmp: the Unix socket path (-k) must stay under ~100 characters.
    root = Path(tempfile.mkdtemp(prefix="codeclab-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    server = PostgresServer(bin_dir=bin_dir, root=root, port=free_port())
    try:
        _run_as_server_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(server.data_dir),
                "--auth=trust",
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            root,
        )
        options = f"-h 127.0.0.1 -p {server.port} -k {root} -c fsync=off -c full_page_writes=off"
        _run_as_server_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(server.data_dir),
                "-l",
                str(server.log_file),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ],
            root,
        )
    except BaseException:
        server.stop()
        raise
    return server
