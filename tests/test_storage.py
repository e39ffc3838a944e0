"""The Storage protocol, on both backends: the local folder and S3 (moto in server mode, a real
S3-protocol server on loopback). Everything here goes through the protocol and ``open_storage``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reelgate.domain.errors import ForbiddenLinkError, NotFoundError
from reelgate.domain.ids import new_task_id
from reelgate.settings import Settings
from reelgate.storage import LocalStorage, Storage, key_created_s, open_storage, task_prefix
from reelgate.storage.s3 import PART_SIZE, S3Storage, open_s3_store, parse_s3_url

from .s3_support import S3Server, s3_server  # noqa: F401 (fixture)

OLD_TASK = "000000000001000000"  # a task id drawn in 2020: older than any retention here


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    base = Settings(data_dir=tmp_path / "data", url_ttl_s=600)
    if request.param == "local":
        yield base
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.create_bucket()
    yield Settings.from_env(
        server.env(),
        data_dir=tmp_path / "data",
        url_ttl_s=600,
        storage_url=f"s3://{bucket}/results",
    )


@pytest.fixture
def storage(settings: Settings) -> Storage:
    return open_storage(settings)


def blob(tmp_path: Path, size: int, name: str = "blob.bin") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def key_for(task_id: str, name: str = "0.mp4") -> str:
    return f"{task_prefix(task_id)}/{name}"


def download(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(url, headers=headers or {}, timeout=30)


def test_the_factory_picks_the_backend_from_the_storage_url(settings: Settings) -> None:
    storage = open_storage(settings)
    if settings.storage_url:
        assert isinstance(storage, S3Storage)
        assert storage.location == settings.storage_url
    else:
        assert isinstance(storage, LocalStorage)
        assert storage.location == str(settings.files_dir)


def test_put_read_ranges_list_and_delete(storage: Storage, tmp_path: Path) -> None:
    path, data = blob(tmp_path, 300_000)
    key = key_for(new_task_id())
    storage.put(key, path, "video/mp4")
    assert storage.exists(key)
    assert b"".join(storage.read(key)) == data
    assert b"".join(storage.read(key, 100, 200)) == data[100:200]
    assert b"".join(storage.read(key, 299_990)) == data[299_990:]
    assert b"".join(storage.read(key, 5, 5)) == b""
    listed = {b.key: b for b in storage.list_blobs("videos/")}
    assert set(listed) == {key}
    assert listed[key].size == len(data)
    assert abs(listed[key].modified - time.time()) < 600

    path2, data2 = blob(tmp_path, 1000, "again.bin")
    storage.put(key, path2, "video/mp4")  # a retried task overwrites
    assert b"".join(storage.read(key)) == data2

    storage.delete(key)
    assert not storage.exists(key)
    assert list(storage.list_blobs("videos/")) == []
    with pytest.raises(NotFoundError):
        b"".join(storage.read(key))
    storage.delete(key)  # gone already: not an error


def test_a_large_file_goes_up_in_parts_and_comes_back_whole(
    storage: Storage, tmp_path: Path, settings: Settings
) -> None:
    path, data = blob(tmp_path, 2 * PART_SIZE + 12_345)  # three parts on S3
    key = key_for(new_task_id())
    storage.put(key, path, "video/mp4")
    assert b"".join(storage.read(key)) == data
    start = PART_SIZE - 10  # a range across a part boundary
    assert b"".join(storage.read(key, start, start + 20)) == data[start : start + 20]
    if settings.storage_url:  # a multipart upload's ETag ends in -<number of parts>
        import obstore

        bucket = open_s3_store(
            settings.storage_url,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
        )
        assert str(obstore.head(bucket, key)["e_tag"]).strip('"').endswith("-3")


def test_a_link_downloads_the_bytes_and_honours_range(
    storage: Storage, tmp_path: Path, settings: Settings
) -> None:
    """Local links go through the /files route (tested with the API); S3 links are presigned
    GETs that the bucket answers itself."""
    path, data = blob(tmp_path, 50_000)
    key = key_for(new_task_id())
    storage.put(key, path, "video/mp4")
    url = storage.sign(key, "http://reelgate.example")
    assert url is not None
    if not settings.storage_url:
        assert url.startswith("http://reelgate.example/files/videos/")
        return
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=600" in url
    assert download(url).content == data
    part = download(url, {"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == data[1000:2000]


def test_sweep_deletes_what_is_older_than_the_age_and_links_then_read_none(
    storage: Storage, tmp_path: Path
) -> None:
    path, _ = blob(tmp_path, 1000)
    key = key_for(new_task_id())
    storage.put(key, path, "video/mp4")
    assert storage.sweep(3600) == 0  # young: kept
    assert storage.sign(key, "http://x") is not None
    assert storage.sweep(0) == 1
    assert list(storage.list_blobs("videos/")) == []
    assert storage.sign(key, "http://x") is None  # the task reads task_result: {}


def test_a_swept_old_task_signs_none(storage: Storage, tmp_path: Path) -> None:
    """A key whose task is older than the retention is looked up before it is signed."""
    path, _ = blob(tmp_path, 1000)
    kept, missing = key_for(OLD_TASK), key_for(OLD_TASK, "1.mp4")
    storage.put(kept, path, "video/mp4")
    assert storage.sign(kept, "http://x") is not None
    assert storage.sign(missing, "http://x") is None


def test_the_storage_takes_writes(storage: Storage) -> None:
    assert storage.write_problem() is None
    assert list(storage.list_blobs()) == []  # the probe leaves nothing behind


def test_key_created_s_reads_the_task_id() -> None:
    before = time.time()
    created = key_created_s(key_for(new_task_id()))
    assert created is not None and before - 1 <= created <= time.time() + 1
    assert key_created_s("videos/not-an-id/0.mp4") is None
    assert key_created_s("other/123456789012345678/0.mp4") is None
    assert key_created_s(key_for(OLD_TASK)) == pytest.approx(1_577_836_800 + 1_000_000 / 1000)


def test_s3_urls_and_settings_that_cannot_work_are_refused(tmp_path: Path) -> None:
    assert parse_s3_url("s3://bucket/a/b/") == ("bucket", "a/b")
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    with pytest.raises(ValueError, match="names no bucket"):
        parse_s3_url("s3:///prefix")
    base = Settings(data_dir=tmp_path, storage_url="s3://bucket/p")
    with pytest.raises(ValueError, match="604800"):
        open_storage(base.replace(url_ttl_s=8 * 86400))
    with pytest.raises(ValueError, match=r"scheme gs:// is not supported"):
        open_storage(base.replace(storage_url="gs://bucket"))
    folder = open_storage(base.replace(storage_url=str(tmp_path / "shared")))
    assert folder.location == str(tmp_path / "shared")


# -- S3 specifics ----------------------------------------------------------------------------


@pytest.fixture
def s3(s3_server: S3Server, tmp_path: Path) -> tuple[Settings, S3Server]:  # noqa: F811
    bucket = s3_server.create_bucket()
    settings = Settings.from_env(
        s3_server.env(), data_dir=tmp_path, storage_url=f"s3://{bucket}/r", retention_days=1
    )
    return settings, s3_server


def test_s3_signs_young_tasks_without_asking_the_bucket(
    s3: tuple[Settings, S3Server], tmp_path: Path
) -> None:
    """Only the retention sweep removes blobs, and a task younger than the retention cannot
    have been swept: its link is signed without a request. Another replica's storage removes
    the blob behind this one's back, and this one still signs it (it did not look)."""
    settings, _ = s3
    api, other = open_storage(settings), open_storage(settings)
    path, _ = blob(tmp_path, 100)
    key = key_for(new_task_id())
    other.put(key, path, "video/mp4")
    other.delete(key)
    assert api.sign(key, "http://x") is not None
    old = key_for(OLD_TASK)
    other.put(old, path, "video/mp4")
    assert api.sign(old, "http://x") is not None  # looked up (HEAD) and remembered
    other.delete(old)
    assert api.sign(old, "http://x") is not None  # remembered until the sweep could run
    assert open_storage(settings).sign(old, "http://x") is None  # a fresh look


