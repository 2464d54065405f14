"""A download of one folder of a version, through the server's routes: the blobs of the
pages of entries the server served are fetched without the server parsing the whole
manifest, a blob outside them still is checked against it, and paging through a large
version notes at most a bounded number of blobs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.server import state as state_module
from soko.server.app import create_app
from soko.server.auth import bootstrap_admin
from soko.server.config import ServerConfig
from soko.service.commit import commit_version
from soko.service.store import Store
from soko.wire.framing import MEDIA_TYPE

FILES = {f"{folder}/{i}.txt": f"{folder}-{i}".encode() for folder in "abc" for i in range(5)}


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, Store]]:
    store = Store.open_local(tmp_path / "store")
    entries = []
    for path, data in FILES.items():
        digest = Digest.of_bytes(data, Algorithm.XXH128)
        store.blobs.put_bytes(digest, data)
        entries.append(Entry(path, digest.b64, len(data), extra={"alg": "XXH128"}))
    request = CommitRequest(
        entity="e", project="p", name="data", type="dataset", manifest=Manifest.of(entries)
    )
    version_id = commit_version(store, request).id
    key = bootstrap_admin(store.engine, env_key=None)
    assert key is not None
    app = create_app(ServerConfig(db_url="", store_url=str(tmp_path)), store=store)
    client = TestClient(app, base_url="http://127.0.0.1")
    client.headers["Authorization"] = f"Bearer {key}"
    yield client, version_id, store


def _digest(path: str) -> str:
    return str(Digest.of_bytes(FILES[path], Algorithm.XXH128))


def _fetch(client: Any, version_id: str, paths: list[str]) -> Any:
    return client.post(
        f"/api/v1/versions/{version_id}/blobs/batch",
        json={"digests": [_digest(p) for p in paths]},
    )


def test_a_folder_read_page_by_page_is_fetched_without_the_whole_manifest(
    served: tuple[Any, str, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, version_id, store = served
    parses: list[object] = []
    load = store.load_manifest
    monkeypatch.setattr(store, "load_manifest", lambda *a, **k: parses.append(a) or load(*a, **k))

    page = client.get(f"/api/v1/versions/{version_id}/files", params={"prefix": "b/"})
    assert page.status_code == 200, page.text
    assert list(page.json()["contents"]) == [f"b/{i}.txt" for i in range(5)]
    answer = _fetch(client, version_id, [f"b/{i}.txt" for i in range(5)])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(MEDIA_TYPE)
    assert parses == []

    # A blob of the version outside the pages read: the manifest answers, once.
    assert _fetch(client, version_id, ["b/0.txt", "c/1.txt"]).status_code == 200
    assert len(parses) == 1
    stranger = Digest.of_bytes(b"not in the version", Algorithm.XXH128)
    refused = client.post(
        f"/api/v1/versions/{version_id}/blobs/batch", json={"digests": [str(stranger)]}
    )
    assert refused.status_code == 404


def test_paging_through_a_version_notes_a_bounded_number_of_blobs(
    served: tuple[Any, str, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, version_id, store = served
    monkeypatch.setattr(state_module, "PAGE_MEMBERS_MAX", 5)
    for prefix in ("a/", "b/"):
        answer = client.get(f"/api/v1/versions/{version_id}/files", params={"prefix": prefix})
        assert answer.status_code == 200, answer.text
    parses: list[object] = []
    load = store.load_manifest
    monkeypatch.setattr(store, "load_manifest", lambda *a, **k: parses.append(a) or load(*a, **k))
    # The first page's blobs were noted; the second page's, past the bound, were not.
    assert _fetch(client, version_id, ["a/0.txt"]).status_code == 200
    assert parses == []
    assert _fetch(client, version_id, ["b/0.txt"]).status_code == 200
    assert len(parses) == 1
