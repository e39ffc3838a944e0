"""Pure parts of callbacks: Standard Webhooks signing, backoff, and target pinning."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from reelgate.callbacks import (
    callback_target,
    retry_delay_s,
    secret_key,
    signature,
    verify_signature,
    webhook_headers,
)
from reelgate.domain.errors import InvalidParameterError

# The Standard Webhooks specification's published test vector.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def spec_headers(sig: str = SPEC_SIGNATURE, ts: int = SPEC_TS) -> dict[str, str]:
    return {"webhook-id": SPEC_ID, "webhook-timestamp": str(ts), "webhook-signature": sig}


def test_whsec_secret_reproduces_the_spec_vector() -> None:
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE
    assert webhook_headers(SPEC_SECRET, SPEC_ID, SPEC_BODY, timestamp=SPEC_TS) == spec_headers()
    assert verify_signature(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TS + 10)


def test_plain_secret_is_used_as_utf8_bytes() -> None:
    mac = hmac.new("clé".encode(), f"{SPEC_ID}.{SPEC_TS}.".encode() + SPEC_BODY, hashlib.sha256)
    expected = "v1," + base64.b64encode(mac.digest()).decode()
    assert signature("clé", SPEC_ID, SPEC_TS, SPEC_BODY) == expected
    assert secret_key("clé") == "clé".encode()


@pytest.mark.parametrize(
    "secret", ["whsec_not base64!", "whsec_", ""], ids=["bad-base64", "empty-whsec", "empty"]
)
def test_malformed_secret_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="REELGATE_WEBHOOK_SECRET"):
        secret_key(secret)


def test_verify_rejects_tampering_wrong_keys_and_stale_timestamps() -> None:
    now = SPEC_TS + 10
    assert not verify_signature(SPEC_SECRET, spec_headers(), SPEC_BODY + b" ", now=now)
    assert not verify_signature("whsec_" + "A" * 44, spec_headers(), SPEC_BODY, now=now)
    assert not verify_signature(SPEC_SECRET, spec_headers(ts=SPEC_TS + 1), SPEC_BODY, now=now)
    other_id = {**spec_headers(), "webhook-id": "msg_other"}
    assert not verify_signature(SPEC_SECRET, other_id, SPEC_BODY, now=now)
    # Older than the tolerance (5 min): a replay.
    assert not verify_signature(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TS + 301)
    assert verify_signature(SPEC_SECRET, spec_headers(), SPEC_BODY, tolerance_s=None)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_rejects_missing_headers(missing: str) -> None:
    headers = spec_headers()
    del headers[missing]
    assert not verify_signature(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TS)


def test_verify_accepts_any_listed_signature_and_any_header_case() -> None:
    rotated = spec_headers(sig="v1,AAAA v2,whatever " + SPEC_SIGNATURE)
    assert verify_signature(SPEC_SECRET, rotated, SPEC_BODY, now=SPEC_TS)
    title_case = {k.title(): v for k, v in spec_headers().items()}
    assert verify_signature(SPEC_SECRET, title_case, SPEC_BODY, now=SPEC_TS)
    assert not verify_signature(
        SPEC_SECRET, spec_headers(sig=SPEC_SIGNATURE[3:]), SPEC_BODY, now=SPEC_TS
    )
    assert not verify_signature(
        SPEC_SECRET, {**spec_headers(), "webhook-timestamp": "soon"}, SPEC_BODY, now=SPEC_TS
    )


def test_retry_delay_doubles_with_bounded_jitter_and_a_cap() -> None:
    mid = [retry_delay_s(n, 1.0, rand=lambda: 0.5) for n in range(1, 6)]
    assert mid == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert retry_delay_s(3, 1.0, rand=lambda: 0.0) == pytest.approx(3.2)
    assert retry_delay_s(3, 1.0, rand=lambda: 0.999999) == pytest.approx(4.8, rel=1e-5)
    assert retry_delay_s(30, 1.0, cap_s=600) == 600
    assert retry_delay_s(10_000, 1.0) == 600  # no overflow for absurd attempt counts


ALLOW = "REELGATE_CALLBACK_ALLOW_PRIVATE"


async def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("must not resolve")


async def test_target_is_pinned_to_the_checked_address() -> None:
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    plain = await callback_target(
        "http://hooks.example.com:8080/in?a=1", False, allow_setting=ALLOW, resolve=resolve
    )
    assert plain.url == "http://93.184.215.14:8080/in?a=1"
    assert plain.headers == {"Host": "hooks.example.com:8080"}
    assert plain.extensions == {}
    tls = await callback_target(
        "https://hooks.example.com/in", False, allow_setting=ALLOW, resolve=resolve
    )
    assert tls.url == "https://93.184.215.14/in"
    assert tls.headers == {"Host": "hooks.example.com"}
    # The certificate is still checked against the name, via SNI.
    assert tls.extensions == {"sni_hostname": "hooks.example.com"}
    assert asked == [("hooks.example.com", 8080), ("hooks.example.com", 443)]


async def test_rebinding_to_a_private_address_is_refused() -> None:
    rounds = [["93.184.215.14"], ["93.184.215.14", "10.0.0.7"], ["169.254.169.254"]]

    async def resolve(host: str, port: int) -> list[str]:
        return rounds.pop(0)

    url = "https://hooks.example.com/in"
    await callback_target(url, False, allow_setting=ALLOW, resolve=resolve)
    with pytest.raises(InvalidParameterError, match="private"):
        await callback_target(url, False, allow_setting=ALLOW, resolve=resolve)
    with pytest.raises(InvalidParameterError, match="metadata"):
        await callback_target(url, False, allow_setting=ALLOW, resolve=resolve)


async def test_allow_private_sends_as_is_and_bad_schemes_are_refused() -> None:
    target = await callback_target(
        "http://receiver.internal:9/x", True, allow_setting=ALLOW, resolve=_no_dns
    )
    assert (target.url, target.headers, target.extensions) == (
        "http://receiver.internal:9/x",
        {},
        {},
    )
    with pytest.raises(InvalidParameterError, match="not an http"):
        await callback_target("ftp://example.com/x", True, allow_setting=ALLOW, resolve=_no_dns)
