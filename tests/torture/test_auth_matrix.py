"""The auth boundary as a matrix: every route of the live server's OpenAPI schema, times every
caller (no key, a bad key, viewer, writer, project admin, server admin), times the caller's own
project and another project.

The rule (docs/server.md): a viewer reads, a writer writes, a project admin grants; a
server admin may do everything; no key or an unknown one is 401. A caller with no read
access to a project gets the same 404 ``not_found`` as for an id that does not exist, so
that ids and names of other projects leak nothing; a caller who may read but not do
something gets 403. Routes are read from ``/api/v1/openapi.json``: a route this table does
not classify fails the test, so a new route cannot go unchecked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from server_fixtures import SokoServer
from torture_manifests import entry, manifest_bytes

from soko.core.digests import Algorithm, Digest
from soko.wire.framing import frame_header

pytestmark = [pytest.mark.torture, pytest.mark.integration]

ENTITY = "team"
CALLERS = ["no key", "bad key", "viewer", "writer", "project admin", "server admin"]
SCOPES = ["own", "other"]
RANK = {"viewer": 1, "writer": 2, "project admin": 3}


@dataclass
class Project:
    name: str
    version_id: str = ""
    blob: str = ""
    manifest: str = ""
    run_id: str = ""


@dataclass
class Call:
    method: str
    path: str
    json: Any = None
    content: bytes | None = None
    params: dict[str, str] = field(default_factory=dict)
    ok: tuple[int, ...] = ()
    """Statuses other than 2xx that mean "allowed" (e.g. a folder store has no presigning)."""


@dataclass
class World:
    server: SokoServer
    admin: httpx.Client
    keys: dict[str, str | None]
    names: dict[str, str]
    projects: dict[str, Project]
    victim: str

    def fresh(self) -> str:
        return uuid.uuid4().hex[:12]

    def upload(self, project: str, data: bytes) -> str:
        digest = Digest.of_bytes(data, Algorithm.XXH128)
        answer = self.admin.put(
            f"/blobs/xxh128/{digest.hex}",
            content=data,
            params={"entity": ENTITY, "project": project},
        )
        assert answer.status_code == 200, answer.text
        return str(digest)

    def commit_body(self, project: str, data: bytes, **extra: Any) -> dict[str, Any]:
        self.upload(project, data)
        manifest = self.upload(project, manifest_bytes({"f.bin": entry(data)}))
        body = {"entity": ENTITY, "project": project, "name": "data", "type": "dataset"}
        return {**body, "manifest_blob": manifest, "algorithm": "XXH128", **extra}

    def commit(self, project: str, data: bytes) -> dict[str, Any]:
        answer = self.admin.post("/versions", json=self.commit_body(project, data))
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def pending(self, project: str) -> str:
        distributed_id = self.fresh()
        body = self.commit_body(project, b"part", distributed_id=distributed_id)
        body["name"] = "shards"
        answer = self.admin.post("/versions/upsert", json=body)
        assert answer.status_code == 200, answer.text
        return distributed_id

    def run(self, project: str) -> str:
        run_id = self.fresh()
        body = {"run_id": run_id, "entity": ENTITY, "project": project}
        assert self.admin.post("/runs", json=body).status_code == 200
        return run_id


def _project_of(world: World, scope: str) -> Project:
    return world.projects[scope]


Builder = Callable[[World, Project, str], Call]


def _v(p: Project) -> str:
    return f"/versions/{p.version_id}"


def _blob_path(p: Project) -> str:
    alg, _, hex_digest = p.blob.partition(":")
    return f"{_v(p)}/blobs/{alg}/{hex_digest}"


def _fresh_blob(w: World) -> bytes:
    return f"fresh {w.fresh()}".encode()


def _batch(w: World) -> bytes:
    data = _fresh_blob(w)
    return frame_header(Digest.of_bytes(data, Algorithm.XXH128), len(data)) + data


def _own_or_victim_key(w: World, p: Project, caller: str) -> str:
    """A key of the caller (own scope) or of someone else (other scope), made by the admin."""
    owner = w.names.get(caller, w.victim) if p is w.projects["own"] else w.victim
    made = w.admin.post(f"/users/{owner}/keys")
    assert made.status_code == 201, made.text
    key_id: str = made.json()["key_id"]
    return key_id


def _victim_role(w: World, p: Project) -> None:
    body = {"entity": ENTITY, "project": p.name, "role": "viewer"}
    assert w.admin.put(f"/users/{w.victim}/roles", json=body).status_code == 200


def _registry(w: World) -> str:
    """A fresh restricted registry, made by the admin: only roles granted on it reach it."""
    name = f"r{w.fresh()}"
    made = w.admin.post(
        "/registries", json={"name": name, "entity": ENTITY, "visibility": "restricted"}
    )
    assert made.status_code == 200, made.text
    return name


def _collection(w: World, p: Project) -> str:
    """A fresh collection of the project with one version, committed by the admin."""
    name = f"c{w.fresh()}"
    body = {**w.commit_body(p.name, _fresh_blob(w)), "name": name}
    assert w.admin.post("/versions", json=body).status_code == 200
    return name


def _automation(w: World, p: Project) -> str:
    """A fresh automation of the project, made by the admin (its URL is never called)."""
    made = w.admin.post(
        f"/projects/{ENTITY}/{p.name}/automations",
        json={"event": "alias_added", "url": "http://127.0.0.1:9/hook"},
    )
    assert made.status_code == 201, made.text
    automation_id: str = made.json()["id"]
    return automation_id


# rule, then how to make the request. Rules: public, authenticated, viewer, writer, admin
# (on the project), server-admin, self-or-admin, owner-or-admin.
ROUTES: dict[tuple[str, str], tuple[str, Builder]] = {
    ("GET", "/api/v1/health"): ("public", lambda w, p, c: Call("GET", "/health")),
    ("GET", "/api/v1/ready"): ("public", lambda w, p, c: Call("GET", "/ready")),
    ("GET", "/api/v1/whoami"): ("authenticated", lambda w, p, c: Call("GET", "/whoami")),
    ("GET", "/api/v1/projects"): ("authenticated", lambda w, p, c: Call("GET", "/projects")),
    ("GET", "/api/v1/users"): ("server-admin", lambda w, p, c: Call("GET", "/users")),
    ("GET", "/api/v1/users/{name}/keys"): (
        "self-or-admin",
        lambda w, p, c: Call(
            "GET",
            f"/users/{w.names.get(c, w.victim) if p is w.projects['own'] else w.victim}/keys",
        ),
    ),
    ("GET", "/api/v1/users/{name}/roles"): (
        "self-or-admin",
        lambda w, p, c: Call(
            "GET",
            f"/users/{w.names.get(c, w.victim) if p is w.projects['own'] else w.victim}/roles",
        ),
    ),
    # Enabling the victim again changes nothing in the world the other routes use.
    ("PATCH", "/api/v1/users/{name}"): (
        "server-admin",
        lambda w, p, c: Call("PATCH", f"/users/{w.victim}", json={"disabled": False}),
    ),
    # Server maintenance: a dry run of gc leaves the world as it is.
    ("POST", "/api/v1/admin/gc"): (
        "server-admin",
        lambda w, p, c: Call("POST", "/admin/gc", json={"dry_run": True}),
    ),
    ("POST", "/api/v1/admin/verify"): (
        "server-admin",
        lambda w, p, c: Call("POST", "/admin/verify"),
    ),
    ("GET", "/api/v1/admin/usage"): (
        "server-admin",
        lambda w, p, c: Call("GET", "/admin/usage"),
    ),
    ("POST", "/api/v1/users"): (
        "server-admin",
        lambda w, p, c: Call("POST", "/users", json={"name": f"u{w.fresh()}"}),
    ),
    ("POST", "/api/v1/users/{name}/keys"): (
        "self-or-admin",
        lambda w, p, c: Call(
            "POST",
            f"/users/{w.names.get(c, w.victim) if p is w.projects['own'] else w.victim}/keys",
        ),
    ),
    ("DELETE", "/api/v1/keys/{key_id}"): (
        "owner-or-admin",
        lambda w, p, c: Call("DELETE", f"/keys/{_own_or_victim_key(w, p, c)}"),
    ),
    ("PUT", "/api/v1/users/{name}/roles"): (
        "admin",
        lambda w, p, c: Call(
            "PUT",
            f"/users/{w.victim}/roles",
            json={"entity": ENTITY, "project": p.name, "role": "viewer"},
        ),
    ),
    ("DELETE", "/api/v1/users/{name}/roles/{entity}/{project}"): (
        "admin",
        lambda w, p, c: (
            _victim_role(w, p),
            Call("DELETE", f"/users/{w.victim}/roles/{ENTITY}/{p.name}"),
        )[1],
    ),
    # Uploads and the missing-blob question are asked for a project: writer role there.
    ("POST", "/api/v1/blobs/missing"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            "/blobs/missing",
            json={"entity": ENTITY, "project": p.name, "digests": [p.blob]},
        ),
    ),
    ("POST", "/api/v1/blobs/missing/raw"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            "/blobs/missing/raw",
            params={"entity": ENTITY, "project": p.name, "algorithm": "xxh128"},
            content=bytes.fromhex(p.blob.partition(":")[2]),
        ),
    ),
    ("GET", "/api/v1/projects/{entity}/{project}/collections/{name}/committed/{digest}"): (
        "writer",
        lambda w, p, c: Call(
            "GET", f"/projects/{ENTITY}/{p.name}/collections/data/committed/{'0' * 32}"
        ),
    ),
    ("POST", "/api/v1/blobs/batch"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            "/blobs/batch",
            content=_batch(w),
            params={"entity": ENTITY, "project": p.name},
        ),
    ),
    ("PUT", "/api/v1/blobs/{algorithm}/{hex_digest}"): (
        "writer",
        lambda w, p, c: (
            lambda data: Call(
                "PUT",
                f"/blobs/xxh128/{Digest.of_bytes(data, Algorithm.XXH128).hex}",
                content=data,
                params={"entity": ENTITY, "project": p.name},
            )
        )(_fresh_blob(w)),
    ),
    ("POST", "/api/v1/blobs/uploads"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            "/blobs/uploads",
            json={
                "entity": ENTITY,
                "project": p.name,
                "blobs": [{"digest": p.blob, "size": 5}],
            },
        ),
    ),
    ("POST", "/api/v1/blobs/uploads/{upload_id}/complete"): (
        "writer",
        # A folder store takes no presigned uploads: an allowed caller is told so (400).
        lambda w, p, c: Call(
            "POST",
            f"/blobs/uploads/{'0' * 32}/complete",
            json={"entity": ENTITY, "project": p.name, "digest": p.blob},
            ok=(400,),
        ),
    ),
    ("POST", "/api/v1/versions"): (
        "writer",
        lambda w, p, c: Call("POST", "/versions", json=w.commit_body(p.name, _fresh_blob(w))),
    ),
    ("POST", "/api/v1/versions/upsert"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            "/versions/upsert",
            json={
                **w.commit_body(p.name, _fresh_blob(w), distributed_id=w.fresh()),
                "name": "shards",
            },
        ),
    ),
    ("POST", "/api/v1/versions/finish"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            "/versions/finish",
            json={
                **w.commit_body(p.name, b"part", distributed_id=w.pending(p.name)),
                "name": "shards",
            },
        ),
    ),
    ("GET", "/api/v1/projects/{entity}/{project}/pending"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/projects/{ENTITY}/{p.name}/pending"),
    ),
    ("POST", "/api/v1/pending/abandon"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            "/pending/abandon",
            json={
                "entity": ENTITY,
                "project": p.name,
                "name": "shards",
                "distributed_id": w.pending(p.name),
            },
        ),
    ),
    ("GET", "/api/v1/versions/{version_id}"): ("viewer", lambda w, p, c: Call("GET", _v(p))),
    ("PATCH", "/api/v1/versions/{version_id}"): (
        "writer",
        lambda w, p, c: Call("PATCH", _v(p), json={"description": f"by {c}"}),
    ),
    ("DELETE", "/api/v1/versions/{version_id}"): (
        "writer",
        lambda w, p, c: Call("DELETE", f"/versions/{w.commit(p.name, _fresh_blob(w))['id']}"),
    ),
    ("POST", "/api/v1/versions/{version_id}/links"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            f"{_v(p)}/links",
            json={"entity": ENTITY, "project": p.name, "registry": "registry"},
        ),
    ),
    ("GET", "/api/v1/versions/{version_id}/links"): (
        "viewer",
        lambda w, p, c: Call("GET", f"{_v(p)}/links"),
    ),
    # Registries live in the organisation's entity: roles on the team's projects give none
    # on a restricted one, so only a server admin (or a role granted on it) may act. (A
    # registry visible to the organisation is read by its members: test_server_registries.)
    ("GET", "/api/v1/registries"): (
        "authenticated",
        lambda w, p, c: Call("GET", "/registries", params={"entity": ENTITY}),
    ),
    ("POST", "/api/v1/registries"): (
        "server-admin",
        lambda w, p, c: Call(
            "POST", "/registries", json={"name": f"r{w.fresh()}", "entity": ENTITY}
        ),
    ),
    ("GET", "/api/v1/registries/{name}"): (
        "server-admin",
        lambda w, p, c: Call("GET", f"/registries/{_registry(w)}", params={"entity": ENTITY}),
    ),
    ("PATCH", "/api/v1/registries/{name}"): (
        "server-admin",
        lambda w, p, c: Call(
            "PATCH",
            f"/registries/{_registry(w)}",
            params={"entity": ENTITY},
            json={"description": f"by {c}"},
        ),
    ),
    ("DELETE", "/api/v1/registries/{name}"): (
        "server-admin",
        lambda w, p, c: Call("DELETE", f"/registries/{_registry(w)}", params={"entity": ENTITY}),
    ),
    # Automations may call any URL with the project's events: managed by its writers.
    ("GET", "/api/v1/projects/{entity}/{project}/automations"): (
        "writer",
        lambda w, p, c: Call("GET", f"/projects/{ENTITY}/{p.name}/automations"),
    ),
    ("POST", "/api/v1/projects/{entity}/{project}/automations"): (
        "writer",
        lambda w, p, c: Call(
            "POST",
            f"/projects/{ENTITY}/{p.name}/automations",
            json={"event": "version_created", "url": "http://127.0.0.1:9/hook"},
        ),
    ),
    ("DELETE", "/api/v1/projects/{entity}/{project}/automations/{automation_id}"): (
        "writer",
        lambda w, p, c: Call(
            "DELETE", f"/projects/{ENTITY}/{p.name}/automations/{_automation(w, p)}"
        ),
    ),
    ("PATCH", "/api/v1/projects/{entity}/{project}/automations/{automation_id}"): (
        "writer",
        lambda w, p, c: Call(
            "PATCH",
            f"/projects/{ENTITY}/{p.name}/automations/{_automation(w, p)}",
            json={"enabled": False},
        ),
    ),
    ("GET", "/api/v1/projects/{entity}/{project}/automations/{automation_id}/deliveries"): (
        "writer",
        lambda w, p, c: Call(
            "GET", f"/projects/{ENTITY}/{p.name}/automations/{_automation(w, p)}/deliveries"
        ),
    ),
    ("GET", "/api/v1/organisations"): (
        "server-admin",
        lambda w, p, c: Call("GET", "/organisations"),
    ),
    ("POST", "/api/v1/organisations"): (
        "server-admin",
        lambda w, p, c: Call("POST", "/organisations", json={"name": f"o{w.fresh()}"}),
    ),
    ("PUT", "/api/v1/entities/{entity}/organisation"): (
        "server-admin",
        lambda w, p, c: Call(
            "PUT", f"/entities/e{w.fresh()}/organisation", json={"organisation": "local"}
        ),
    ),
    ("PATCH", "/api/v1/projects/{entity}/{project}/collections/{name}"): (
        "writer",
        lambda w, p, c: Call(
            "PATCH",
            f"/projects/{ENTITY}/{p.name}/collections/data",
            json={"description": f"by {c}"},
        ),
    ),
    ("DELETE", "/api/v1/projects/{entity}/{project}/collections/{name}"): (
        "writer",
        lambda w, p, c: Call(
            "DELETE", f"/projects/{ENTITY}/{p.name}/collections/{_collection(w, p)}"
        ),
    ),
    ("GET", "/api/v1/projects/{entity}/{project}/collections/{name}/versions/{selector}"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/projects/{ENTITY}/{p.name}/collections/data/versions/v0"),
    ),
    ("GET", "/api/v1/projects/{entity}/{project}/collections/{name}/versions"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/projects/{ENTITY}/{p.name}/collections/data/versions"),
    ),
    ("GET", "/api/v1/projects/{entity}/{project}/collections/{name}"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/projects/{ENTITY}/{p.name}/collections/data"),
    ),
    ("GET", "/api/v1/projects/{entity}/{project}/collections"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/projects/{ENTITY}/{p.name}/collections"),
    ),
    ("GET", "/api/v1/projects/{entity}/{project}/types"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/projects/{ENTITY}/{p.name}/types"),
    ),
    ("GET", "/api/v1/versions/{version_id}/manifest"): (
        "viewer",
        lambda w, p, c: Call("GET", f"{_v(p)}/manifest"),
    ),
    ("GET", "/api/v1/versions/{version_id}/manifest/index"): (
        "viewer",
        lambda w, p, c: Call("GET", f"{_v(p)}/manifest/index"),
    ),
    ("GET", "/api/v1/versions/{version_id}/files"): (
        "viewer",
        lambda w, p, c: Call("GET", f"{_v(p)}/files", params={"limit": "10"}),
    ),
    ("POST", "/api/v1/versions/{version_id}/blobs/plan"): (
        "viewer",
        lambda w, p, c: Call("POST", f"{_v(p)}/blobs/plan", json={"digests": [p.blob]}),
    ),
    ("POST", "/api/v1/versions/{version_id}/blobs/batch"): (
        "viewer",
        lambda w, p, c: Call("POST", f"{_v(p)}/blobs/batch", json={"digests": [p.blob]}),
    ),
    ("GET", "/api/v1/versions/{version_id}/blobs/{algorithm}/{hex_digest}"): (
        "viewer",
        lambda w, p, c: Call("GET", _blob_path(p)),
    ),
    ("POST", "/api/v1/runs"): (
        "writer",
        lambda w, p, c: Call(
            "POST", "/runs", json={"run_id": w.fresh(), "entity": ENTITY, "project": p.name}
        ),
    ),
    ("POST", "/api/v1/runs/{run_id}/finish"): (
        "writer",
        lambda w, p, c: Call("POST", f"/runs/{w.run(p.name)}/finish", json={"state": "finished"}),
    ),
    ("GET", "/api/v1/runs/{run_id}"): ("viewer", lambda w, p, c: Call("GET", f"/runs/{p.run_id}")),
    ("GET", "/api/v1/projects/{entity}/{project}/runs"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/projects/{ENTITY}/{p.name}/runs"),
    ),
    ("POST", "/api/v1/runs/{run_id}/uses"): (
        "writer",
        lambda w, p, c: Call("POST", f"/runs/{p.run_id}/uses", json={"version_id": p.version_id}),
    ),
    ("GET", "/api/v1/versions/{version_id}/runs"): (
        "viewer",
        lambda w, p, c: Call("GET", f"{_v(p)}/runs", params={"direction": "used"}),
    ),
    ("GET", "/api/v1/runs/{run_id}/versions"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/runs/{p.run_id}/versions", params={"direction": "used"}),
    ),
    ("POST", "/api/v1/runs/{run_id}/data"): (
        "writer",
        lambda w, p, c: Call(
            "POST", f"/runs/{p.run_id}/data", json={"summary": '{"loss": 1}', "history": []}
        ),
    ),
    ("GET", "/api/v1/runs/{run_id}/history"): (
        "viewer",
        lambda w, p, c: Call("GET", f"/runs/{p.run_id}/history"),
    ),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("auth-matrix")
    server = SokoServer(root, db=f"sqlite:///{root / 'meta.db'}", store=str(root / "blobs"))
    admin = server.client()
    try:
        own, other = Project("own"), Project("other")
        names = {"viewer": "ann", "writer": "bob", "project admin": "cat"}
        roles = {"viewer": "viewer", "writer": "writer", "project admin": "admin"}
        keys: dict[str, str | None] = {"no key": None, "bad key": "soko_nobody_bad"}
        for caller, name in names.items():
            keys[caller] = server.new_user(name, {(ENTITY, own.name): roles[caller]})
        made = admin.post("/users", json={"name": "root2", "admin": True})
        assert made.status_code == 201, made.text
        keys["server admin"] = admin.post("/users/root2/keys").json()["key"]
        names["server admin"] = "root2"
        victim = "victim"
        server.new_user(victim)
        world = World(server, admin, keys, names, {"own": own, "other": other}, victim)
        for project in (own, other):
            data = f"the bytes of {project.name}".encode()
            version = world.commit(project.name, data)
            project.version_id = version["id"]
            project.blob = str(Digest.of_bytes(data, Algorithm.XXH128))
            project.run_id = world.run(project.name)
            use = admin.post(f"/runs/{project.run_id}/uses", json={"version_id": version["id"]})
            assert use.status_code == 204, use.text
        yield world
    finally:
        admin.close()
        server.stop()


def expected(rule: str, caller: str, scope: str, route: str) -> str:
    """``allowed``, ``401``, ``403`` or ``404`` for *caller* on a resource of *scope* that
    *route* names: by an id (a version's, a run's), or by its project's name."""
    if rule == "public":
        return "allowed"
    if caller in ("no key", "bad key"):
        return "401"
    if caller == "server admin" or rule == "authenticated":
        return "allowed"
    if rule == "server-admin":
        return "403"
    if rule in ("self-or-admin", "owner-or-admin"):
        return "allowed" if scope == "own" else "403|404"
    if scope == "other":
        # Without read access, an id is answered as if it did not exist (a real one and a
        # made-up one alike); a project named in the path is refused for the role it needs,
        # which says nothing of what the project holds.
        return "404" if "{version_id}" in route or "{run_id}" in route else "403"
    need = {"viewer": 1, "writer": 2, "admin": 3}[rule]
    return "allowed" if RANK[caller] >= need else "403"


