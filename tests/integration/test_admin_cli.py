"""``soko admin`` against a live server: users, keys, grants, gc, verify and usage round-trip
through the server's API, in text and in ``--json``, with the CLI's exit codes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from server_fixtures import FolderBlobs, SokoServer, point_sdk_at, unique_project
from sqlalchemy import create_engine, update

import soko
from soko.cli.main import main
from soko.core.digests import Algorithm, Digest
from soko.metadata.schema import api_keys

pytestmark = pytest.mark.integration

_SIZE = 2 * 1024 * 1024
"""Large enough to be stored alone (a loose file the test can damage), not in a pack."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SokoServer]:
    """A server of its own: gc here must not touch what other tests left on theirs."""
    root = tmp_path_factory.mktemp("admin-server")
    running = SokoServer(root, db=f"sqlite:///{root / 'meta.db'}", store=str(root / "blobs"))
    running.db_path = root / "meta.db"  # type: ignore[attr-defined]
    running.blobs = FolderBlobs(root / "blobs")  # type: ignore[attr-defined]
    try:
        yield running
    finally:
        running.stop()


class Admin:
    def __init__(self, server: SokoServer, capsys: pytest.CaptureFixture[str]) -> None:
        self.server = server
        self.capsys = capsys

    def run(self, *args: str, key: str | None = None) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["admin", *args, "--host", self.server.url, "--key", key or
                     self.server.admin_key])  # fmt: skip
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *args: str) -> object:
        code, out, err = self.run(*args, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def admin(server: SokoServer, capsys: pytest.CaptureFixture[str]) -> Admin:
    return Admin(server, capsys)


def whoami(server: SokoServer, key: str) -> httpx.Response:
    return httpx.get(f"{server.url}/api/v1/whoami", headers={"Authorization": f"Bearer {key}"})


def test_users_keys_and_grants_round_trip(admin: Admin, server: SokoServer) -> None:
    name = unique_project("ana")
    added = admin.json("users", "add", name)
    assert added["name"] == name and added["admin"] is False and added["disabled_at"] is None
    listed = admin.json("users", "list")
    assert name in [u["name"] for u in listed["users"]]  # type: ignore[index]

    created = admin.json("keys", "create", name, "--expires", "30d")
    key = created["key"]  # type: ignore[index]
    expires = datetime.fromisoformat(created["expires_at"])  # type: ignore[index]
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert whoami(server, key).json()["user"] == name
    keys = admin.json("keys", "list", name)["keys"]  # type: ignore[index]
    assert [k["key_id"] for k in keys] == [created["key_id"]]  # type: ignore[index]
    assert key not in json.dumps(keys)  # a listing never shows a secret

    admin.json("grants", "add", name, "team/vision", "writer")
    admin.json("grants", "add", name, "lab", "viewer")
    roles = admin.json("grants", "list", name)["roles"]  # type: ignore[index]
    assert roles == [
        {"entity": "lab", "project": "*", "role": "viewer"},
        {"entity": "team", "project": "vision", "role": "writer"},
    ]
    assert len(whoami(server, key).json()["roles"]) == 2
    admin.json("grants", "remove", name, "team/vision")
    assert admin.json("grants", "list", name)["roles"] == [roles[0]]  # type: ignore[index]

    # A registry's roles are those on its project in its organisation's entity.
    admin.json("grants", "add", name, "registry:model", "writer")
    admin.json("grants", "add", name, "acme/registry:eval", "viewer")
    listed = admin.json("grants", "list", name)["roles"]  # type: ignore[index]
    assert {"entity": "local", "project": "wandb-registry-model", "role": "writer"} in listed
    assert {"entity": "acme", "project": "wandb-registry-eval", "role": "viewer"} in listed
    admin.json("grants", "remove", name, "registry:model")
    admin.json("grants", "remove", name, "acme/registry:eval")
    assert admin.json("grants", "list", name)["roles"] == [roles[0]]  # type: ignore[index]
    code, _, err = admin.run("grants", "add", name, "registry:", "viewer")
    assert code == 2 and len(err.splitlines()) == 1

    admin.json("users", "disable", name)
    refused = whoami(server, key)
    assert refused.status_code == 401 and "disabled" in refused.text
    code, out, _ = admin.run("users", "list")
    assert code == 0 and "disabled" in out
    admin.json("users", "enable", name)
    assert whoami(server, key).status_code == 200

    code, out, _ = admin.run("keys", "revoke", created["key_id"])  # type: ignore[index]
    assert code == 0 and "Revoked" in out
    assert whoami(server, key).status_code == 401


def test_a_new_key_is_printed_once_in_text(admin: Admin, server: SokoServer) -> None:
    name = unique_project("ben")
    admin.json("users", "add", name)
    code, out, _ = admin.run("keys", "create", name)
    assert code == 0
    key = out.splitlines()[1].strip()
    assert whoami(server, key).json()["user"] == name


def test_an_expired_key_is_refused(admin: Admin, server: SokoServer) -> None:
    name = unique_project("cy")
    admin.json("users", "add", name)
    created = admin.json("keys", "create", name, "--expires", "1h")
    engine = create_engine(f"sqlite:///{server.db_path}")  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == created["key_id"])  # type: ignore[index]
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    engine.dispose()
    refused = whoami(server, created["key"])  # type: ignore[index]
    assert refused.status_code == 401 and "expired" in refused.text


