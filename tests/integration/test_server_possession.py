"""A writer of project A never reaches project B's bytes by naming their digests.

A commit may name a stored blob only if its project proved possession of it: uploaded the
bytes for the project (verified, even when the blob was stored already), or committed it
from a source version the committer may read. The missing-blob question is asked per
project, so a blob only B holds looks absent to A's writer. Manifest sizes must be the
blobs' real sizes. Ids of versions and runs of a project the caller may not read are
answered like ids that do not exist. Each test runs on SQLite + a folder and on
PostgreSQL + S3 (moto).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import server_fixtures
from server_fixtures import ServerUnderTest, SokoServer, point_sdk_at, unique_project

import soko
from soko.client import http_capture
from soko.client.http import HttpBackend
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, Manifest
from soko.wire.framing import MEDIA_TYPE, frame_header, read_frames

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
pg_database = server_fixtures.pg_database
cloud_server = server_fixtures.cloud_server
any_server = server_fixtures.any_server

ENTITY = "local"
XXH = Algorithm.XXH128


def owner(project: str) -> dict[str, str]:
    return {"entity": ENTITY, "project": project}


def upload(api: httpx.Client, project: str, blobs: dict[Digest, bytes]) -> httpx.Response:
    """Upload small blobs for *project* in one framed batch."""
    body = b"".join(frame_header(d, len(data)) + data for d, data in blobs.items())
    return api.post(
        "/blobs/batch", params=owner(project), content=body, headers={"Content-Type": MEDIA_TYPE}
    )


def upload_large(api: httpx.Client, project: str, digest: Digest, data: bytes) -> None:
    """Upload one large blob for *project* the way the server says: presigned, or a PUT."""
    plan = api.post(
        "/blobs/uploads",
        json={**owner(project), "blobs": [{"digest": str(digest), "size": len(data)}]},
    )
    assert plan.status_code == 200, plan.text
    (target,) = plan.json()["uploads"]
    if target["url"] is None:
        put = api.put(
            f"/blobs/{digest.algorithm.key}/{digest.hex}", params=owner(project), content=data
        )
        assert put.status_code == 200, put.text
        return
    assert httpx.put(target["url"], content=data, headers=target["headers"]).status_code == 200
    done = api.post(
        f"/blobs/uploads/{target['upload_id']}/complete",
        json={**owner(project), "digest": str(digest)},
    )
    assert done.status_code == 200, done.text


def manifest_of(files: dict[str, tuple[Digest, int | None]]) -> Manifest:
    entries = [
        Entry(path, d.b64, size, extra={"alg": "XXH128"}) for path, (d, size) in files.items()
    ]
    return Manifest.of(entries, XXH)


def manifest_digest(manifest: Manifest) -> Digest:
    return Digest.of_bytes(manifest.to_bytes(), XXH)


def commit(
    api: httpx.Client,
    project: str,
    name: str,
    manifest: Manifest,
    *,
    route: str = "/versions",
    upload_manifest: bool = True,
    manifest_blob: Digest | None = None,
    sources: list[str] | None = None,
) -> httpx.Response:
    """Upload *manifest* for *project* (unless told not to) and commit it there."""
    raw = manifest.to_bytes()
    if upload_manifest:
        assert upload(api, project, {manifest_digest(manifest): raw}).status_code == 200
    body: dict[str, Any] = {
        **owner(project),
        "name": name,
        "type": "dataset",
        "manifest_blob": str(manifest_blob or manifest_digest(manifest)),
        "algorithm": "XXH128",
    }
    if route != "/versions":
        body["distributed_id"] = "d1"
    if sources:
        body["sources"] = sources
    return api.post(route, json=body)


def missing(api: httpx.Client, project: str, digests: list[Digest], **extra: Any) -> set[str]:
    answer = api.post(
        "/blobs/missing", json={**owner(project), "digests": [str(d) for d in digests], **extra}
    )
    assert answer.status_code == 200, answer.text
    return set(answer.json()["missing"])


def missing_raw(
    api: httpx.Client, project: str, digests: list[Digest], **extra: Any
) -> set[Digest]:
    """The binary question: the raw digests back to back, one bit per digest back."""
    answer = api.post(
        "/blobs/missing/raw",
        params={**owner(project), "algorithm": "xxh128", **extra},
        content=b"".join(d.raw for d in digests),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/octet-stream"
    bits = answer.content
    assert len(bits) == (len(digests) + 7) // 8
    return {d for i, d in enumerate(digests) if bits[i // 8] >> (i % 8) & 1}


@dataclass
class Scene:
    """Project B holds a secret file (logged by the admin); a writer of A only."""

    server: SokoServer
    a: str
    b: str
    secret: bytes
    secret_digest: Digest
    version_b: dict[str, Any]
    writer_a: str

    def api(self, key: str | None = None) -> httpx.Client:
        return self.server.client(key)


@pytest.fixture
def scene(any_server: ServerUnderTest) -> Scene:
    server = any_server.server
    a, b = unique_project("a"), unique_project("b")
    secret = b"B's secret: " + os.urandom(64)
    digest = Digest.of_bytes(secret, XXH)
    with server.client() as admin:
        assert upload(admin, b, {digest: secret}).status_code == 200
        made = commit(admin, b, "secret", manifest_of({"secret.txt": (digest, len(secret))}))
        assert made.status_code == 200, made.text
    writer_a = server.new_user(unique_project("wa"), {(ENTITY, a): "writer"})
    return Scene(server, a, b, secret, digest, made.json(), writer_a)


# ----- naming another project's blobs -------------------------------------------------


@pytest.mark.parametrize("route", ["/versions", "/versions/upsert", "/versions/finish"])
def test_a_commit_naming_another_project_s_blob_without_uploading_it_is_refused(
    scene: Scene, route: str
) -> None:
    stolen = manifest_of({"stolen.txt": (scene.secret_digest, len(scene.secret))})
    with scene.api(scene.writer_a) as api:
        refused = commit(api, scene.a, "loot", stolen, route=route)
        # Listing B's version as a source lends nothing to a key that cannot read it.
        listed = commit(api, scene.a, "loot", stolen, route=route, sources=[scene.version_b["id"]])
        versions = api.get(f"/projects/{ENTITY}/{scene.a}/collections/loot/versions")
        pending = api.get(f"/projects/{ENTITY}/{scene.a}/pending")
    for answer in (refused, listed):
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "missing_blobs"
        # The answer for an absent blob: nothing says that another project holds it.
        assert "not stored" in error["message"] and str(scene.secret_digest) in error["message"]
        assert scene.b not in error["message"]
    # No version, nothing pending: there is nothing to download B's bytes through.
    assert versions.status_code == 404
    assert pending.json()["versions"] == []


def test_a_commit_naming_another_project_s_manifest_blob_is_refused(scene: Scene) -> None:
    # B's manifest blob as the manifest of a version of A: it names B's file.
    b_manifest = Digest.from_hex(scene.version_b["manifest_blob"].partition(":")[2], XXH)
    never_stored = Digest.of_bytes(b"a manifest nobody uploaded", XXH)
    empty = manifest_of({})
    with scene.api(scene.writer_a) as api:
        answers = [
            commit(api, scene.a, "loot", empty, upload_manifest=False, manifest_blob=blob)
            for blob in (b_manifest, never_stored)
        ]
        assert api.get(f"/projects/{ENTITY}/{scene.a}/collections/loot").status_code == 404
    errors = [answer.json()["error"] for answer in answers]
    assert [answer.status_code for answer in answers] == [409, 409]
    assert errors[0]["message"] == errors[1]["message"].replace(str(never_stored), str(b_manifest))
    assert errors[0]["code"] == "missing_blobs"
    assert "not stored; upload it first" in errors[0]["message"]


def test_the_missing_question_answers_missing_for_blobs_only_another_project_holds(
    scene: Scene,
) -> None:
    b_manifest = Digest.from_hex(scene.version_b["manifest_blob"].partition(":")[2], XXH)
    absent = Digest.of_bytes(b"stored nowhere", XXH)
    asked = [scene.secret_digest, b_manifest, absent]
    with scene.api(scene.writer_a) as api:
        for_a = missing(api, scene.a, asked, name="secret", sources=[scene.version_b["id"]])
        of_b = api.post("/blobs/missing", json={**owner(scene.b), "digests": []})
    with scene.api() as admin:
        for_b = missing(admin, scene.b, asked)
    # To A's writer, B's blobs look exactly like a blob stored nowhere.
    assert for_a == {str(d) for d in asked}
    assert for_b == {str(absent)}
    assert of_b.status_code == 403


def test_the_binary_missing_question_answers_as_the_json_one(scene: Scene) -> None:
    b_manifest = Digest.from_hex(scene.version_b["manifest_blob"].partition(":")[2], XXH)
    absent = Digest.of_bytes(b"stored nowhere", XXH)
    # Past one byte of answer, with a digest asked twice.
    asked = [
        scene.secret_digest,
        b_manifest,
        *(Digest.of_bytes(bytes([i]), XXH) for i in range(8)),
        absent,
        scene.secret_digest,
    ]
    sources = {"name": "secret", "sources": [scene.version_b["id"]]}
    with scene.api(scene.writer_a) as api:
        for_a = missing_raw(api, scene.a, asked, **sources)
        in_json = missing(api, scene.a, asked, **sources)
        of_b = api.post(
            "/blobs/missing/raw",
            params={**owner(scene.b), "algorithm": "xxh128"},
            content=absent.raw,
        )
    with scene.api() as admin:
        for_b = missing_raw(admin, scene.b, asked)
    assert for_a == set(asked)
    assert {str(d) for d in for_a} == in_json
    assert for_b == set(asked) - {scene.secret_digest, b_manifest}
    assert of_b.status_code == 403


@pytest.mark.parametrize(
    ("params", "body", "words"),
    [
        ({"algorithm": "xxh128"}, b"x" * 17, "digests of 16 bytes"),
        ({"algorithm": "xxh128"}, b"", "got 0 bytes"),
        ({"algorithm": "xxh128"}, b"x" * 16 * 65_537, "at most 65536 digests"),
        ({"algorithm": "sha1"}, b"x" * 16, "Unknown digest algorithm 'sha1'"),
        ({"algorithm": "xxh128", "sources": ["not an id"] * 17}, b"x" * 16, "sources"),
    ],
)
def test_a_malformed_binary_missing_question_is_refused(
    soko_server: SokoServer, params: dict[str, Any], body: bytes, words: str
) -> None:
    with soko_server.client() as api:
        answer = api.post(
            "/blobs/missing/raw", params={**owner(unique_project()), **params}, content=body
        )
    assert answer.status_code in (400, 422), answer.text
    assert words in answer.json()["error"]["message"]


def test_uploading_the_real_bytes_for_a_lets_the_commit_succeed(scene: Scene) -> None:
    large = os.urandom(1024 * 1024 + 5)  # presigned on S3, a PUT to the server otherwise
    large_digest = Digest.of_bytes(large, XXH)
    with scene.api() as admin:
        upload_large(admin, scene.b, large_digest, large)
    files = {
        "secret.txt": (scene.secret_digest, len(scene.secret)),
        "large.bin": (large_digest, len(large)),
    }
    with scene.api(scene.writer_a) as api:
        assert commit(api, scene.a, "own", manifest_of(files)).status_code == 409
        # Wrong bytes for a blob that is stored already prove nothing.
        wrong = api.put(
            f"/blobs/xxh128/{scene.secret_digest.hex}",
            params=owner(scene.a),
            content=b"X" * len(scene.secret),
        )
        assert wrong.status_code == 422
        assert commit(api, scene.a, "own", manifest_of(files)).status_code == 409
        # The real bytes, uploaded for A (batch, and the large-blob route), do.
        assert upload(api, scene.a, {scene.secret_digest: scene.secret}).status_code == 200
        upload_large(api, scene.a, large_digest, large)
        assert missing(api, scene.a, [scene.secret_digest, large_digest]) == set()
        made = commit(api, scene.a, "own", manifest_of(files))
        assert made.status_code == 200, made.text
        version_id = made.json()["id"]
        got = api.post(
            f"/versions/{version_id}/blobs/batch", json={"digests": [str(scene.secret_digest)]}
        )
    assert got.status_code == 200 and got.content.endswith(scene.secret)


# Two 128-byte messages with one MD5 (Wang et al., 2004); a common suffix keeps them
# colliding. XXH128 is no more a proof of the bytes than MD5 is.
COLLISION = (
    "d131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f89"
    "55ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b"
    "d8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70",
    "d131dd02c5e6eec4693d9a0698aff95c2fcab50712467eab4004583eb8fb7f89"
    "55ad340609f4b30283e4888325f1415a085125e8f7cdc99fd91dbd7280373c5b"
    "d8823e3156348f5bae6dacd436c919c6dd53e23487da03fd02396306d248cda0"
    "e99f33420f577ee8ce54b67080280d1ec69821bcb6a8839396f965ab6ff72a70",
)


@pytest.mark.parametrize("suffix", [64, 1024 * 1024 + 64], ids=["small", "large"])
def test_bytes_that_only_share_the_digest_of_another_project_s_blob_prove_nothing(
    scene: Scene, suffix: int
) -> None:
    tail = os.urandom(suffix)
    original, forged = (bytes.fromhex(half) + tail for half in COLLISION)
    digest = Digest.of_bytes(original, Algorithm.MD5)
    assert original != forged and Digest.of_bytes(forged, Algorithm.MD5) == digest
    with scene.api() as admin:
        if suffix < 1024 * 1024:
            assert upload(admin, scene.b, {digest: original}).status_code == 200
        else:
            upload_large(admin, scene.b, digest, original)
    path = f"/blobs/md5/{digest.hex}"
    with scene.api(scene.writer_a) as api:
        answers = [
            upload(api, scene.a, {digest: forged}),
            api.put(path, params=owner(scene.a), content=forged),
        ]
        plan = api.post(
            "/blobs/uploads",
            json={**owner(scene.a), "blobs": [{"digest": str(digest), "size": len(forged)}]},
        )
        (target,) = plan.json()["uploads"]
        if target["url"] is not None:  # presigned (S3, a large blob): checked at completion
            assert httpx.put(target["url"], content=forged).status_code == 200
            answers.append(
                api.post(
                    f"/blobs/uploads/{target['upload_id']}/complete",
                    json={**owner(scene.a), "digest": str(digest)},
                )
            )
        still_missing = missing(api, scene.a, [digest])
        entry = Entry("loot.bin", digest.b64, len(forged))
        refused = commit(api, scene.a, "loot", Manifest.of([entry], XXH))
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == "digest_mismatch"
    assert still_missing == {str(digest)}
    assert refused.status_code == 409, refused.text


def test_a_manifest_whose_sizes_lie_is_refused(scene: Scene) -> None:
    data = os.urandom(64 * 1024)
    digest = Digest.of_bytes(data, XXH)
    with scene.api(scene.writer_a) as api:
        assert upload(api, scene.a, {digest: data}).status_code == 200
        lying = commit(api, scene.a, "sizes", manifest_of({"big.bin": (digest, 1)}))
        unsized = commit(api, scene.a, "sizes", manifest_of({"big.bin": (digest, None)}))
        # One blob at two paths, one of them with a wrong size.
        twice = manifest_of({"one.bin": (digest, len(data)), "two.bin": (digest, 1)})
        half_lying = commit(api, scene.a, "sizes", twice)
        right = commit(api, scene.a, "sizes", manifest_of({"big.bin": (digest, len(data))}))
    for answer, path in ((lying, "big.bin"), (unsized, "big.bin"), (half_lying, "two.bin")):
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "validation_error"
        assert repr(path) in error["message"] and f"{len(data)} bytes" in error["message"]
    assert right.status_code == 200 and right.json()["size"] == len(data)
    # Nor may a size lie about a blob borrowed from a readable version of another project.
    secret = (scene.secret_digest, len(scene.secret))
    lie = (scene.secret_digest, len(scene.secret) + 1)
    with scene.api() as admin:
        source = [scene.version_b["id"]]
        from_source = commit(admin, scene.a, "b", manifest_of({"s": lie}), sources=source)
        honest = commit(admin, scene.a, "b", manifest_of({"s": secret}), sources=source)
    assert from_source.status_code == 400, from_source.text
    assert f"{len(scene.secret)} bytes" in from_source.json()["error"]["message"]
    assert honest.status_code == 200, honest.text


# ----- the manifest's size and the number of sources ------------------------------------


def test_a_manifest_over_the_server_s_limit_is_neither_read_nor_lent(tmp_path: Path) -> None:
    # A writer could upload a manifest blob of gigabytes and commit it: the server reads
    # and parses a manifest whole, so it stats the blob first.
    root = tmp_path / "server"
    db, store = f"sqlite:///{root / 'meta.db'}", str(root / "blobs")
    server = SokoServer(root, db=db, store=store)
    project, other = unique_project("big"), unique_project("other")
    files = {f"file-{i:03d}.bin": os.urandom(16) for i in range(60)}
    blobs = {Digest.of_bytes(data, XXH): data for data in files.values()}
    big = manifest_of(
        {path: (Digest.of_bytes(data, XXH), len(data)) for path, data in files.items()}
    )
    assert len(big.to_bytes()) > 4096
    try:
        with server.client() as api:
            assert upload(api, project, blobs).status_code == 200
            made = commit(api, project, "big", big)
            assert made.status_code == 200, made.text
    finally:
        server.stop()
    server = SokoServer(
        root,
        db=db,
        store=store,
        admin_key=server.admin_key,
        args=["--max-manifest-bytes", "4096"],
    )
    try:
        with server.client() as api:
            refused = commit(api, project, "again", big)
            one = manifest_of({"one.bin": (Digest.of_bytes(files["file-000.bin"], XXH), 16)})
            small = commit(api, project, "small", one)
            read = api.get(f"/versions/{made.json()['id']}/manifest")
            # The version lends nothing to another project now: its manifest is not read.
            lent = missing(api, other, list(blobs), sources=[made.json()["id"]])
            versions = api.get(f"/projects/{ENTITY}/{project}/collections/again/versions")
    finally:
        server.stop()
    for answer in (refused, read):
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "validation_error" and "4096 bytes" in error["message"]
    assert small.status_code == 200, small.text
    assert lent == {str(d) for d in blobs}
    assert versions.status_code == 404


def test_a_request_lists_at_most_sixteen_sources(soko_server: SokoServer) -> None:
    with soko_server.client() as api:
        sources = [uuid.uuid4().hex for _ in range(17)]
        asked = api.post(
            "/blobs/missing", json={**owner(unique_project()), "digests": [], "sources": sources}
        )
        body = {
            **owner(unique_project()),
            "name": "n",
            "type": "dataset",
            "manifest_blob": str(Digest.of_bytes(b"{}", XXH)),
            "algorithm": "XXH128",
            "sources": sources,
        }
        committed = api.post("/versions", json=body)
        fine = api.post(
            "/blobs/missing",
            json={**owner(unique_project()), "digests": [], "sources": sources[:16]},
        )
    assert asked.status_code == committed.status_code == 422, (asked.text, committed.text)
    assert "sources" in asked.json()["error"]["message"]
    assert fine.status_code == 200, fine.text


# ----- borrowing from readable versions -----------------------------------------------


def test_a_draft_from_a_readable_version_of_another_project_logs_without_uploading(
    scene: Scene, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = scene.server.new_user(
        unique_project("ab"), {(ENTITY, scene.a): "writer", (ENTITY, scene.b): "viewer"}
    )
    point_sdk_at(scene.server, key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    uploaded: list[Digest] = []
    original = HttpBackend.store_blobs

    def recording(self: HttpBackend, sources: Any, **kwargs: Any) -> Any:
        uploaded.extend(s.digest for s in sources)
        return original(self, sources, **kwargs)

    monkeypatch.setattr(HttpBackend, "store_blobs", recording)
    source = soko.Api().artifact(f"{scene.b}/secret:latest")
    draft = source.new_draft()
    (tmp_path / "new.txt").write_bytes(b"only this is new")
    draft.add_file(str(tmp_path / "new.txt"))
    with soko.init(project=scene.a) as run:
        run.log_artifact(draft).wait()
    assert draft.version == "v0"
    assert uploaded == [draft.manifest.get("new.txt").blob_digest()]  # type: ignore[union-attr]
    root = soko.Api().artifact(f"{scene.a}/secret:v0").download(str(tmp_path / "out"))
    assert (Path(root) / "secret.txt").read_bytes() == scene.secret
    # A now holds the blob it borrowed: its writer without access to B may name it.
    with scene.api(scene.writer_a) as api:
        assert missing(api, scene.a, [scene.secret_digest]) == set()
        again = commit(
            api, scene.a, "again", manifest_of({"s.txt": (scene.secret_digest, len(scene.secret))})
        )
    assert again.status_code == 200, again.text


def test_an_upgraded_database_keeps_re_logs_and_incremental_logs_of_a_collection(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = unique_project("up")
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(40):
        (folder / f"f{i:02d}.txt").write_bytes(f"file {i} ".encode() + os.urandom(8))
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "one", monkeypatch=monkeypatch
    )
    with soko.init(project=project) as run:
        run.log_artifact(str(folder), name="ds", type="dataset").wait()
    # A database upgraded to the possession schema has no rows for what it held before.
    with sqlite3.connect(soko_server.log_path.parent / "meta.db") as db:
        db.execute(
            "DELETE FROM project_blobs WHERE project_id IN "
            "(SELECT id FROM projects WHERE name = ?)",
            (project,),
        )
        assert db.total_changes == 41  # the 40 files and the manifest
    uploaded: list[Digest] = []
    original = HttpBackend.store_blobs

    def recording(self: HttpBackend, sources: Any, **kwargs: Any) -> Any:
        uploaded.extend(s.digest for s in sources)
        return original(self, sources, **kwargs)

    monkeypatch.setattr(HttpBackend, "store_blobs", recording)
    # add_dir in a run sends the files the server lacks as it hashes them: those too.
    post = http_capture.UploadCapture._post

    def sending(capture: http_capture.UploadCapture, body: bytes, count: int) -> None:
        uploaded.extend(digest for digest, _ in read_frames(body))
        post(capture, body, count)

    monkeypatch.setattr(http_capture.UploadCapture, "_post", sending)
    # A fresh client (it read nothing): the collection's latest version is the source.
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "two", monkeypatch=monkeypatch
    )
    (folder / "f00.txt").write_bytes(b"changed")
    with soko.init(project=project) as run:
        changed = run.log_artifact(str(folder), name="ds", type="dataset").wait()
        assert uploaded == [changed.manifest.get("f00.txt").blob_digest()]  # type: ignore[union-attr]
        uploaded.clear()
        again = run.log_artifact(str(folder), name="ds", type="dataset", aliases=["again"]).wait()
        assert uploaded == []
    # Another collection, from a client that read no version naming these files, has no
    # source: the files are uploaded for the project.
    point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path / "three", monkeypatch=monkeypatch
    )
    with soko.init(project=project) as run:
        other = run.log_artifact(str(folder), name="other", type="dataset").wait()
    assert (changed.version, again.version, other.version) == ("v1", "v1", "v0")
    assert sorted(uploaded, key=str) == sorted(
        other.manifest.blob_digests()
        - {
            changed.manifest.get("f00.txt").blob_digest()  # type: ignore[union-attr]
        },
        key=str,
    )


# ----- ids of what the caller may not read ----------------------------------------------


def test_another_project_s_version_and_run_ids_are_answered_like_made_up_ones(
    scene: Scene,
) -> None:
    server = scene.server
    run_id = f"r{uuid.uuid4().hex[:12]}"
    with server.client() as admin:
        started = admin.post("/runs", json={"run_id": run_id, **owner(scene.b)})
        assert started.status_code == 200, started.text
    version_id = scene.version_b["id"]
    made_up_version, made_up_run = uuid.uuid4().hex, f"r{uuid.uuid4().hex[:12]}"

    def answers(api: httpx.Client, version: str, run: str) -> list[httpx.Response]:
        return [
            api.get(f"/versions/{version}"),
            api.get(f"/versions/{version}/manifest"),
            api.post(f"/versions/{version}/blobs/plan", json={"digests": []}),
            api.get(f"/versions/{version}/runs", params={"direction": "used"}),
            api.post(f"/versions/{version}/links", json={**owner(scene.a), "registry": "reg"}),
            api.patch(f"/versions/{version}", json={"description": "mine now"}),
            api.delete(f"/versions/{version}"),
            api.get(f"/runs/{run}"),
            api.get(f"/runs/{run}/versions", params={"direction": "logged"}),
            api.post(f"/runs/{run}/finish", json={"state": "finished"}),
        ]

    with server.client(scene.writer_a) as api:
        real = answers(api, version_id, run_id)
        made_up = answers(api, made_up_version, made_up_run)
        # Run ids are one namespace: that one is taken shows, but not by which project.
        taken = api.post("/runs", json={"run_id": run_id, **owner(scene.a)})
    assert taken.status_code == 409 and scene.b not in taken.text
    for got, expected in zip(real, made_up, strict=True):
        assert got.status_code == expected.status_code == 404, got.request.url
        message = got.json()["error"]["message"]
        assert message == expected.json()["error"]["message"].replace(
            made_up_version, version_id
        ).replace(made_up_run, run_id)
    # A viewer of B may read them, so a change it may not make is 403, not 404.
    viewer = server.new_user(unique_project("vb"), {(ENTITY, scene.b): "viewer"})
    with server.client(viewer) as api:
        assert api.get(f"/versions/{version_id}").status_code == 200
        patched = api.patch(f"/versions/{version_id}", json={"description": "mine now"})
        finished = api.post(f"/runs/{run_id}/finish", json={"state": "finished"})
    assert patched.status_code == finished.status_code == 403
    assert patched.json()["error"]["code"] == "permission_denied"


def test_a_link_to_an_unreadable_project_is_read_as_a_member_of_its_registry(
    scene: Scene,
) -> None:
    # The registry (in A) links B's version; A's writer may read the registry, not B. The
    # link is a member of A's registry: whoever may read the registry reads it and its
    # files (the purpose of publishing a version there), never B's version itself.
    with scene.api() as admin:
        linked = admin.post(
            f"/versions/{scene.version_b['id']}/links",
            json={**owner(scene.a), "registry": "reg", "aliases": ["best"]},
        )
        assert linked.status_code == 200, linked.text
    base = f"/projects/{ENTITY}/{scene.a}/collections/reg/versions"
    with scene.api(scene.writer_a) as api:
        for selector in ("best", "v0"):
            got = api.get(f"{base}/{selector}")
            assert got.status_code == 200, got.text
            link = got.json()
            assert (link["project"], link["source_id"]) == (scene.a, scene.version_b["id"])
            assert scene.b not in got.text
            assert api.get(f"/versions/{link['id']}/manifest").status_code == 200
        source = api.get(f"/versions/{scene.version_b['id']}")
        assert source.status_code == 404
        assert api.get(f"{base}/nothing").status_code == 404
