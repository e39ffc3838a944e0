"""Which addresses a callback may target: public unicast only, unless private ones are allowed."""

from __future__ import annotations

import ipaddress

# Cloud metadata endpoints that are not covered by the link-local range.
_METADATA = {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}


def blocked_reason(address: str) -> str | None:
    """Why ``address`` (an IP literal) is not a safe callback target, or None when it is."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in _METADATA or ip.is_link_local:
        return "a link-local or metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified:
        return "a private or reserved address"
    return None


async def check_callback_url(url: str, allow_private: bool) -> None:
    """Refuse callback URLs whose host resolves to a non-public address (400/1201)."""
    import asyncio
    import socket
    from urllib.parse import urlsplit

    from .errors import InvalidParameterError

    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except (OSError, UnicodeError):
        raise InvalidParameterError(f"callback_url: host {host!r} cannot be resolved") from None
    for info in infos:
        reason = blocked_reason(str(info[4][0]))
        if reason is not None:
            raise InvalidParameterError(
                f"callback_url: host {host!r} resolves to {reason}; such targets are refused"
            )
