"""The auth boundary of a real server: keys, roles per project, and what each may do.

No key is 401; a viewer reads but cannot write; a writer writes but cannot grant; a
project admin grants on its own project only; a key of project A cannot read B (nor B's
bytes through a version of A) unless granted; keys are stored only as hashes; the admin
key is printed once at the first start, or taken from SOKO_ADMIN_KEY.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import server_fixtures
from server_fixtures import SokoServer, point_sdk_at, unique_project

import soko
from soko.errors import AuthenticationError, PermissionDeniedError

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server

ENTITY = "local"


def log_one(project: str, name: str, content: bytes, folder: Path) -> soko.Artifact:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "f.txt").write_bytes(content)
    with soko.init(project=project) as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_file(str(folder / "f.txt"))
        run.log_artifact(artifact).wait()
    return artifact


@pytest.fixture
def two_projects(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Projects A and B, each with one version logged by the admin."""
    a, b = unique_project("a"), unique_project("b")
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "adm", monkeypatch=monkeypatch
    )
    in_a = log_one(a, "data", b"content of A", tmp_path / "fa")
    in_b = log_one(b, "data", b"content of B", tmp_path / "fb")
    return {"a": a, "b": b, "version_a": in_a, "version_b": in_b}


def as_user(
    server: SokoServer, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tag: str
) -> None:
    (tmp_path / tag).mkdir(exist_ok=True)
    point_sdk_at(server, key, tmp_path=tmp_path / tag, monkeypatch=monkeypatch)


def test_admin_key_is_printed_once_at_first_start(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'meta.db'}"
    first = SokoServer(tmp_path / "one", db=db, store=str(tmp_path / "blobs"), print_admin_key=True)
    try:
        key = first.admin_key
        assert key.startswith("soko_")
        with first.client(key) as api:
            assert api.get("/whoami").json() == {"user": "admin", "admin": True, "roles": []}
    finally:
        first.stop()
    again = SokoServer(tmp_path / "two", db=db, store=str(tmp_path / "blobs"), print_admin_key=True)
    try:
        assert again.printed_key() is None
        with again.client(key) as api:
            assert api.get("/whoami").status_code == 200
    finally:
        again.stop()
    # Only the hash is stored: the database holds no key.
    with sqlite3.connect(tmp_path / "meta.db") as conn:
        rows = conn.execute("SELECT id, key_hash FROM api_keys").fetchall()
        dump = "\n".join(conn.iterdump())
    assert [h for _, h in rows] == [hashlib.sha256(key.encode()).hexdigest()]
    assert key not in dump


def test_soko_admin_key_is_the_admins_key(soko_server: SokoServer) -> None:
    with soko_server.client() as api:
        assert api.get("/whoami").json()["admin"] is True
    assert soko_server.printed_key() is None


