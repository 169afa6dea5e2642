"""Rewrites `[tool.uv] constraint-dependencies` in pyproject.toml from the installed packages."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
_BLOCK = re.compile(r"constraint-dependencies = \[\n(?:  \".*\",\n)*\]\n")


def main() -> None:
    """Freeze the environment (without workspace members) into the constraint list."""
    frozen = subprocess.run(
        ["uv", "pip", "freeze"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    pins = sorted(line for line in frozen if "==" in line and not line.startswith(("-e", "helios")))
    block = "constraint-dependencies = [\n" + "".join(f'  "{pin}",\n' for pin in pins) + "]\n"
    text = PYPROJECT.read_text()
    if not _BLOCK.search(text):
        raise SystemExit("constraint-dependencies block not found in pyproject.toml")
    PYPROJECT.write_text(_BLOCK.sub(block, text, count=1))


if __name__ == "__main__":
    main()
