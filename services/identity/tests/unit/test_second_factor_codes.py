"""The pure rules of second-factor codes (A3, A9): the TOTP window, backup and e-mailed codes,
device tokens."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pyotp

from helios.identity.domain.backup_codes import hash_backup_code, new_backup_codes
from helios.identity.domain.email_otp import hash_email_otp, new_email_otp
from helios.identity.domain.remembered_device import new_device_token
from helios.identity.domain.totp import matching_step, new_totp_secret, provisioning_uri, qr_svg

NOW = dt.datetime(2026, 3, 1, 12, 0, 15, tzinfo=dt.UTC)
STEP = int(NOW.timestamp()) // 30


def test_a3_totp_accepts_the_previous_current_and_next_step_only() -> None:
    """A3: codes of steps -1, 0 and +1 match (and name their step); -2 and +2 do not."""
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)
    for offset in (-1, 0, 1):
        code = totp.at(NOW + dt.timedelta(seconds=30 * offset))
        assert matching_step(secret, code, NOW) == STEP + offset
    for offset in (-2, 2):
        assert matching_step(secret, totp.at(NOW + dt.timedelta(seconds=30 * offset)), NOW) is None


def test_a3_totp_refuses_malformed_codes() -> None:
    """A3: only six ASCII digits are compared at all."""
    secret = new_totp_secret()
    code = pyotp.TOTP(secret).at(NOW)
    for bad in ("", code[:5], code + "0", "12345a", "１２３４５６"):
        assert matching_step(secret, bad, NOW) is None


def test_a3_totp_secret_and_uri_for_authenticator_apps() -> None:
    """A3: a 160-bit base32 secret; the otpauth URI names issuer Helios and the account."""
    secret = new_totp_secret()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    uri = urlsplit(provisioning_uri(secret, "ada@example.com"))
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert uri.path == "/Helios:ada%40example.com"
    query = parse_qs(uri.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["Helios"]


def test_a3_qr_code_is_a_standalone_svg() -> None:
    """A3: the QR code is an SVG document (no XML declaration, no external references)."""
    svg = qr_svg("otpauth://totp/Helios:ada%40example.com?secret=ABC&issuer=Helios")
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")
    assert "http://" not in svg.replace("http://www.w3.org/2000/svg", "")


def test_a3_ten_distinct_backup_codes_hashed_per_user() -> None:
    """A3: ten distinct base32 codes shaped `ABCDE-FGHIJ`; the hash ignores case, dashes and spaces
    and differs between users for the same code."""
    codes = new_backup_codes()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z2-7]{5}-[A-Z2-7]{5}", code) for code in codes)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    code = codes[0]
    typed = f" {code.lower().replace('-', '')} "
    assert hash_backup_code(alice, typed) == hash_backup_code(alice, code)
    assert hash_backup_code(alice, code) != hash_backup_code(bob, code)
    assert len(hash_backup_code(alice, code)) == 32


def test_a3_email_otp_six_digits_hashed_per_challenge() -> None:
    """A3: e-mailed codes are 6 digits; the stored hash depends on the challenge."""
    codes = {new_email_otp() for _ in range(200)}
    assert all(re.fullmatch(r"\d{6}", code) for code in codes)
    assert len(codes) > 150
    one, two = uuid.uuid4(), uuid.uuid4()
    assert hash_email_otp(one, "123456") != hash_email_otp(two, "123456")
    assert hash_email_otp(one, " 123456 ") == hash_email_otp(one, "123456")


def test_a9_device_tokens_are_prefixed_and_random() -> None:
    """A9: remembered-device tokens carry 256 random bits behind `hld_`."""
    tokens = {new_device_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(token.startswith("hld_") and len(token) >= 47 for token in tokens)
