"""Regenerates libs/proto and typings/ from protos/ (`make proto`); the output is committed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import google.api
import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
OUT = ROOT / "libs" / "proto" / "src"
TYPINGS = ROOT / "typings"
VENDOR = PROTOS / "vendor"
GOOGLE_API_FILES = ("annotations.proto", "http.proto")
# Typed only (the shipped .pyi are too loose for strict mypy); imported at run time from
# googleapis-common-protos.
GOOGLE_RPC_FILES = ("status.proto", "error_details.proto")


def _run(args: list[str]) -> None:
    if protoc.main(["protoc", *args]) != 0:
        sys.exit(f"protoc failed: {' '.join(args)}")


def main() -> None:
    """Generate stubs, mypy stubs for google/api, and refresh the vendored google/api protos."""
    bin_dir = Path(sys.executable).parent
    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    plugins = [
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
    ]
    includes = [f"-I{PROTOS}", f"-I{googleapis}", f"-I{well_known}"]

    shutil.rmtree(OUT / "helios", ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "helios").rglob("*.proto"))
    _run(
        [
            *includes,
            *plugins,
            f"--python_out={OUT}",
            f"--grpc_python_out={OUT}",
            f"--mypy_out={OUT}",
            f"--mypy_grpc_out={OUT}",
            *sources,
        ]
    )
    # protoc writes no __init__.py; helios.proto.* stays a namespace package on purpose, but the
    # leaf packages get one so mypy and importlib treat them as regular packages.
    for folder in sorted({p.parent for p in (OUT / "helios").rglob("*_pb2.py")}):
        (folder / "__init__.py").touch()

    shutil.rmtree(TYPINGS / "google", ignore_errors=True)
    TYPINGS.mkdir(exist_ok=True)
    api_sources = [f"google/api/{name}" for name in GOOGLE_API_FILES]
    api_sources += [f"google/rpc/{name}" for name in GOOGLE_RPC_FILES]
    _run([*includes, *plugins, f"--mypy_out={TYPINGS}", *api_sources])
    for name in GOOGLE_API_FILES:
        target = VENDOR / "google" / "api" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(googleapis / "google" / "api" / name, target)


if __name__ == "__main__":
    main()
