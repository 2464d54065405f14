"""The real ``wandb`` client, unchanged, against ``soko server`` with only WANDB_BASE_URL and
WANDB_API_KEY set: it logs, re-logs, uses and downloads artifacts, and what it logged is
what soko's SDK reads (and the other way round). Every test checks the server's state
through soko's SDK, not only the child's exit code: the client hides some errors.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import wandb
from older_wandb import OLDER_WANDB_VERSION, older_wandb_python
from server_fixtures import (
    S3_TEST_ENV,
    FolderBlobs,
    SokoServer,
    moto_server,
    new_bucket,
    pg_database,
    point_sdk_at,
    service_unavailable,
    unique_project,
)
from wandb_children import (
    API_DOWNLOAD,
    EVOLVE,
    LOG,
    USE,
    child_env,
    printed,
    run_child,
    tree,
    upload_urls,
    uploads_received,
)

import soko
from soko.core.digests import Algorithm, Digest, version_digest
from soko.errors import NotFoundError
from soko.storage.base import blob_key

pytestmark = pytest.mark.integration

WANDB_VERSION = "0.31.0"
SIGNING_KEY = secrets.token_urlsafe(32)
# The wandb client refuses a key whose part after its first "-" is short (soko's keys have
# no "-"); the test servers' default admin key may have one.
ADMIN_KEY = f"soko_test_{secrets.token_hex(24)}"


__all__ = ["moto_server", "pg_database"]  # fixtures the cloud server needs


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SokoServer]:
    """SQLite and a blob folder: uploads and downloads go through the server's signed URLs."""
    root = tmp_path_factory.mktemp("wandb-client")
    found = SokoServer(
        root,
        db=f"sqlite:///{root / 'meta.db'}",
        store=str(root / "blobs"),
        env={"SOKO_URL_SIGNING_KEY": SIGNING_KEY},
        admin_key=ADMIN_KEY,
    )
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(scope="module")
def cloud(
    moto_server: str, pg_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SokoServer]:
    """PostgreSQL and an S3 bucket (moto): the client moves bytes with presigned URLs."""
    found = SokoServer(
        tmp_path_factory.mktemp("wandb-cloud"),
        db=pg_database,
        store=f"s3://{new_bucket(moto_server)}/wb",
        s3_endpoint_url=moto_server,
        env=S3_TEST_ENV,
        admin_key=ADMIN_KEY,
    )
    try:
        yield found
    finally:
        found.stop()


@pytest.fixture(params=["folder", "cloud"])
def any_server(request: pytest.FixtureRequest) -> tuple[str, SokoServer]:
    """Each test that takes it runs on both servers: (``"folder"`` or ``"cloud"``, server)."""
    kind: str = request.param
    found: SokoServer = request.getfixturevalue("server" if kind == "folder" else "cloud")
    return kind, found


@pytest.fixture(scope="module")
def older_client() -> Path:
    """The interpreter of a virtualenv with the older ``wandb`` release (built once)."""
    try:
        return older_wandb_python()
    except RuntimeError as error:
        service_unavailable(str(error))


@pytest.fixture(params=[WANDB_VERSION, OLDER_WANDB_VERSION])
def client(request: pytest.FixtureRequest) -> Path:
    """The interpreter the ``wandb`` children run with: each test that takes it runs with
    the pinned release (this interpreter's) and with the older one."""
    if request.param == WANDB_VERSION:
        return Path(sys.executable)
    older: Path = request.getfixturevalue("older_client")
    return older


