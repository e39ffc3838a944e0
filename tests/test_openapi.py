"""The published OpenAPI document matches what is served, and /docs works without internet.

Served responses (create, query, list, models, errors) and the callback body are validated
against the schemas in ``/openapi.json`` with every object closed (no undeclared field), so the
schema and the server cannot drift apart.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from reelgate.cli.runtime import build_app
from reelgate.domain.tasks import callback_body
from reelgate.settings import Settings
from reelgate.store import Credentials, Store

from .helpers import assert_error, assert_ok

CREATE = "/v1/videos/text2video"
AUTHENTICATED = {
    ("post", "/v1/videos/text2video"),
    ("get", "/v1/videos/text2video"),
    ("get", "/v1/videos/text2video/{task_id}"),
    ("post", "/v1/videos/text2video/{task_id}/cancel"),
    ("get", "/account/costs"),
    ("get", "/v1/models"),
}


@dataclass
class Served:
    client: httpx.AsyncClient
    store: Store
    creds: Credentials
    app: Any

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds.api_key}"}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """Everything ``reelgate serve`` runs (worker included), in-process."""
    settings = Settings(data_dir=tmp_path / "data")
    async with AsyncExitStack() as stack:
        app, store = await build_app(settings, stack, bootstrap=False)
        async with app.router.lifespan_context(app):
            creds = await store.create_account("openapi")
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Served(c, store, creds, app)


def _closed(node: Any) -> Any:
    """The schema with every object closed: a field the server sends must be declared."""
    if isinstance(node, dict):
        out = {key: _closed(value) for key, value in node.items()}
        if "properties" in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [_closed(item) for item in node]
    return node


class Published:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.components = _closed(copy.deepcopy(spec["components"]))

    def check(self, schema: dict[str, Any], instance: Any) -> None:
        root = {**_closed(schema), "components": self.components}
        validator = jsonschema.Draft202012Validator(
            root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
        )
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
        assert not errors, errors

    def response(self, method: str, path: str, response: httpx.Response) -> Any:
        """Validate a served response against the operation's schema for its status."""
        operation = self.spec["paths"][path][method]
        documented = operation["responses"]
        assert str(response.status_code) in documented, (path, response.status_code)
        schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
        body = response.json()
        self.check(schema, body)
        return body


async def _published(served: Served) -> Published:
    response = await served.client.get("/openapi.json")
    assert response.status_code == 200
    return Published(response.json())


async def test_served_responses_validate_against_the_published_schema(served: Served) -> None:
    api, auth = await _published(served), served.auth
    body = {
        "model_name": "kling-v3",
        "prompt": "a lighthouse at dusk",
        "duration": "3",
        "external_task_id": "schema-1",
        "watermark_info": {"enabled": True},
    }
    created = api.response(
        "post", CREATE, await served.client.post(CREATE, json=body, headers=auth)
    )
    task_id = created["data"]["task_id"]
    one = f"{CREATE}/{task_id}"
    api.response("get", f"{CREATE}/{{task_id}}", await served.client.get(one, headers=auth))
    for _ in range(1200):  # generous: the worker shares two cores with other suites
        task = assert_ok(await served.client.get(one, headers=auth))
        if task["task_status"] in ("succeed", "failed"):
            break
        await asyncio.sleep(0.1)
    done = api.response("get", f"{CREATE}/{{task_id}}", await served.client.get(one, headers=auth))
    assert done["data"]["task_status"] == "succeed", done
    (video,) = done["data"]["task_result"]["videos"]
    assert video["duration"] == "3" and video["watermark_url"] and video["thumbnail_url"]
    assert done["data"]["final_unit_deduction"] == "1.8"  # 0.6/s x 3 s, canonical
    assert isinstance(done["data"]["seed"], int)
    listed = api.response("get", CREATE, await served.client.get(CREATE, headers=auth))
    assert [t["task_id"] for t in listed["data"]] == [task_id]
    models = api.response("get", "/v1/models", await served.client.get("/v1/models", headers=auth))
    costs_url = "/account/costs?start_time=0&end_time=99999999999999"
    costs = api.response("get", "/account/costs", await served.client.get(costs_url, headers=auth))
    (pack,) = costs["data"]["resource_pack_subscribe_infos"]
    assert pack["total_quantity"] is None and costs["data"]["units_charged"] == "1.8"
    assert {m["id"] for m in models["data"]} >= {"kling-v1", "kling-v3"}

    # errors: each documented with its envelope
    bad = await served.client.post(CREATE, json={"prompt": ""}, headers=auth)
    assert_error(bad, 400, 1201, "prompt")
    api.response("post", CREATE, bad)
    unauthenticated = await served.client.get(one)
    assert_error(unauthenticated, 401, 1001)
    api.response("get", f"{CREATE}/{{task_id}}", unauthenticated)
    missing = await served.client.get(f"{CREATE}/nope", headers=auth)
    assert_error(missing, 404, 1203)
    api.response("get", f"{CREATE}/{{task_id}}", missing)
    page = await served.client.get(f"{CREATE}?pageSize=501", headers=auth)
    assert_error(page, 400, 1201, "pageSize")
    api.response("get", CREATE, page)
    window = await served.client.get("/account/costs?start_time=2&end_time=1", headers=auth)
    assert_error(window, 400, 1201, "start_time")
    api.response("get", "/account/costs", window)

    # the callback body: the webhook's request schema
    record = await served.store.get_task(served.creds.account_id, task_id)
    assert record is not None
    sign = served.app.state.services.signer("http://testserver/")
    callback = callback_body(record, sign)
    webhook = api.spec["webhooks"]["task-status"]["post"]
    api.check(webhook["requestBody"]["content"]["application/json"]["schema"], callback)
    assert callback["final_unit_deduction"] == "1.8"


