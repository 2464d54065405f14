"""``soko verify`` and ``soko gc`` on a store whose small blobs were logged into packs."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from cli_helpers import RunSoko, TreeFactory

import soko
from soko.core.digests import Algorithm, Digest
from soko.errors import CorruptBlobError
from soko.storage.local import LocalBlobStore

HOUR = 3600
FILES = 200  # enough for the log to write packs (a batch of fewer than 32 stays loose)


def _files(tag: str) -> dict[str, str]:
    return {f"d{i % 5}/{tag}{i}.txt": f"{tag} file {i}" for i in range(FILES)}


def _log(name: str, files: dict[str, str], make_tree: TreeFactory) -> soko.Artifact:
    with soko.init(project="proj") as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(str(make_tree(files)))
        run.log_artifact(artifact).wait()
    return artifact


def _store(env_store: Path) -> LocalBlobStore:
    return LocalBlobStore(env_store / "store")


def _packs(env_store: Path) -> list[Path]:
    return sorted((env_store / "store" / "packs").glob("*.pack"))


def _age_packs(env_store: Path, seconds: float) -> None:
    """Make every packed blob and pack file look *seconds* old."""
    index = env_store / "store" / "packs" / "index.db"
    with sqlite3.connect(index) as conn:
        conn.execute("UPDATE packed SET written = written - ?", (seconds,))
    past = time.time() - seconds
    for pack in _packs(env_store):
        os.utime(pack, (past, past))
    for path in (env_store / "store" / "blobs").rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def _digest(text: str) -> Digest:
    return Digest.of_bytes(text.encode(), Algorithm.XXH128)


def _flip_packed_byte(env_store: Path, digest: Digest) -> None:
    location = _store(env_store).packs.locate([digest])[digest]
    pack = env_store / "store" / "packs" / f"{location.pack}.pack"
    pack.chmod(0o644)
    with open(pack, "r+b") as handle:
        handle.seek(location.offset)
        first = handle.read(1)
        handle.seek(location.offset)
        handle.write(bytes([first[0] ^ 0xFF]))


def test_small_files_are_logged_into_packs_and_download(soko_env, make_tree: TreeFactory):
    files = _files("a")
    artifact = _log("packed", files, make_tree)
    assert _packs(soko_env.store)  # the log wrote packs
    loose = list((soko_env.store / "store" / "blobs").rglob("*.*"))
    assert loose == []  # no loose file blobs (the manifest's name has no dot)
    root = Path(artifact.download(root=str(soko_env.workdir / "out")))
    assert {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*.txt")} == files


def test_verify_names_a_flipped_byte_in_a_pack_and_download_refuses_it(
    soko_cli: RunSoko, soko_env, make_tree: TreeFactory
):
    artifact = _log("packed", _files("a"), make_tree)
    assert soko_cli("verify").returncode == 0
    bad = _digest("a file 7")
    _flip_packed_byte(soko_env.store, bad)

    result = soko_cli("verify", "--json")
    assert result.returncode == 1
    problems = json.loads(result.stdout)["problems"]
    assert [(p["kind"], p["subject"]) for p in problems] == [("corrupt_blob", str(bad))]
    with pytest.raises(CorruptBlobError, match=bad.hex):
        artifact.download(root=str(soko_env.workdir / "out"))


def test_gc_deletes_unreferenced_packed_blobs_and_reclaims_their_packs(
    soko_cli: RunSoko, soko_env, make_tree: TreeFactory
):
    keep_files = _files("k")
    keep = _log("keep", keep_files, make_tree)
    gone = _log("gone", {**_files("g"), "shared.txt": "k file 1"}, make_tree)
    gone.delete()
    _age_packs(soko_env.store, 2 * HOUR)
    packs_before = _packs(soko_env.store)

    dry = json.loads(soko_cli("gc", "--dry-run", "--json").stdout)
    # The 200 files only gone:v0 named, and its manifest; "k file 1" is keep's too.
    assert len(dry["deleted"]) == FILES + 1
    assert _packs(soko_env.store) == packs_before

    real = soko_cli("gc")
    assert real.returncode == 0, real.stderr
    assert real.stdout.startswith(f"Deleted {FILES + 1} of ")
    assert "Reclaimed" in real.stdout and "of packs" in real.stdout
    after = _packs(soko_env.store)
    assert len(after) < len(packs_before)
    store = _store(soko_env.store)
    assert store.missing(_digest(f"g file {i}") for i in range(FILES)) == {
        _digest(f"g file {i}") for i in range(FILES)
    }
    assert soko_cli("verify").returncode == 0
    root = Path(keep.download(root=str(soko_env.workdir / "keep")))
    assert {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*.txt")} == (
        keep_files
    )
