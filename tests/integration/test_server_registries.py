"""Registries on a real server: organisations holding entities (a registry path names the
registry of the caller's organisation), and roles on a registry (who reads, who links)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import server_fixtures
from server_fixtures import SokoServer, point_sdk_at, unique_project

import soko
from soko.errors import NotFoundError, PermissionDeniedError

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server


def _log(entity: str, project: str, content: bytes, folder: Path) -> soko.Artifact:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "w.bin").write_bytes(content)
    with soko.init(entity=entity, project=project) as run:
        artifact = soko.Artifact("clf", "model")
        artifact.add_file(str(folder / "w.bin"))
        run.log_artifact(artifact).wait()
    return artifact


def _fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_registry_path_names_the_registry_of_the_callers_organisation(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, team_a, team_b, outsider = (_fresh(p) for p in ("acme", "team-a", "team-b", "solo"))
    with soko_server.client() as admin:
        assert admin.post("/organisations", json={"name": org}).status_code == 201
        assert admin.post("/organisations", json={"name": org}).status_code == 409
        for team in (team_a, team_b):
            moved = admin.put(f"/entities/{team}/organisation", json={"organisation": org})
            assert moved.status_code == 204, moved.text
        listed = {
            o["name"]: o["entities"] for o in admin.get("/organisations").json()["organisations"]
        }
        assert sorted(listed[org]) == sorted([team_a, team_b])
    point_sdk_at(soko_server, soko_server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    source = _log(team_a, unique_project(), b"weights", tmp_path / "a")
    collection = _fresh("detector")
    link = source.link(f"wandb-registry-model/{collection}", aliases=["prod"])
    assert (link.entity, link.project) == (org, "wandb-registry-model")

    # Team B of the same organisation finds it at the same path; the organisation's name
    # in front names it too.
    from_b = soko.Api(overrides={"entity": team_b}).artifact(
        f"wandb-registry-model/{collection}:prod"
    )
    assert from_b.source_artifact.id == source.id
    assert soko.Api().artifact(f"{org}/wandb-registry-model/{collection}:v0").id == source.id
    # An entity of another organisation (here the default one) has registries of its own.
    with pytest.raises(NotFoundError):
        soko.Api(overrides={"entity": outsider}).artifact(f"wandb-registry-model/{collection}")
    names = {r.name for r in soko.Api(overrides={"entity": team_b}).registries()}
    assert {"model", "dataset"} <= names


def test_roles_on_a_registry_decide_who_reads_and_who_links(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique_project()
    registry = _fresh("reviewed")
    registry_project = f"wandb-registry-{registry}"
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "adm", monkeypatch=monkeypatch
    )
    soko.Api().create_registry(registry, visibility="restricted", artifact_types=["model"])
    source = _log("local", project, b"weights", tmp_path / "src")
    source.link(f"{registry_project}/coll")

    team = _fresh("team-r")
    reader = soko_server.new_user(
        _fresh("reader"), {("local", registry_project): "viewer", (team, "*"): "writer"}
    )
    linker = soko_server.new_user(
        _fresh("linker"),
        {("local", registry_project): "writer", ("local", project): "viewer"},
    )
    stranger = soko_server.new_user(_fresh("stranger"), {("local", project): "writer"})

    point_sdk_at(soko_server, reader, tmp_path=tmp_path / "r", monkeypatch=monkeypatch)
    linked = soko.Api().artifact(f"{registry_project}/coll:latest")
    assert linked.is_link
    # A reader of the registry reads the linked files without a role on their project.
    root = Path(linked.download(root=str(tmp_path / "got")))
    assert (root / "w.bin").read_bytes() == b"weights"
    with soko.init(entity=team, project=unique_project()) as run:
        assert run.use_artifact(f"{registry_project}/coll:latest").is_link
    # The reader has roles in the default organisation: a member, it sees the registries
    # visible to the organisation (model, dataset) besides the restricted one it was given.
    assert registry in {r.name for r in soko.Api().registries()}
    assert soko.Api().registry(registry).visibility == "restricted"
    with pytest.raises(PermissionDeniedError):
        soko.Api().registry(registry).delete()

    point_sdk_at(soko_server, linker, tmp_path=tmp_path / "l", monkeypatch=monkeypatch)
    again = soko.Api().artifact(f"local/{project}/clf:v0")
    assert again.link(f"{registry_project}/other", aliases=["candidate"]).version == "v0"

    point_sdk_at(soko_server, stranger, tmp_path=tmp_path / "s", monkeypatch=monkeypatch)
    with pytest.raises(PermissionDeniedError):
        soko.Api().artifact(f"{registry_project}/coll:latest")
    with pytest.raises(PermissionDeniedError):
        soko.Api().artifact(f"local/{project}/clf:v0").link(f"{registry_project}/coll")
    # Refused like a project named in a path: for the role it needs.
    with pytest.raises(PermissionDeniedError):
        soko.Api().registry(registry)
    assert registry not in {r.name for r in soko.Api().registries()}


def test_visibility_and_registry_roles_decide_who_reads_links_and_edits(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, team, elsewhere = _fresh("org"), _fresh("team"), _fresh("other")
    opened, closed = _fresh("open"), _fresh("closed")
    open_project, closed_project = f"wandb-registry-{opened}", f"wandb-registry-{closed}"
    with soko_server.client() as admin:
        assert admin.post("/organisations", json={"name": org}).status_code == 201
        moved = admin.put(f"/entities/{team}/organisation", json={"organisation": org})
        assert moved.status_code == 204, moved.text
    project = unique_project()
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "a", monkeypatch=monkeypatch
    )
    api = soko.Api(overrides={"entity": team})
    api.create_registry(opened, visibility="organization")
    api.create_registry(closed, visibility="restricted")
    source = _log(team, project, b"weights", tmp_path / "src")
    source.link(f"{open_project}/coll", aliases=["prod"])
    source.link(f"{closed_project}/coll", aliases=["prod"])

    # A member of the organisation: a role on one of its entities, none on a registry.
    member = soko_server.new_user(_fresh("member"), {(team, project): "writer"})
    # Granted roles on the restricted registry, by W&B's names: Viewer, Member, Admin.
    viewer = soko_server.new_user(_fresh("viewer"), {(org, closed_project): "viewer"})
    linker = soko_server.new_user(
        _fresh("linker"), {(org, closed_project): "member", (team, project): "viewer"}
    )
    owner = soko_server.new_user(_fresh("owner"), {(org, closed_project): "admin"})
    # A user of another organisation (the default one).
    outsider = soko_server.new_user(_fresh("outsider"), {(elsewhere, "*"): "admin"})

    def as_user(key: str, name: str) -> soko.Api:
        point_sdk_at(soko_server, key, tmp_path=tmp_path / name, monkeypatch=monkeypatch)
        return soko.Api(overrides={"entity": team})

    api = as_user(member, "member")
    assert api.artifact(f"{open_project}/coll:prod").source_artifact.id == source.id
    assert api.registry(opened).visibility == "organization"
    listed = {r.name for r in api.registries()}
    assert opened in listed and {"model", "dataset"} <= listed and closed not in listed
    with pytest.raises(PermissionDeniedError):
        api.artifact(f"{closed_project}/coll:prod")
    with pytest.raises(PermissionDeniedError):
        api.registry(closed)
    # Membership reads; linking, unlinking and editing need a role on the registry.
    with pytest.raises(PermissionDeniedError):
        api.artifact(f"{team}/{project}/clf:v0").link(f"{open_project}/other")
    with pytest.raises(PermissionDeniedError):
        api.artifact(f"{open_project}/coll:prod").unlink()
    registry = api.registry(opened)
    registry.description = "mine now"
    with pytest.raises(PermissionDeniedError):
        registry.save()

    api = as_user(viewer, "viewer")
    assert api.artifact(f"{closed_project}/coll:prod").is_link
    # A role on the organisation's entity makes a member: the open registry reads too.
    assert {opened, closed} <= {r.name for r in api.registries()}
    with pytest.raises(PermissionDeniedError):
        api.artifact(f"{closed_project}/coll:prod").unlink()

    api = as_user(linker, "linker")
    link = api.artifact(f"{team}/{project}/clf:v0").link(f"{closed_project}/other", aliases=["x"])
    assert (link.project, link.version, link.aliases) == (closed_project, "v0", ["latest", "x"])
    link.unlink()
    with pytest.raises(NotFoundError):
        api.artifact(f"{closed_project}/other:x")
    with pytest.raises(PermissionDeniedError):
        api.registry(closed).delete()

    api = as_user(outsider, "outsider")
    with pytest.raises(PermissionDeniedError):
        api.artifact(f"{org}/{open_project}/coll:prod")
    assert opened not in {r.name for r in api.registries(organization=org)}

    api = as_user(owner, "owner")
    registry = api.registry(closed)
    registry.visibility = "organization"
    registry.save()
    # From the next request on, every member reads it.
    api = as_user(member, "member-again")
    assert api.artifact(f"{closed_project}/coll:prod").source_artifact.id == source.id
    api = as_user(owner, "owner-again")
    api.registry(closed).delete()
    api = as_user(member, "member-last")
    with pytest.raises(NotFoundError):
        api.registry(closed)
