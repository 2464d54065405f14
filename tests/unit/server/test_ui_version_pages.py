"""The version page reads its files through the manifest's index: a folder of many files
pages through them all (sub-folders first, no file twice or left out) across slices of the
manifest, the first view of a version committed before indexes existed builds its index
once, and a diff walks two versions in path order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from soko.core import manifest_index
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.metadata.schema import manifest_indexes
from soko.server.app import create_app
from soko.server.config import ServerConfig
from soko.server.ui.pages import FILES_PER_PAGE
from soko.service.commit import commit_version
from soko.service.store import Store

TOP_FILES = 2 * FILES_PER_PAGE + 30


def reference(path: str, tag: str = "") -> Entry:
    uri = f"s3://bucket/{path}{tag}"
    return Entry(path=path, digest=uri, ref=uri, size=len(path))


PATHS = (
    [f"f{i:04d}.bin" for i in range(TOP_FILES)]
    + [f"sub-{i}/x.bin" for i in range(3)]
    + ["sub-1/deep/y.bin"]
)


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Store]]:
    # Slices of 16 entries: a page of a folder spans many of them.
    monkeypatch.setattr(manifest_index, "SLICE_ENTRIES", 16)
    store = Store.open_local(tmp_path / "store")
    app = create_app(ServerConfig(db_url="", store_url=str(tmp_path)), store=store, local_ui=True)
    yield TestClient(app, base_url="http://127.0.0.1"), store


def commit(store: Store, paths: list[str], tag: str = "") -> str:
    request = CommitRequest(
        entity="e",
        project="p",
        name="big",
        type="dataset",
        manifest=Manifest.of(reference(p, tag if p.startswith("f00") else "") for p in paths),
    )
    return commit_version(store, request).id


def listed(html: str) -> tuple[list[str], list[str]]:
    folders = re.findall(r'<tr class="folder">\s*<td><a href="[^"]*">([^<]+)/</a>', html)
    files = re.findall(r'<tr class="file">\s*<td>([^<]+)</td>', html)
    return folders, files


def test_a_folder_pages_through_every_file_once(served: tuple[TestClient, Store]) -> None:
    client, store = served
    version = commit(store, PATHS)
    seen_folders: list[str] = []
    seen_files: list[str] = []
    for number in (1, 2, 3):
        page = client.get(f"/v/{version}", params={"page": number})
        assert page.status_code == 200
        folders, files = listed(page.text)
        assert len(folders) + len(files) == (FILES_PER_PAGE if number < 3 else 33)
        seen_folders += folders
        seen_files += files
    assert seen_folders == ["sub-0", "sub-1", "sub-2"]
    assert seen_files == [p for p in PATHS if "/" not in p]
    assert f"{TOP_FILES + 4} files" in client.get(f"/v/{version}").text
    inner = client.get(f"/v/{version}", params={"dir": "sub-1"}).text
    assert listed(inner) == (["deep"], ["x.bin"])
    assert client.get(f"/v/{version}", params={"dir": "nope"}).status_code == 404
    one = client.get(f"/v/{version}/file", params={"path": "sub-1/deep/y.bin"})
    assert one.status_code == 404 and "reference" in one.text  # found, and a reference


def test_an_index_is_built_once_for_a_version_that_has_none(
    served: tuple[TestClient, Store],
) -> None:
    client, store = served
    version = commit(store, PATHS[:40])  # small: no index written at commit
    with store.engine.begin() as conn:
        conn.execute(delete(manifest_indexes))
    store._indexes.clear()
    assert client.get(f"/v/{version}").status_code == 200
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(manifest_indexes)).scalar() == 1


def test_a_diff_walks_both_versions(served: tuple[TestClient, Store]) -> None:
    client, store = served
    first = commit(store, PATHS)
    second = commit(store, [*PATHS[5:], "new.bin"], tag="-changed")
    page = client.get(f"/v/{second}/diff", params={"other": "v0"})
    assert page.status_code == 200
    counts = re.search(r'id="diff-counts">(\d+) added, (\d+) removed, (\d+) changed', page.text)
    assert counts is not None
    # f0000..f0004 removed, f0005..f0099 changed (their URIs), new.bin added.
    assert counts.groups() == ("1", "5", "95")
    assert first != second
