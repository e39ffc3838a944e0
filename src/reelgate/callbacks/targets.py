"""Where a callback goes: the URL re-checked at delivery time and pinned to the checked address.

The API refuses private callback URLs at create time, but a host's DNS answer can change
afterwards (DNS rebinding), and even a check made just before sending is useless if the HTTP
client resolves the name again. So, unless private targets are allowed, the name is resolved
once here, every address is checked, and the request is sent to that address with the original
``Host`` header and TLS server name (certificates are still verified against the name).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from reelgate.domain.errors import InvalidParameterError
from reelgate.domain.netguard import blocked_reason

# (host, port) -> IP addresses as strings. Injectable so tests need no DNS.
Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class Target:
    """What to hand httpx for one attempt."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


async def resolve_host(host: str, port: int) -> list[str]:
    """The host's addresses; OSError when resolution fails (transient: the caller retries)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def callback_target(
    url: str, allow_private: bool, resolve: Resolver = resolve_host
) -> Target:
    """The target for ``url``; InvalidParameterError when it may never be sent to.

    Raises httpx.InvalidURL for a malformed URL and OSError when the name does not resolve.
    """
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidParameterError(f"callback_url: {url!r} is not an http(s) URL")
    if allow_private:
        return Target(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await resolve(parsed.host, port)
    if not addresses:
        raise OSError(f"host {parsed.host!r} resolved to no address")
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None:
            # Same rule and wording as the create-time check (netguard.check_callback_url).
            raise InvalidParameterError(
                f"callback_url: host {parsed.host!r} resolves to {reason}; such targets are refused"
            )
    address = addresses[0]
    if _is_ip_literal(parsed.host):
        return Target(url)
    extensions: dict[str, Any] = {}
    if parsed.scheme == "https":
        extensions["sni_hostname"] = parsed.host
    return Target(
        str(parsed.copy_with(host=address)),
        headers={"Host": parsed.netloc.decode("ascii")},
        extensions=extensions,
    )


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
