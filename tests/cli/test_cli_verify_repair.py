"""A blob of the embedded store whose bytes rot: ``soko verify`` names it with the versions
it breaks and moves it to the quarantine; logging the intact files again, or ``soko verify
--repair`` with an intact copy in the download cache, stores it again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import RunSoko, TreeFactory

import soko
from soko.client.cache import BlobCache
from soko.core.digests import Algorithm, Digest
from soko.errors import CorruptBlobError
from soko.storage.base import blob_key
from soko.storage.local import LocalBlobStore

PACKED = {f"d{i % 4}/p{i:03d}.txt": f"packed file {i}\n" for i in range(40)}
"""Enough files for the log to write a pack (a batch of fewer than 32 stays loose)."""
LOOSE = {"a.txt": "alpha\n", "b.txt": "beta\n"}


def _log(name: str, folder: Path) -> soko.Artifact:
    with soko.init(project="proj") as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    return artifact


def _digest(text: str) -> Digest:
    return Digest.of_bytes(text.encode(), Algorithm.XXH128)


def _flip_a_byte(store: Path, digest: Digest) -> None:
    """One byte of the stored blob changes, loose or packed (a disk's rot)."""
    loose = store / "store" / blob_key(digest)
    if loose.exists():
        path, offset = loose, 0
    else:
        location = LocalBlobStore(store / "store").packs.locate([digest])[digest]
        path, offset = store / "store" / "packs" / f"{location.pack}.pack", location.offset
    path.chmod(0o644)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        first = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([first[0] ^ 0x20]))


def _is_packed(store: Path, digest: Digest) -> bool:
    return bool(LocalBlobStore(store / "store").packs.locate([digest]))


def _tree(root: str | Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in Path(root).rglob("*.txt")}


