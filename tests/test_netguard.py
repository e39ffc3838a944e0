"""The SSRF rule (domain/netguard.py): one table of addresses, no DNS (injected resolvers)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from reelgate.api import create_app
from reelgate.domain.errors import InvalidParameterError
from reelgate.domain.netguard import (
    Resolver,
    blocked_reason,
    check_callback_url,
    public_addresses,
)
from reelgate.settings import Settings

from .helpers import assert_error

ALLOW = "REELGATE_CALLBACK_ALLOW_PRIVATE"

REFUSED = [
    # (address, words the reason must contain)
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.0.10", "private"),
    ("fc00::1", "private"),
    ("fd00:ec2::254", "metadata"),
    ("169.254.169.254", "metadata"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%2", "scoped"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("100.100.100.200", "metadata"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.1", "non-global"),  # TEST-NET-1 (documentation)
    ("198.51.100.7", "non-global"),
    ("203.0.113.9", "non-global"),
    ("198.18.0.1", "non-global"),  # benchmarking
    ("2001:db8::1", "non-global"),  # documentation
    ("192.0.0.1", "non-global"),  # IETF protocol assignments
    # IPv4-mapped and IPv4-compatible
    ("::ffff:127.0.0.1", "loopback address (127.0.0.1 inside a IPv4-mapped"),
    ("::ffff:169.254.169.254", "metadata"),
    ("::ffff:10.0.0.1", "private"),
    ("::7f00:1", "loopback address (127.0.0.1 inside a IPv4-compatible"),
    # 6to4 wrapping loopback, the metadata service, private and CGNAT addresses
    ("2002:7f00:1::", "loopback address (127.0.0.1 inside a 6to4"),
    ("2002:a9fe:a9fe::", "metadata address (169.254.169.254 inside a 6to4"),
    ("2002:c0a8:101::1", "private address (192.168.1.1 inside a 6to4"),
    ("2002:6440:1::", "address (100.64.0.1 inside a 6to4"),
    # NAT64, well-known and local-use prefixes
    ("64:ff9b::7f00:1", "loopback address (127.0.0.1 inside a NAT64"),
    ("64:ff9b::a9fe:a9fe", "metadata"),
    ("64:ff9b::a00:1", "private"),
    ("64:ff9b:1:7f00:0:100::", "loopback address (127.0.0.1 inside a NAT64"),
    # Teredo: client 192.168.1.1 (obfuscated as ~), server 65.54.227.120
    ("2001:0:4136:e378:8000:63bf:3f57:fefe", "private address (192.168.1.1 inside a Teredo"),
    # Teredo with public ends is still not a global unicast target
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", "non-global"),
]

ALLOWED = [
    "8.8.8.8",
    "93.184.215.14",
    "100.63.255.255",  # just below 100.64.0.0/10
    "100.128.0.1",  # just above
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:8.8.8.8",
    "2002:808:808::1",  # 6to4 around a public address
    "64:ff9b::808:808",  # NAT64 to a public address
    "64:ff9b:1:808:8:800::",  # local-use NAT64 to 8.8.8.8
]


@pytest.mark.parametrize(("address", "words"), REFUSED)
def test_non_global_addresses_are_refused_with_the_reason(address: str, words: str) -> None:
    reason = blocked_reason(address)
    assert reason is not None and words in reason, reason


@pytest.mark.parametrize("address", ALLOWED)
def test_global_unicast_addresses_are_allowed(address: str) -> None:
    assert blocked_reason(address) is None


def _resolver(answers: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"no such host {host}")
        return answers[host]

    return resolve


async def test_every_resolved_address_must_be_public_and_the_message_names_the_setting() -> None:
    resolve = _resolver({"mixed.example": ["93.184.215.14", "2002:a9fe:a9fe::"]})
    with pytest.raises(InvalidParameterError) as caught:
        await public_addresses("mixed.example", 443, allow_setting=ALLOW, resolve=resolve)
    message = caught.value.message
    assert caught.value.code == 1201
    assert message.startswith("callback_url: host 'mixed.example' resolves to 2002:a9fe:a9fe::")
    assert "metadata" in message and f"{ALLOW}=true" in message


async def test_ip_literals_are_judged_without_resolving() -> None:
    async def no_dns(host: str, port: int) -> list[str]:
        raise AssertionError("must not resolve")

    assert await public_addresses("8.8.8.8", 80, allow_setting=ALLOW, resolve=no_dns) == ["8.8.8.8"]
    with pytest.raises(InvalidParameterError, match="carrier-grade NAT"):
        await public_addresses("100.64.1.2", 80, allow_setting=ALLOW, resolve=no_dns)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://100.64.0.9/hook", "carrier-grade NAT"),
        ("http://[2002:7f00:1::]:8000/hook", "loopback"),
        ("https://[2002:a9fe:a9fe::]/latest", "metadata"),
        ("http://[64:ff9b::7f00:1]/", "loopback"),
        ("http://rebind.example/hook", "private"),
        ("http://nowhere.example/hook", "cannot be resolved"),
        ("http://good.example:99999/hook", "invalid port"),
        ("ftp://good.example/hook", r"not an http\(s\) URL"),
    ],
)
async def test_create_time_check_refuses_with_1201(url: str, words: str) -> None:
    resolve = _resolver({"rebind.example": ["10.9.8.7"], "good.example": ["93.184.215.14"]})
    with pytest.raises(InvalidParameterError, match=words) as caught:
        await check_callback_url(url, False, allow_setting=ALLOW, resolve=resolve)
    assert caught.value.message.startswith("callback_url: ")


async def test_create_time_check_accepts_public_and_allowed_private_targets() -> None:
    resolve = _resolver({"good.example": ["93.184.215.14"], "rebind.example": ["10.9.8.7"]})
    await check_callback_url(
        "https://good.example/hook", False, allow_setting=ALLOW, resolve=resolve
    )
    await check_callback_url("http://rebind.example/", True, allow_setting=ALLOW, resolve=resolve)


@pytest.mark.parametrize(
    "url",
    ["http://100.64.0.9/hook", "http://[2002:7f00:1::]:8000/", "http://[2002:a9fe:a9fe::]/"],
)
async def test_the_api_refuses_with_1201_naming_the_setting(tmp_path: Path, url: str) -> None:
    app = create_app(Settings(data_dir=tmp_path, callback_allow_private=False))
    async with app.router.lifespan_context(app):
        creds = await app.state.services.store.create_account("x")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post(
                "/v1/videos/text2video",
                json={"prompt": "x", "callback_url": url},
                headers={"Authorization": f"Bearer {creds.api_key}"},
            )
        assert await app.state.services.store.list_tasks(creds.account_id, 1, 10) == []
    assert_error(r, 400, 1201, "callback_url: host", f"set {ALLOW}=true")
