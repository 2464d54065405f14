"""A blob of the embedded store that rots is set aside when a download finds it, and the
next log of the intact files stores it again, without reading the blobs the store holds."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

import soko
from soko.client import connect
from soko.client.local import LocalBackend
from soko.errors import CorruptBlobError
from soko.storage.base import blob_key
from soko.storage.local import LocalBlobStore
from soko.wire.base import parse_digest

pytestmark = pytest.mark.usefixtures("soko_env")


def log(name: str, files: dict[str, str], folder: str) -> soko.Artifact:
    for relative, content in files.items():
        target = Path(folder) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    with soko.init() as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(folder)
        run.log_artifact(artifact).wait()
    return artifact


def tree(root: str | Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): p.read_text() for p in Path(root).rglob("*.txt")}


def damage(blob: Path) -> bytes:
    """Flip one byte of a stored blob file; returns its intact bytes."""
    intact = blob.read_bytes()
    blob.chmod(blob.stat().st_mode | stat.S_IWUSR)
    blob.write_bytes(bytes([intact[0] ^ 0x01]) + intact[1:])
    return intact


def spy_on_blob_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What the embedded store is asked to read from now on."""
    read: list[Any] = []
    for method in ("open", "read_bytes", "read_packed"):
        original = getattr(LocalBlobStore, method)

        def spying(self: LocalBlobStore, digests: Any, _original: Any = original) -> Any:
            read.append(digests)
            return _original(self, digests)

        monkeypatch.setattr(LocalBlobStore, method, spying)
    return read


def test_a_blob_a_download_finds_rotted_is_stored_again_by_a_relog(
    soko_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"good.txt": "fine", "bad.txt": "to be corrupted"}
    artifact = log("data", files, "src")
    entry = artifact.manifest.get("bad.txt")
    assert entry is not None
    blob = soko_env.store / "store" / blob_key(entry.blob_digest())
    intact = damage(blob)

    with pytest.raises(CorruptBlobError, match="quarantine"):
        soko.Api().artifact("data:v0").download(root="refused")
    assert not blob.exists()
    read = spy_on_blob_reads(monkeypatch)

    relogged = log("data", files, "src")

    assert relogged.version == "v0"
    assert read == []  # the log asked which blobs are missing; it read none it holds
    assert blob.read_bytes() == intact
    assert tree(soko.Api().artifact("data:v0").download(root="out")) == files
    assert read  # the spy sees reads: a download's


def test_a_manifest_found_rotted_is_stored_again_by_a_relog(soko_env: Any) -> None:
    files = {"a.txt": "alpha", "b.txt": "beta"}
    artifact = log("data", files, "src")
    assert artifact._record is not None and artifact._record.manifest_blob is not None
    blob = soko_env.store / "store" / blob_key(parse_digest(artifact._record.manifest_blob))
    intact = damage(blob)
    connect.reset()  # a new process: the manifest is not in memory

    with pytest.raises(CorruptBlobError, match="quarantine"):
        soko.Api().artifact("data:v0").download(root="refused")
    assert not blob.exists()

    log("data", files, "src")
    connect.reset()

    assert blob.read_bytes() == intact
    assert tree(soko.Api().artifact("data:v0").download(root="out")) == files


def test_a_blob_of_another_version_set_aside_keeps_the_relog_fast_path(
    soko_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A re-log of committed content skips the missing-blob question; only a blob of its own
    # manifest (or the manifest) in the quarantine makes it ask, not any blob set aside.
    files = {"a.txt": "alpha", "b.txt": "beta"}
    log("data", files, "src")
    other = log("other", {"c.txt": "gamma"}, "other")
    entry = other.manifest.get("c.txt")
    assert entry is not None
    damage(soko_env.store / "store" / blob_key(entry.blob_digest()))
    with pytest.raises(CorruptBlobError, match="quarantine"):
        soko.Api().artifact("other:v0").download(root="refused")
    asked: list[Any] = []
    original = LocalBackend.missing_blobs

    def spying(self: LocalBackend, digests: Any, **kwargs: Any) -> Any:
        asked.append(digests)
        return original(self, digests, **kwargs)

    monkeypatch.setattr(LocalBackend, "missing_blobs", spying)

    assert log("data", files, "src").version == "v0"
    assert asked == []
    assert log("other", {"c.txt": "gamma"}, "other").version == "v0"
    assert len(asked) == 1  # its own blob is set aside: the log asks, and stores it again
    assert tree(soko.Api().artifact("other:v0").download(root="out")) == {"c.txt": "gamma"}


def test_a_packed_blob_a_download_finds_rotted_is_set_aside_and_named(soko_env: Any) -> None:
    files = {f"f{i:02}.txt": f"file number {i}" for i in range(40)}  # enough to pack
    artifact = log("data", files, "src")
    entry = artifact.manifest.get("f07.txt")
    assert entry is not None
    digest = entry.blob_digest()
    store = LocalBlobStore(soko_env.store / "store")
    location = store.packs.locate([digest])[digest]
    pack = Path(store.packs.pack_path(location.pack))
    data = bytearray(pack.read_bytes())
    data[location.offset] ^= 0x01
    pack.chmod(pack.stat().st_mode | stat.S_IWUSR)
    pack.write_bytes(bytes(data))

    with pytest.raises(CorruptBlobError) as caught:
        soko.Api().artifact("data:latest").download(root="out")
    assert digest.hex in str(caught.value) and "quarantine" in str(caught.value)
    assert store.quarantine.holds([digest])
    assert not Path("out/f07.txt").exists()
