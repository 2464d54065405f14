"""``soko gc`` refuses a database and a blob store that do not belong together."""

from __future__ import annotations

import shutil
import subprocess
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
    # gc names the store it works on first, then refuses it in one line.
    said, _, refused = result.stderr.partition("\n")
    assert said.startswith("Store: the embedded store at "), result.stderr
    rest = subprocess.CompletedProcess(result.args, result.returncode, result.stdout, refused)
    assert_user_error(rest, 1, "belongs to another metadata database")
    assert LocalBlobStore(ours / "store").read_bytes(digest) == data
