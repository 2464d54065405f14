"""Presigned transfers of a server on PostgreSQL + S3 (moto): bytes go client <-> bucket.

A large blob is PUT to a staging key through a presigned URL and becomes a blob only once
the server checked it (the bucket's MD5 ETag, or reading it back for XXH128); wrong bytes
are refused and leave nothing. Downloads of large blobs get presigned GET URLs; small ones
and every blob of a folder store come from the server.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import server_fixtures
from server_fixtures import ServerUnderTest, unique_project

import soko
from soko.core.digests import Algorithm, Digest

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
pg_database = server_fixtures.pg_database
cloud_server = server_fixtures.cloud_server
any_server = server_fixtures.any_server

ALGORITHMS = [Algorithm.MD5, Algorithm.XXH128]
# Uploads and the missing-blob question are made for a project.
OWNER = {"entity": "local", "project": "presigned"}


def plan_upload(api: httpx.Client, digest: Digest, size: int) -> dict[str, object]:
    blobs = [{"digest": str(digest), "size": size}]
    answer = api.post("/blobs/uploads", json={**OWNER, "blobs": blobs})
    assert answer.status_code == 200, answer.text
    (target,) = answer.json()["uploads"]
    assert isinstance(target, dict)
    return target


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_presigned_upload_becomes_a_blob_once_checked(
    cloud_server: ServerUnderTest, algorithm: Algorithm
) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    digest = Digest.of_bytes(data, algorithm)
    with cloud_server.server.client() as api:
        target = plan_upload(api, digest, len(data))
        url = str(target["url"])
        assert url.startswith(cloud_server.blobs.client.meta.endpoint_url)
        assert not url.startswith(cloud_server.server.url)
        put = httpx.put(url, content=data, headers=dict(target["headers"]))  # type: ignore[arg-type]
        assert put.status_code == 200
        # Uploaded but not checked yet: not a blob.
        assert not cloud_server.blobs.exists(digest)
        done = api.post(
            f"/blobs/uploads/{target['upload_id']}/complete", json={**OWNER, "digest": str(digest)}
        )
        assert done.status_code == 200, done.text
        assert done.json() == {"stored": 1, "bytes": len(data)}
        assert api.post("/blobs/missing", json={**OWNER, "digests": [str(digest)]}).json() == {
            "missing": []
        }
    assert cloud_server.blobs.exists(digest)
    assert cloud_server.blobs.staged() == []


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_presigned_upload_of_wrong_bytes_leaves_nothing(
    cloud_server: ServerUnderTest, algorithm: Algorithm
) -> None:
    claimed = os.urandom(1024 * 1024 + 5)
    digest = Digest.of_bytes(claimed, algorithm)
    with cloud_server.server.client() as api:
        target = plan_upload(api, digest, len(claimed))
        # The first byte flipped (b"Z" in its place was the same bytes once in 256 runs).
        httpx.put(str(target["url"]), content=bytes([claimed[0] ^ 0xFF]) + claimed[1:])
        done = api.post(
            f"/blobs/uploads/{target['upload_id']}/complete", json={**OWNER, "digest": str(digest)}
        )
        assert done.status_code == 422
        assert done.json()["error"]["code"] == "digest_mismatch"
        missing = api.post("/blobs/missing", json={**OWNER, "digests": [str(digest)]}).json()
    assert missing == {"missing": [str(digest)]}
    assert cloud_server.blobs.staged() == []


def test_completing_an_upload_that_never_happened_is_404(cloud_server: ServerUnderTest) -> None:
    digest = Digest.of_bytes(b"never sent")
    with cloud_server.server.client() as api:
        target = plan_upload(api, digest, 5 * 1024 * 1024)
        done = api.post(
            f"/blobs/uploads/{target['upload_id']}/complete", json={**OWNER, "digest": str(digest)}
        )
        bad_id = api.post("/blobs/uploads/..%2Fetc/complete", json={**OWNER, "digest": str(digest)})
    assert done.status_code == 404
    assert bad_id.status_code in (400, 404)


def test_an_upload_completes_only_for_the_project_it_was_planned_for(
    cloud_server: ServerUnderTest,
) -> None:
    # An upload id is in its presigned URL: whoever learns it must not be able to complete
    # it for a project of theirs, and so gain possession of the blob there.
    server = cloud_server.server
    data = os.urandom(1024 * 1024 + 9)
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    thief_project = unique_project("thief")
    thief = server.new_user(unique_project("t"), {("local", thief_project): "writer"})
    with server.client() as api:
        target = plan_upload(api, digest, len(data))
        assert httpx.put(str(target["url"]), content=data).status_code == 200
    complete = f"/blobs/uploads/{target['upload_id']}/complete"
    with server.client(thief) as api:
        stolen = api.post(
            complete, json={"entity": "local", "project": thief_project, "digest": str(digest)}
        )
        still_missing = api.post(
            "/blobs/missing",
            json={"entity": "local", "project": thief_project, "digests": [str(digest)]},
        ).json()
    assert stolen.status_code == 404, stolen.text
    assert still_missing == {"missing": [str(digest)]}
    with server.client() as api:
        done = api.post(complete, json={**OWNER, "digest": str(digest)})
    assert done.status_code == 200, done.text
    assert cloud_server.blobs.staged() == []


def test_downloads_get_presigned_urls_for_large_blobs_only(
    any_server: ServerUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = any_server.server
    server_fixtures.point_sdk_at(
        server, server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch
    )
    project = unique_project()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (tmp_path / "data" / "small.txt").write_bytes(b"small")
    with soko.init(project=project) as run:
        artifact = soko.Artifact("mixed", "dataset")
        artifact.add_dir(str(tmp_path / "data"))
        run.log_artifact(artifact).wait()
    digests = {e.path: str(e.blob_digest()) for e in artifact.manifest}
    with server.client() as api:
        plan = api.post(
            f"/versions/{artifact.id}/blobs/plan", json={"digests": list(digests.values())}
        ).json()["blobs"]
    urls = {b["digest"]: b["url"] for b in plan}
    assert urls[digests["small.txt"]] is None
    if any_server.kind == "cloud":
        assert urls[digests["big.bin"]].startswith("http")
        assert not urls[digests["big.bin"]].startswith(server.url)
        assert any_server.blobs.staged() == []
    else:
        assert urls[digests["big.bin"]] is None
    root = soko.Api().artifact(f"{project}/mixed:latest").download(str(tmp_path / "out"))
    assert (Path(root) / "big.bin").read_bytes() == (tmp_path / "data" / "big.bin").read_bytes()
    soko.finish()
