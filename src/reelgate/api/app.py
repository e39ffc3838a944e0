"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from reelgate.domain.kling import KLING_UNAVAILABLE, kling_models
from reelgate.domain.models import Catalog
from reelgate.domain.profiles import Profile, profile_named
from reelgate.domain.requests import Text2VideoRequest
from reelgate.domain.tasks import CallbackBody
from reelgate.settings import Settings
from reelgate.storage import Storage, open_storage
from reelgate.store import Store

from .docs_ui import docs_router
from .emulator import emulator_for
from .hot import HotRoutes
from .metrics import MetricsMiddleware, metrics_router
from .middleware import RequestIdMiddleware, install_error_handlers
from .proxy import ForwardedHeadersMiddleware, TrustedProxies
from .routes import PREFIXES, files_router, health_router, router
from .sandbox_routes import sandbox_router
from .service import Services
from .studio import studio_router
from .upstream_routes import upstream_router

DESCRIPTION = """\
Kling-compatible text-to-video API. Every route is served at its official path and under the
gateway prefix `/kling` (e.g. `/kling/v1/videos/text2video`). Authenticate with
`Authorization: Bearer <token>`: an HS256 JWT minted from an AK/SK pair
(`{"iss": AK, "exp": ..., "nbf": ...}`) or an API key. Every response is the envelope
`{"code", "message", "request_id", "data"}`; errors carry Kling's codes.
"""


class Background(Protocol):
    """Something the app runs beside the API for its lifetime (worker, dispatcher)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    catalog: Catalog | None = None,
    storage: Storage | None = None,
    background: Sequence[Background] = (),
    health: Callable[[], Mapping[str, str]] | None = None,
) -> FastAPI:
    """The API. Without ``store`` it opens (and migrates) the settings' store in its lifespan.

    ``health`` reports per-model state (from the engines) for ``/healthz`` and ``/v1/models``.
    """
    profile = profile_named(settings.profile)
    catalog = profile.apply(catalog or Catalog(kling_models(), known_unavailable=KLING_UNAVAILABLE))
    emulator = emulator_for(settings, catalog)
    storage = storage or open_storage(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            own = store or await Store.open(settings.store_url)
            if store is None:
                stack.push_async_callback(own.close)
            app.state.services = Services(
                settings, own, catalog, storage, health, profile, emulator
            )
            for item in background:
                await item.start()
                stack.push_async_callback(item.stop)
            yield

    app = FastAPI(
        title="reelgate",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package by docs_router: no CDN
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.add_middleware(HotRoutes)  # innermost: the three busiest operations
    app.add_middleware(MetricsMiddleware)  # it reads the route the router matched
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(ForwardedHeadersMiddleware, trusted=TrustedProxies(settings.forwarded_allow))
    install_error_handlers(app)
    for prefix in PREFIXES:  # the official paths, then the gateway form (contract §1)
        app.include_router(router, prefix=prefix, include_in_schema=not prefix)
    app.include_router(files_router)
    app.include_router(upstream_router, include_in_schema=False)
    app.include_router(health_router)
    app.include_router(metrics_router)
    if emulator is not None:
        app.include_router(sandbox_router, include_in_schema=False)
    app.include_router(docs_router(app.title, app.openapi_url or "/openapi.json"))
    app.include_router(studio_router())
    _declare_callback(app)
    app.openapi = lambda: _openapi(app, profile)  # type: ignore[method-assign]
    return app


def _declare_callback(app: FastAPI) -> None:
    """Publish the callback (contract §7) as an OpenAPI webhook: reelgate sends it, so this
    operation is never served; it documents what a receiver gets."""

    @app.webhooks.post(
        "task-status",
        summary="POSTed to callback_url on every status change",
        description="The flat task body (not enveloped), once per status change: submitted,"
        " processing, then succeed or failed. Delivery is at least once: accept repeats."
        " With a webhook secret configured, Standard Webhooks headers sign it"
        " (`webhook-id`, `webhook-timestamp`, `webhook-signature`).",
        response_description="any 2xx acknowledges the delivery; anything else is retried",
        tags=["callbacks"],
    )
    def task_status(body: CallbackBody) -> None:
        """Declaration only."""


def _openapi(app: FastAPI, profile: Profile) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            webhooks=app.webhooks.routes,
        )
        # The create body is parsed by hand (any content type, 1200 on bad JSON); publish its
        # model and the models it nests as components.
        body = Text2VideoRequest.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components["Text2VideoRequest"] = body
        # The wire model admits every profile's ratios; publish this server's.
        body["properties"]["aspect_ratio"]["enum"] = list(profile.aspect_ratios)
        create = schema["paths"]["/v1/videos/text2video"]["post"]
        content = create["requestBody"]["content"]["application/json"]
        content["schema"] = {"$ref": "#/components/schemas/Text2VideoRequest"}
        _drop_validation_responses(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _drop_validation_responses(schema: dict[str, Any]) -> None:
    """FastAPI documents a 422 for every route with parameters; reelgate never sends one
    (a bad parameter is 400/1201, documented per route)."""
    for operations in [*schema.get("paths", {}).values(), *schema.get("webhooks", {}).values()]:
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
