"""TOTP (RFC 6238) as A3 uses it: 30-second steps, 6 digits, SHA-1 (what authenticator apps
read), codes of the previous, current and next step accepted, each step at most once."""

from __future__ import annotations

import datetime as dt
import hmac
import io
import uuid
from dataclasses import dataclass

import pyotp
import segno

__all__ = [
    "ISSUER",
    "TotpCredential",
    "matching_step",
    "new_totp_secret",
    "provisioning_uri",
    "qr_svg",
]

ISSUER = "Helios"
STEP_SECONDS = 30
WINDOW = 1
DIGITS = 6


@dataclass(frozen=True, slots=True)
class TotpCredential:
    """A user's TOTP secrets as stored (sealed: see ports.mfa.SecretSealer). `secret` is the
    confirmed one (None until a first code confirmed it); `pending_secret` waits for its first
    code; `last_used_step` is the newest time step a code was accepted for."""

    user_id: uuid.UUID
    secret: bytes | None = None
    pending_secret: bytes | None = None
    confirmed_at: dt.datetime | None = None
    last_used_step: int | None = None

    @property
    def confirmed(self) -> bool:
        """TOTP is in use for sign-in."""
        return self.secret is not None and self.confirmed_at is not None


def new_totp_secret() -> str:
    """A random base32 secret of 160 bits (the RFC 4226 recommendation)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str) -> str:
    """The otpauth:// URI an authenticator app scans (issuer Helios, account = e-mail)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The time step (within +-1 of `now`'s) whose code is `code`, or None. Every candidate is
    compared in constant time; the caller refuses a step already used."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def qr_svg(text: str) -> str:
    """`text` as a QR code in a standalone SVG document."""
    out = io.BytesIO()
    segno.make(text, error="m", micro=False).save(out, kind="svg", scale=4, xmldecl=False)
    return out.getvalue().decode()
