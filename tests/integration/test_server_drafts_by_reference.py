"""A new draft of a large version through a server: the client reads the base's index and
slices, and its log sends the change alone (``base_version``, ``removed``, the change as the
manifest blob); the server splices the new manifest and checks the change's blobs only.

What the conformance cases cannot see: what goes over the wire, and what the server
refuses of a body sent by reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import server_fixtures
from server_fixtures import ServerEnv, SokoServer, unique_project

import soko
from soko.client.http import HttpBackend
from soko.client.http_session import ApiSession
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, Manifest
from soko.core.manifest_index import ManifestIndex
from soko.errors import NotFoundError
from soko.wire.framing import MEDIA_TYPE, frame_header

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
server_env = server_fixtures.server_env

XXH = Algorithm.XXH128
_FILES = {f"d{i % 4}/f{i:03}.txt": f"file {i}" for i in range(40)}


@pytest.fixture(autouse=True)
def by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("soko.sdk.artifact.BASE_BY_REFERENCE_AT", 1)


def _log_base(root: Path, project: str) -> soko.Artifact:
    for path, text in _FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    with soko.init(project=project) as run:
        artifact = soko.Artifact("data", "dataset")
        artifact.add_dir(str(root))
        run.log_artifact(artifact)
    return soko.Api().artifact(f"local/{project}/data:v0")


def test_the_log_uploads_only_the_change(
    server_env: ServerEnv,
    soko_server: SokoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = unique_project("ref")
    base = _log_base(tmp_path / "data", project)
    sent: list[int] = []
    put_manifest = HttpBackend._put_manifest

    def recording(self: HttpBackend, manifest: Manifest, **owner: str) -> str:
        sent.append(len(manifest))
        return put_manifest(self, manifest, **owner)

    monkeypatch.setattr(HttpBackend, "_put_manifest", recording)
    (tmp_path / "new.txt").write_text("new")
    draft = base.new_draft()
    draft.add_file(str(tmp_path / "new.txt"), name="e/new.txt")
    draft.remove("d3")
    with soko.init(project=project) as run:
        run.log_artifact(draft)
    assert sent == [1]  # the one entry added; the base's 40 stay on the server
    v1 = soko.Api().artifact(f"local/{project}/data:v1")
    expected = {k for k in _FILES if not k.startswith("d3/")} | {"e/new.txt"}
    assert v1.digest == draft.digest and {e.path for e in v1.manifest} == expected
    # The manifest the server spliced is the project's, as an uploaded one: the same
    # content logged again whole does not upload it.
    assert v1._record is not None and v1._record.manifest_blob is not None
    with soko_server.client() as api:
        answer = api.post(
            "/blobs/missing",
            json={
                "entity": "local",
                "project": project,
                "digests": [v1._record.manifest_blob],
            },
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["missing"] == []


def test_the_index_route_gives_the_manifest_index(
    server_env: ServerEnv, soko_server: SokoServer, tmp_path: Path
) -> None:
    project = unique_project("ref")
    base = _log_base(tmp_path / "data", project)
    with soko_server.client() as api:
        answer = api.get(f"/versions/{base.id}/manifest/index")
    assert answer.status_code == 200, answer.text
    index = ManifestIndex.from_bytes(answer.content)
    assert index.count == len(_FILES)
    assert sorted(index.folders) == ["", "d0", "d1", "d2", "d3"]


def _upload_manifest(api: Any, project: str, manifest: Manifest) -> Digest:
    raw = manifest.to_bytes()
    digest = Digest.of_bytes(raw, XXH)
    body = frame_header(digest, len(raw)) + raw
    uploaded = api.post(
        "/blobs/batch",
        params={"entity": "local", "project": project},
        content=body,
        headers={"Content-Type": MEDIA_TYPE},
    )
    assert uploaded.status_code == 200, uploaded.text
    return digest


def _body(project: str, change: Digest, base_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "entity": "local",
        "project": project,
        "name": "data",
        "type": "dataset",
        "manifest_blob": str(change),
        "algorithm": "XXH128",
        "base_version": base_id,
        **extra,
    }


def test_the_server_refuses_what_it_cannot_commit_by_reference(
    server_env: ServerEnv, soko_server: SokoServer, tmp_path: Path
) -> None:
    project = unique_project("ref")
    base = _log_base(tmp_path / "data", project)
    never_uploaded = Digest.of_bytes(b"never uploaded", XXH)
    change = Manifest.of([Entry("x.txt", never_uploaded.b64, 14, extra={"alg": "xxh128"})], XXH)
    elsewhere = unique_project("elsewhere")
    with soko_server.client() as api:
        digest = _upload_manifest(api, project, change)
        # A change naming a blob the project does not hold.
        answer = api.post("/versions", json=_body(project, digest, base.id))
        assert answer.status_code != 200
        assert answer.json()["error"]["code"] == "missing_blobs"
        # Only a plain commit goes by reference.
        for route in ("/versions/upsert", "/versions/finish"):
            answer = api.post(route, json=_body(project, digest, base.id, distributed_id="d"))
            assert answer.json()["error"]["code"] == "validation_error", route
        # Into another project than the base's: the whole manifest must be sent.
        other = _upload_manifest(api, elsewhere, change)
        answer = api.post("/versions", json=_body(elsewhere, other, base.id))
        assert answer.json()["error"]["code"] == "validation_error"
        assert "project of its base" in answer.json()["error"]["message"]
    assert [v.version for v in soko.Api().artifacts("dataset", f"local/{project}/data")] == ["v0"]


def test_a_server_without_the_index_route_gets_a_draft_of_every_entry(
    server_env: ServerEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique_project("ref")
    base = _log_base(tmp_path / "data", project)

    def older_server(self: object, method: str, path: str, **kwargs: Any) -> Any:
        if path.endswith("/manifest/index"):
            raise NotFoundError("Not Found")
        return session_call(self, method, path, **kwargs)

    session_call = ApiSession.call
    monkeypatch.setattr(ApiSession, "call", older_server)
    draft = base.new_draft()
    assert draft._draft is not None and draft._draft.base is None
    (tmp_path / "new.txt").write_text("new")
    draft.add_file(str(tmp_path / "new.txt"), name="e/new.txt")
    with soko.init(project=project) as run:
        run.log_artifact(draft)
    v1 = soko.Api().artifact(f"local/{project}/data:v1")
    assert {e.path for e in v1.manifest} == set(_FILES) | {"e/new.txt"}
