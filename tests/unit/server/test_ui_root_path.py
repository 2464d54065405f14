"""The web UI behind a reverse proxy that serves it under a prefix (``--root-path``): the
links from a page to its own other pages carry the prefix once. In-process (Starlette's
test client over an embedded store), so it is cheap."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from soko.core.digests import Digest
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.server.app import create_app
from soko.server.config import ServerConfig
from soko.service.commit import commit_version
from soko.service.store import Store


def test_links_to_other_pages_carry_the_prefix_once(tmp_path: Path) -> None:
    store = Store.open_local(tmp_path)
    table = json.dumps({"columns": ["i"], "data": [[i] for i in range(120)], "nrows": 120})
    entries = []
    for i in range(120):
        data = table.encode() if i == 0 else f"file {i}".encode()
        digest = Digest.of_bytes(data)
        store.blobs.put_bytes(digest, data)
        path = "rows.table.json" if i == 0 else f"f{i:03d}.txt"
        entries.append(Entry(path=path, digest=digest.b64, size=len(data)))
    version = commit_version(
        store,
        CommitRequest(
            entity="e", project="p", name="d", type="dataset", manifest=Manifest.of(entries)
        ),
    )
    app = create_app(ServerConfig(db_url="", store_url=str(tmp_path)), store=store, local_ui=True)
    client = TestClient(app, base_url="http://127.0.0.1", root_path="/soko")
    for page in (f"/soko/v/{version.id}/table", f"/soko/v/{version.id}"):
        answer = client.get(page, params={"path": "rows.table.json"})
        assert answer.status_code == 200, answer.text
        following = re.findall(r'rel="next" href="([^"]+)"', answer.text)
        assert len(following) == 1 and following[0].startswith(f"{page}?"), following
    lineage = client.get(f"/soko/v/{version.id}/lineage")
    expand = re.search(r'href="([^"]+)" id="expand"', lineage.text)
    assert expand is not None and expand.group(1) == f"/soko/v/{version.id}/lineage?hops=3"