def test_s3_a_sweep_at_the_retention_keeps_young_blobs_and_their_links(
    s3: tuple[Settings, S3Server], tmp_path: Path
) -> None:
    settings, _ = s3
    storage = open_storage(settings)
    path, _ = blob(tmp_path, 100)
    keys = [key_for(new_task_id(), f"{i}.mp4") for i in range(3)]
    for key in keys:
        storage.put(key, path, "video/mp4")
    assert storage.sweep(settings.retention_days * 86400) == 0
    assert {b.key for b in storage.list_blobs()} == set(keys)
    assert all(storage.sign(k, "http://x") for k in keys)


def test_s3_write_problem_names_the_bucket(s3_server: S3Server, tmp_path: Path) -> None:  # noqa: F811
    settings = Settings.from_env(
        s3_server.env(), data_dir=tmp_path, storage_url="s3://no-such-bucket-here/p"
    )
    problem = open_storage(settings).write_problem()
    assert problem is not None
    assert problem.startswith("cannot write to s3://no-such-bucket-here/p:")


def test_the_signing_key_is_required_on_a_shared_store_with_folder_storage(tmp_path: Path) -> None:
    pg = "postgresql://reelgate@db/reelgate"
    problem = Settings(data_dir=tmp_path, database_url=pg).signing_key_problem()
    assert problem is not None and problem.startswith("REELGATE_SIGNING_KEY must be set")
    assert (
        Settings(data_dir=tmp_path, database_url=pg, signing_key="k").signing_key_problem() is None
    )
    assert Settings(data_dir=tmp_path).signing_key_problem() is None  # SQLite: one machine
    s3 = Settings(data_dir=tmp_path, database_url=pg, storage_url="s3://b/p")
    assert s3.signing_key_problem() is None  # presigned links: no reelgate key involved


