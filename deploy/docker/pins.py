"""The workspace's third-party pins in an image build: export them as a constraints file, and
check that an installed environment holds nothing else (run by the builder stage)."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_OWN = "helios-"  # the workspace's distributions, installed from wheels built in the image


def _normalized(requirement: str) -> str:
    name, _, version = requirement.partition("==")
    return re.sub(r"[-_.]+", "-", name.strip()).lower() + "==" + version.strip()


def constraint_lines(pyproject: str) -> list[str]:
    """The `[tool.uv] constraint-dependencies` of a pyproject.toml text; raises KeyError when
    there is no such list."""
    pins: list[str] = tomllib.loads(pyproject)["tool"]["uv"]["constraint-dependencies"]
    return pins


def unpinned(frozen: list[str], constraints: list[str]) -> list[str]:
    """The `name==version` lines of a `pip freeze` that no constraint pins exactly, besides the
    workspace's own distributions (`helios-*`, also when listed as `name @ file://...`)."""
    pinned = {_normalized(line) for line in constraints if "==" in line}
    installed = [line.strip() for line in frozen if line.strip() and not line.startswith("#")]
    return [
        line
        for line in installed
        if not _normalized(line).startswith(_OWN) and _normalized(line) not in pinned
    ]


def main(argv: list[str]) -> int:
    """`pins.py export PYPROJECT` prints the constraints; `pins.py check CONSTRAINTS FROZEN`
    exits 1 naming every installed package the constraints do not pin."""
    match argv:
        case ["export", pyproject]:
            print("\n".join(constraint_lines(Path(pyproject).read_text(encoding="utf-8"))))
            return 0
        case ["check", constraints, frozen]:
            loose = unpinned(
                Path(frozen).read_text(encoding="utf-8").splitlines(),
                Path(constraints).read_text(encoding="utf-8").splitlines(),
            )
            for line in loose:
                print(f"not pinned by constraint-dependencies: {line}", file=sys.stderr)
            return 1 if loose else 0
    print("usage: pins.py export PYPROJECT | pins.py check CONSTRAINTS FROZEN", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
