"""Hostile names and crafted manifests, through the server's REST API and through the SDK.

Path traversal, absolute paths, empty segments, drive letters, backslash traversal, NUL, a
256-byte path segment; names with ``/ : # ? %`` and control characters; huge and deeply
nested metadata; manifests whose sizes lie, that name a digest the project never uploaded,
or that are not a manifest at all. Every one is refused: a 4xx with the error body from the
server (which stays up and answers a well-formed request afterwards), a soko error from the
SDK; nothing is written outside a download root.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from server_fixtures import SokoServer, fresh_pg_database, unique_project
from torture_manifests import MANIFEST_HEAD, entry, manifest_bytes
from torture_support import content, read_tree

import soko
from soko.client import connect
from soko.core.digests import Algorithm, Digest
from soko.errors import SokoError, ValidationError
from soko.service.store import Store

pytestmark = [pytest.mark.torture, pytest.mark.integration]

SENTINEL = "soko-torture-escaped"
"""The file name every traversal aims at: found anywhere afterwards, something escaped."""

TRAVERSALS = [
    f"../{SENTINEL}",
    f"a/../../{SENTINEL}",
    f"/tmp/{SENTINEL}",
    f"a//{SENTINEL}",
    f"C:{SENTINEL}",
    f"C:\\{SENTINEL}",
    f"..\\{SENTINEL}",
    f"a\\..\\..\\{SENTINEL}",
    f"\\{SENTINEL}",
    f"a\x00/{SENTINEL}",
    f"{'x' * 256}/{SENTINEL}",
    f"{SENTINEL}/",
    ".",
    "",
]
CONTROL = ["a\x00b", "a\nb", "a\rb", "a\tb", "a\x1bb", "a\x7fb"]
NAMES = [
    "../x",
    "/abs",
    "a//b",
    "C:x",
    "a\\b",
    "x" * 256,
    "a/b",
    "a:b",
    "a#b",
    "a?b",
    "a%b",
    "a%2Fb",
    *CONTROL,
    "",
]
"""Entity, project and collection names: none of these is one."""
LABELS = ["../x", "/abs", "a/b", "a:b", *CONTROL, ""]
"""Types, aliases and tags follow W&B's looser rules, which still refuse these."""


