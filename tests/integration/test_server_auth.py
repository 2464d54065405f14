"""The auth boundary of a real server: keys, roles per project, and what each may do.

No key is 401; a viewer reads but cannot write; a writer writes but cannot grant; a
project admin grants on its own project only; a key of project A cannot read B (nor B's
bytes through a version of A) unless granted; keys are stored only as hashes; the admin
key is printed once at the first start, or taken from SOKO_ADMIN_KEY: a new one revokes
the previous one, servers starting together with one key keep it, a weak one stops the
server; keys are listed by id (to revoke one), users by server admins.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import server_fixtures
from server_fixtures import (
    SokoServer,
    free_port,
    fresh_pg_database,
    point_sdk_at,
    unique_project,
)

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


def operator_key() -> str:
    return f"soko_env_{secrets.token_urlsafe(32)}"


@contextmanager
def running(workdir: Path, db: str, key: str) -> Iterator[SokoServer]:
    server = SokoServer(workdir, db=db, store=str(workdir.parent / "blobs"), admin_key=key)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def a_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        with fresh_pg_database() as url:
            yield url


def status_of(server: SokoServer, key: str) -> int:
    with server.client(key) as api:
        return api.get("/whoami").status_code


def test_a_new_soko_admin_key_revokes_the_old_one(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'meta.db'}"
    old, new = operator_key(), operator_key()
    with running(tmp_path / "one", db, old) as server:
        assert status_of(server, old) == 200
    with running(tmp_path / "two", db, new) as server:
        assert status_of(server, old) == 401
        assert status_of(server, new) == 200
        with server.client(new) as api:
            keys = api.get("/users/admin/keys").json()["keys"]
        assert [(k["origin"], k["revoked_at"] is None) for k in keys] == [
            ("env", False),
            ("env", True),
        ]
    # Restarted with the same key: it keeps working, the old one stays revoked.
    with running(tmp_path / "three", db, new) as server:
        assert status_of(server, new) == 200
        assert status_of(server, old) == 401


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_servers_starting_together_with_one_key_all_accept_it(
    tmp_path: Path, database: str
) -> None:
    with a_database(database, tmp_path) as db:
        old, key = operator_key(), operator_key()
        with running(tmp_path / "before", db, old):
            pass
        servers = [
            SokoServer(
                tmp_path / f"s{i}", db=db, store=str(tmp_path / "blobs"), admin_key=key, wait=False
            )
            for i in range(3)
        ]
        try:
            for server in servers:
                server.wait_ready()
            for server in servers:
                assert status_of(server, key) == 200
                assert status_of(server, old) == 401
        finally:
            for server in servers:
                server.stop()


@pytest.mark.parametrize("weak", ["soko_admin_key_1", "ab" * 20])
@pytest.mark.parametrize(
    "entry",
    [
        ["-m", "soko.server"],
        ["-c", "from soko.cli.main import main; raise SystemExit(main())", "server"],
    ],
    ids=["python -m soko.server", "soko server"],
)
def test_a_weak_soko_admin_key_stops_the_server(
    tmp_path: Path, weak: str, entry: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    env.update(SOKO_DIR=str(tmp_path / "soko"), SOKO_ADMIN_KEY=weak)
    command = [sys.executable, *entry, "--port", str(free_port())]
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "SOKO_ADMIN_KEY is too weak" in lines[0]
    assert "32 characters" in lines[0] and "10 different" in lines[0]
    assert weak not in done.stderr + done.stdout
    assert not (tmp_path / "soko").exists()  # refused before anything was opened


def test_keys_are_listed_by_id_to_their_user_and_to_admins(soko_server: SokoServer) -> None:
    name = unique_project("keys")
    first = soko_server.new_user(name)
    with soko_server.client(first) as api:
        made = api.post(f"/users/{name}/keys")
        assert made.status_code == 201
        second_id = made.json()["key_id"]
        assert api.delete(f"/keys/{second_id}").status_code == 204
        listed = api.get(f"/users/{name}/keys")
        assert listed.status_code == 200
        keys = listed.json()["keys"]
        assert [k["key_id"] for k in keys] == [first.split("_")[1], second_id]
        assert [k["revoked_at"] is None for k in keys] == [True, False]
        assert {k["origin"] for k in keys} == {"api"}
        assert set(keys[0]) == {"key_id", "created_at", "revoked_at", "origin", "expires_at"}
        secret = first.rsplit("_", 1)[1]
        assert secret not in listed.text
        assert hashlib.sha256(first.encode()).hexdigest() not in listed.text
        # Another user's keys, and the list of users, are for server admins only.
        assert api.get("/users/admin/keys").status_code == 403
        assert api.get("/users").status_code == 403
    with soko_server.client() as admin:
        assert admin.get(f"/users/{name}/keys").json()["keys"] == keys
        assert admin.get("/users/nobody-here/keys").status_code == 404
        users = {u["name"]: u for u in admin.get("/users").json()["users"]}
        assert users["admin"]["admin"] is True
        assert users[name]["admin"] is False and users[name]["created_at"]


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
