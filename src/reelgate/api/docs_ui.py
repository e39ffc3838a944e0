"""``/docs``: Swagger UI served from the package, so it works on a machine without internet.

The assets come from the ``fastapi-offline`` distribution (Swagger UI's bundle, its stylesheet
and a favicon); nothing on the page is loaded from another host.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from reelgate.domain.errors import MethodNotFoundError

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
_MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


def assets_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


def docs_router(title: str, openapi_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get(DOCS_PATH)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=None,
            # no validator badge: it is an image from validator.swagger.io
            swagger_ui_parameters={"persistAuthorization": True, "validatorUrl": None},
        )

    @router.get(ASSETS_PATH + "/{name}")
    async def asset(name: str) -> FileResponse:
        media_type = _MEDIA_TYPES.get(name)
        if media_type is None:  # only the listed files: no path reaches the filesystem
            raise MethodNotFoundError(f"no such endpoint: GET {ASSETS_PATH}/{name}")
        return FileResponse(
            assets_dir() / name,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router