def test_local_links_check_on_any_replica_sharing_the_key_and_folder(tmp_path: Path) -> None:
    """Two API replicas (own data directories) on one shared folder: with the shared
    REELGATE_SIGNING_KEY a link one signs is honoured by the other; with keys generated per
    data directory it is refused."""
    shared = str(tmp_path / "shared")
    path, data = blob(tmp_path, 1000)
    key = key_for(new_task_id())

    def replica(name: str, signing_key: str | None) -> Storage:
        return open_storage(
            Settings(data_dir=tmp_path / name, storage_url=shared, signing_key=signing_key)
        )

    def check(link: str, storage: Storage) -> Path:
        query = dict(part.split("=") for part in link.split("?", 1)[1].split("&"))
        return storage.verify(key, query["expires"], query["signature"])

    a, b = replica("a", "shared-key"), replica("b", "shared-key")
    a.put(key, path, "video/mp4")
    link = a.sign(key, "http://a.example")
    assert link is not None
    assert check(link, b).read_bytes() == data

    own_a, own_b = replica("c", None), replica("d", None)
    link = own_a.sign(key, "http://c.example")
    assert link is not None
    with pytest.raises(ForbiddenLinkError, match="signature is invalid"):
        check(link, own_b)
    assert (tmp_path / "c" / "signing.key").exists()
    assert not (tmp_path / "a" / "signing.key").exists()


def test_the_s3_sweep_leaves_other_keys_under_the_prefix_alone(
    s3: tuple[Settings, S3Server], tmp_path: Path
) -> None:
    settings, _ = s3
    storage = open_storage(settings)
    path, _ = blob(tmp_path, 100)
    storage.put("backups/not-ours.bin", path, "application/octet-stream")
    storage.put(key_for(new_task_id()), path, "video/mp4")
    assert storage.sweep(0) == 1
    assert [b.key for b in storage.list_blobs()] == ["backups/not-ours.bin"]


def test_local_sign_looks_only_inside_the_root_and_signs_what_verify_serves(
    tmp_path: Path,
) -> None:
    """sign() checks the key lexically and stats the file once (no path resolution); a key
    that could leave the root is never signed, even when a file is there."""
    root = tmp_path / "files"
    storage = LocalStorage(root, b"k" * 32)
    (tmp_path / "outside.mp4").write_bytes(b"x")
    path, _ = blob(tmp_path, 100)
    key = key_for(new_task_id())
    storage.put(key, path, "video/mp4")
    url = storage.sign(key, "http://x")
    assert url is not None
    expires, signature = url.split("?expires=")[1].split("&signature=")
    assert storage.verify(key, expires, signature) == (root / key).resolve()
    for bad in ("../outside.mp4", "videos/../../outside.mp4", "/etc/hostname", "videos//0.mp4"):
        assert storage.sign(bad, "http://x") is None, bad
    assert storage.sign("videos", "http://x") is None  # a folder is no blob
