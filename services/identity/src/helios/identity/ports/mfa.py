"""Storage port of second factors (A3, A9): TOTP, backup codes, e-mail OTPs, challenges, devices;
and the sealing of the secrets among them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Protocol

from helios.identity.domain.email_otp import EmailOtp
from helios.identity.domain.remembered_device import RememberedDevice
from helios.identity.domain.second_factor import SignInChallenge
from helios.identity.domain.totp import TotpCredential
from helios.kernel.step_up import StepUpGrant

__all__ = ["MfaTransaction", "RowSealer", "StepUpIssuer"]


class MfaTransaction(Protocol):
    """Reads and writes of this area inside an identity transaction."""

    # --- sign-in challenges -------------------------------------------------------------------

    async def sign_in_challenge_by_token_hash(self, token_hash: bytes) -> SignInChallenge | None:
        """The challenge with this token hash, open or not, or None."""
        ...

    async def sign_in_challenge_by_id(self, challenge_id: uuid.UUID) -> SignInChallenge | None:
        """The challenge, open or not, or None."""
        ...

    async def add_sign_in_challenge(self, challenge: SignInChallenge, token_hash: bytes) -> None:
        """Insert a challenge under the hash of its token."""
        ...

    async def count_challenge_failure(self, challenge_id: uuid.UUID) -> int:
        """Add one wrong code to the challenge and return its attempts so far (atomic: concurrent
        failures each count)."""
        ...

    async def complete_sign_in_challenge(
        self, challenge_id: uuid.UUID, now: dt.datetime, max_attempts: int
    ) -> bool:
        """Mark the challenge completed if it is still open at `now` with fewer than
        `max_attempts` wrong codes; True for the one call that did (of concurrent calls, one)."""
        ...

    # --- e-mail OTPs --------------------------------------------------------------------------

    async def put_email_otp(
        self, challenge_id: uuid.UUID, code_hash: bytes, expires_at: dt.datetime
    ) -> int:
        """Store the challenge's code (replacing an earlier one) and return how many codes the
        challenge has been sent, this one included."""
        ...

    async def email_otp_of(self, challenge_id: uuid.UUID) -> EmailOtp | None:
        """The challenge's current code, expired or not, or None."""
        ...

    # --- TOTP ---------------------------------------------------------------------------------

    async def totp_of(self, user_id: uuid.UUID) -> TotpCredential | None:
        """The user's TOTP row (confirmed or pending), or None."""
        ...

    async def set_pending_totp(self, user_id: uuid.UUID, sealed_secret: bytes) -> None:
        """Store a new secret awaiting its first code (replacing an earlier pending one; a
        confirmed secret stays in use until the new one is confirmed)."""
        ...

    async def confirm_totp(self, user_id: uuid.UUID, step: int, at: dt.datetime) -> bool:
        """Make the pending secret the confirmed one, with `step` as its last used step; False
        when there is no pending secret (another call confirmed it first)."""
        ...

    async def use_totp_step(self, user_id: uuid.UUID, step: int) -> bool:
        """Record `step` as used if it is newer than the last used one; False for a step already
        used or older (a replayed code). Atomic across concurrent calls."""
        ...

    # --- backup codes -------------------------------------------------------------------------

    async def replace_backup_codes(
        self, user_id: uuid.UUID, code_hashes: list[bytes], at: dt.datetime
    ) -> None:
        """Drop every code of the user and store these."""
        ...

    async def use_backup_code(self, user_id: uuid.UUID, code_hash: bytes, at: dt.datetime) -> bool:
        """Mark the user's unused code with this hash used; False when there is none. Atomic: of
        concurrent uses of one code, one wins."""
        ...

    async def backup_codes_remaining(self, user_id: uuid.UUID) -> int:
        """How many unused backup codes the user has."""
        ...

    # --- remembered devices (A9) --------------------------------------------------------------

    async def add_remembered_device(self, device: RememberedDevice) -> None:
        """Insert a remembered device."""
        ...

    async def remembered_device_by_token_hash(self, token_hash: bytes) -> RememberedDevice | None:
        """The device with this token hash, active or not, or None."""
        ...

    async def touch_remembered_device(self, device_id: uuid.UUID, at: dt.datetime, ip: str) -> None:
        """Record a sign-in the device skipped the second factor for."""
        ...

    async def remembered_devices_of(
        self, user_id: uuid.UUID, now: dt.datetime
    ) -> list[RememberedDevice]:
        """The user's active devices at `now`, newest first."""
        ...

    async def revoke_remembered_device(
        self, user_id: uuid.UUID, device_id: uuid.UUID, at: dt.datetime
    ) -> bool:
        """Revoke the user's device (idempotent); False when the user has no such active one."""
        ...


class RowSealer(Protocol):
    """Encrypts secrets that must be read back (TOTP secrets) for one row, so a value copied to
    another row does not open. Called outside database transactions (it may call keyvault)."""

    async def seal(self, table: str, column: str, row_id: str, plaintext: bytes) -> bytes:
        """The stored form of `plaintext`; raises a DomainError when the key service refuses."""
        ...

    async def unseal(self, table: str, column: str, row_id: str, sealed: bytes) -> bytes:
        """The plaintext; InvalidArgumentError when `sealed` does not open for this row."""
        ...


class StepUpIssuer(Protocol):
    """Signs step-up tokens (identity is their only issuer)."""

    def issue(self, grant: StepUpGrant, now: dt.datetime, ttl: dt.timedelta) -> tuple[str, str]:
        """A token for `grant` valid for `ttl` from `now`, and its random id."""
        ...
