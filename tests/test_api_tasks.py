"""The contract's happy paths in-process: create, query, list, costs, models, OpenAPI."""

from __future__ import annotations

import asyncio
import time

import pytest

from .conftest import Api
from .helpers import assert_ok

CREATE = "/v1/videos/text2video"


@pytest.mark.parametrize("prefix", ["", "/kling"])
@pytest.mark.parametrize("auth", ["api_key", "jwt"])
async def test_create_then_query_by_both_ids(api: Api, prefix: str, auth: str) -> None:
    headers = api.key_headers if auth == "api_key" else api.jwt_headers
    before = int(time.time() * 1000)
    body = {
        "prompt": "a fox",
        "duration": 10,
        "external_task_id": f"ext-{prefix}-{auth}",
        "model": "ignored-legacy",
        "unknown_field": True,
    }
    created = assert_ok(await api.client.post(prefix + CREATE, json=body, headers=headers))
    assert set(created) == {"task_id", "task_status", "task_info", "created_at", "updated_at"}
    assert created["task_status"] == "submitted"
    assert created["task_info"] == {"external_task_id": f"ext-{prefix}-{auth}"}
    assert len(created["task_id"]) == 18 and created["task_id"].isdigit()
    assert before <= created["created_at"] <= int(time.time() * 1000)
    for ident in (created["task_id"], f"ext-{prefix}-{auth}"):
        task = assert_ok(await api.client.get(f"{prefix}{CREATE}/{ident}", headers=headers))
        assert task["task_id"] == created["task_id"]
        assert task["task_status"] == "submitted"
        assert task["task_status_msg"] == ""
        assert task["task_result"] == {}
        assert task["watermark_info"] == {"enabled": False}
        assert task["final_unit_deduction"] == "0"
        assert task["task_progress"] == 0
        assert task["model_name"] == "kling-v1"


async def test_created_without_external_id_has_empty_task_info(api: Api) -> None:
    created = assert_ok(await api.create({"prompt": "x", "watermark_info": {"enabled": True}}))
    assert created["task_info"] == {}
    task = assert_ok(
        await api.client.get(f"{CREATE}/{created['task_id']}", headers=api.key_headers)
    )
    assert task["watermark_info"] == {"enabled": True}


async def test_list_newest_first_with_paging(api: Api) -> None:
    ids = [assert_ok(await api.create({"prompt": f"p{i}"}))["task_id"] for i in range(5)]
    page = assert_ok(
        await api.client.get(f"{CREATE}?pageNum=1&pageSize=2", headers=api.key_headers)
    )
    assert [t["task_id"] for t in page] == ids[::-1][:2]
    last = assert_ok(
        await api.client.get(f"{CREATE}?pageNum=3&pageSize=2", headers=api.key_headers)
    )
    assert [t["task_id"] for t in last] == ids[:1]
    default = assert_ok(await api.client.get(f"/kling{CREATE}", headers=api.jwt_headers))
    assert len(default) == 5
    assert assert_ok(await api.client.get(f"{CREATE}?pageNum=9", headers=api.key_headers)) == []


async def test_account_costs_double_wrapped(api: Api) -> None:
    data = assert_ok(
        await api.client.get(
            "/kling/account/costs?start_time=0&end_time=99999999999999", headers=api.key_headers
        )
    )
    assert data["code"] == 0 and data["msg"] == "success"
    (pack,) = data["resource_pack_subscribe_infos"]
    assert pack["status"] == "online"
    assert pack["remaining_quantity"] is None  # unlimited account


async def test_models_extension_lists_kling_map(api: Api) -> None:
    models = assert_ok(await api.client.get("/v1/models", headers=api.key_headers))
    by_id = {m["id"]: m for m in models}
    assert next(iter(by_id)) == "kling-v1" and by_id["kling-v1"]["default"]
    assert by_id["kling-v3"]["capabilities"]["durations"] == list(range(3, 16))
    assert by_id["kling-v2-6"]["capabilities"]["sound"] == ["pro"]


async def test_healthz(api: Api) -> None:
    assert assert_ok(await api.client.get("/healthz"))["status"] == "ok"


async def test_openapi_describes_the_contract(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    create = spec["paths"]["/v1/videos/text2video"]["post"]
    body = spec["components"]["schemas"]["Text2VideoRequest"]["properties"]
    assert body["prompt"]["maxLength"] == 2500
    assert body["cfg_scale"]["anyOf"][0]["maximum"] == 1
    assert set(body["aspect_ratio"]["enum"]) == {"16:9", "9:16", "1:1"}
    assert "CameraConfig" in spec["components"]["schemas"]
    examples = create["responses"]["400"]["content"]["application/json"]["examples"]
    assert {"1200", "1201"} <= set(examples)
    assert set(create["responses"]["401"]["content"]["application/json"]["examples"]) == {
        "1001",
        "1002",
        "1003",
        "1004",
    }
    assert "1303" in create["responses"]["429"]["content"]["application/json"]["examples"]
    get_one = spec["paths"]["/v1/videos/text2video/{task_id}"]["get"]
    assert "1203" in get_one["responses"]["404"]["content"]["application/json"]["examples"]
    params = {p["name"]: p for p in spec["paths"]["/v1/videos/text2video"]["get"]["parameters"]}
    assert params["pageSize"]["schema"]["maximum"] == 500
    docs = await api.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_200_concurrent_creates_over_20_connections_are_stored_once(api: Api) -> None:
    sem = asyncio.Semaphore(20)

    async def one(i: int) -> str:
        async with sem:
            r = await api.create({"prompt": f"clip {i}", "external_task_id": f"c-{i}"})
            return str(assert_ok(r)["task_id"])

    ids = await asyncio.gather(*(one(i) for i in range(200)))
    assert len(set(ids)) == 200
    stored = await api.store.list_tasks(api.creds.account_id, 1, 500)
    assert sorted(t.task_id for t in stored) == sorted(ids)
    assert sorted(t.external_task_id or "" for t in stored) == sorted(f"c-{i}" for i in range(200))
