"""Every error code the API produces, in-process: status, code, envelope, field named."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt
import pytest

from reelgate.api import create_app
from reelgate.settings import Settings
from reelgate.storage import LocalStorage
from reelgate.store import Store
from reelgate.store.db import create_engine

from .conftest import Api
from .helpers import assert_error, assert_ok, mint_jwt

CREATE = "/v1/videos/text2video"


async def test_1001_missing_or_empty_header(api: Api) -> None:
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer "}):
        r = await api.client.post(CREATE, json={"prompt": "x"}, headers=headers)
        assert_error(r, 401, 1001)


@pytest.mark.parametrize(
    "token_kind",
    [
        "garbage-key",
        "basic",
        "bad-signature",
        "alg-none",
        "alg-hs512",
        "unknown-ak",
        "malformed-jwt",
        "no-exp",
    ],
)
async def test_1002_invalid_credentials(api: Api, token_kind: str) -> None:
    ak, sk = api.creds.access_key, api.creds.secret_key
    header = {
        "garbage-key": "Bearer rg-not-a-key",
        "basic": f"Basic {api.creds.api_key}",
        "bad-signature": f"Bearer {mint_jwt(ak, sk + 'x')}",
        "alg-none": "Bearer " + jwt.encode({"iss": ak, "exp": 2**40}, None, algorithm="none"),
        "alg-hs512": f"Bearer {mint_jwt(ak, sk * 2, algorithm='HS512')}",
        "unknown-ak": f"Bearer {mint_jwt('AKnobody', sk)}",
        "malformed-jwt": "Bearer abc.def.ghi",
        "no-exp": "Bearer " + jwt.encode({"iss": ak}, sk, algorithm="HS256"),
    }[token_kind]
    r = await api.client.get(CREATE, headers={"Authorization": header})
    assert_error(r, 401, 1002)


async def test_1003_not_yet_valid_and_leeway(api: Api) -> None:
    ak, sk = api.creds.access_key, api.creds.secret_key
    r = await api.client.get(
        CREATE, headers={"Authorization": f"Bearer {mint_jwt(ak, sk, nbf_in=60)}"}
    )
    assert_error(r, 401, 1003, "not yet valid")
    # within the 5 s leeway a slightly fast client clock is fine
    ok = await api.client.get(
        CREATE, headers={"Authorization": f"Bearer {mint_jwt(ak, sk, nbf_in=3)}"}
    )
    assert_ok(ok)


async def test_1004_expired(api: Api) -> None:
    token = mint_jwt(api.creds.access_key, api.creds.secret_key, exp_in=-60, nbf_in=-120)
    r = await api.client.get(CREATE, headers={"Authorization": f"Bearer {token}"})
    assert_error(r, 401, 1004, "expired")


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
async def test_1002_time_claim_not_an_integer_names_the_claim(api: Api, claim: str) -> None:
    token = mint_jwt(api.creds.access_key, api.creds.secret_key, **{claim: "yesterday"})
    r = await api.client.get(CREATE, headers={"Authorization": f"Bearer {token}"})
    message = assert_error(r, 401, 1002, f"{claim} must be an integer")
    assert all(other not in message for other in {"exp", "nbf", "iat"} - {claim})


async def test_1200_malformed_body(api: Api) -> None:
    for content in (b"{not json", b"", b"[1, 2]", b'"prompt"', b"\xff\xfe"):
        r = await api.client.post(CREATE, content=content, headers=api.key_headers)
        assert_error(r, 400, 1200)
    huge = b'{"prompt": "' + b"x" * 300_000 + b'"}'
    r = await api.client.post(CREATE, content=huge, headers=api.key_headers)
    assert_error(r, 400, 1200, "larger than")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "prompt: is required"),
        ({"prompt": "x" * 2501}, "prompt"),
        ({"prompt": "x", "mode": "professional"}, "mode"),
        ({"prompt": "x", "duration": "7"}, "duration: 7 is not supported by kling-v1"),
        ({"prompt": "x", "model_name": "kling-v2-6", "cfg_scale": 1.5}, "cfg_scale"),
        ({"prompt": "x", "model_name": "nope"}, "model_name: nope is not a served model"),
        (
            {"prompt": "x", "mode": "pro", "camera_control": {"type": "forward_up"}},
            "camera_control is only supported in std mode with 5s duration and kling-v1",
        ),
        ({"prompt": "x", "sound": "on"}, "sound: on is not supported by kling-v1"),
        ({"prompt": "x", "callback_url": "gopher://x"}, "callback_url"),
    ],
)
async def test_1201_invalid_parameters(api: Api, body: dict[str, object], fragment: str) -> None:
    assert_error(await api.create(body), 400, 1201, fragment)


async def test_1201_duplicate_external_id_creates_nothing(api: Api) -> None:
    assert_ok(await api.create({"prompt": "x", "external_task_id": "order-1"}))
    assert_error(
        await api.create({"prompt": "y", "external_task_id": "order-1"}),
        400,
        1201,
        "external_task_id",
    )
    listed = assert_ok(await api.client.get(CREATE, headers=api.key_headers))
    assert len(listed) == 1


async def test_1201_query_parameters(api: Api) -> None:
    for query, fragment in (
        ("pageNum=0", "pageNum"),
        ("pageNum=1001", "pageNum"),
        ("pageSize=501", "pageSize"),
        ("pageSize=abc", "pageSize"),
    ):
        r = await api.client.get(f"{CREATE}?{query}", headers=api.key_headers)
        assert_error(r, 400, 1201, fragment)
    r = await api.client.get("/account/costs", headers=api.key_headers)
    assert_error(r, 400, 1201, "start_time: is required")
    r = await api.client.get("/account/costs?start_time=5&end_time=1", headers=api.key_headers)
    assert_error(r, 400, 1201, "start_time")


async def test_1201_private_callback_refused_unless_allowed(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, callback_allow_private=False))
    async with app.router.lifespan_context(app):
        creds = await app.state.services.store.create_account("x")
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"Authorization": f"Bearer {creds.api_key}"}
            for url in (
                "http://127.0.0.1:9/hook",
                "http://localhost/hook",
                "http://10.0.0.8/",
                "http://169.254.169.254/latest/meta-data",
            ):
                r = await client.post(
                    CREATE, json={"prompt": "x", "callback_url": url}, headers=headers
                )
                assert_error(r, 400, 1201, "callback_url")


async def test_1202_unknown_route_or_method(api: Api) -> None:
    assert_error(await api.client.get("/v1/nope"), 404, 1202, "/v1/nope")
    assert_error(await api.client.delete(CREATE, headers=api.key_headers), 404, 1202)
    assert_error(await api.client.get("/kling/v2/anything"), 404, 1202)


async def test_1203_unknown_task_and_unavailable_model(api: Api) -> None:
    r = await api.client.get(f"{CREATE}/123456789012345678", headers=api.key_headers)
    assert_error(r, 404, 1203)
    assert_error(
        await api.create({"prompt": "x", "model_name": "kling-v1-5"}), 404, 1203, "image2video"
    )


async def test_1203_other_accounts_task(api: Api) -> None:
    task = assert_ok(await api.create({"prompt": "x", "external_task_id": "e-1"}))
    other = await api.store.create_account("other")
    headers = {"Authorization": f"Bearer {other.api_key}"}
    for ident in (task["task_id"], "e-1"):
        assert_error(await api.client.get(f"{CREATE}/{ident}", headers=headers), 404, 1203)
    assert assert_ok(await api.client.get(CREATE, headers=headers)) == []


async def test_1102_quota_and_1303_concurrency(api: Api, settings: Settings) -> None:
    from decimal import Decimal

    limited = await api.store.create_account("lim", max_concurrent_tasks=1, unit_quota=Decimal(10))
    headers = {"Authorization": f"Bearer {limited.api_key}"}
    assert_ok(await api.client.post(CREATE, json={"prompt": "a"}, headers=headers))
    r = await api.client.post(CREATE, json={"prompt": "b"}, headers=headers)
    assert_error(r, 429, 1303, "parallel task over resource pack limit")
    poor = await api.store.create_account("poor", unit_quota=Decimal(1))
    headers = {"Authorization": f"Bearer {poor.api_key}"}
    r = await api.client.post(CREATE, json={"prompt": "a", "mode": "pro"}, headers=headers)
    assert_error(r, 429, 1102, "3.5 units")
    assert assert_ok(await api.client.get(CREATE, headers=headers)) == []


async def test_1103_tampered_or_expired_link(settings: Settings, tmp_path: Path) -> None:
    blob = tmp_path / "clip.mp4"
    blob.write_bytes(bytes(range(256)) * 40)
    storage = LocalStorage(settings.files_dir, b"secret", ttl_s=60)
    storage.put("videos/1/0.mp4", blob, "video/mp4")
    expired = LocalStorage(settings.files_dir, b"secret", ttl_s=-1)
    app = create_app(settings, storage=storage)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            url = storage.sign("videos/1/0.mp4", "http://t")
            assert url is not None
            r = await client.get(url)
            assert r.status_code == 200 and r.content == blob.read_bytes()
            ranged = await client.get(url, headers={"Range": "bytes=100-199"})
            assert ranged.status_code == 206 and ranged.content == blob.read_bytes()[100:200]
            assert_error(await client.get(url.replace("signature=", "signature=0")), 403, 1103)
            assert_error(await client.get(url.split("?")[0]), 403, 1103)
            assert_error(await client.get(url.replace("expires=", "expires=9")), 403, 1103)
            late = expired.sign("videos/1/0.mp4", "http://t")
            assert late is not None
            assert_error(await client.get(late), 403, 1103, "expired")
            (settings.files_dir / "videos/1/0.mp4").unlink()
            assert_error(await client.get(url), 404, 1203)


async def test_5000_internal_error_is_an_envelope_without_traceback(api: Api) -> None:
    async with api.store.engine.begin() as conn:
        await conn.exec_driver_sql("DROP TABLE task_events")
    r = await api.create({"prompt": "x"})
    message = assert_error(r, 500, 5000, "internal error")
    assert "Traceback" not in r.text and "sqlite" not in message.lower()


async def test_5001_health_when_store_unreachable(tmp_path: Path) -> None:
    dead = Store(create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none"))
    app = create_app(Settings(data_dir=tmp_path), store=dead)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert_error(await client.get("/healthz"), 503, 5001, "store unreachable")
    await dead.close()
