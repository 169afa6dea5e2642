"""The `vault` seal provider through hvac (the real client) against a stand-in for Vault transit
(E7): the root key survives a restart, its state file is a private transit ciphertext, and every
refusal (wrong token, Vault down, unknown key, altered file, untrusted TLS) is a clean SealError."""

from __future__ import annotations

import base64
import binascii
import json
import os
import ssl
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helios.kernel.tls import CertFiles
from helios.keyvault.seal import SealError
from helios.keyvault.vault_seal import STATE_FILE, VaultTransitSeal

TOKEN = "hvs.stand-in-root-token-0123456789"
KEY = "helios-root"
CONTEXT = b"helios.keyvault.kek/org-a/key-1/v1"
SECRET = b"a key-encryption key, 32 bytes.."


@dataclass
class TransitStandIn:
    """A stand-in for HashiCorp Vault's transit secrets engine (no Vault server can run here); it
    implements the HTTP API hvac uses for transit encrypt/decrypt (POST /v1/<mount>/encrypt/<key>,
    /v1/<mount>/decrypt/<key>), X-Vault-Token auth, Vault's JSON error format, and real AES-GCM
    ciphertexts of the form vault:v1:<base64>.

    One token is valid; any other gets 403 {"errors":["permission denied"]} as from Vault. Keys
    are fixed at start (aes256-gcm96, version 1, no derivation): like Vault under a policy without
    `create`, a missing key is not upserted; decrypting with it answers 400 "encryption key not
    found", and so does encrypting (where Vault would answer 403 without `create`). An unknown
    mount answers 404 "no handler for route". Only plaintext/ciphertext (and associated_data) are
    read from the request body. It serves plain HTTP, or HTTPS when given a certificate.
    """

    token: str = TOKEN
    mount: str = "transit"
    keys: dict[str, bytes] = field(default_factory=lambda: {KEY: AESGCM.generate_key(256)})
    tls: CertFiles | None = None
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> TransitStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in.requests.append(("POST", self.path, self.headers.get("User-Agent", "")))
                length = int(self.headers.get("Content-Length") or 0)
                status, body = stand_in.answer(
                    self.path, self.headers.get("X-Vault-Token"), self.rfile.read(length)
                )
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert, self.tls.key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def answer(self, path: str, token: str | None, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Vault's status and JSON body for one request."""
        if token != self.token:
            return 403, {"errors": ["permission denied"]}
        parts = path.split("?")[0].strip("/").split("/")
        if len(parts) != 4 or parts[0] != "v1" or parts[1] != self.mount:
            route = "/".join(parts[1:])
            return 404, {"errors": [f'no handler for route "{route}". route entry not found.']}
        operation, name = parts[2], parts[3]
        if operation not in ("encrypt", "decrypt"):
            return 405, {"errors": ["unsupported operation"]}
        key = self.keys.get(name)
        if key is None:
            return 400, {"errors": ["encryption key not found"]}
        try:
            body = json.loads(raw or b"{}")
            aad = base64.b64decode(body.get("associated_data") or "", validate=True) or None
        except (ValueError, binascii.Error):
            return 400, {"errors": ["failed to parse JSON input"]}
        if operation == "encrypt":
            try:
                plaintext = base64.b64decode(body.get("plaintext", ""), validate=True)
            except binascii.Error:
                return 400, {"errors": ["failed to base64-decode plaintext"]}
            nonce = os.urandom(12)
            sealed = nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
            text = "vault:v1:" + base64.b64encode(sealed).decode()
            return 200, _vault_data({"ciphertext": text, "key_version": 1})
        ciphertext = str(body.get("ciphertext", ""))
        if not ciphertext.startswith("vault:"):
            return 400, {"errors": ["invalid ciphertext: no prefix"]}
        version, _, encoded = ciphertext.removeprefix("vault:").partition(":")
        if version != "v1":
            return 400, {"errors": ["invalid key version"]}
        try:
            sealed = base64.b64decode(encoded, validate=True)
            plaintext = AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
        except (binascii.Error, ValueError, InvalidTag):
            return 400, {"errors": ["cipher: message authentication failed"]}
        return 200, _vault_data({"plaintext": base64.b64encode(plaintext).decode()})


def _vault_data(data: dict[str, Any]) -> dict[str, Any]:
    """A Vault success envelope around `data`."""
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        "mount_type": "transit",
    }