async def test_the_schema_checks_can_fail(served: Served) -> None:
    """The validation above rejects a body that breaks the published shape."""
    api = await _published(served)
    schema = {"$ref": "#/components/schemas/Envelope_TaskData_"}
    task = {
        "task_id": "1",
        "task_status": "succeed",
        "task_status_msg": "",
        "task_info": {},
        "task_result": {},
        "watermark_info": {"enabled": False},
        "final_unit_deduction": "7",
        "created_at": 1,
        "updated_at": 1,
        "task_progress": 100,
    }
    envelope = {"code": 0, "message": "SUCCEED", "request_id": "r", "data": task}
    api.check(schema, envelope)
    for broken in (
        {"final_unit_deduction": "7.0"},
        {"task_status": "succeeded"},
        {"undeclared": 1},
        {"task_result": {"videos": [{"id": "v", "url": "u", "duration": 5}]}},
    ):
        with pytest.raises(AssertionError):
            api.check(schema, {**envelope, "data": {**task, **broken}})


async def test_the_document_states_the_contract(served: Served) -> None:
    spec = (await _published(served)).spec
    text = json.dumps(spec)
    assert '"422"' not in text and "HTTPValidationError" not in text  # never sent
    schemas = spec["components"]["schemas"]
    request = schemas["Text2VideoRequest"]["properties"]
    assert request["duration"]["type"] == "string" and request["duration"]["default"] == "5"
    assert "integer" in request["duration"]["description"]  # 5 is accepted too
    assert schemas["Video"]["properties"]["duration"]["type"] == "string"
    url = request["callback_url"]["anyOf"][0]
    assert url["format"] == "uri" and url["maxLength"] == 2048
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT or API key",
        "description": "an HS256 JWT minted from an AK/SK pair, or an API key",
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            expected = [{"bearer": []}] if (method, path) in AUTHENTICATED else None
            assert operation.get("security") == expected, (method, path)
    costs = spec["paths"]["/account/costs"]["get"]
    assert "start_time <= end_time" in costs["description"]
    assert schemas["TaskData"]["required"][:2] == ["task_id", "task_status"]
    assert "final_unit_deduction" in schemas["CallbackBody"]["required"]


async def test_docs_page_loads_nothing_from_another_host(served: Served) -> None:
    page = await served.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text  # no CDN, no external favicon, no validator badge
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    urls += re.findall(r"url: '([^']+)'", page.text)
    assert len(urls) >= 4, urls  # stylesheet, favicon, bundle, /openapi.json
    for url in urls:
        assert url.startswith("/"), url
        response = await served.client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 1000, url
    assert "SwaggerUIBundle" in (await served.client.get("/docs/assets/swagger-ui-bundle.js")).text
    assert '"validatorUrl": null' in page.text
    other = await served.client.get("/docs/assets/..%2F__init__.py")
    assert_error(other, 404, 1202)