def _sdk(server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> soko.Api:
    point_sdk_at(server, server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    return soko.Api()


@pytest.fixture
def sdk(server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> soko.Api:
    """soko's own SDK on the same server, as its admin: how the tests read its state."""
    return _sdk(server, tmp_path, monkeypatch)


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_the_tested_wandb_release_is_installed() -> None:
    assert wandb.__version__ == WANDB_VERSION


def test_the_older_wandb_release_is_installed(older_client: Path) -> None:
    probe = subprocess.run(
        [str(older_client), "-c", "import wandb; print(wandb.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == OLDER_WANDB_VERSION


def test_log_relog_new_version_use_and_download(
    any_server: tuple[str, SokoServer],
    client: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kind, server = any_server
    sdk = _sdk(server, tmp_path, monkeypatch)
    project = unique_project("wb")
    env = child_env(server, server.admin_key, tmp_path / "home")
    files = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 40, "c.csv": b"x,y\n1,2\n"}
    data = _folder(tmp_path / "data", files)

    urls, received = upload_urls(server), uploads_received(server)
    logged = run_child(LOG, project, "ds", str(data), "best", env=env, cwd=tmp_path, python=client)
    assert logged.returncode == 0, logged.stderr[-3000:]
    assert printed(logged, "VERSION") == "v0"
    assert upload_urls(server) - urls == 3
    assert uploads_received(server) - received == (3 if kind == "folder" else 0)

    v0 = sdk.artifact(f"admin/{project}/ds:v0")
    assert sorted(v0.aliases) == ["best", "latest"]
    assert v0.digest == printed(logged, "DIGEST")
    assert v0.metadata == {"source": "test"}
    assert tree(Path(v0.download(root=str(tmp_path / "soko-v0")))) == files
    writer = v0.logged_by()
    assert writer is not None and writer.id == printed(logged, "RUN")
    assert writer.job_type == "train"
    assert writer.config["lr"] == 0.1
    assert writer.summary["loss"] == 0.25
    assert [row["loss"] for row in writer.history(pandas=False)] == [1.0, 0.25]

    # The same content again: the server answers COMMITTED, the client uploads nothing.
    urls, received = upload_urls(server), uploads_received(server)
    again = run_child(LOG, project, "ds", str(data), "", env=env, cwd=tmp_path, python=client)
    assert again.returncode == 0, again.stderr[-3000:]
    assert printed(again, "VERSION") == "v0"
    assert (upload_urls(server) - urls, uploads_received(server) - received) == (0, 0)
    with pytest.raises(NotFoundError):
        sdk.artifact(f"admin/{project}/ds:v1")

    # One file changed: a new version, one upload.
    (data / "a.txt").write_bytes(b"alpha, second edition\n")
    urls = upload_urls(server)
    changed = run_child(LOG, project, "ds", str(data), "", env=env, cwd=tmp_path, python=client)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert printed(changed, "VERSION") == "v1"
    assert upload_urls(server) - urls == 1
    v1 = sdk.artifact(f"admin/{project}/ds:latest")
    assert v1.version == "v1"
    assert sorted(sdk.artifact(f"admin/{project}/ds:v0").aliases) == ["best"]

    used = run_child(
        USE, project, "ds:latest", str(tmp_path / "used"), env=env, cwd=tmp_path, python=client
    )
    assert used.returncode == 0, used.stderr[-3000:]
    assert tree(tmp_path / "used") == {**files, "a.txt": b"alpha, second edition\n"}
    assert [r.id for r in sdk.artifact(f"admin/{project}/ds:v1").used_by()] == [
        printed(used, "RUN")
    ]

    fetched = run_child(
        API_DOWNLOAD,
        f"{project}/ds:best",
        str(tmp_path / "api"),
        env=env,
        cwd=tmp_path,
        python=client,
    )
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    assert printed(fetched, "VERSION") == "v0"
    assert printed(fetched, "ALIASES") == "best"
    assert tree(tmp_path / "api") == files


def test_links_drafts_and_incremental_artifacts(
    server: SokoServer, sdk: soko.Api, tmp_path: Path
) -> None:
    project = unique_project("wbl")
    env = child_env(server, server.admin_key, tmp_path / "home")
    files = {"a.txt": b"first\n", "b.txt": b"second\n"}
    data = _folder(tmp_path / "data", files)
    extra = tmp_path / "extra.txt"
    extra.write_bytes(b"added later\n")
    done = run_child(EVOLVE, project, "m", str(data), str(extra), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert printed(done, "LINKED") == "local/wandb-registry-model/m:v0 v0"
    assert printed(done, "PORTFOLIO") == f"admin/{project}/m-best:v0 v0"
    assert printed(done, "DRAFT") == "v1"
    assert printed(done, "INCREMENT") == "v2"

    v0 = sdk.artifact(f"admin/{project}/m:v0")
    linked = sdk.artifact("local/wandb-registry-model/m:prod")
    assert linked.is_link and linked.source_artifact.id == v0.id
    assert sorted(linked.aliases) == ["latest", "prod"]
    best = sdk.artifact(f"admin/{project}/m-best:top")
    assert best.is_link and best.source_artifact.id == v0.id
    # The draft: v0 without a.txt, with one file added.
    v1 = sdk.artifact(f"admin/{project}/m:v1")
    assert tree(Path(v1.download(root=str(tmp_path / "v1")))) == {
        "b.txt": files["b.txt"],
        "added.txt": b"added later\n",
    }
    # The incremental artifact: its one file laid over v1.
    v2 = sdk.artifact(f"admin/{project}/m:latest")
    assert v2.version == "v2"
    assert tree(Path(v2.download(root=str(tmp_path / "v2")))) == {
        "b.txt": files["b.txt"],
        "added.txt": b"added later\n",
        "more/added-again.txt": b"added later\n",
    }
    writer = v2.logged_by()
    assert writer is not None and writer.id == printed(done, "RUN")


# The client sends a file in parts from 2 GiB on, 100 MiB a part: too big for a test, so the
# parts are sent here as the client sends them (its GraphQL, Content-MD5, the ETags back),
# 5 MiB a part, S3's smallest.
PART = 5 * 1024 * 1024
PARTS_FILES = """mutation($input: CreateArtifactFilesInput!) { createArtifactFiles(input: $input) {
  files { edges { node { storagePath uploadUrl uploadHeaders
    uploadMultipartUrls { uploadID uploadUrlParts { partNumber uploadUrl } } } } } } }"""
JOIN = """mutation($parts: [UploadPartsInput!]!, $id: ID!, $path: String!, $upload: String!) {
  completeMultipartUploadArtifact(input: {completeMultipartAction: Complete,
    completedParts: $parts, artifactID: $id, storagePath: $path, uploadID: $upload}) {
    digest } }"""


def _gql(server: SokoServer, query: str, **variables: Any) -> dict[str, Any]:
    answer = httpx.post(
        f"{server.url}/graphql",
        json={"query": query, "variables": variables},
        auth=("api", server.admin_key),
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


CREATE = """mutation($input: CreateArtifactInput!) {
  createArtifact(input: $input) { artifact { id } } }"""
COMMIT = """mutation($id: ID!) {
  commitArtifact(input: {artifactID: $id}) { artifact { state } } }"""


def _created(server: SokoServer, project: str, digest: str) -> str:
    """The id of a new pending artifact ``big`` of *project* that declares *digest*."""
    created = _gql(
        server,
        CREATE,
        input={
            "entityName": "admin",
            "projectName": project,
            "artifactTypeName": "model",
            "artifactCollectionName": "big",
            "digest": digest,
        },
    )
    artifact_id: str = created["createArtifact"]["artifact"]["id"]
    return artifact_id


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_a_file_sent_in_parts(
    any_server: tuple[str, SokoServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kind, server = any_server
    sdk = _sdk(server, tmp_path, monkeypatch)
    project = unique_project("wbp")
    data = secrets.token_bytes(PART + 1000)
    parts = [data[:PART], data[PART:]]
    digest = version_digest([("big.bin", _b64md5(data))], Algorithm.MD5)
    artifact_id = _created(server, project, digest)
    spec = {
        "artifactID": artifact_id,
        "name": "big.bin",
        "md5": _b64md5(data),
        "uploadPartsInput": [
            {"partNumber": n, "hexMD5": hashlib.md5(p).hexdigest()}
            for n, p in enumerate(parts, start=1)
        ],
    }
    files = _gql(server, PARTS_FILES, input={"artifactFiles": [spec], "storageLayout": "V2"})
    node = files["createArtifactFiles"]["files"]["edges"][0]["node"]
    assert node["uploadUrl"]  # not null: null would tell the client the file is stored
    urls = node["uploadMultipartUrls"]["uploadUrlParts"]
    assert [u["partNumber"] for u in urls] == [1, 2]
    etags = []
    for url, part in zip(urls, parts, strict=True):
        put = httpx.put(url["uploadUrl"], content=part, headers={"Content-MD5": _b64md5(part)})
        assert put.status_code == 200, put.text
        etags.append(put.headers["ETag"])
    completed = [{"partNumber": n, "hexMD5": etag} for n, etag in enumerate(etags, start=1)]
    upload_id = node["uploadMultipartUrls"]["uploadID"]
    joined = _gql(
        server, JOIN, parts=completed, id=artifact_id, path=node["storagePath"], upload=upload_id
    )
    assert joined["completeMultipartUploadArtifact"]["digest"] == hashlib.md5(data).hexdigest()
    # Asked again (a retry after a timeout): joined already, the same answer.
    again = _gql(
        server, JOIN, parts=completed, id=artifact_id, path=node["storagePath"], upload=upload_id
    )
    assert again == joined
    made = _gql(
        server,
        """mutation($id: ID!, $digest: String!) { createArtifactManifest(input: {
          artifactID: $id, name: "wandb_manifest.json", digest: $digest, entityName: "admin",
          projectName: "p", runName: "r", type: FULL}) { artifactManifest { file {
          uploadUrl } } } }""",
        id=artifact_id,
        digest=digest,
    )
    manifest = {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "contents": {"big.bin": {"digest": _b64md5(data), "size": len(data)}},
    }
    url = made["createArtifactManifest"]["artifactManifest"]["file"]["uploadUrl"]
    assert httpx.put(url, content=json.dumps(manifest)).status_code == 200
    committed = _gql(server, COMMIT, id=artifact_id)["commitArtifact"]["artifact"]
    assert committed["state"] == "COMMITTED"
    version = sdk.artifact(f"admin/{project}/big:latest")
    assert tree(Path(version.download(root=str(tmp_path / "got")))) == {"big.bin": data}


def test_parts_never_sent_join_nothing(server: SokoServer, sdk: soko.Api) -> None:
    project = unique_project("wbq")
    data = b"never sent" * 1000
    artifact_id = _created(server, project, version_digest([("f", _b64md5(data))], Algorithm.MD5))
    answer = httpx.post(
        f"{server.url}/graphql",
        json={
            "query": JOIN,
            "variables": {
                "parts": [{"partNumber": 1, "hexMD5": hashlib.md5(data).hexdigest()}],
                "id": artifact_id,
                "path": f"md5/{hashlib.md5(data).hexdigest()}",
                "upload": "soko-parts",
            },
        },
        auth=("api", server.admin_key),
    )
    assert answer.status_code == 400 and "were not uploaded" in answer.text
    assert not any((server.log_path.parent / "blobs").rglob(hashlib.md5(data).hexdigest()))


def test_xxh128_artifact(server: SokoServer, sdk: soko.Api, tmp_path: Path) -> None:
    project = unique_project("wbx")
    env = child_env(server, server.admin_key, tmp_path / "home")
    files = {"one.txt": b"1" * 1000, "two.txt": b"2" * 2000}
    data = _folder(tmp_path / "data", files)
    logged = run_child(LOG, project, "x", str(data), "", "XXH128", env=env, cwd=tmp_path)
    assert logged.returncode == 0, logged.stderr[-3000:]
    version = sdk.artifact(f"admin/{project}/x:v0")
    assert {e.extra.get("alg") for e in version.manifest.entries.values()} == {"XXH128"}
    assert version.digest == printed(logged, "DIGEST")
    assert tree(Path(version.download(root=str(tmp_path / "soko")))) == files


def test_soko_logged_artifact_is_downloaded_by_wandb(
    server: SokoServer, sdk: soko.Api, tmp_path: Path
) -> None:
    project = unique_project("wbs")
    files = {"model.pt": b"\x00weights" * 1000, "cfg/params.json": b'{"depth": 4}'}
    data = _folder(tmp_path / "data", files)
    with soko.init(entity="admin", project=project, job_type="export") as run:
        artifact = soko.Artifact("model", "model")
        artifact.add_dir(str(data))
        run.log_artifact(artifact, aliases=["prod"])
    env = child_env(server, server.admin_key, tmp_path / "home")
    fetched = run_child(
        API_DOWNLOAD, f"{project}/model:prod", str(tmp_path / "got"), env=env, cwd=tmp_path
    )
    assert fetched.returncode == 0, fetched.stderr[-3000:]
    assert tree(tmp_path / "got") == files
    used = run_child(USE, project, "model:prod", str(tmp_path / "used"), env=env, cwd=tmp_path)
    assert used.returncode == 0, used.stderr[-3000:]
    assert tree(tmp_path / "used") == files
    assert [r.id for r in sdk.artifact(f"admin/{project}/model:prod").used_by()] == [
        printed(used, "RUN")
    ]


def test_a_wrong_key_fails_and_stores_nothing(
    server: SokoServer, sdk: soko.Api, client: Path, tmp_path: Path
) -> None:
    project = unique_project("wbk")
    data = _folder(tmp_path / "data", {"f.txt": b"f"})
    env = child_env(server, f"soko_{secrets.token_hex(6)}_{secrets.token_hex(32)}", tmp_path)
    logged = run_child(LOG, project, "ds", str(data), "", env=env, cwd=tmp_path, python=client)
    assert logged.returncode != 0
    assert sdk.runs(f"admin/{project}") == []
    with pytest.raises(NotFoundError):
        sdk.artifact(f"admin/{project}/ds:latest")


def test_a_viewer_cannot_log(server: SokoServer, sdk: soko.Api, tmp_path: Path) -> None:
    project = unique_project("wbv")
    name = f"viewer-{secrets.token_hex(3)}"
    key = server.new_user(name, {(name, "*"): "viewer", ("admin", project): "viewer"})
    data = _folder(tmp_path / "data", {"f.txt": b"f"})
    env = child_env(server, key, tmp_path / "home")
    env["WANDB_ENTITY"] = "admin"
    logged = run_child(LOG, project, "ds", str(data), "", env=env, cwd=tmp_path)
    assert logged.returncode != 0
    assert "403" in logged.stderr or "writer role" in logged.stderr
    assert sdk.runs(f"admin/{project}") == []
    with pytest.raises(NotFoundError):
        sdk.artifact(f"admin/{project}/ds:latest")


# The sizes the client must carry in one log, on the folder store only (the S3 store takes the
# same requests): many small files, each its own upload URL and PUT, and one large file in
# a single PUT (the client sends parts only from 2 GiB on).
MANY_FILES = 20_000
LARGE = 600 * 1024 * 1024


def _b64md5_of(path: Path) -> str:
    md5 = hashlib.md5()
    with path.open("rb") as stream:
        while chunk := stream.read(8 * 1024 * 1024):
            md5.update(chunk)
    return base64.b64encode(md5.digest()).decode()


def test_a_folder_of_many_small_files(server: SokoServer, sdk: soko.Api, tmp_path: Path) -> None:
    project = unique_project("wbm")
    env = child_env(server, server.admin_key, tmp_path / "home")
    files = {f"part-{i // 1000:02d}/{i:05d}.txt": f"{i}\n".encode() for i in range(MANY_FILES)}
    data = _folder(tmp_path / "data", files)
    urls, received = upload_urls(server), uploads_received(server)
    logged = run_child(LOG, project, "many", str(data), "", env=env, cwd=tmp_path)
    assert logged.returncode == 0, logged.stderr[-3000:]
    assert (upload_urls(server) - urls, uploads_received(server) - received) == (
        MANY_FILES,
        MANY_FILES,
    )
    version = sdk.artifact(f"admin/{project}/many:v0")
    assert version.digest == printed(logged, "DIGEST")
    assert {path: (e.digest, e.size) for path, e in version.manifest.entries.items()} == {
        path: (_b64md5(content), len(content)) for path, content in files.items()
    }
    blobs = FolderBlobs(server.log_path.parent / "blobs")
    for content in (files["part-00/00000.txt"], files[f"part-19/{MANY_FILES - 1:05d}.txt"]):
        assert blobs.read(Digest(Algorithm.MD5, hashlib.md5(content).digest())) == content


def test_one_large_file(server: SokoServer, sdk: soko.Api, tmp_path: Path) -> None:
    project = unique_project("wbg")
    env = child_env(server, server.admin_key, tmp_path / "home")
    data = tmp_path / "data"
    data.mkdir()
    large = data / "weights.bin"
    # Bytes on disk (not a sparse file), cheap to make: one random block, repeated.
    block = secrets.token_bytes(8 * 1024 * 1024)
    with large.open("wb") as stream:
        for _ in range(LARGE // len(block)):
            stream.write(block)
    expected = _b64md5_of(large)
    urls, received = upload_urls(server), uploads_received(server)
    logged = run_child(LOG, project, "large", str(data), "", env=env, cwd=tmp_path)
    assert logged.returncode == 0, logged.stderr[-3000:]
    assert (upload_urls(server) - urls, uploads_received(server) - received) == (1, 1)
    version = sdk.artifact(f"admin/{project}/large:v0")
    assert version.digest == printed(logged, "DIGEST")
    entry = version.manifest.entries["weights.bin"]
    assert (entry.digest, entry.size) == (expected, LARGE)
    stored = (
        server.log_path.parent
        / "blobs"
        / blob_key(Digest(Algorithm.MD5, base64.b64decode(expected)))
    )
    assert _b64md5_of(stored) == expected
    # Gigabytes a run keeps otherwise (the file, the client's cache of it) until pytest
    # drops old temporary folders.
    large.unlink()
    shutil.rmtree(tmp_path / "home")
