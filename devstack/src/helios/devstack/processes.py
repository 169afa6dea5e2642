"""Child processes of the local stack: started with their env, logged to files, stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ManagedProcess", "run_once"]


@dataclass
class ManagedProcess:
    """`python -m <module>` with `env` on top of a minimal environment, output in `log_path`."""

    name: str
    module: str
    env: dict[str, str]
    log_path: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        """Start the process (its output goes to the log file)."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                env=child_env(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """Exit status once it has ended."""
        return None if self._process is None else self._process.poll()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to `timeout`, then SIGKILL (idempotent)."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the log, for error messages."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment without other HELIOS_ settings, plus `extra`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("HELIOS_")}
    return {**base, **extra}


def run_once(module: str, args: list[str], env: dict[str, str]) -> str:
    """Run `python -m module args` to completion; returns stdout, raises RuntimeError with the
    output on failure."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=child_env(env),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout
