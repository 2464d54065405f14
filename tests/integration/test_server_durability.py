"""Several server processes on one folder store: a commit makes durable the blobs it names,
also those another process wrote and did not sync (its client uploaded there, and commits
through this process)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import httpx
import pytest

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import ALG_EXTRA_KEY, Entry, Manifest
from soko.server.app import create_app
from soko.server.auth import bootstrap_admin
from soko.server.config import ServerConfig
from soko.service.store import Store
from soko.storage import durability
from soko.storage.base import blob_key
from soko.storage.local import LocalBlobStore
from soko.wire.framing import MEDIA_TYPE, frame_header

pytestmark = pytest.mark.integration

KEY = "soko_test_durability_admin_key_0123456789"
OWNER = {"entity": "e", "project": "p"}


def test_a_commit_syncs_the_blobs_another_process_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_url, root = f"sqlite:///{tmp_path / 'meta.db'}", tmp_path / "blobs"
    store = Store.open(db_url, LocalBlobStore(root))
    bootstrap_admin(store.engine, env_key=KEY)
    data = os.urandom(3 * 1024 * 1024)
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    (tmp_path / "blob.bin").write_bytes(data)
    # Another server process stores the upload (not synced: its client has not committed)
    # and records it for the project, in the database both share.
    other_process = textwrap.dedent(
        f"""
        from soko.core.digests import Algorithm, Digest
        from soko.service import possession
        from soko.service.store import Store
        from soko.storage.local import LocalBlobStore

        data = open({str(tmp_path / "blob.bin")!r}, "rb").read()
        digest = Digest.of_bytes(data, Algorithm.XXH128)
        store = Store.open({db_url!r}, LocalBlobStore({str(root)!r}))
        store.blobs.put_bytes(digest, data)
        possession.record_uploads(store, entity="e", project="p", blobs=[(digest, len(data))])
        """
    )
    subprocess.run([sys.executable, "-c", other_process], check=True, timeout=120)
    fsynced: list[str] = []
    original = durability.fsync_file

    def spying(path: str) -> None:
        fsynced.append(path)
        original(path)

    monkeypatch.setattr(durability, "fsync_file", spying)
    entry = Entry("big.bin", digest.b64, len(data), extra={ALG_EXTRA_KEY: "XXH128"})
    raw = Manifest.of([entry], Algorithm.XXH128).to_bytes()
    manifest = Digest.of_bytes(raw, Algorithm.XXH128)
    app = create_app(ServerConfig(db_url=db_url, store_url=str(root)), store=store)

    async def upload_and_commit() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://soko/api/v1",
            headers={"Authorization": f"Bearer {KEY}"},
        ) as api:
            uploaded = await api.post(
                "/blobs/batch",
                params=OWNER,
                content=frame_header(manifest, len(raw)) + raw,
                headers={"Content-Type": MEDIA_TYPE},
            )
            assert uploaded.status_code == 200, uploaded.text
            body = {**OWNER, "name": "n", "type": "dataset", "algorithm": "XXH128"}
            return await api.post("/versions", json={**body, "manifest_blob": str(manifest)})

    made = anyio.run(upload_and_commit)
    assert made.status_code == 200, made.text
    assert str(root / blob_key(digest)) in fsynced
