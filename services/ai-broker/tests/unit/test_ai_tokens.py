"""AI tokens (I1): distinct prefix, high entropy, only a hash kept, a harmless display prefix."""

from __future__ import annotations

import hashlib

from helios.ai_broker.domain.ai_tokens import (
    AI_TOKEN_PREFIX,
    hash_ai_token,
    is_ai_token,
    new_ai_token,
)


def test_i1_token_has_its_own_prefix_and_256_random_bits() -> None:
    """I1: `hai_` + 43 URL-safe characters (256 bits), unlike user sessions (`hls_`) and API
    keys (`hk_`); two tokens never repeat."""
    tokens = {new_ai_token().token for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith(AI_TOKEN_PREFIX)
        assert is_ai_token(token)
        assert not token.startswith(("hls_", "hk_"))
        assert len(token) == len(AI_TOKEN_PREFIX) + 43


def test_i1_only_the_sha256_is_kept_and_the_display_prefix_reveals_little() -> None:
    """I1: the stored hash is the token's sha256 and does not contain it; the display prefix is
    `hai_` plus 6 characters (36 of the 256 bits)."""
    fresh = new_ai_token()
    assert fresh.token_hash == hashlib.sha256(fresh.token.encode()).digest()
    assert fresh.token_hash == hash_ai_token(fresh.token)
    assert fresh.token.encode() not in fresh.token_hash
    assert fresh.display_prefix == fresh.token[:10]
    assert fresh.token.startswith(fresh.display_prefix)


def test_i1_malformed_tokens_are_recognised() -> None:
    """I1: other credentials and broken tokens are not AI tokens (they are refused without a
    lookup)."""
    good = new_ai_token().token
    for bad in (
        "",
        "hai_",
        good[:-1],
        good + "x",
        good.replace("hai_", "hls_"),
        "hk_" + "0" * 32 + "_" + "A" * 43,
        good[:10] + "!" + good[11:],
        " " + good,
    ):
        assert not is_ai_token(bad), bad
