"""The contract's happy paths in-process: create, query, list, costs, models, OpenAPI."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

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


KLING_MODELS = [
    "kling-v1",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "kling-v3",
]


@pytest.mark.parametrize("model", KLING_MODELS)
async def test_kling_clients_defaults_are_accepted_by_every_model(api: Api, model: str) -> None:
    """Kling's Python client and ComfyUI's node send cfg_scale, mode and an empty
    negative_prompt whatever the model; fields a model does not honour never reach it."""
    body = {
        "model_name": model,
        "prompt": "a fox",
        "negative_prompt": "",
        "cfg_scale": 0.5,
        "mode": "pro",
        "sound": "off",
        "aspect_ratio": "16:9",
        "duration": "5",
        "watermark_info": {"enabled": False},
        "camera_control": None,
        "callback_url": None,
        "external_task_id": None,
    }
    created = assert_ok(await api.create(body))
    stored = await api.store.get_task(api.creds.account_id, created["task_id"])
    assert stored is not None
    supports_cfg = model in ("kling-v1", "kling-v1-6")
    assert ("cfg_scale" in stored.params) is supports_cfg
    assert stored.params["mode"] == ("std" if "master" in model else "pro")
    models = assert_ok(await api.client.get("/v1/models", headers=api.key_headers))
    ignored = next(m for m in models if m["id"] == model)["capabilities"]["ignored"]
    assert ("cfg_scale" in ignored) is not supports_cfg
    assert ("mode" in ignored) is ("master" in model)


async def test_null_is_absent_for_every_optional_field(api: Api) -> None:
    nulls = {
        "model_name": None,
        "negative_prompt": None,
        "cfg_scale": None,
        "mode": None,
        "sound": None,
        "aspect_ratio": None,
        "duration": None,
        "camera_control": None,
        "watermark_info": None,
        "callback_url": None,
        "external_task_id": None,
    }
    created = assert_ok(await api.create({"prompt": "a fox", **nulls}))
    stored = await api.store.get_task(api.creds.account_id, created["task_id"])
    assert stored is not None and stored.model_name == "kling-v1"
    assert stored.params["duration"] == "5" and stored.params["negative_prompt"] == ""
    nested = {"prompt": "a fox", "camera_control": {"type": "simple", "config": {"zoom": 2}}}
    nested["camera_control"]["config"] |= {"pan": None, "tilt": None}  # type: ignore[index]
    assert_ok(await api.create({**nested, "watermark_info": {"enabled": None}}))


async def test_final_unit_deduction_is_canonical(api: Api) -> None:
    """kling-v1 pro 10 s costs 3.5 x 2: stored as "7.0", always shown as "7"."""
    body = {"model_name": "kling-v1", "prompt": "x", "mode": "pro", "duration": "10"}
    task_id = assert_ok(await api.create(body))["task_id"]
    claimed = await api.store.claim_task("w1", 60)
    assert claimed is not None and claimed.task_id == task_id
    assert Decimal(claimed.units) == 7  # stored as "7.0" by older versions
    assert await api.store.finish_task(task_id, "w1", {"videos": []})
    task = assert_ok(await api.client.get(f"{CREATE}/{task_id}", headers=api.key_headers))
    assert task["task_status"] == "succeed" and task["final_unit_deduction"] == "7"
    (listed,) = assert_ok(await api.client.get(CREATE, headers=api.key_headers))
    assert listed["final_unit_deduction"] == "7"


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