def test_mistakes_are_one_line_with_the_cli_s_exit_codes(admin: Admin, server: SokoServer) -> None:
    name = unique_project("dee")
    admin.json("users", "add", name)
    code, _, err = admin.run("users", "add", name)
    assert code == 4 and len(err.splitlines()) == 1 and "exists" in err
    code, _, err = admin.run("users", "disable", "nobody-of-that-name")
    assert code == 3 and len(err.splitlines()) == 1
    code, _, err = admin.run("users", "disable", "admin")  # the caller itself
    assert code == 4 and "yourself" in err
    user_key = server.new_user(unique_project("eve"))
    code, _, err = admin.run("users", "list", key=user_key)
    assert code == 5 and len(err.splitlines()) == 1 and "not a server admin" in err
    code, _, err = admin.run("keys", "create", name, "--expires", "0")
    assert code == 2


def test_gc_verify_and_usage_through_the_server(
    admin: Admin, server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_sdk_at(server, server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    project = unique_project("maint")
    kept = tmp_path / "kept.bin"
    kept.write_bytes(os.urandom(_SIZE))
    with soko.init(project=project) as run:
        artifact = soko.Artifact("data", type="dataset")
        artifact.add_file(str(kept))
        run.log_artifact(artifact)
        artifact.wait()
    # A blob uploaded for the project that no version names: what gc is for.
    orphan = b"uploaded, never committed"
    digest = Digest.of_bytes(orphan, Algorithm.XXH128)
    with server.client() as api:
        put = api.put(
            f"/blobs/{digest.algorithm.key}/{digest.hex}",
            params={"entity": artifact.entity, "project": project},
            content=orphan,
        )
        assert put.status_code == 200, put.text
    blobs: FolderBlobs = server.blobs  # type: ignore[attr-defined]

    dry = admin.json("gc", "--grace", "0", "--dry-run")
    assert str(digest) in dry["deleted"]  # type: ignore[index]
    assert blobs.exists(digest)
    done = admin.json("gc", "--grace", "0")
    assert str(digest) in done["deleted"]  # type: ignore[index]
    assert not blobs.exists(digest)
    entry = artifact.manifest.get("kept.bin")
    assert entry is not None
    kept_digest = entry.blob_digest()
    assert str(kept_digest) not in done["deleted"]  # type: ignore[index]
    assert blobs.exists(kept_digest)
    metrics = httpx.get(f"{server.url}/metrics").text
    assert "soko_gc_runs_total 1.0" in metrics

    usage = admin.json("usage")["projects"]  # type: ignore[index]
    mine = [p for p in usage if p["project"] == project]
    assert len(mine) == 1
    assert mine[0]["versions"] == 1 and mine[0]["files"] == 1
    assert mine[0]["logical_bytes"] == _SIZE
    assert mine[0]["blob_bytes"] >= _SIZE

    clean = admin.json("verify")
    assert clean["ok"] is True and clean["versions_checked"] >= 1  # type: ignore[index]
    sampled = admin.json("verify", "--sample", "1")
    assert sampled["ok"] is True and sampled["blobs_checked"] == 1  # type: ignore[index]
    assert clean["blobs_checked"] > 1  # type: ignore[index]
    assert any("random sample of 1" in n for n in sampled["notes"])  # type: ignore[index]
    assert sampled["versions_checked"] == clean["versions_checked"]  # type: ignore[index]
    code, _, err = admin.run("verify", "--sample", "0")
    assert code == 2 and "--sample" in err
    blobs.overwrite(kept_digest, b"rotten bytes")
    code, out, _ = admin.run("verify", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False
    affected = [v for p in report["problems"] for v in p["versions"]]
    assert any(project in name and ":v0" in name for name in affected), report
