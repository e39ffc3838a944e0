"""Which addresses a callback may target: global unicast only, unless private ones are allowed.

The one SSRF rule of reelgate. :func:`blocked_reason` judges one IP address; the create-time
check (:func:`check_callback_url`) and the delivery-time pinning (``reelgate.callbacks.targets``)
both go through :func:`public_addresses`, which resolves a host once and judges every address.

IPv6 forms that carry an IPv4 address are judged by the address they lead to: IPv4-mapped
(``::ffff:0:0/96``), IPv4-compatible (``::/96``), NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``),
6to4 (``2002::/16``) and Teredo (``2001::/32``). So ``2002:7f00:1::`` is loopback and
``2002:a9fe:a9fe::`` the metadata service, whatever the wrapper looks like.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from .errors import InvalidParameterError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (host, port) -> IP addresses as strings. Injectable so tests need no DNS.
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Cloud metadata endpoints, named first so the refusal says what it protects.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("fd00:ec2::254"),
    ipaddress.ip_address("100.100.100.200"),
}
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 carrier-grade NAT
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local-use prefix
_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible addresses
# Private-use networks proper (RFC 1918, RFC 4193); other non-global ranges get a plainer name.
_PRIVATE = [
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
]


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address leads to, each with the name of its form."""
    if ip.ipv4_mapped is not None:
        return [("IPv4-mapped", ip.ipv4_mapped)]
    if ip.sixtofour is not None:
        return [("6to4", ip.sixtofour)]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [("Teredo", client), ("Teredo", server)]
    value = int(ip)
    if ip in _NAT64:
        return [("NAT64", ipaddress.IPv4Address(value & 0xFFFFFFFF))]
    if ip in _NAT64_LOCAL:
        # RFC 6052 /48 layout: bits 48-63 and 72-87 hold the address, 64-71 are the u-octet.
        high = (value >> 64) & 0xFFFF
        low = (value >> 40) & 0xFFFF
        return [("NAT64", ipaddress.IPv4Address((high << 16) | low))]
    if ip in _COMPATIBLE and value > 1:  # :: and ::1 are judged as themselves
        return [("IPv4-compatible", ipaddress.IPv4Address(value))]
    return []


def _plain_reason(ip: IPAddress) -> str | None:
    if ip in _METADATA:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "a carrier-grade NAT (shared, 100.64.0.0/10) address"
    if ip.is_reserved:
        return "a reserved address"
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return "a private address"
    if not ip.is_global:
        return "a special-purpose (non-global) address"
    return None


def blocked_reason(address: str | IPAddress) -> str | None:
    """Why ``address`` is not a safe callback target (global unicast), or None when it is."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "a scoped (link-local) address"
        inner = embedded_ipv4(ip)
        for form, v4 in inner:
            reason = _plain_reason(v4)
            if reason is not None:
                return f"{reason} ({v4} inside a {form} address)"
        if inner and ip.sixtofour is None and ip.teredo is None:
            return None  # a translation form: the IPv4 address is where the packets go
    return _plain_reason(ip)


async def resolve_host(host: str, port: int) -> list[str]:
    """The host's addresses; OSError when resolution fails."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def public_addresses(
    host: str, port: int, *, allow_setting: str, resolve: Resolver = resolve_host
) -> list[str]:
    """Resolve ``host`` once and return its addresses when every one is a global unicast.

    Raises InvalidParameterError (code 1201) naming the first refused address, the rule and
    ``allow_setting`` (the setting that allows private targets); OSError when the name does
    not resolve (possibly transient).
    """
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolve(host, port)
        except UnicodeError:
            raise InvalidParameterError(
                f"callback_url: host {host!r} is not a valid name"
            ) from None
    if not addresses:
        raise OSError(f"host {host!r} resolved to no address")
    for address in addresses:
        reason = blocked_reason(address)
        if reason is not None:
            shown = f"host {host!r} resolves to" if literal is None else "host"
            raise InvalidParameterError(
                f"callback_url: {shown} {address}, {reason}; callbacks go to global unicast"
                f" addresses only (set {allow_setting}=true to allow private targets)"
            )
    return addresses


async def check_callback_url(
    url: str, allow_private: bool, *, allow_setting: str, resolve: Resolver = resolve_host
) -> None:
    """The create-time check: refuse a URL whose host is not public (400/1201)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameterError(f"callback_url: {url!r} is not an http(s) URL")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidParameterError(f"callback_url: {url!r} has an invalid port") from None
    try:
        await public_addresses(parts.hostname, port, allow_setting=allow_setting, resolve=resolve)
    except OSError:
        raise InvalidParameterError(
            f"callback_url: host {parts.hostname!r} cannot be resolved"
        ) from None
