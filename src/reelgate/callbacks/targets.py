"""Where a callback goes: the URL re-checked at delivery time and pinned to the checked address.

The API refuses private callback URLs at create time, but a host's DNS answer can change
afterwards (DNS rebinding), and even a check made just before sending is useless if the HTTP
client resolves the name again. So, unless private targets are allowed, the name is resolved
once here (with the one rule, :func:`reelgate.domain.netguard.public_addresses`), and the
request is sent to that address with the original ``Host`` header and TLS server name
(certificates are still verified against the name).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from reelgate.domain.errors import InvalidParameterError
from reelgate.domain.netguard import Resolver, public_addresses, resolve_host


@dataclass(frozen=True)
class Target:
    """What to hand httpx for one attempt."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


async def callback_target(
    url: str, allow_private: bool, *, allow_setting: str, resolve: Resolver = resolve_host
) -> Target:
    """The target for ``url``; InvalidParameterError when it may never be sent to.

    Raises httpx.InvalidURL for a malformed URL and OSError when the name does not resolve.
    """
    import httpx  # here: the server's start-up does without it

    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InvalidParameterError(f"callback_url: {url!r} is not an http(s) URL")
    if allow_private:
        return Target(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    addresses = await public_addresses(
        parsed.host, port, allow_setting=allow_setting, resolve=resolve
    )
    if _is_ip_literal(parsed.host):
        return Target(url)
    extensions: dict[str, Any] = {}
    if parsed.scheme == "https":
        extensions["sni_hostname"] = parsed.host
    return Target(
        str(parsed.copy_with(host=addresses[0])),
        headers={"Host": parsed.netloc.decode("ascii")},
        extensions=extensions,
    )


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
