"""Bad input on soko server's W&B endpoints: malformed GraphQL, unknown fields and
operations, wrong digests, tampered, expired, reused or misused signed URLs, manifests
that do not match. Each gets a 4xx with a message, never a 500, and stores nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema
from server_fixtures import SokoServer, unique_project

from soko.core.digests import Algorithm, version_digest
from soko.server.wandb.signing import Signer

pytestmark = pytest.mark.integration

SIGNING_KEY = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SokoServer]:
    root = tmp_path_factory.mktemp("wandb-wire")
    found = SokoServer(
        root,
        db=f"sqlite:///{root / 'meta.db'}",
        store=str(root / "blobs"),
        env={"SOKO_URL_SIGNING_KEY": SIGNING_KEY},
    )
    try:
        yield found
    finally:
        found.stop()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"api:{key}".encode()).decode()}


def _gql(server: SokoServer, query: str, **variables: Any) -> httpx.Response:
    return httpx.post(
        f"{server.url}/graphql",
        json={"query": query, "variables": variables},
        headers=_auth(server.admin_key),
        timeout=30,
    )


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


CREATE = """mutation($input: CreateArtifactInput!) {
  createArtifact(input: $input) { artifact { id state } } }"""
FILES = """mutation($input: CreateArtifactFilesInput!) {
  createArtifactFiles(input: $input) { files { edges { node { name uploadUrl } } } } }"""
MANIFEST = """mutation($id: ID!, $digest: String!) {
  createArtifactManifest(input: {artifactID: $id, name: "wandb_manifest.json", digest: $digest,
    entityName: "admin", projectName: "p", runName: "r", type: FULL, includeUpload: true}) {
    artifactManifest { id file { uploadUrl } } } }"""
COMMIT = """mutation($id: ID!) {
  commitArtifact(input: {artifactID: $id}) { artifact { id state } } }"""
LATEST = """query($p: String!) { project(name: $p, entityName: "admin") {
  artifactCollectionMembership(name: "ds:latest") { id } } }"""


def _pending(server: SokoServer, project: str, files: dict[str, bytes]) -> tuple[str, str]:
    """A pending artifact of *files* and its declared digest."""
    digest = version_digest(((p, _md5(d)) for p, d in files.items()), Algorithm.MD5)
    created = _gql(
        server,
        CREATE,
        input={
            "entityName": "admin",
            "projectName": project,
            "artifactTypeName": "dataset",
            "artifactCollectionName": "ds",
            "digest": digest,
            "digestAlgorithm": "MANIFEST_MD5",
            "clientID": secrets.token_hex(8),
        },
    )
    assert created.status_code == 200, created.text
    artifact = created.json()["data"]["createArtifact"]["artifact"]
    assert artifact["state"] == "PENDING"
    return artifact["id"], digest


def _upload_urls(server: SokoServer, artifact_id: str, files: dict[str, bytes]) -> dict[str, Any]:
    answer = _gql(
        server,
        FILES,
        input={
            "artifactFiles": [
                {"artifactID": artifact_id, "name": p, "md5": _md5(d)} for p, d in files.items()
            ],
            "storageLayout": "V2",
        },
    )
    assert answer.status_code == 200, answer.text
    edges = answer.json()["data"]["createArtifactFiles"]["files"]["edges"]
    return {e["node"]["name"]: e["node"]["uploadUrl"] for e in edges}


def _committed(server: SokoServer, project: str) -> bool:
    answer = _gql(server, LATEST, p=project)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["project"]["artifactCollectionMembership"] is not None


def _stored(server: SokoServer, data: bytes) -> bool:
    blobs = Path(server.log_path.parent / "blobs")
    hex_digest = hashlib.md5(data).hexdigest()
    return any(blobs.rglob(hex_digest))


_DEEP = (
    '{ project(name: "p") { '
    + 'artifactCollection(name: "c") { project { ' * 12
    + "id"
    + " } }" * 12
    + " } }"
)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "not valid JSON"),
        (b'{"query": "{ viewer { "}', "Syntax Error"),
        (b'{"query": "{ noSuchField }"}', "Cannot query field"),
        (b'{"query": "query A { viewer { id } }", "operationName": "B"}', "Unknown operation"),
        (b'{"query": "mutation { commitArtifact(input: {}) { artifact { id } } }"}', "artifactID"),
        (b'{"query": "{ viewer { id } }", "variables": [1]}', "variables"),
        (b"[1, 2]", "query"),
        (b'{"query": "{ artifact(id: \\"bm9wZQ==\\") { id } }"}', "Not an id"),
        (json.dumps({"query": _DEEP}).encode(), "fields deep"),
    ],
)
def test_malformed_graphql_gets_4xx(server: SokoServer, body: bytes, needle: str) -> None:
    answer = httpx.post(
        f"{server.url}/graphql",
        content=body,
        headers={**_auth(server.admin_key), "Content-Type": "application/json"},
        timeout=30,
    )
    assert 400 <= answer.status_code < 500, answer.text
    assert needle in answer.text


def test_an_oversize_graphql_body_is_413(server: SokoServer) -> None:
    # Over the server's 16 MiB limit for JSON bodies: refused before it is parsed.
    files = [{"artifactID": "x", "name": "n" * 1000, "md5": "m"}] * 17_000
    body = json.dumps({"query": FILES, "variables": {"input": {"artifactFiles": files}}})
    answer = httpx.post(
        f"{server.url}/graphql",
        content=body.encode(),
        headers={**_auth(server.admin_key), "Content-Type": "application/json"},
        timeout=60,
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "payload_too_large"


def test_graphql_needs_a_valid_key(server: SokoServer) -> None:
    query = {"query": "{ viewer { id } }"}
    assert httpx.post(f"{server.url}/graphql", json=query).status_code == 401
    wrong = httpx.post(f"{server.url}/graphql", json=query, headers=_auth("soko_nope_nope"))
    assert wrong.status_code == 401
    garbled = httpx.post(
        f"{server.url}/graphql", json=query, headers={"Authorization": "Basic %%%"}
    )
    assert garbled.status_code == 401


def test_wrong_bytes_are_refused_and_not_stored(server: SokoServer) -> None:
    project = unique_project("bad")
    good = secrets.token_bytes(64)
    artifact_id, _ = _pending(server, project, {"f.bin": good})
    url = _upload_urls(server, artifact_id, {"f.bin": good})["f.bin"]
    evil = secrets.token_bytes(64)
    refused = httpx.put(url, content=evil)
    assert refused.status_code == 422, refused.text
    assert not _stored(server, good) and not _stored(server, evil)
    # Nothing was stored, so the same URL takes the right bytes once, and only once.
    assert httpx.put(url, content=good).status_code == 200
    assert _stored(server, good)
    reused = httpx.put(url, content=good)
    assert reused.status_code == 403 and "used already" in reused.text
    # Stored for the project now: no URL is handed out for it again.
    assert _upload_urls(server, artifact_id, {"f.bin": good}) == {"f.bin": None}


def test_tampered_expired_and_misused_urls_are_refused(server: SokoServer) -> None:
    project = unique_project("url")
    data = secrets.token_bytes(32)
    artifact_id, _ = _pending(server, project, {"f.bin": data})
    url = _upload_urls(server, artifact_id, {"f.bin": data})["f.bin"]
    token = url.rsplit("/", 1)[1]
    payload, mac = token.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    assert httpx.put(f"{server.url}/wandb/uploads/{flipped}.{mac}", content=data).status_code == 403
    signer = Signer(SIGNING_KEY.encode())
    hex_md5 = hashlib.md5(data).hexdigest()
    subject = {"d": f"md5:{hex_md5}", "e": "admin", "p": project}
    expired = signer.sign("put", subject, expires_in=-5)
    answer = httpx.put(f"{server.url}/wandb/uploads/{expired}", content=data)
    assert answer.status_code == 403 and "expired" in answer.text
    as_download = signer.sign("get", subject, expires_in=60)
    assert httpx.put(f"{server.url}/wandb/uploads/{as_download}", content=data).status_code == 403
    assert httpx.get(f"{server.url}/wandb/blobs/{token}/f.bin").status_code == 403
    assert not _stored(server, data)


def test_a_manifest_that_does_not_match_commits_nothing(server: SokoServer) -> None:
    project = unique_project("man")
    files = {"a.txt": b"a" * 10, "b.txt": b"b" * 20}
    artifact_id, digest = _pending(server, project, files)
    for path, url in _upload_urls(server, artifact_id, files).items():
        assert httpx.put(url, content=files[path]).status_code == 200
    # Committing before the manifest came is refused.
    early = _gql(server, COMMIT, id=artifact_id)
    assert early.status_code == 400 and "Upload the manifest first" in early.text
    made = _gql(server, MANIFEST, id=artifact_id, digest=digest)
    url = made.json()["data"]["createArtifactManifest"]["artifactManifest"]["file"]["uploadUrl"]
    assert httpx.put(url, content=b"{not json").status_code == 400
    other = {"a.txt": {"digest": _md5(files["a.txt"]), "size": 10}}
    wrong = {"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": other}
    refused = httpx.put(url, content=json.dumps(wrong))
    assert refused.status_code == 400 and digest in refused.text
    stranger = {
        **wrong,
        "contents": {
            "a.txt": {"digest": _md5(files["a.txt"]), "size": 10},
            "b.txt": {"digest": _md5(b"never uploaded"), "size": 14},
        },
    }
    assert httpx.put(url, content=json.dumps(stranger)).status_code in (400, 409)
    assert _gql(server, COMMIT, id=artifact_id).status_code == 400
    assert not _committed(server, project)
    # The right manifest commits.
    right = {
        **wrong,
        "contents": {p: {"digest": _md5(d), "size": len(d)} for p, d in files.items()},
    }
    assert httpx.put(url, content=json.dumps(right)).status_code == 200
    committed = _gql(server, COMMIT, id=artifact_id)
    assert committed.status_code == 200, committed.text
    assert committed.json()["data"]["commitArtifact"]["artifact"]["state"] == "COMMITTED"
    assert _committed(server, project)


def test_distributed_artifacts_and_stray_manifest_updates_are_refused(
    server: SokoServer,
) -> None:
    project = unique_project("dist")
    refused = _gql(
        server,
        CREATE,
        input={
            "entityName": "admin",
            "projectName": project,
            "artifactTypeName": "dataset",
            "artifactCollectionName": "ds",
            "digest": "0" * 32,
            "distributedID": "shard-run",
        },
    )
    assert refused.status_code == 400 and "soko's own SDK" in refused.text
    assert not _committed(server, project)
    artifact_id, digest = _pending(server, project, {"a.txt": b"a"})
    made = _gql(server, MANIFEST, id=artifact_id, digest="")
    manifest_id = made.json()["data"]["createArtifactManifest"]["artifactManifest"]["id"]
    update = """mutation($id: ID!, $digest: String) { updateArtifactManifest(
      input: {artifactManifestID: $id, digest: $digest}) { artifactManifest { id } } }"""
    stray = _gql(server, update, id=manifest_id, digest=digest)
    assert stray.status_code == 400 and "incremental" in stray.text


def test_a_viewer_gets_403_from_graphql(server: SokoServer) -> None:
    project = unique_project("vw")
    key = server.new_user(f"v-{secrets.token_hex(3)}", {("admin", project): "viewer"})
    answer = httpx.post(
        f"{server.url}/graphql",
        json={
            "query": CREATE,
            "variables": {
                "input": {
                    "entityName": "admin",
                    "projectName": project,
                    "artifactTypeName": "dataset",
                    "artifactCollectionName": "ds",
                    "digest": "0" * 32,
                }
            },
        },
        headers=_auth(key),
    )
    assert answer.status_code == 403, answer.text
    assert "writer role" in answer.text
    assert not _committed(server, project)


def test_downloads_honour_range(server: SokoServer) -> None:
    project = unique_project("rng")
    data = secrets.token_bytes(300_000)
    artifact_id, _ = _pending(server, project, {"big.bin": data})
    url = _upload_urls(server, artifact_id, {"big.bin": data})["big.bin"]
    assert httpx.put(url, content=data).status_code == 200
    token = Signer(SIGNING_KEY.encode()).sign(
        "get", {"d": f"md5:{hashlib.md5(data).hexdigest()}"}, expires_in=60
    )
    whole = httpx.get(f"{server.url}/wandb/blobs/{token}/big.bin")
    assert whole.status_code == 200 and whole.content == data
    part = httpx.get(f"{server.url}/wandb/blobs/{token}/big.bin", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]


FILE_PAGE = """query($p: String!, $cursor: String, $first: Int) {
  project(name: $p, entityName: "admin") { artifactCollection(name: "ds") {
    artifactMembership(aliasName: "latest") { files(after: $cursor, first: $first) {
      pageInfo { endCursor hasNextPage } edges { node { name directUrl } } } } } } }"""


def test_files_come_in_pages_with_working_urls(server: SokoServer) -> None:
    project = unique_project("pg")
    files = {f"d/f{i}.txt": f"content {i}".encode() for i in range(7)}
    artifact_id, digest = _pending(server, project, files)
    for path, url in _upload_urls(server, artifact_id, files).items():
        assert httpx.put(url, content=files[path]).status_code == 200
    made = _gql(server, MANIFEST, id=artifact_id, digest=digest)
    url = made.json()["data"]["createArtifactManifest"]["artifactManifest"]["file"]["uploadUrl"]
    contents = {p: {"digest": _md5(d), "size": len(d)} for p, d in files.items()}
    manifest = {"version": 1, "storagePolicy": "wandb-storage-policy-v1", "contents": contents}
    assert httpx.put(url, content=json.dumps(manifest)).status_code == 200
    assert _gql(server, COMMIT, id=artifact_id).status_code == 200
    seen: dict[str, bytes] = {}
    cursor = None
    pages = 0
    while True:
        answer = _gql(server, FILE_PAGE, p=project, cursor=cursor, first=3)
        assert answer.status_code == 200, answer.text
        page = answer.json()["data"]["project"]["artifactCollection"]["artifactMembership"]
        for edge in page["files"]["edges"]:
            seen[edge["node"]["name"]] = httpx.get(edge["node"]["directUrl"]).content
        pages += 1
        if not page["files"]["pageInfo"]["hasNextPage"]:
            break
        cursor = page["files"]["pageInfo"]["endCursor"]
    assert pages == 3
    assert seen == files


_SCALARS = {
    "JSONString": st.sampled_from(["{}", '{"a": 1}', "[1]", "not json", ""]).map(
        lambda text: graphql.StringValueNode(value=text)
    ),
    "JSON": st.just(graphql.StringValueNode(value="{}")),
    "DateTime": st.just(graphql.StringValueNode(value="2026-01-01T00:00:00Z")),
    "Int64": st.integers(-(2**40), 2**40).map(lambda n: graphql.IntValueNode(value=str(n))),
}


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_generated_queries_and_mutations_never_get_a_500(
    server: SokoServer, data: st.DataObject
) -> None:
    schema_text = resources.files("soko.server.wandb").joinpath("schema.graphql").read_text("utf-8")
    query = data.draw(from_schema(schema_text, custom_scalars=_SCALARS))
    answer = httpx.post(
        f"{server.url}/graphql",
        json={"query": query},
        headers=_auth(server.admin_key),
        timeout=60,
    )
    assert answer.status_code < 500, (query, answer.text)
