"""``soko gc`` refuses a database and a blob store that do not belong together."""

from __future__ import annotations

import shutil
from pathlib import Path

from cli_helpers import assert_user_error, run_soko

from soko.core.digests import Algorithm, Digest
from soko.service.store import Store
from soko.storage.local import LocalBlobStore


def test_gc_refuses_a_store_of_another_database(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    Store.open_local(ours)
    other = Store.open_local(theirs)
    data = b"a blob that only the other database names"
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    other.blobs.put_bytes(digest, data)
    # Our database, now given the other database's store (unreferenced here: gc would
    # delete its blob).
    shutil.rmtree(ours / "store")
    shutil.move(theirs / "store", ours / "store")
    result = run_soko("gc", "--grace", "0", env={"SOKO_DIR": str(ours)})
    assert_user_error(result, 1, "belongs to another metadata database")
    assert LocalBlobStore(ours / "store").read_bytes(digest) == data
