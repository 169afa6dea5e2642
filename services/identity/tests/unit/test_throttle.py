"""Sign-in throttle rules: counter keys, limits per scope, retry delays (A1)."""

from __future__ import annotations

import datetime as dt

import pytest

from helios.identity.domain.throttle import (
    ThrottlePolicy,
    ThrottleScope,
    retry_after_seconds,
    throttle_key,
)

pytestmark = pytest.mark.unit

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_a1_default_policy_matches_the_issue() -> None:
    policy = ThrottlePolicy()
    assert policy.limit(ThrottleScope.ACCOUNT) == 10
    assert policy.limit(ThrottleScope.IP) == 50
    assert policy.window == dt.timedelta(minutes=15)
    assert policy.lockout == dt.timedelta(seconds=900)


def test_a1_account_key_ignores_case_and_spaces_and_hides_the_address() -> None:
    key = throttle_key(ThrottleScope.ACCOUNT, " Ada@Example.com ")
    assert key == throttle_key(ThrottleScope.ACCOUNT, "ada@example.com")
    assert key.scope is ThrottleScope.ACCOUNT
    assert len(key.digest) == 64
    assert "ada" not in key.digest


def test_a1_scopes_never_share_a_key() -> None:
    assert (
        throttle_key(ThrottleScope.ACCOUNT, "x").digest
        != throttle_key(ThrottleScope.IP, "x").digest
    )


def test_a1_keys_cover_account_and_ip_when_known() -> None:
    policy = ThrottlePolicy()
    assert [key.scope for key in policy.keys("a@b.io", "192.0.2.1")] == [
        ThrottleScope.ACCOUNT,
        ThrottleScope.IP,
    ]
    assert [key.scope for key in policy.keys("a@b.io", "")] == [ThrottleScope.ACCOUNT]


@pytest.mark.parametrize(
    ("remaining", "seconds"),
    [(dt.timedelta(seconds=900), 900), (dt.timedelta(seconds=0.2), 1), (dt.timedelta(0), 1)],
)
def test_a1_retry_after_rounds_up_to_at_least_one_second(
    remaining: dt.timedelta, seconds: int
) -> None:
    assert retry_after_seconds(NOW + remaining, NOW) == seconds


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_failures_per_account": 0},
        {"max_failures_per_ip": 0},
        {"window": dt.timedelta(0)},
        {"lockout": dt.timedelta(seconds=-1)},
    ],
)
def test_a1_nonsense_policy_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ThrottlePolicy(**kwargs)  # type: ignore[arg-type]
