"""A version's manifest is checked against its digest wherever it is read from: the
client's download cache (a damaged copy is evicted and fetched again) and the server's
store (a damaged blob is set aside, and the next log of that content stores it again)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import server_fixtures
from server_fixtures import ServerEnv, SokoServer, point_sdk_at, unique_project

import soko
from soko.client import connect
from soko.core.digests import Digest
from soko.errors import CorruptBlobError
from soko.storage.base import blob_key
from soko.wire.base import parse_digest

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
pg_database = server_fixtures.pg_database
cloud_server = server_fixtures.cloud_server
any_server = server_fixtures.any_server
any_server_env = server_fixtures.any_server_env
server_env = server_fixtures.server_env

FILES = {f"f{i}.txt": f"content of file {i}\n".encode() for i in range(4)}


def _log(project: str, name: str, folder: Path) -> None:
    for relative, content in FILES.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    with soko.init(project=project) as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()


def _read_tree(root: str | Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in Path(root).rglob("*") if p.is_file()
    }


def _manifest_digest(project: str, name: str) -> Digest:
    record = soko.Api().artifact(f"{project}/{name}:latest")._record
    assert record is not None and record.manifest_blob is not None
    return parse_digest(record.manifest_blob)


def _flip_bit(raw: bytes, index: int) -> bytes:
    return raw[:index] + bytes([raw[index] ^ 0x01]) + raw[index + 1 :]


def _in_a_path_name(raw: bytes) -> bytes:
    """One bit flipped in the path ``f1.txt``: it becomes ``f0.txt``, which JSON then
    holds twice (the last one wins), with f1's digest; still valid JSON."""
    index = raw.index(b'"f1.txt"') + 2
    damaged = _flip_bit(raw, index)
    assert b'"f1.txt"' not in damaged
    json.loads(damaged)
    return damaged


def _in_the_json(raw: bytes) -> bytes:
    """One bit flipped in the opening brace: no longer JSON."""
    damaged = _flip_bit(raw, raw.index(b"{"))
    with pytest.raises(ValueError):
        json.loads(damaged)
    return damaged


@pytest.mark.parametrize("damage", [_in_a_path_name, _in_the_json], ids=["path", "json"])
def test_a_damaged_cached_manifest_is_evicted_and_fetched_again(
    any_server_env: ServerEnv, tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    project = unique_project()
    _log(project, "m", tmp_path / "data")
    first = soko.Api().artifact(f"{project}/m:latest").download(str(tmp_path / "first"))
    assert _read_tree(first) == FILES
    cached = any_server_env.cache / blob_key(_manifest_digest(project, "m"))
    intact = cached.read_bytes()
    cached.chmod(0o644)
    cached.write_bytes(damage(intact))
    connect.reset()  # a new process: no manifest held in memory

    again = soko.Api().artifact(f"{project}/m:latest").download(str(tmp_path / "second"))

    assert _read_tree(again) == FILES
    assert cached.read_bytes() == intact


def _server_blob(server: SokoServer, digest: Digest) -> Path:
    return server.log_path.parent / "blobs" / blob_key(digest)


def test_a_damaged_manifest_on_the_server_is_set_aside_and_a_relog_stores_it_again(
    server_env: ServerEnv, soko_server: SokoServer, tmp_path: Path
) -> None:
    project = unique_project()
    _log(project, "m", tmp_path / "data")
    digest = _manifest_digest(project, "m")
    stored = _server_blob(soko_server, digest)
    intact = stored.read_bytes()
    stored.chmod(0o644)
    stored.write_bytes(_in_a_path_name(intact))
    assert not (server_env.cache / blob_key(digest)).exists()  # logging cached nothing

    with pytest.raises(CorruptBlobError, match=str(digest)):
        soko.Api().artifact(f"{project}/m:latest").download(str(tmp_path / "refused"))
    quarantined = soko_server.log_path.parent / "blobs" / "quarantine" / "xxh128" / digest.hex
    assert not stored.exists()
    assert quarantined.read_bytes() == _in_a_path_name(intact)
    assert not (tmp_path / "refused").exists() or _read_tree(tmp_path / "refused") == {}

    _log(project, "m", tmp_path / "data")  # the same files again
    assert stored.read_bytes() == intact
    connect.reset()
    again = soko.Api().artifact(f"{project}/m:latest").download(str(tmp_path / "second"))
    assert _read_tree(again) == FILES


@pytest.mark.parametrize("new_content_first", [False, True], ids=["relog", "new-then-relog"])
def test_a_damaged_manifest_the_server_has_not_read_yet_blocks_no_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_content_first: bool
) -> None:
    # The collection's latest version lends its blobs to the next log: its manifest is
    # loaded then, found damaged, and must be skipped, not fail that log (nor every later
    # one, once it is set aside and missing).
    root = tmp_path / "server"
    db, blobs = f"sqlite:///{root / 'meta.db'}", root / "blobs"
    server = SokoServer(root, db=db, store=str(blobs))
    project = unique_project()
    try:
        point_sdk_at(server, server.admin_key, tmp_path=tmp_path / "one", monkeypatch=monkeypatch)
        _log(project, "m", tmp_path / "data")
        digest = _manifest_digest(project, "m")
    finally:
        server.stop()
    stored = blobs / blob_key(digest)
    intact = stored.read_bytes()
    stored.chmod(0o644)
    stored.write_bytes(_in_a_path_name(intact))
    # A new server process: it holds nothing of the version in memory.
    server = SokoServer(root, db=db, store=str(blobs), admin_key=server.admin_key)
    try:
        point_sdk_at(server, server.admin_key, tmp_path=tmp_path / "two", monkeypatch=monkeypatch)
        if new_content_first:
            other = tmp_path / "other"
            other.mkdir()
            (other / "new.txt").write_bytes(b"new content")
            with soko.init(project=project) as run:
                logged = run.log_artifact(str(other), name="m", type="dataset").wait()
            assert logged.version == "v1"
            assert not stored.exists()  # found damaged and set aside
            with server.client() as api:
                v0 = api.get(f"/projects/local/{project}/collections/m/versions/v0").json()
                gone = api.get(f"/versions/{v0['id']}/manifest")
            assert gone.status_code == 404
            assert str(root) not in gone.text  # the store's folder is the server's business

        _log(project, "m", tmp_path / "data")  # the intact files again
        assert stored.read_bytes() == intact
        connect.reset()
        again = soko.Api().artifact(f"{project}/m:v0").download(str(tmp_path / "again"))
        assert _read_tree(again) == FILES
    finally:
        server.stop()