def test_no_key_or_a_revoked_key_is_refused(
    soko_server: SokoServer,
    two_projects: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = soko_server.new_user(unique_project("u"), {(ENTITY, two_projects["a"]): "viewer"})
    with soko_server.client(key) as api:
        key_id = key.split("_")[1]
        assert api.get("/whoami").status_code == 200
        assert api.delete(f"/keys/{key_id}").status_code == 204
        assert api.get("/whoami").status_code == 401
    as_user(soko_server, key, tmp_path, monkeypatch, "revoked")
    with pytest.raises(AuthenticationError):
        soko.Api().artifact(f"{two_projects['a']}/data:latest")
    point_sdk_at(soko_server, None, tmp_path=tmp_path / "revoked", monkeypatch=monkeypatch)
    with pytest.raises(AuthenticationError):
        soko.Api().artifact(f"{two_projects['a']}/data:latest")


def test_a_viewer_reads_but_cannot_write(
    soko_server: SokoServer,
    two_projects: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = two_projects["a"]
    key = soko_server.new_user(unique_project("viewer"), {(ENTITY, a): "viewer"})
    as_user(soko_server, key, tmp_path, monkeypatch, "viewer")

    artifact = soko.Api().artifact(f"{a}/data:latest")
    root = artifact.download(str(tmp_path / "out"))
    assert (Path(root) / "f.txt").read_bytes() == b"content of A"

    with pytest.raises(PermissionDeniedError):
        log_one(a, "data", b"viewer's change", tmp_path / "vw")
    artifact.aliases.append("nope")
    with pytest.raises(PermissionDeniedError):
        artifact.save()
    with pytest.raises(PermissionDeniedError):
        artifact.delete(delete_aliases=True)
    with soko_server.client(key) as api:
        refused = api.post("/blobs/missing", json={"entity": ENTITY, "project": a, "digests": []})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "permission_denied"
    assert [v.version for v in soko.Api().artifacts("dataset", f"{a}/data")] == ["v0"]


def test_a_writer_writes_but_cannot_grant(
    soko_server: SokoServer,
    two_projects: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = two_projects["a"]
    name = unique_project("writer")
    key = soko_server.new_user(name, {(ENTITY, a): "writer"})
    as_user(soko_server, key, tmp_path, monkeypatch, "writer")
    logged = log_one(a, "data", b"writer's version", tmp_path / "wr")
    assert logged.version == "v1"
    with soko_server.client(key) as api:
        grant = api.put(
            f"/users/{name}/roles", json={"entity": ENTITY, "project": a, "role": "admin"}
        )
        assert grant.status_code == 403
        assert api.post("/users", json={"name": "sneaky"}).status_code == 403


def test_a_project_admin_grants_on_its_own_project_only(
    soko_server: SokoServer, two_projects: dict[str, Any]
) -> None:
    a, b = two_projects["a"], two_projects["b"]
    owner = soko_server.new_user(unique_project("owner"), {(ENTITY, a): "admin"})
    friend_name = unique_project("friend")
    friend = soko_server.new_user(friend_name)
    with soko_server.client(owner) as api:
        on_a = {"entity": ENTITY, "project": a, "role": "viewer"}
        on_b = {"entity": ENTITY, "project": b, "role": "viewer"}
        assert api.put(f"/users/{friend_name}/roles", json=on_a).status_code == 200
        assert api.put(f"/users/{friend_name}/roles", json=on_b).status_code == 403
    with soko_server.client(friend) as api:
        assert api.get(f"/projects/{ENTITY}/{a}/collections").status_code == 200
        assert api.get(f"/projects/{ENTITY}/{b}/collections").status_code == 403
    with soko_server.client(owner) as api:
        assert api.delete(f"/users/{friend_name}/roles/{ENTITY}/{a}").status_code == 204
    with soko_server.client(friend) as api:
        assert api.get(f"/projects/{ENTITY}/{a}/collections").status_code == 403


def test_project_a_cannot_read_project_b(
    soko_server: SokoServer,
    two_projects: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = two_projects["a"], two_projects["b"]
    version_a, version_b = two_projects["version_a"], two_projects["version_b"]
    key = soko_server.new_user(unique_project("team-a"), {(ENTITY, a): "writer"})
    as_user(soko_server, key, tmp_path, monkeypatch, "team-a")

    with pytest.raises(PermissionDeniedError):
        soko.Api().artifact(f"{b}/data:latest")
    with pytest.raises(PermissionDeniedError):
        log_one(b, "data", b"a writes into b", tmp_path / "ab")
    visible = {p.name for p in soko.Api().projects()}
    assert a in visible and b not in visible

    digest_b = version_b.manifest.get("f.txt").blob_digest()  # type: ignore[union-attr]
    with soko_server.client(key) as api:
        # B's version ids are answered as ids that do not exist.
        assert api.get(f"/versions/{version_b.id}").status_code == 404
        assert api.get(f"/versions/{version_b.id}/manifest").status_code == 404
        plan = api.post(f"/versions/{version_b.id}/blobs/plan", json={"digests": [str(digest_b)]})
        assert plan.status_code == 404
        # Nor through a version of A that does not name the blob.
        sneaky = api.get(f"/versions/{version_a.id}/blobs/{digest_b.algorithm.key}/{digest_b.hex}")
        assert sneaky.status_code == 404
        batch = api.post(f"/versions/{version_a.id}/blobs/batch", json={"digests": [str(digest_b)]})
        assert batch.status_code == 404
        assert b"content of B" not in sneaky.content + batch.content


def test_an_entity_wide_grant_covers_every_project(
    soko_server: SokoServer, two_projects: dict[str, Any]
) -> None:
    key = soko_server.new_user(unique_project("all"), {(ENTITY, "*"): "viewer"})
    with soko_server.client(key) as api:
        for project in (two_projects["a"], two_projects["b"]):
            answer = api.get(f"/projects/{ENTITY}/{project}/collections/data/versions/latest")
            assert answer.status_code == 200
        other = api.get("/projects/elsewhere/anything/collections")
        assert other.status_code == 403


def test_lineage_shows_only_readable_runs(
    soko_server: SokoServer,
    two_projects: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = two_projects["a"], two_projects["b"]
    # A run of project B uses the version of A (the admin may).
    with soko.init(project=b) as run:
        run.use_artifact(f"{a}/data:latest")
    key = soko_server.new_user(unique_project("lin"), {(ENTITY, a): "viewer"})
    as_user(soko_server, key, tmp_path, monkeypatch, "lineage")
    artifact = soko.Api().artifact(f"{a}/data:latest")
    assert artifact.used_by() == []
    with httpx.Client(
        base_url=f"{soko_server.url}/api/v1",
        headers={"Authorization": f"Bearer {soko_server.admin_key}"},
    ) as api:
        runs = api.get(f"/versions/{artifact.id}/runs", params={"direction": "used"}).json()["runs"]
    assert [r["project"] for r in runs] == [b]