@pytest.fixture
def vault() -> Iterator[TransitStandIn]:
    stand_in = TransitStandIn().start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


def _open(vault: TransitStandIn, state_dir: Path, **kwargs: Any) -> VaultTransitSeal:
    options: dict[str, Any] = {"token": TOKEN, "transit_key": KEY, "timeout": 5, **kwargs}
    return VaultTransitSeal.open(vault.url, state_dir=state_dir, **options)


def _refusal(vault_url: str, state_dir: Path, **kwargs: Any) -> str:
    options: dict[str, Any] = {"token": TOKEN, "transit_key": KEY, "timeout": 5, **kwargs}
    with pytest.raises(SealError) as refused:
        VaultTransitSeal.open(vault_url, state_dir=state_dir, **options)
    message = str(refused.value)
    assert TOKEN not in message
    return message


def test_e7_root_key_made_through_hvac_survives_a_restart(
    vault: TransitStandIn, tmp_path: Path
) -> None:
    """E7: the first start has Vault encrypt a fresh root key (through hvac, the real client);
    a second start on the same state dir decrypts it and unwraps what the first one wrapped."""
    first = _open(vault, tmp_path / "seal")
    assert first.name == "vault"
    assert [(m, p) for m, p, _ in vault.requests] == [
        ("POST", f"/v1/transit/encrypt/{KEY}"),
        ("POST", f"/v1/transit/decrypt/{KEY}"),
    ]
    assert all(agent.startswith("python-requests/") for _, _, agent in vault.requests)
    blob = first.wrap(SECRET, CONTEXT)
    assert SECRET not in blob

    vault.requests.clear()
    restarted = _open(vault, tmp_path / "seal")
    assert [p for _, p, _ in vault.requests] == [f"/v1/transit/decrypt/{KEY}"]
    assert restarted.unwrap(blob, CONTEXT) == SECRET
    assert first.unwrap(restarted.wrap(SECRET, CONTEXT), CONTEXT) == SECRET
    assert repr(restarted) == "VaultTransitSeal()"


def test_e7_state_file_is_a_private_transit_ciphertext(
    vault: TransitStandIn, tmp_path: Path
) -> None:
    """E7: root.key.vault is 0600 and holds only `vault:v1:...`: the plaintext root key is
    nowhere in it, and only Vault's transit key opens it."""
    seal = _open(vault, tmp_path / "seal")
    path = tmp_path / "seal" / STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text().strip()
    assert text.startswith("vault:v1:")
    sealed = base64.b64decode(text.removeprefix("vault:v1:"))
    root_key = AESGCM(vault.keys[KEY]).decrypt(sealed[:12], sealed[12:], None)
    assert len(root_key) == 32
    raw = path.read_bytes()
    for form in (root_key, root_key.hex().encode(), base64.b64encode(root_key)):
        assert form not in raw
    # The decrypted root key is the one the seal uses (LocalSeal's blob format under it).
    blob = seal.wrap(SECRET, CONTEXT)
    assert AESGCM(root_key).decrypt(blob[:12], blob[12:], CONTEXT) == SECRET


def test_e7_wrap_is_bound_to_its_context_and_detects_tampering(
    vault: TransitStandIn, tmp_path: Path
) -> None:
    """E7: a blob opens only with its context; another context, a flipped byte, a truncated
    blob or a seal with another root key are refused with SealError, never plaintext."""
    seal = _open(vault, tmp_path / "seal")
    blob = seal.wrap(SECRET, CONTEXT)
    assert seal.wrap(SECRET, CONTEXT) != blob
    assert seal.unwrap(blob, CONTEXT) == SECRET
    flipped = bytearray(blob)
    flipped[-1] ^= 1
    other = _open(vault, tmp_path / "another-seal")
    for bad_blob, context in (
        (blob, b"helios.keyvault.kek/org-b/key-1/v1"),
        (bytes(flipped), CONTEXT),
        (blob[:20], CONTEXT),
    ):
        with pytest.raises(SealError):
            seal.unwrap(bad_blob, context)
    with pytest.raises(SealError, match="another root key or context"):
        other.unwrap(blob, CONTEXT)