def outcome(answer: httpx.Response, call: Call) -> str:
    if answer.is_success or answer.status_code in call.ok:
        return "allowed"
    return str(answer.status_code)


def test_every_route_is_classified(world: World) -> None:
    schema = httpx.get(f"{world.server.url}/api/v1/openapi.json").json()
    routes = {(m.upper(), path) for path, item in schema["paths"].items() for m in item}
    unclassified = sorted(routes - set(ROUTES))
    assert not unclassified, f"routes with no rule in the auth matrix: {unclassified}"
    stale = sorted(set(ROUTES) - routes)
    assert not stale, f"the auth matrix names routes the server does not have: {stale}"


def test_a_nonexistent_id_is_404_not_found(world: World) -> None:
    for path in (f"/versions/{'f' * 32}", f"/runs/{'f' * 12}"):
        answer = world.admin.get(path)
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("caller", CALLERS)
def test_auth_matrix(world: World, caller: str, scope: str) -> None:
    wrong = []
    key = world.keys[caller]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=f"{world.server.url}/api/v1", headers=headers, timeout=60.0) as http:
        for (method, route), (rule, build) in sorted(ROUTES.items()):
            call = build(world, _project_of(world, scope), caller)
            answer = http.request(
                call.method, call.path, json=call.json, content=call.content, params=call.params
            )
            want, got = expected(rule, caller, scope, route), outcome(answer, call)
            if got not in want.split("|"):
                wrong.append(f"{method} {route}: {got}, expected {want} ({answer.text[:120]})")
            elif got in ("403", "404"):
                code = answer.json()["error"]["code"]
                if code != {"403": "permission_denied", "404": "not_found"}[got]:
                    wrong.append(f"{method} {route}: {got} with code {code}")
    assert not wrong, f"{caller} on the {scope} project:\n" + "\n".join(wrong)


@pytest.mark.parametrize("caller", ["viewer", "writer", "project admin"])
def test_no_listing_shows_another_project(world: World, caller: str) -> None:
    with world.server.client(world.keys[caller]) as http:
        listed = http.get("/projects").json()
        text = str(listed)
        assert "'own'" in text and "'other'" not in text, listed