class Api:
    """The REST API of one server as one user, with the checks every hostile call shares."""

    def __init__(self, server: SokoServer, key: str | None = None) -> None:
        self.server = server
        self.http = server.client(key)
        self.held: list[bytes] = []

    def upload(self, data: bytes) -> str:
        """Hold *data* as a client's file: :meth:`commit` uploads it for its project first."""
        self.held.append(data)
        return str(Digest.of_bytes(data, Algorithm.XXH128))

    def _put(self, project: str, data: bytes) -> httpx.Response:
        digest = Digest.of_bytes(data, Algorithm.XXH128)
        params = {"entity": "admin", "project": project}
        return self.http.put(f"/blobs/xxh128/{digest.hex}", content=data, params=params)

    def commit(self, project: str, manifest: bytes | str, **fields: Any) -> httpx.Response:
        """Upload the held files and the manifest for *project* (as a client does before a
        commit, which may name only what its project holds), then commit; the first refusal
        is the answer."""
        for data in [*self.held, *([] if isinstance(manifest, str) else [manifest])]:
            put = self._put(project, data)
            if put.status_code != 200:
                return put
        blob = manifest if isinstance(manifest, str) else self.upload(manifest)
        body = {"entity": "admin", "project": project, "name": "data", "type": "dataset"}
        body.update(manifest_blob=blob, algorithm="XXH128")
        return self.http.post("/versions", json={**body, **fields})

    def refused(self, answer: httpx.Response, what: object) -> None:
        """A 4xx with the error body, and the server still answers a well-formed request."""
        assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text[:300])
        error = answer.json()["error"]
        assert error["code"] and error["message"], (what, error)
        assert self.server.process.poll() is None, f"the server died on {what!r}"
        assert self.http.get("/whoami").status_code == 200, f"no answer after {what!r}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hostile_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SokoServer]:
    """A server on SQLite, then one on PostgreSQL (which refuses some strings SQLite keeps)."""
    root = tmp_path_factory.mktemp(f"hostile-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "postgresql":
            db = stack.enter_context(fresh_pg_database())
        else:
            db = f"sqlite:///{root / 'meta.db'}"
        server = SokoServer(root, db=db, store=str(root / "blobs"))
        stack.callback(server.stop)
        yield server


@pytest.fixture
def api(hostile_server: SokoServer) -> Iterator[Api]:
    client = Api(hostile_server)
    yield client
    client.http.close()


@pytest.fixture
def good_manifest(api: Api) -> bytes:
    data = b"well-formed\n"
    api.upload(data)
    return manifest_bytes({"ok.txt": entry(data)})


def test_hostile_paths_in_a_manifest_are_refused(
    api: Api, good_manifest: bytes, hostile_server: SokoServer
) -> None:
    project = unique_project("hostile")
    data = b"payload\n"
    api.upload(data)
    accepted = []
    for path in TRAVERSALS:
        answer = api.commit(project, manifest_bytes({path: entry(data)}))
        if answer.status_code < 400:
            accepted.append(path)
            continue
        api.refused(answer, path)
    assert not accepted, f"manifests with these paths were committed: {accepted}"
    assert api.commit(project, good_manifest).status_code == 200
    assert not list(Path("/tmp").glob(f"{SENTINEL}*"))
    assert not [p for p in hostile_server.log_path.parent.rglob(f"*{SENTINEL}*")]


@pytest.mark.parametrize("field", ["entity", "project", "name", "type", "aliases", "tags"])
def test_hostile_names_are_refused(api: Api, good_manifest: bytes, field: str) -> None:
    project = unique_project("hostile")
    accepted = []
    for name in NAMES if field in ("entity", "project", "name") else LABELS:
        value: Any = [name] if field in ("aliases", "tags") else name
        fields = {field: value} if field != "project" else {}
        answer = api.commit(name if field == "project" else project, good_manifest, **fields)
        if answer.status_code < 400:
            accepted.append(name)
            continue
        api.refused(answer, (field, name))
    assert not accepted, f"{field}: accepted {accepted}"
    assert api.commit(project, good_manifest).status_code == 200


def test_hostile_names_in_urls_answer_4xx(api: Api) -> None:
    accepted = []
    for name in filter(None, NAMES):
        quoted = quote(name, safe="")
        for path in (
            f"/projects/admin/{quoted}/collections",
            f"/projects/admin/p/collections/{quoted}/versions/latest",
            f"/projects/admin/p/collections/data/versions/{quoted}",
            f"/versions/{quoted}",
            f"/runs/{quoted}",
        ):
            answer = api.http.get(path)
            if answer.status_code < 400:
                accepted.append(path)
                continue
            api.refused(answer, path)
    assert not accepted, f"answered as if these names were valid: {accepted}"


def test_huge_and_deep_metadata_is_refused(api: Api, good_manifest: bytes) -> None:
    project = unique_project("hostile")
    api.refused(api.commit(project, good_manifest, metadata={str(k): k for k in range(101)}), 101)
    huge = {"blob": "x" * (17 * 1024 * 1024)}
    api.refused(api.commit(project, good_manifest, metadata=huge), "17 MiB of metadata")
    # 100,000 nested lists: a recursive JSON parser runs out of stack.
    body = json.dumps({"entity": "admin", "project": project, "name": "data", "type": "dataset"})[
        :-1
    ]
    deep = "[" * 100_000 + "]" * 100_000
    raw = f'{body}, "manifest_blob": "xxh128:{"0" * 32}", "algorithm": "XXH128", '
    raw += f'"metadata": {{"deep": {deep}}}}}'
    answer = api.http.post("/versions", content=raw, headers={"content-type": "application/json"})
    api.refused(answer, "100,000 nested lists")
    assert api.commit(project, good_manifest).status_code == 200


def test_crafted_manifests_are_refused(api: Api, good_manifest: bytes, torture_seed: int) -> None:
    project = unique_project("hostile")
    data = b"eleven bytes"
    api.upload(data)
    never = content(torture_seed, f"never uploaded to {project}", 64)
    crafted: dict[str, bytes | str] = {
        "a size that is too small": manifest_bytes({"a.bin": entry(data, size=1)}),
        "a size that is too large": manifest_bytes({"a.bin": entry(data, size=10**12)}),
        "a negative size": manifest_bytes({"a.bin": entry(data, size=-1)}),
        "a digest never uploaded": manifest_bytes({"a.bin": entry(never)}),
        "not JSON": b'{"version": 1, "contents": {',
        "not UTF-8": b"\xff\xfe\x00{}",
        "a JSON list": b"[]",
        "JSON null": b"null",
        "no contents": json.dumps(MANIFEST_HEAD).encode(),
        "contents a list": manifest_bytes([]),
        "an entry that is a string": manifest_bytes({"a.bin": "xxh128"}),
        "a digest that is not base64": manifest_bytes({"a.bin": entry(data, digest="!!")}),
        "a digest of the wrong length": manifest_bytes({"a.bin": entry(data, digest="AAAA")}),
        "a size that is a string": manifest_bytes({"a.bin": entry(data, size="11")}),
        "a manifest version 99": json.dumps({**MANIFEST_HEAD, "version": 99}).encode(),
        "a manifest blob that is not xxh128": f"md5:{'0' * 32}",
        "a manifest blob that is a path": "xxh128:../../etc/passwd",
        "a manifest blob that was never uploaded": f"xxh128:{'0' * 32}",
    }
    accepted = []
    for what, manifest in crafted.items():
        answer = api.commit(project, manifest)
        if answer.status_code < 400:
            accepted.append(what)
            continue
        api.refused(answer, what)
    assert not accepted, f"these manifests were committed: {accepted}"
    assert api.commit(project, good_manifest).status_code == 200


def test_a_digest_of_another_projects_blob_reads_nothing(
    hostile_server: SokoServer, torture_seed: int
) -> None:
    """A writer of project B who knows the digest of a file of project A cannot make it part
    of B by naming it in a manifest, and so cannot read it."""
    secret_project, own_project = unique_project("secret"), unique_project("own")
    admin = Api(hostile_server)
    secret = content(torture_seed, f"secret of {secret_project}", 5000)
    admin.upload(secret)
    assert admin.commit(secret_project, manifest_bytes({"s.bin": entry(secret)})).is_success
    mallory = Api(
        hostile_server,
        hostile_server.new_user(unique_project("mallory"), {("admin", own_project): "writer"}),
    )
    answer = mallory.commit(own_project, manifest_bytes({"s.bin": entry(secret)}))
    mallory.refused(answer, "a manifest naming another project's blob")


# ----- the SDK --------------------------------------------------------------------------


def test_the_sdk_refuses_hostile_names_and_paths(soko_env: object, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    accepted: list[tuple[str, str, str]] = []

    def refuses(what: str, value: str, call: Callable[[], object], error: type[Exception]) -> None:
        try:
            call()
        except error:
            return
        except Exception as exc:  # refused, but not with the soko error it should be
            accepted.append((what, value[:40], type(exc).__name__))
            return
        accepted.append((what, value[:40], "accepted"))

    artifact = soko.Artifact("fine", "dataset")
    for name in NAMES:
        refuses("Artifact", name, lambda n=name: soko.Artifact(n, "dataset"), ValidationError)
        refuses("Api.artifact", name, lambda n=name: soko.Api().artifact(f"proj/{n}:v0"), SokoError)
    for path in TRAVERSALS:
        if path:  # name="" means the file's own name, as in W&B
            refuses(
                "add_file",
                path,
                lambda p=path: artifact.add_file(str(source), name=p),
                ValidationError,
            )
        refuses("new_file", path, lambda p=path: artifact.new_file(p).__enter__(), ValidationError)
    assert not accepted, accepted


@pytest.mark.parametrize("path", TRAVERSALS)
def test_a_download_of_a_crafted_manifest_writes_nothing_outside_its_root(
    soko_env: object, tmp_path: Path, path: str
) -> None:
    """A store whose manifest blob names a hostile path (a store written by something else
    than this soko): the download refuses it and nothing lands outside the root."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "ok.txt").write_text("fine")
    with soko.init(project="proj") as run:
        artifact = soko.Artifact("data", "dataset")
        artifact.add_file(str(tmp_path / "src" / "ok.txt"))
        run.log_artifact(artifact).wait()
    store_dir = Path(os.environ["SOKO_DIR"])
    data = b"escaped\n"
    raw = manifest_bytes({path: entry(data)})
    manifest = Digest.of_bytes(raw, Algorithm.XXH128)
    store = Store.open_local(store_dir)
    store.blobs.put_bytes(manifest, raw)
    store.blobs.put_bytes(Digest.of_bytes(data, Algorithm.XXH128), data)
    store.engine.dispose()
    with sqlite3.connect(store_dir / "soko.db") as db:
        db.execute("UPDATE versions SET manifest_blob = ?", (str(manifest),))
    connect.reset()

    downloads = tmp_path / "downloads"
    root = downloads / "deep" / "root"
    with pytest.raises(SokoError):
        soko.Api().artifact("proj/data:latest").download(root=str(root))
    outside = {p for p in read_tree(tmp_path) if SENTINEL in p}
    assert not outside, outside
    assert not list(Path("/tmp").glob(f"{SENTINEL}*"))
    assert not [p for p in downloads.rglob("*") if p.is_file() and root not in p.parents]
