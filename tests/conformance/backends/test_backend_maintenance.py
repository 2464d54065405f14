"""Garbage collection after a delete, on the backends whose store ``soko gc`` reaches.

Only the embedded store has the ``maintenance`` capability: a server exposes no gc or
verify over HTTP, and the commands open SOKO_DIR, not a server's database and bucket. So
this case is generated for the embedded store alone (see ``backend_suite.MAINTENANCE``).
"""

from __future__ import annotations

import base64

import pytest
from backend_suite import MAINTENANCE, Backend, files_below

import soko


def hex_of(artifact: soko.Artifact, path: str) -> str:
    return base64.b64decode(artifact.get_entry(path).digest).hex()


@pytest.mark.needs(MAINTENANCE)
def test_gc_after_a_delete_keeps_the_blobs_other_versions_need(backend: Backend) -> None:
    shared = b"shared by both versions" * 100
    old = backend.log("data", {"only-old.txt": "only in v0", "shared.bin": shared})
    backend.log("data", {"only-new.txt": "only in v1", "shared.bin": shared})
    assert backend.gc()["deleted"] == []  # every blob is live

    old.delete()
    report = backend.gc()

    deleted = {digest.partition(":")[2] for digest in report["deleted"]}
    assert hex_of(old, "only-old.txt") in deleted
    assert hex_of(old, "shared.bin") not in deleted
    root = soko.Api().artifact("data:latest").download(root="after-gc")
    assert files_below(root) == {"only-new.txt": b"only in v1", "shared.bin": shared}
    check = backend.check_store()
    assert (check["ok"], check["exit_code"]) == (True, 0)
    assert backend.gc()["deleted"] == []
