"""The deployment files (deploy/) stay true to the code: every ``REELGATE_*`` name they (and
the README's settings table) use is declared, every reelgate service's settings are valid, and
the pieces fit together (replicas behind nginx, the proxy's address trusted, workers apart)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from reelgate.settings import Settings, variables

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
NAME = re.compile(r"REELGATE_[A-Z0-9_]*[A-Z0-9]")


def declared_variables() -> set[str]:
    """The settings models' variables, the server's and the client's."""
    return set(variables())


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def reelgate_services() -> dict[str, dict[str, Any]]:
    """The services built from deploy/Dockerfile, by name."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
    }


def test_the_client_variables_are_found() -> None:
    assert {"REELGATE_BASE_URL", "REELGATE_API_KEY"} <= declared_variables()
    assert "REELGATE_DATABASE_URL" in declared_variables()


@pytest.mark.parametrize(
    "path",
    [DEPLOY / "compose.yaml", DEPLOY / "Dockerfile", DEPLOY / "nginx.conf", DEPLOY / "README.md"],
    ids=lambda p: p.name,
)
def test_deploy_files_use_only_declared_variables(path: Path) -> None:
    used = set(NAME.findall(path.read_text()))
    assert used - declared_variables() == set()


def test_readme_settings_tables_name_only_declared_variables() -> None:
    named = set()
    for page in (ROOT / "README.md", DEPLOY / "README.md"):
        for line in page.read_text().splitlines():
            if line.startswith("| `REELGATE_"):
                named.add(line.split("`")[1])
    assert named, "no settings table found"
    assert named - declared_variables() == set()


def test_every_reelgate_service_has_valid_settings_on_postgres_and_s3() -> None:
    services = reelgate_services()
    assert set(services) == {"migrate", "api-1", "api-2", "worker-1", "worker-2"}
    for name, service in services.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert set(env) <= declared_variables(), name  # REELGATE_* only
        settings = Settings.from_env(env)  # types and lists parse as the process reads them
        assert not settings.uses_sqlite and settings.uses_object_storage, name
        assert settings.signing_key_problem() is None, name
        s3 = settings.storage_url or ""
        assert s3.startswith("s3://"), name
    # every process points at the same database and bucket
    shared = ("REELGATE_DATABASE_URL", "REELGATE_STORAGE_URL", "REELGATE_S3_ENDPOINT_URL")
    assert len({tuple(s["environment"][k] for k in shared) for s in services.values()}) == 1


def test_two_api_replicas_and_two_workers_no_shared_reelgate_volume() -> None:
    services = reelgate_services()
    commands = {name: service["command"][0] for name, service in services.items()}
    assert commands == {
        "migrate": "db",
        "api-1": "serve",
        "api-2": "serve",
        "worker-1": "worker",
        "worker-2": "worker",
    }
    assert services["migrate"]["command"] == ["db", "upgrade"]
    for name in ("api-1", "api-2"):
        settings = Settings.from_env(services[name]["environment"])
        assert settings.run_worker is False  # API only: the workers run the tasks
        # the image's 0.0.0.0:8000 is kept: nginx's upstream port
        assert not {"REELGATE_HOST", "REELGATE_PORT"} & set(services[name]["environment"])
    for name, service in services.items():
        assert "volumes" not in service, f"{name}: no disk is shared between reelgate processes"
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {
                "condition": "service_completed_successfully"
            }


def test_nginx_fronts_every_replica_and_is_the_trusted_proxy() -> None:
    conf = (DEPLOY / "nginx.conf").read_text()
    upstream = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", conf, re.M)
    assert upstream == [("api-1", "8000"), ("api-2", "8000")]
    for header in ("X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-For"):
        assert re.search(rf"proxy_set_header {header} \$\w+;", conf), header
    listen = re.search(r"listen (\d+);", conf)
    assert listen is not None
    lb = compose()["services"]["lb"]
    assert f"{listen.group(1)}:{listen.group(1)}" in lb["ports"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in lb["volumes"]
    address = lb["networks"]["reelgate"]["ipv4_address"]
    for name in ("api-1", "api-2"):
        env = reelgate_services()[name]["environment"]
        assert Settings.from_env(env).forwarded_allow_ips == address


def test_minio_gets_its_bucket_before_reelgate_starts() -> None:
    services = compose()["services"]
    bucket = Settings.from_env(reelgate_services()["api-1"]["environment"]).storage_url
    assert bucket is not None
    name = bucket.removeprefix("s3://").split("/")[0]
    assert f"mc mb --ignore-existing local/{name}" in " ".join(
        services["create-bucket"]["entrypoint"]
    )
    minio_env = services["minio"]["environment"]
    api_env = reelgate_services()["api-1"]["environment"]
    assert minio_env["MINIO_ROOT_USER"] == api_env["REELGATE_S3_ACCESS_KEY_ID"]
    assert minio_env["MINIO_ROOT_PASSWORD"] == api_env["REELGATE_S3_SECRET_ACCESS_KEY"]
    for name in ("api-1", "worker-1"):
        assert reelgate_services()[name]["depends_on"]["create-bucket"] == {
            "condition": "service_completed_successfully"
        }


def test_the_image_installs_the_s3_extra_runs_unprivileged_and_checks_healthz() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert 'pip install ".[s3]"' in text
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "s3" in extras["optional-dependencies"]
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert re.search(r'^ENTRYPOINT \["reelgate"\]$', text, re.M)
    assert re.search(r'^CMD \["serve"\]$', text, re.M)
    # the image's defaults are settings too: listen on every interface, data in /data
    env = dict(re.findall(r"(REELGATE_[A-Z_]+)=(\S+)", text))
    settings = Settings.from_env(env)
    assert (settings.host, settings.port, str(settings.data_dir)) == ("0.0.0.0", 8000, "/data")
