"""`helios audit verify`: check an org's stored log, or an export bundle offline, for tampering.

Exit status: 0 when everything verifies, 1 when tampering is found (the report names the first
bad index and every finding), 2 when the command cannot run (usage, settings, unreadable input,
database or keyvault unreachable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError

from helios.audit.domain.bundle import BundleError, verify_bundle
from helios.audit.domain.checkpoint import Checkpoint
from helios.audit.domain.retention import PurgeRecord, purge_record_valid
from helios.audit.domain.verification import LogVerifier, Report, keys_from_jwks
from helios.audit.ports import LogReader
from helios.audit.store import tables
from helios.audit.store.keyvault_signer import KeyvaultSigner
from helios.audit.store.reader import PAGE_SIZE, PgLogReader
from helios.audit.store.retention import postgres_retention
from helios.kernel.audit_trail import AuditRecorder
from helios.kernel.db import create_engine, session_factory
from helios.kernel.settings import secrets_dir
from helios.kernel.tls import CertFiles

__all__ = ["PROGRESS_EVERY", "VerifySettings", "main", "verify_log", "verify_main"]

PROGRESS_EVERY = 100_000
"""Leaves between two progress lines on stderr."""

_OK, _TAMPERED, _CANNOT_RUN = 0, 1, 2


class VerifySettings(BaseSettings):
    """What database mode reads from the environment and HELIOS_SECRETS_DIR (the audit service's
    own variables): the database, and keyvault with the audit service's mTLS identity unless
    `--jwks` is given."""

    model_config = SettingsConfigDict(env_prefix="HELIOS_", extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(default=None, description="postgresql:// URL")
    database_role: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]{0,62}$|^$")
    keyvault_target: str = "keyvault:50051"
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None


class _UsageError(Exception):
    """The command cannot run; the message says why (never a secret)."""


class Progress:
    """Every `every` leaves, one stderr line: leaves so far, percent of `total` when known,
    rate. `every` 0 is silent."""

    def __init__(self, every: int, total: int | None, out: IO[str]) -> None:
        self._every = every
        self._total = total
        self._out = out
        self._started = time.monotonic()

    def __call__(self, done: int, total: int | None = None) -> None:
        if not self._every or done % self._every:
            return
        total = total if total is not None else self._total
        elapsed = max(time.monotonic() - self._started, 1e-9)
        share = f" ({100 * done / total:.1f}%)" if total else ""
        self._out.write(f"verify: {done} leaves{share}, {done / elapsed:.0f} leaves/s\n")
        self._out.flush()


async def verify_log(
    reader: LogReader,
    org_id: str,
    checkpoints: Sequence[Checkpoint],
    keys: Mapping[str, Ed25519PublicKey],
    *,
    expected_size: int | None = None,
    purges: Sequence[PurgeRecord] = (),
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Stream the org's stored rows through a LogVerifier and report. A purged range counts
    as "purged by policy" only with a valid signed purge record; otherwise its rows are missing."""
    purged = [
        (r.first_index, r.end_index, r.range_hash)
        for r in purges
        if r.org_id == org_id and purge_record_valid(r, keys)
    ]
    verifier = LogVerifier(org_id, checkpoints, keys, expected_size=expected_size, purged=purged)
    async for index, record, stored in reader.rows(org_id):
        verifier.feed(index, record, stored)
        if progress is not None:
            progress(verifier.leaves_read)
    return verifier.finish()


def print_report(report: Report, out: IO[str]) -> None:
    """The report as text: one summary line, then one line per finding."""
    head = f"org {report.org_id}"
    if report.start:
        head += f", indexes {report.start}..{report.size - 1}"
    counts = f"{report.leaves_read} leaves, {report.checkpoints_verified} checkpoints verified"
    if report.purged:
        counts += ", purged by policy: " + ", ".join(f"[{a}, {b})" for a, b in report.purged)
    if report.ok:
        out.write(f"{head}: OK ({counts})\n")
        return
    first = "unknown" if report.first_bad_index is None else str(report.first_bad_index)
    out.write(f"{head}: TAMPERED, first bad index {first} ({counts})\n")
    for finding in report.findings:
        where = "" if finding.index is None else f" at {finding.index}"
        out.write(f"  {finding.kind}{where}: {finding.detail}\n")
    if report.findings_omitted:
        out.write(f"  ... and {report.findings_omitted} more findings\n")


def _load_jwks(path: Path) -> dict[str, Ed25519PublicKey]:
    """Keys from a JWKS file: `{"keys": [...]}` or a bare list of JWKs."""
    try:
        value: Any = json.loads(path.read_text())
        jwks = value["keys"] if isinstance(value, dict) else value
        if not isinstance(jwks, list):
            raise ValueError("expected a JWKS object or a list of JWKs")
        return keys_from_jwks(jwks)
    except (OSError, KeyError, ValueError) as exc:
        raise _UsageError(f"cannot read the JWKS file {path}: {exc}") from None


def _settings() -> VerifySettings:
    try:
        folder = secrets_dir()
    except ValueError as exc:
        raise _UsageError(f"invalid setting {exc}") from None
    try:
        return VerifySettings(_secrets_dir=folder)  # type: ignore[call-arg]  # pydantic-settings
    except ValidationError as exc:
        names = ", ".join("HELIOS_" + "_".join(map(str, e["loc"])).upper() for e in exc.errors())
        raise _UsageError(f"invalid setting {names}") from None


