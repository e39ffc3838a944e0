"""The URL a request really came through, behind trusted reverse proxies (TLS terminators).

One rule, one place: uvicorn's own ``proxy_headers`` are off, and this middleware alone reads
forwarded headers, and only from peers listed in ``REELGATE_FORWARDED_ALLOW_IPS`` (default
``127.0.0.1``, like uvicorn's ``forwarded_allow_ips``; ``*`` trusts every peer). From a
trusted peer it takes:

- the scheme: ``Forwarded: proto=`` else ``X-Forwarded-Proto`` (``http`` or ``https``);
- the host: ``Forwarded: host=`` else ``X-Forwarded-Host`` (``name[:port]``);
- the client: ``Forwarded: for=`` else ``X-Forwarded-For``, the nearest address that is not
  itself a trusted proxy.

Where a header lists several hops, the last one counts: the one the trusted peer itself wrote
(a client can put anything in front of it). Malformed values are ignored. The scheme and host
end up in the ASGI scope, so ``request.base_url``, and with it every result link of a
response and the base stored for a task's callbacks, is what the client used.
``REELGATE_PUBLIC_URL``, when set, overrides all of this for links (``Settings.links_base``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from reelgate.settings import IPNetwork

_HOST = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)
_PROTOS = {"http", "https"}
PEERS_REMEMBERED = 4096  # peer addresses whose trust is kept decided


class TrustedProxies:
    """The peers whose forwarded headers are believed: IPs and networks, or ``*``."""

    def __init__(self, allow: Sequence[IPNetwork | str]) -> None:
        self.any = "*" in allow
        self.networks = [n for n in allow if not isinstance(n, str)]
        # peer -> trusted: parsing the address was 3 % of a GET's CPU; bounded, as peers are
        # whatever connects
        self._decided: dict[str, bool] = {}

    def trusts(self, host: str | None) -> bool:
        if self.any:
            return True
        if not host:
            return False
        found = self._decided.get(host)
        if found is None:
            found = self._decide(host)
            if len(self._decided) >= PEERS_REMEMBERED:
                self._decided.clear()
            self._decided[host] = found
        return found

    def _decide(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)


def parse_forwarded(value: str) -> list[dict[str, str]]:
    """RFC 7239 ``Forwarded`` elements, each a dict of lower-cased keys to unquoted values."""
    elements: list[dict[str, str]] = []
    for element in _split_outside_quotes(value, ","):
        pairs: dict[str, str] = {}
        for pair in _split_outside_quotes(element, ";"):
            key, sep, raw = pair.partition("=")
            if not sep:
                continue
            raw = raw.strip()
            if len(raw) >= 2 and raw[0] == raw[-1] == '"':
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            pairs[key.strip().lower()] = raw
        elements.append(pairs)
    return elements


def _split_outside_quotes(value: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _node_address(node: str) -> str:
    """The address of a ``for=`` node: ``1.2.3.4:80`` -> ``1.2.3.4``, ``[::1]:80`` -> ``::1``."""
    if node.startswith("["):
        return node[1 : node.find("]")] if "]" in node else node
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


class ForwardedHeadersMiddleware:
    def __init__(self, app: ASGIApp, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            if self.trusted.trusts(client[0] if client else None):
                scope = self._forwarded_scope(scope)
        await self.app(scope, receive, send)

    def _forwarded_scope(self, scope: Scope) -> Scope:
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        values: dict[bytes, list[str]] = {}
        for name, value in headers:
            values.setdefault(name.lower(), []).append(value.decode("latin-1"))
        proto = host = None
        hops: list[str] = []
        if b"forwarded" in values:
            elements = parse_forwarded(",".join(values[b"forwarded"]))
            if elements:
                proto = elements[-1].get("proto")
                host = elements[-1].get("host")
            hops = [_node_address(e["for"]) for e in elements if "for" in e]
        proto = proto or _last(values.get(b"x-forwarded-proto"))
        host = host or _last(values.get(b"x-forwarded-host"))
        if not hops and b"x-forwarded-for" in values:
            hops = [h.strip() for h in ",".join(values[b"x-forwarded-for"]).split(",")]
        scope = dict(scope)
        if proto is not None and proto.lower() in _PROTOS:
            proto = proto.lower()
            scope["scheme"] = proto if scope["type"] == "http" else proto.replace("http", "ws")
        if host is not None and _HOST.match(host):
            headers = [(n, v) for n, v in headers if n.lower() != b"host"]
            headers.append((b"host", host.encode("latin-1")))
            scope["headers"] = headers
        client = _client_from(hops, self.trusted)
        if client is not None:
            scope["client"] = (client, 0)
        return scope


def _last(values: list[str] | None) -> str | None:
    if not values:
        return None
    items = [v.strip() for v in ",".join(values).split(",") if v.strip()]
    return items[-1] if items else None


def _client_from(hops: list[str], trusted: TrustedProxies) -> str | None:
    """The nearest hop that is not a trusted proxy (all trusted: the farthest)."""
    valid = []
    for hop in hops:
        try:
            valid.append(str(ipaddress.ip_address(hop)))
        except ValueError:
            continue
    for hop in reversed(valid):
        if not trusted.trusts(hop):
            return hop
    return valid[0] if valid else None
