"""A real PostgreSQL server for the service tests: Debian's postgresql binaries, a throwaway
cluster on a free port (run as the ``postgres`` user when the tests run as root: initdb refuses
root), trust authentication on 127.0.0.1 only, stopped at the end of the session."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        pytest.fail(
            f"PostgreSQL's {name} not found: install Debian's postgresql (scripts/install-deps)"
        )
    return found[-1]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class PostgresCluster:
    """A throwaway cluster on a free port; ``stop()``/``start()`` restart it (fault tests)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="iw-pg-"))
        os.chmod(self.root, 0o755)
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [
                    _bin("initdb"),
                    "-D",
                    str(self.data),
                    "-A",
                    "trust",
                    "-U",
                    "imagewise",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"postgresql+psycopg://imagewise@127.0.0.1:{self.port}"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                [_bin("pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log")]
                + ["-w", "start"]
            ),
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"]),
            capture_output=True,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """``postgresql+psycopg://imagewise@127.0.0.1:PORT``: a server to create databases in."""
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A cluster of the test's own, to stop and start again."""
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


def fresh_database(server: str) -> str:
    """A new empty database on ``server``; returns its SQLAlchemy URL."""
    import psycopg

    name = "t" + secrets.token_hex(6)
    with psycopg.connect(
        server.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"
