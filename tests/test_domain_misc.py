"""Task ids, the wire form of tasks, network guard, and the layer rules."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from reelgate.domain.errors import ConcurrencyLimitError, ReelgateError, error_for_code
from reelgate.domain.ids import TaskIdGenerator
from reelgate.domain.netguard import blocked_reason
from reelgate.domain.tasks import (
    CALLBACK_FIELDS,
    TaskData,
    TaskRecord,
    TaskStatus,
    callback_body,
    created_task,
    no_urls,
    task_data,
)

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "reelgate"


def test_task_ids_are_18_digits_unique_and_time_ordered() -> None:
    gen = TaskIdGenerator()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: gen.next_id(), range(20_000)))
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 18 and i.isdigit() for i in ids)
    sequential = [gen.next_id() for _ in range(2000)]
    assert sequential == sorted(sequential)


def test_two_generators_with_different_nodes_never_collide() -> None:
    a, b = TaskIdGenerator(node=1), TaskIdGenerator(node=2)
    ids = [g.next_id() for _ in range(3000) for g in (a, b)]
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.1.2.3", True),
        ("192.168.0.10", True),
        ("172.16.0.1", True),
        ("169.254.169.254", True),
        ("fe80::1", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", True),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_blocked_addresses(address: str, blocked: bool) -> None:
    assert (blocked_reason(address) is not None) is blocked


def test_error_for_code_rebuilds_types() -> None:
    err = error_for_code(1303, 429, "parallel task over resource pack limit", "rid")
    assert isinstance(err, ConcurrencyLimitError) and err.request_id == "rid"
    unknown = error_for_code(4242, 400, "odd")
    assert isinstance(unknown, ReelgateError) and unknown.code == 4242


def _record(status: TaskStatus, result: dict[str, object], units: str = "3.5") -> TaskRecord:
    return TaskRecord(
        task_id="217413177147939000",
        account_id=1,
        model_name="kling-v1",
        params={},
        status=status,
        created_at=1,
        updated_at=2,
        external_task_id="ext-1",
        result=result,
        units=units,
    )


def test_wire_form_hides_units_until_success_and_drops_swept_videos() -> None:
    video = {"id": "v", "key": "videos/1/0.mp4", "duration": "5"}
    running = task_data(_record(TaskStatus.PROCESSING, {}), lambda k: "u").wire()
    assert running["final_unit_deduction"] == "0" and running["task_result"] == {}
    done = task_data(_record(TaskStatus.SUCCEED, {"videos": [video]}), lambda k: f"https://x/{k}")
    wire = done.wire()
    assert wire["final_unit_deduction"] == "3.5"
    assert wire["task_result"]["videos"] == [
        {"id": "v", "url": "https://x/videos/1/0.mp4", "watermark_url": "", "duration": "5"}
    ]
    assert wire["task_info"] == {"external_task_id": "ext-1"}
    assert TaskData.model_validate(wire) == done  # what the SDK parses is what was sent
    swept = task_data(_record(TaskStatus.SUCCEED, {"videos": [video]}), lambda k: None)
    assert swept.wire()["task_result"] == {}
    body = callback_body(_record(TaskStatus.SUCCEED, {"videos": [video]}), lambda k: "u")
    assert list(body) == [
        "task_id",
        "task_status",
        "task_status_msg",
        "task_info",
        "task_result",
        "final_unit_deduction",
        "created_at",
        "updated_at",
    ]
    assert list(body) == list(CALLBACK_FIELDS)
    assert body == {key: wire[key] for key in body if key != "task_result"} | {
        "task_result": {"videos": [{**wire["task_result"]["videos"][0], "url": "u"}]}
    }


@pytest.mark.parametrize(
    ("stored", "shown"),
    [("7.0", "7"), ("7", "7"), ("3.50", "3.5"), ("10", "10"), ("1E+1", "10"), ("0.0", "0")],
)
def test_final_unit_deduction_is_canonical_whatever_was_stored(stored: str, shown: str) -> None:
    rec = _record(TaskStatus.SUCCEED, {"videos": []}, units=stored)
    assert task_data(rec, no_urls).final_unit_deduction == shown
    assert callback_body(rec, no_urls)["final_unit_deduction"] == shown
    failed = _record(TaskStatus.FAILED, {}, units=stored)
    assert task_data(failed, no_urls).final_unit_deduction == "0"
    # the SDK still parses a server that sends the old form
    wire = task_data(rec, no_urls).wire() | {"final_unit_deduction": stored}
    assert TaskData.model_validate(wire).final_unit_deduction == stored


def test_created_task_has_the_five_contract_fields() -> None:
    rec = _record(TaskStatus.SUBMITTED, {})
    assert created_task(rec).wire() == {
        "task_id": "217413177147939000",
        "task_status": "submitted",
        "task_info": {"external_task_id": "ext-1"},
        "created_at": 1,
        "updated_at": 2,
    }
    rec.external_task_id = None
    assert created_task(rec).wire()["task_info"] == {}


def test_domain_imports_no_framework_driver_or_torch() -> None:
    code = (
        "import sys, reelgate.domain, reelgate.domain.kling, reelgate.domain.netguard;"
        "bad = [m for m in ('fastapi','starlette','sqlalchemy','httpx','torch','alembic')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# Who may import whom (architecture.md), checked on the source of every module.
ALLOWED = {
    "domain": set(),
    "store": {"domain"},
    "storage": {"domain"},
    "media": set(),
    "engines": {"domain", "media"},
    "worker": {"domain", "store", "storage", "engines", "media", "settings", "logs", "metrics"},
    "callbacks": {"domain", "store", "settings", "metrics"},
    "api": {"domain", "store", "storage", "settings", "logs", "metrics"},
    "client": {"domain", "settings"},
}


def _reelgate_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "reelgate" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_rules(layer: str) -> None:
    root = PACKAGE / layer
    offenders = {}
    for path in root.rglob("*.py"):
        extra = _reelgate_imports(path) - ALLOWED[layer] - {layer}
        if extra:
            offenders[str(path.relative_to(PACKAGE))] = sorted(extra)
    assert offenders == {}