@pytest.mark.parametrize(("files", "damaged_path"), [(LOOSE, "a.txt"), (PACKED, "d3/p007.txt")])
def test_a_relog_of_the_intact_files_stores_a_rotted_blob_again(
    soko_cli: RunSoko,
    soko_env,
    make_tree: TreeFactory,
    files: dict[str, str],
    damaged_path: str,
):
    folder = make_tree(files)
    _log("ds", folder)
    bad = _digest(files[damaged_path])
    assert _is_packed(soko_env.store, bad) is (files is PACKED)
    _flip_a_byte(soko_env.store, bad)

    found = soko_cli("verify")
    assert found.returncode == 1, found.stdout + found.stderr
    errors = [line for line in found.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1
    assert errors[0].startswith(f"ERROR corrupt blob {bad}: its ")
    assert f"breaks local/proj/ds:v0 ('{damaged_path}')" in errors[0]
    assert "moved to the quarantine" in errors[0]
    assert found.stdout.rstrip().endswith(": 1 problem.")
    assert "log the same files again" in found.stderr
    assert "soko verify --repair" in found.stderr
    quarantined = soko_env.store / "store" / "quarantine" / "xxh128" / bad.hex
    assert quarantined.is_file()
    with pytest.raises(CorruptBlobError, match=bad.hex):
        soko.Api().artifact("proj/ds:v0").download(root=str(soko_env.workdir / "refused"))

    relogged = _log("ds", folder)  # the same files again, through the SDK

    assert relogged.version == "v0"  # no new version: the same content
    checked = soko_cli("verify", "--json")
    assert checked.returncode == 0, checked.stdout
    assert json.loads(checked.stdout)["problems"] == []
    root = soko.Api().artifact("proj/ds:v0").download(root=str(soko_env.workdir / "out"))
    assert _tree(root) == files
    # The quarantined copy is no longer needed: gc removes it, once it is older than the
    # grace period (a copy being checked again passes through the quarantine).
    kept = soko_cli("gc", "--json")
    assert json.loads(kept.stdout)["quarantine_removed"] == 0
    assert quarantined.exists()
    collected = soko_cli("gc", "--json", "--grace", "0")
    assert json.loads(collected.stdout)["quarantine_removed"] == 1
    assert not quarantined.exists()


def test_a_download_from_the_store_sets_a_rotted_blob_aside_for_a_relog(
    soko_cli: RunSoko, soko_env, make_tree: TreeFactory
):
    folder = make_tree(PACKED)
    _log("ds", folder)
    bad = _digest(PACKED["d1/p005.txt"])
    _flip_a_byte(soko_env.store, bad)

    with pytest.raises(CorruptBlobError, match="quarantine"):
        soko.Api().artifact("proj/ds:v0").download(root=str(soko_env.workdir / "refused"))

    assert not _is_packed(soko_env.store, bad)
    _log("ds", folder)
    assert soko_cli("verify").returncode == 0
    root = soko.Api().artifact("proj/ds:v0").download(root=str(soko_env.workdir / "out"))
    assert _tree(root) == PACKED


def _cache_intact_copies(cache_dir: Path, loose: dict[Digest, bytes], packed: dict[Digest, bytes]):
    """What downloads from a server leave in the download cache: blob files and packs."""
    cache = BlobCache(cache_dir)
    for digest, data in loose.items():
        source = cache_dir.parent / f"copy-{digest.hex}"
        source.write_bytes(data)
        cache.put_file(digest, str(source))
    with cache.packer() as writer:
        for digest, data in packed.items():
            writer.add(digest, data)


def test_verify_repair_restores_rotted_blobs_from_the_download_cache(
    soko_cli: RunSoko, soko_env, make_tree: TreeFactory
):
    _log("loose", make_tree(LOOSE))
    _log("packed", make_tree(PACKED))
    in_a_file, in_a_pack = _digest(LOOSE["a.txt"]), _digest(PACKED["d2/p010.txt"])
    assert _is_packed(soko_env.store, in_a_pack) and not _is_packed(soko_env.store, in_a_file)
    for digest in (in_a_file, in_a_pack):
        _flip_a_byte(soko_env.store, digest)
    _cache_intact_copies(
        soko_env.cache,
        loose={in_a_file: LOOSE["a.txt"].encode()},
        packed={in_a_pack: PACKED["d2/p010.txt"].encode()},
    )

    repaired = soko_cli("verify", "--repair")

    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"Restored {in_a_file} from the download cache (local/proj/loose:v0)" in (
        repaired.stdout
    )
    assert f"Restored {in_a_pack} from the download cache (local/proj/packed:v0)" in (
        repaired.stdout
    )
    assert repaired.stdout.strip().endswith("2 problems, 2 repaired.")
    assert soko_cli("verify").returncode == 0
    for name, files in (("loose", LOOSE), ("packed", PACKED)):
        root = soko.Api().artifact(f"proj/{name}:v0").download(root=str(soko_env.workdir / name))
        assert _tree(root) == files


def test_verify_repair_names_the_versions_no_intact_copy_repairs(
    soko_cli: RunSoko, soko_env, make_tree: TreeFactory
):
    _log("loose", make_tree(LOOSE))
    _log("packed", make_tree(PACKED))
    cached, lost = _digest(LOOSE["b.txt"]), _digest(PACKED["d0/p000.txt"])
    for digest in (cached, lost):
        _flip_a_byte(soko_env.store, digest)
    _cache_intact_copies(soko_env.cache, loose={cached: LOOSE["b.txt"].encode()}, packed={})
    # The cache's copy of the lost blob is damaged as well: it is refused, not stored.
    damaged_copy = soko_env.cache / blob_key(lost)
    damaged_copy.parent.mkdir(parents=True, exist_ok=True)
    damaged_copy.write_text("packed file 0, damaged\n")

    result = soko_cli("verify", "--repair", "--json")

    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["repair"] == {
        "restored": [str(cached)],
        "unrepaired": [str(lost)],
        "broken_versions": ["local/proj/packed:v0"],
    }
    text = soko_cli("verify", "--repair")
    assert text.returncode == 1
    assert "Still broken: local/proj/packed:v0" in text.stdout
    root = soko.Api().artifact("proj/loose:v0").download(root=str(soko_env.workdir / "loose"))
    assert _tree(root) == LOOSE
