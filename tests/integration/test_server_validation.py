"""Bad input gets a 4xx naming the problem, the same on SQLite and on PostgreSQL.

PostgreSQL refuses NUL in text and values wider than a column or an integer type, where
SQLite stores them; soko refuses them itself, before the database, so that neither answers
500 and both accept exactly the same input. Times carry their UTC offset on both.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import xxhash
from server_fixtures import SokoServer, server_on

from soko.core.digests import Algorithm
from soko.core.manifest import Manifest
from soko.wire.framing import MEDIA_TYPE

pytestmark = pytest.mark.integration

NUL = "\x00"


@dataclass
class Target:
    """A server with a project holding a version ``n:v0`` and a run ``run0``."""

    server: SokoServer
    project: str
    version_id: str
    commit: dict[str, Any]

    def client(self) -> httpx.Client:
        # A fresh connection per client: a server that failed with a 500 drops its connection.
        return self.server.client()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    with server_on(request.param, tmp_path_factory.mktemp(f"bad-{request.param}")) as server:
        raw = Manifest.of([], Algorithm.MD5).to_bytes()
        project = f"p-{uuid.uuid4().hex[:8]}"
        commit = {
            "entity": "e",
            "project": project,
            "name": "n",
            "type": "dataset",
            "manifest_blob": f"xxh128:{xxhash.xxh128(raw).hexdigest()}",
            "algorithm": "md5",
        }
        with server.client() as api:
            uploaded = api.put(
                f"/blobs/{commit['manifest_blob'].replace(':', '/')}",
                content=raw,
                params={"entity": "e", "project": project},
            )
            assert uploaded.status_code == 200, uploaded.text
            committed = api.post("/versions", json=commit)
            assert committed.status_code == 200, committed.text
            started = api.post("/runs", json={"run_id": "run0", "entity": "e", "project": project})
            assert started.status_code == 200, started.text
        yield Target(server, project, committed.json()["id"], commit)


def _refused(answer: httpx.Response, *, mentions: str) -> None:
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    error = answer.json()["error"]
    assert error["code"] == "validation_error", error
    assert mentions in error["message"], error


# ----- numbers too large for the database ------------------------------------------------


@pytest.mark.parametrize("selector", ["v99999999999999999999", "v2147483648"])
def test_a_version_number_beyond_the_database_s_range_is_not_found(
    target: Target, selector: str
) -> None:
    with target.client() as api:
        answer = api.get(f"/projects/e/{target.project}/collections/n/versions/{selector}")
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "not_found"
        assert api.get(f"/projects/e/{target.project}/collections/n/versions/v0").is_success


@pytest.mark.parametrize("ttl", [10**30, 2**63, -5, 0])
def test_a_ttl_out_of_range_is_refused_by_commit_and_update(target: Target, ttl: Any) -> None:
    with target.client() as api:
        _refused(api.post("/versions", json={**target.commit, "ttl_seconds": ttl}), mentions="ttl")
        changed = api.patch(f"/versions/{target.version_id}", json={"ttl_seconds": ttl})
        _refused(changed, mentions="ttl_seconds")
        assert api.get(f"/versions/{target.version_id}").json()["ttl_seconds"] is None


# ----- NUL, control characters and over-long text -----------------------------------------


def _run(**fields: Any) -> dict[str, Any]:
    return {"run_id": f"r-{uuid.uuid4().hex[:8]}", "entity": "e", "project": "runs", **fields}


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        ({"run_id": f"r{NUL}"}, "run_id"),
        ({"name": f"n{NUL}"}, "name"),
        ({"name": "n" * 257}, "at most 256"),
        ({"job_type": "j" * 129}, "at most 128"),
        ({"group": "g" * 257}, "at most 256"),
        ({"job_type": f"j{NUL}"}, "job_type"),
        ({"group": f"g{NUL}"}, "group"),
        ({"config": {"lr": f"0.1{NUL}"}}, "config"),
        ({"config": {f"k{NUL}": 1}}, "config"),
        ({"entity": f"e{NUL}"}, "entity"),
        ({"project": "tab\there"}, "project"),
    ],
)
def test_bad_run_fields_are_refused(target: Target, fields: dict[str, Any], mentions: str) -> None:
    body = _run(**fields)
    with target.client() as api:
        _refused(api.post("/runs", json=body), mentions=mentions)
        run_id = quote(body["run_id"], safe="")
        assert api.get(f"/runs/{run_id}").status_code in (404, 422)  # nothing was stored


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        ({"description": f"d{NUL}"}, "description"),
        ({"metadata": {"k": f"v{NUL}"}}, "metadata"),
        ({"metadata": {f"k{NUL}": "v"}}, "metadata"),
        ({"aliases": [f"a{NUL}"]}, "aliases"),
        ({"tags": ["t" * 257]}, "at most 256"),
        ({"aliases": [f"a{i}" for i in range(101)]}, "aliases"),
        ({"tags": [f"t{i}" for i in range(101)]}, "tags"),
        ({"entity": f"e{NUL}"}, "entity"),
        ({"project": f"p{NUL}"}, "project"),
        ({"type": f"t{NUL}"}, "type"),
        ({"run_id": f"r{NUL}"}, "run_id"),
    ],
)
def test_bad_commit_fields_are_refused(
    target: Target, fields: dict[str, Any], mentions: str
) -> None:
    with target.client() as api:
        _refused(api.post("/versions", json={**target.commit, **fields}), mentions=mentions)
        upsert = {**target.commit, **fields, "distributed_id": "d"}
        _refused(api.post("/versions/upsert", json=upsert), mentions=mentions)


@pytest.mark.parametrize(
    ("change", "mentions"),
    [
        ({"description": f"d{NUL}"}, "description"),
        ({"metadata": {"k": NUL}}, "metadata"),
        ({"aliases_to_set": [f"a{NUL}"]}, "aliases_to_set"),
        ({"tags_to_set": ["t" * 257]}, "at most 256"),
        ({"aliases_to_set": [f"a{i}" for i in range(101)]}, "aliases_to_set"),
        ({"tags_to_set": [f"t{i}" for i in range(101)]}, "tags_to_set"),
    ],
)
def test_bad_version_changes_are_refused(
    target: Target, change: dict[str, Any], mentions: str
) -> None:
    with target.client() as api:
        _refused(api.patch(f"/versions/{target.version_id}", json=change), mentions=mentions)
        kept = api.get(f"/versions/{target.version_id}").json()
        assert kept["description"] is None and kept["metadata"] == {} and kept["tags"] == []


def _nested(depth: int) -> str:
    """JSON text of an object whose value nests arrays: *depth* levels in all."""
    return '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("depth", [65, 500, 5000])
def test_deeply_nested_config_and_metadata_are_refused(target: Target, depth: int) -> None:
    # Walked recursively, such input exhausted the stack: a 500 instead of a 4xx.
    nested = _nested(depth)
    run = json.dumps(_run())[:-1] + ', "config": ' + nested + "}"
    commit = json.dumps(target.commit)[:-1] + ', "metadata": ' + nested + "}"
    change = '{"metadata": ' + nested + "}"
    json_type = {"Content-Type": "application/json"}
    with target.client() as api:
        answers = [
            api.post("/runs", content=run, headers=json_type),
            api.post("/versions", content=commit, headers=json_type),
            api.patch(f"/versions/{target.version_id}", content=change, headers=json_type),
        ]
        kept = api.get(f"/versions/{target.version_id}").json()
        fine = api.post("/runs", json=_run(config=json.loads(_nested(64))))
    for answer in answers:
        assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
        assert answer.json()["error"]["code"] == "validation_error", answer.text
    assert kept["metadata"] == {}
    assert fine.status_code == 200, fine.text


def test_a_link_with_more_than_100_aliases_is_refused(target: Target) -> None:
    link = {"entity": "e", "project": target.project, "registry": "reg"}
    with target.client() as api:
        many = {**link, "aliases": [f"a{i}" for i in range(101)]}
        _refused(api.post(f"/versions/{target.version_id}/links", json=many), mentions="aliases")
        assert api.get(f"/projects/e/{target.project}/collections/reg").status_code == 404


def test_nul_in_ids_of_uses_and_abandons_is_refused(target: Target) -> None:
    with target.client() as api:
        used = api.post("/runs/run0/uses", json={"version_id": f"v{NUL}"})
        _refused(used, mentions="version_id")
        abandon = {"entity": "e", "project": target.project, "name": "n"}
        _refused(
            api.post("/pending/abandon", json={**abandon, "distributed_id": f"d{NUL}"}),
            mentions="distributed_id",
        )
        upsert = {**target.commit, "distributed_id": f"d{NUL}"}
        _refused(api.post("/versions/upsert", json=upsert), mentions="distributed_id")


@pytest.mark.parametrize(
    ("path", "params", "mentions"),
    [
        ("/projects/e%00/p/runs", {}, "entity"),
        ("/projects/e/p%00/collections", {}, "project"),
        ("/projects/e/p/collections", {"type": NUL}, "type"),
        ("/projects", {"entity": NUL}, "entity"),
        ("/projects/e/p/pending", {"name": NUL}, "name"),
        ("/runs/a%00b", {}, "run_id"),
        ("/runs/a%00b/versions", {"direction": "used"}, "run_id"),
        ("/versions/a%00", {}, "version_id"),
        ("/versions/a%00/runs", {"direction": "used"}, "version_id"),
        ("/projects/e/p/collections/n/versions/a%00b", {}, "a\\x00b"),
    ],
)
def test_nul_in_paths_and_queries_is_refused(
    target: Target, path: str, params: dict[str, str], mentions: str
) -> None:
    with target.client() as api:
        _refused(api.get(path, params=params), mentions=mentions)


def test_nul_in_users_keys_and_roles_is_refused(target: Target) -> None:
    role = {"entity": f"e{NUL}", "project": "p", "role": "viewer"}
    with target.client() as api:
        _refused(api.put("/users/admin/roles", json=role), mentions="entity")
        _refused(api.delete("/users/admin/roles/e%00/p"), mentions="entity")
        _refused(api.delete("/keys/k%00"), mentions="key_id")
        _refused(api.post("/users/a%00/keys"), mentions="name")


# ----- times and the schema -------------------------------------------------------------


def _utc_times(document: Any) -> list[datetime]:
    if isinstance(document, dict):
        return [t for key, value in document.items() for t in _utc_times_of(key, value)]
    if isinstance(document, list):
        return [t for item in document for t in _utc_times(item)]
    return []


def _utc_times_of(key: str, value: Any) -> list[datetime]:
    if key.endswith("_at") and isinstance(value, str):
        return [datetime.fromisoformat(value)]
    return _utc_times(value)


def test_every_time_carries_its_utc_offset(target: Target) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    with target.client() as api:
        answers = [
            api.post("/users", json={"name": user}),
            api.get("/projects"),
            api.get(f"/projects/e/{target.project}/collections"),
            api.get(f"/projects/e/{target.project}/collections/n/versions"),
            api.get(f"/projects/e/{target.project}/runs"),
            api.get(f"/versions/{target.version_id}"),
        ]
    times = [t for answer in answers for t in _utc_times(answer.raise_for_status().json())]
    assert len(times) >= 8
    assert all(t.utcoffset() is not None and t.utcoffset().total_seconds() == 0 for t in times)


def test_the_schema_declares_errors_and_binary_bodies(target: Target) -> None:
    with target.client() as api:
        paths = api.get("/openapi.json").json()["paths"]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    resolve = paths["/api/v1/projects/{entity}/{project}/collections/{name}/versions/{selector}"]
    for status in ("400", "401", "403", "404", "413", "422", "500"):
        assert resolve["get"]["responses"][status]["content"] == error
    commit = paths["/api/v1/versions"]["post"]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "422", "500"} <= set(commit)
    assert set(paths["/api/v1/health"]["get"]["responses"]) == {"200", "413", "500"}
    binary = {"schema": {"type": "string", "format": "binary"}}
    assert paths["/api/v1/blobs/batch"]["post"]["requestBody"]["content"] == {MEDIA_TYPE: binary}
    put = paths["/api/v1/blobs/{algorithm}/{hex_digest}"]["put"]
    assert put["requestBody"]["content"] == {"application/octet-stream": binary}
    assert "413" not in put["responses"]  # a single blob streams to the store, unlimited
    batch = paths["/api/v1/versions/{version_id}/blobs/batch"]["post"]["responses"]["200"]
    assert batch["content"] == {MEDIA_TYPE: binary}
    blob = paths["/api/v1/versions/{version_id}/blobs/{algorithm}/{hex_digest}"]["get"]
    assert blob["responses"]["200"]["content"] == {"application/octet-stream": binary}