def test_e7_wrong_token_is_refused_without_echoing_it(
    vault: TransitStandIn, tmp_path: Path
) -> None:
    """E7: a token Vault rejects (403) gives SealError naming the permission problem, on first
    start and on restart; the token never appears and no state file is left on first start."""
    wrong = "hvs.a-wrong-token-that-must-not-leak"
    message = _refusal(vault.url, tmp_path / "fresh", token=wrong)
    assert "denied permission" in message
    assert wrong not in message
    assert not (tmp_path / "fresh" / STATE_FILE).exists()

    _open(vault, tmp_path / "seal")
    message = _refusal(vault.url, tmp_path / "seal", token=wrong)
    assert "denied permission to decrypt" in message
    assert wrong not in message


def test_e7_vault_down_is_reported_as_unreachable(vault: TransitStandIn, tmp_path: Path) -> None:
    """E7: with the stand-in stopped, a restart fails with SealError saying Vault is
    unreachable; the state file is untouched."""
    _open(vault, tmp_path / "seal")
    before = (tmp_path / "seal" / STATE_FILE).read_bytes()
    url = vault.url
    vault.stop()
    message = _refusal(url, tmp_path / "seal")
    assert "unreachable" in message
    assert url in message
    assert (tmp_path / "seal" / STATE_FILE).read_bytes() == before


def test_e7_unknown_transit_key_or_mount_is_refused(vault: TransitStandIn, tmp_path: Path) -> None:
    """E7: a transit key name Vault does not have, or a mount with no transit engine, gives
    SealError naming it; no state file is created."""
    message = _refusal(vault.url, tmp_path / "seal", transit_key="helios-rot")
    assert "no transit key 'helios-rot'" in message
    assert "encryption key not found" in message
    message = _refusal(vault.url, tmp_path / "seal", mount_point="kv")
    assert "no transit engine at mount 'kv'" in message
    assert not (tmp_path / "seal" / STATE_FILE).exists()

    _open(vault, tmp_path / "seal")
    message = _refusal(vault.url, tmp_path / "seal", transit_key="helios-rot")
    assert "no transit key 'helios-rot'" in message


def test_e7_state_file_vault_cannot_decrypt_is_refused(
    vault: TransitStandIn, tmp_path: Path
) -> None:
    """E7: an altered root.key.vault, one made under another transit key, a file that is not a
    ciphertext or one others may read: each refused with a clear SealError."""
    _open(vault, tmp_path / "seal")
    path = tmp_path / "seal" / STATE_FILE
    good = path.read_text()
    sealed = bytearray(base64.b64decode(good.strip().removeprefix("vault:v1:")))
    sealed[15] ^= 1
    path.write_text("vault:v1:" + base64.b64encode(bytes(sealed)).decode())
    message = _refusal(vault.url, tmp_path / "seal")
    assert "cannot decrypt the root key" in message
    assert str(path) in message

    vault.keys[KEY] = AESGCM.generate_key(256)  # the transit key was replaced in Vault
    path.write_text(good)
    assert "cannot decrypt the root key" in _refusal(vault.url, tmp_path / "seal")

    path.write_text("0123456789abcdef" * 4)
    assert "does not hold a transit ciphertext" in _refusal(vault.url, tmp_path / "seal")
    path.write_text(good)
    path.chmod(0o644)
    assert "chmod 600" in _refusal(vault.url, tmp_path / "seal")


def test_e7_vault_over_tls_needs_its_ca(pki: dict[str, CertFiles], tmp_path: Path) -> None:
    """E7: over HTTPS the seal opens with the Vault CA file configured, and refuses a server its
    CA file does not vouch for."""
    stand_in = TransitStandIn(tls=pki["keyvault"]).start()
    try:
        seal = _open(stand_in, tmp_path / "seal", ca_file=pki["keyvault"].ca)
        assert seal.unwrap(seal.wrap(SECRET, CONTEXT), CONTEXT) == SECRET
        message = _refusal(stand_in.url, tmp_path / "seal", ca_file=pki["stranger"].ca)
        assert "TLS certificate" in message
        missing = _refusal(stand_in.url, tmp_path / "seal", ca_file=tmp_path / "nope.pem")
        assert "CA file" in missing
    finally:
        stand_in.stop()
