"""The contract's three busiest routes, answered without FastAPI's per-request machinery.

A GET of one task, a GET of a page and a create are almost all of what a Kling client sends.
FastAPI serves each through its included-router matching, an exit stack, a ``Request`` per
layer and its dependency resolution: a fifth of a GET's CPU (bench/api.py, 2026-12-07).
:class:`HotRoutes`, the innermost of the app's middlewares, answers these three itself, on the
happy path's shape only, by calling what their FastAPI routes call (the account dependency,
the route's operation in ``routes.HOT_OPERATIONS``, the envelope). Anything else goes on to
FastAPI: other routes, other methods (HEAD), and a query FastAPI would have to judge, such as a
page number that is not a plain integer within the route's own bounds or a parameter given
twice. So routes.py stays the one definition of paths, methods, parameters, OpenAPI and every
error answer, and a request answered here is answered as FastAPI would answer it
(tests/test_api_hot.py sends the same requests to both).

Which route a request is for is decided as FastAPI decides it for ``routes.router``: each
prefix, each route in order, the first whose path matches with the request's method. The outer
middlewares (request id, metrics, forwarded headers) see the same scope and messages as for
any route: the route that matched is put in the scope, where the metrics read its template.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from annotated_types import Ge, Le
from fastapi.routing import APIRoute
from starlette.convertors import Convertor
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from reelgate.domain.errors import ReelgateError

from .envelope import error, ok
from .middleware import request_id_of
from .routes import HOT_OPERATIONS, PREFIXES, Operation, account_of, router

_PLAIN_INT = re.compile(r"[1-9][0-9]{0,8}")  # no sign, no leading zero, no space, no exponent
_METHODS = frozenset({"GET", "POST"})


class HotRoutes:
    """ASGI middleware: the routes of ``routes.HOT_OPERATIONS`` under every prefix."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # (path regex, its converters, the route, its operation or None), in FastAPI's order
        self._routes: list[
            tuple[re.Pattern[str], dict[str, Convertor[Any]], APIRoute, Operation | None]
        ] = []
        for prefix in PREFIXES:
            for route in router.routes:
                assert isinstance(route, APIRoute)
                regex, _, convertors = compile_path(prefix + route.path)
                operation = HOT_OPERATIONS.get(route.endpoint)
                self._routes.append((regex, convertors, route, operation))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # a root path (uvicorn --root-path) is left to Starlette, which strips it from paths
        if scope["type"] == "http" and scope["method"] in _METHODS and not scope.get("root_path"):
            found = self._match(scope)
            if found is not None:
                route, operation, params = found
                scope["route"], scope["endpoint"] = route, route.endpoint
                scope["path_params"] = {name: params[name] for name in route.param_convertors}
                await self._answer(operation, params, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _match(self, scope: Scope) -> tuple[APIRoute, Operation, dict[str, Any]] | None:
        """The hot route FastAPI would serve, with its parameters; None for anything else."""
        method, path = scope["method"], scope["path"]
        for regex, convertors, route, operation in self._routes:
            match = regex.match(path)
            if match is None or method not in (route.methods or ()):
                continue  # the path of another method's route: FastAPI looks on, as here
            if operation is None:
                return None
            found = match.groupdict()
            if not all(found.values()):  # an empty path parameter: FastAPI's to judge
                return None
            params = {name: convertors[name].convert(text) for name, text in found.items()}
            if route.dependant.query_params:
                query = _plain_query(scope["query_string"], route)
                if query is None:
                    return None
                params.update(query)
            return route, operation, params
        return None

    async def _answer(
        self,
        operation: Operation,
        params: dict[str, Any],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        request = Request(scope, receive)
        try:
            account = await account_of(request)
            response = ok(await operation(request, account, params), request_id_of(request))
        except ReelgateError as exc:
            response = error(exc, request_id_of(request))
        await response(scope, receive, send)


def _plain_query(query_string: bytes, route: APIRoute) -> dict[str, Any] | None:
    """The route's integer query parameters by name, each absent (its default) or a plain
    integer within the bounds it declares; None when FastAPI must judge the query."""
    given: dict[str, str] = {}
    for name, text in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in given:
            return None
        given[name] = text
    found: dict[str, Any] = {}
    for param in route.dependant.query_params:
        info = param.field_info
        raw = given.get(param.alias)
        if raw is None and not info.is_required():
            found[param.name] = info.default
            continue
        if raw is None or info.annotation is not int or not _PLAIN_INT.fullmatch(raw):
            return None
        value = int(raw)
        for rule in info.metadata:
            if not isinstance(rule, Ge | Le):
                return None
            if value < getattr(rule, "ge", value) or value > getattr(rule, "le", value):
                return None
        found[param.name] = value
    return found
