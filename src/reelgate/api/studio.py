"""The web studio: a page at ``/`` and its static files at ``/studio/...``, shipped in the package.

The page is plain HTML, CSS and ES modules (no build step, nothing from another host) and talks
to the public API only, with the API key the user signs in with.

The local key offer (``POST /studio/local-key``) hands the key of ``DATA_DIR/credentials.json``
(written when ``reelgate serve`` creates the first account) to the person sitting at the server.
Every request behind a reverse proxy on the same machine comes from 127.0.0.1, so a loopback peer
alone proves nothing. The offer is made only when all of these hold:

- ``REELGATE_PUBLIC_URL`` is unset (setting it declares a deployment reached from elsewhere);
- the request carries no forwarding header (``Forwarded``, ``X-Forwarded-*``, ``X-Real-IP``,
  ``Via``...): a proxy that adds one is a proxy;
- the TCP peer is a loopback address;
- the ``Host`` is a loopback name (``localhost``, ``127.x.x.x``, ``[::1]``) with any port, which
  defeats DNS rebinding and proxies that pass the public host on;
- the ``Origin`` the browser sends with a POST is that same loopback host: a page of another
  site (or one reached through a proxy that rewrites ``Host`` to the upstream) is refused.

Deleting ``DATA_DIR/credentials.json`` turns the offer off. A refusal is 403/1103 naming the rule.
"""

from __future__ import annotations

import ipaddress
import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import Headers

from reelgate.domain.errors import MethodNotFoundError, NotFoundError, PermissionDeniedError

from .envelope import ok
from .middleware import request_id_of
from .service import Services

STUDIO_PATH = "/studio"
LOCAL_KEY_PATH = STUDIO_PATH + "/local-key"
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.[a-z]+$")
# Result links are absolute and may point at REELGATE_PUBLIC_URL: media and images from any
# http(s) origin the API names; scripts, styles and API calls from this origin only.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self';"
    " img-src 'self' data: http: https:; media-src 'self' http: https:;"
    " frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FORWARDING_HEADERS = (
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-server",
    "x-forwarded-prefix",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "via",
)


def static_dir() -> Path:
    return Path(str(files("reelgate.api") / "static" / "studio"))


def _static_file(name: str) -> FileResponse:
    suffix = Path(name).suffix
    path = static_dir() / name
    # only plain names of the shipped folder: no path ever reaches the filesystem unchecked
    if not _NAME.match(name) or suffix not in _MEDIA_TYPES or not path.is_file():
        raise MethodNotFoundError(f"no such endpoint: GET {STUDIO_PATH}/{name}")
    return FileResponse(path, media_type=_MEDIA_TYPES[suffix], headers=_PAGE_HEADERS)


def _is_loopback_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def loopback_host(host: str) -> bool:
    """``host[:port]`` names this machine: ``localhost``, ``127.x.x.x`` or ``[::1]``."""
    if "@" in host or "/" in host:
        return False
    parts = urlsplit(f"//{host}")
    try:
        _ = parts.port  # a malformed port is not a loopback host
    except ValueError:
        return False
    name = parts.hostname or ""
    return name == "localhost" or _is_loopback_ip(name)


def local_key_refusal(peer: str | None, headers: Headers, public_url: str | None) -> str | None:
    """Why the local key is not offered to this request; None when it is (module docstring)."""
    if public_url:
        return "not offered: REELGATE_PUBLIC_URL is set (a deployment reached from elsewhere)"
    # first: with these, ForwardedHeadersMiddleware has replaced the peer in the scope
    present = [name for name in FORWARDING_HEADERS if name in headers]
    if present:
        return f"not offered: the request was forwarded by a proxy ({present[0]} header)"
    if peer is None or not _is_loopback_ip(peer):
        return "not offered: the TCP peer is not a loopback address"
    host = headers.get("host", "")
    if not loopback_host(host):
        return "not offered: the Host header is not a loopback name"
    origin = headers.get("origin")
    if origin is None:
        return "not offered: the Origin header is missing"
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
        return "not offered: the Origin header is not this loopback host"
    return None


def _read_api_key(path: Path) -> str | None:
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    key = data.get("api_key") if isinstance(data, dict) else None
    return key if isinstance(key, str) and key else None


def studio_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def page() -> FileResponse:
        return _static_file("index.html")

    @router.post(LOCAL_KEY_PATH)
    async def local_key(request: Request) -> JSONResponse:
        svc: Services = request.app.state.services
        client = request.scope.get("client")
        refusal = local_key_refusal(
            client[0] if client else None, request.headers, svc.settings.public_url
        )
        if refusal is not None:
            raise PermissionDeniedError(refusal)
        key = _read_api_key(svc.settings.data_dir / "credentials.json")
        if key is None:
            raise NotFoundError("not offered: DATA_DIR/credentials.json holds no api_key")
        response = ok({"api_key": key}, request_id_of(request))
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get(STUDIO_PATH + "/{name}")
    async def asset(name: str) -> FileResponse:
        return _static_file(name)

    return router