async def _keyvault_keys(settings: VerifySettings) -> dict[str, Ed25519PublicKey]:
    files = (settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)
    if any(f is None or not f.is_file() for f in files):
        raise _UsageError(
            "keyvault needs HELIOS_TLS_CA_FILE, HELIOS_TLS_CERT_FILE and HELIOS_TLS_KEY_FILE "
            "(the audit service's certificate), or pass --jwks FILE"
        )
    ca, cert, key = (Path(str(f)) for f in files)
    signer = KeyvaultSigner(settings.keyvault_target, CertFiles(ca=ca, cert=cert, key=key))
    try:
        return keys_from_jwks(await signer.public_keys())
    except grpc.aio.AioRpcError as exc:
        raise _UsageError(f"keyvault: {exc.code().name}: {exc.details()}") from None
    except ValueError as exc:
        raise _UsageError(f"keyvault returned an unusable key: {exc}") from None
    finally:
        await signer.close()


async def _verify_database(args: argparse.Namespace) -> list[Report]:
    pinned = _load_jwks(args.jwks) if args.jwks else None
    settings = _settings()
    if settings.database_url is None:
        raise _UsageError("database mode needs HELIOS_DATABASE_URL")
    keys = pinned if pinned is not None else await _keyvault_keys(settings)
    engine = create_engine(
        settings.database_url.get_secret_value(), settings.database_role, pool_size=1
    )
    sessions = session_factory(engine)
    reader = PgLogReader(sessions, page_size=args.page_size)
    retention = postgres_retention(sessions, AuditRecorder("audit", tables.outbox))
    reports = []
    try:
        orgs = await reader.orgs() if args.all_orgs else [args.org]
        for org in orgs:
            checkpoints = await reader.checkpoints(org)
            size = await reader.size(org)  # before the rows: rows appended later only add
            latest = max((c.tree_size for c in checkpoints), default=0)
            progress = Progress(args.progress_every, max(size or 0, latest) or None, sys.stderr)
            async with retention() as tx:
                purges = await tx.purges(org)
            reports.append(
                await verify_log(
                    reader,
                    org,
                    checkpoints,
                    keys,
                    expected_size=size,
                    purges=purges,
                    progress=progress,
                )
            )
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        raise _UsageError(f"database: {reason}") from None
    finally:
        await engine.dispose()
    return reports


def _verify_bundle(args: argparse.Namespace) -> Report:
    keys = _load_jwks(args.jwks) if args.jwks else None
    if keys is None:
        sys.stderr.write(
            "note: signatures are checked with the bundle's own keys, which proves integrity "
            "but not origin; pass --jwks FILE to pin the trusted keys\n"
        )
    progress = Progress(args.progress_every, None, sys.stderr)
    try:
        with args.bundle.open("rb") as source:
            return verify_bundle(source, keys, progress=progress)
    except OSError as exc:
        raise _UsageError(f"cannot read {args.bundle}: {exc.strerror or exc}") from None
    except BundleError as exc:
        raise _UsageError(f"{args.bundle} is not a helios audit bundle: {exc}") from None


def _verify_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--org", help="verify this org's log in the database (HELIOS_DATABASE_URL)")
    source.add_argument("--all-orgs", action="store_true", help="verify every org's log")
    source.add_argument("--bundle", type=Path, help="verify an export bundle offline")
    parser.add_argument(
        "--jwks",
        type=Path,
        help="trusted checkpoint keys (JWKS file) instead of keyvault's (database mode) or the "
        "bundle's own (bundle mode)",
    )
    parser.add_argument(
        "--progress-every",
        type=_non_negative,
        default=PROGRESS_EVERY,
        metavar="N",
        help=f"a progress line on stderr every N leaves (0: none; default {PROGRESS_EVERY})",
    )
    parser.add_argument("--page-size", type=_positive, default=PAGE_SIZE, help=argparse.SUPPRESS)
    return parser


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be positive")
    return number


def _run_verify(args: argparse.Namespace) -> int:
    try:
        reports = [_verify_bundle(args)] if args.bundle else asyncio.run(_verify_database(args))
    except _UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return _CANNOT_RUN
    for report in reports:
        print_report(report, sys.stdout)
    sys.stdout.flush()
    return _OK if all(r.ok for r in reports) else _TAMPERED


def verify_main(argv: Sequence[str] | None = None, prog: str = "helios audit verify") -> int:
    """`verify` alone (what `python -m helios.audit verify ...` runs); argparse exits 2 on a
    usage error."""
    parser = _verify_parser(
        argparse.ArgumentParser(prog=prog, description="Check an audit log for tampering.")
    )
    return _run_verify(parser.parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    """The `helios` command: its first word names the area (only `audit` so far)."""
    parser = argparse.ArgumentParser(prog="helios", description="Helios operator commands.")
    areas = parser.add_subparsers(dest="area", required=True, metavar="AREA")
    audit = areas.add_parser("audit", help="the audit log")
    commands = audit.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _verify_parser(
        commands.add_parser(
            "verify",
            help="check a log or an export bundle for tampering",
            description="Check an audit log for tampering.",
        )
    )
    return _run_verify(parser.parse_args(argv))
