"""A flipped byte in every kind of stored and cached object is found, never served.

Stored (embedded store, which is also a folder server's store): a loose blob, a blob inside
a pack, a manifest blob. Cached (a client of a server, ``SOKO_CACHE_DIR``): a blob inside a
cache pack, a cached manifest, a loose cached blob. For each, ``soko verify`` names the
damage or a download raises CorruptBlobError or repairs itself by fetching from the server
again; no download ever writes the wrong bytes. A rotted blob of the embedded store is
taken out of the way by ``soko verify`` (quarantined), so that logging the intact file
again repairs it and the store verifies clean afterwards.

The byte is flipped in place, in the middle of the object's bytes (found by searching the
file for them, so that the test does not depend on the pack format); in a manifest it is
flipped in a file's path, so that the manifest is still valid JSON and only its digest
can tell.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import run_soko
from server_fixtures import SokoServer, point_sdk_at, unique_project
from torture_support import content, read_tree, short

import soko
from soko.client import connect
from soko.core.digests import Algorithm, Digest
from soko.errors import CorruptBlobError
from soko.sdk.artifact import Artifact

pytestmark = [pytest.mark.torture, pytest.mark.integration]

SMALL_FILES = 40  # a batch of 32 or more small files is packed
LARGE = 1_300_000  # over the 1 MiB small-blob limit: a loose blob


def small_tree(seed: int) -> dict[str, bytes]:
    return {f"shard/{n:02d}.bin": content(seed, f"small{n}", 600 + n) for n in range(SMALL_FILES)}


def large_tree(seed: int) -> dict[str, bytes]:
    return {"weights.bin": content(seed, "large", LARGE), "config.json": b'{"layers": 3}\n'}


def files_under(root: Path) -> Iterator[Path]:
    """The files of blobs and packs below *root*, never a SQLite index: opening and
    closing a database file in this process would drop the locks SQLite holds on it for
    the store's own connection, and another process would then reset its write-ahead log
    under that connection."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and not path.name.startswith("index.db"):
            yield path


def flip_inside(root: Path, needle: bytes) -> Path:
    """Flip one bit in the middle of the only occurrence of *needle* in a file under *root*;
    returns that file."""
    found = [(p, p.read_bytes().find(needle)) for p in files_under(root)]
    found = [(p, at) for p, at in found if at >= 0]
    assert len(found) == 1, f"{needle[:16]!r}... is in {len(found)} files under {root}"
    path, at = found[0]
    flip_at(path, at + len(needle) // 2)
    return path


def flip_at(path: Path, offset: int) -> None:
    os.chmod(path, stat.S_IMODE(path.stat().st_mode) | stat.S_IWUSR)
    with path.open("r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x01]))


def log(folder: Path, files: dict[str, bytes], project: str, name: str) -> Artifact:
    for relative, data in files.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    with soko.init(project=project) as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact).wait()
    return artifact


def download(project: str, name: str, root: Path) -> dict[str, bytes]:
    """A download into *root* by a process that remembers nothing of earlier ones."""
    connect.reset()
    artifact = soko.Api().artifact(f"{project}/{name}:latest")
    return read_tree(Path(artifact.download(root=str(root))))


def assert_refused(project: str, name: str, root: Path, good: dict[str, bytes]) -> None:
    """The download raises CorruptBlobError and writes no wrong bytes."""
    with pytest.raises(CorruptBlobError):
        download(project, name, root)
    written = read_tree(root) if root.exists() else {}
    wrong = {p for p, d in written.items() if good.get(p) != d}
    assert not wrong, f"wrong bytes written to {sorted(wrong)}"


# ----- the embedded store -------------------------------------------------------------


def verify() -> tuple[int, str]:
    result = run_soko("verify")
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("kind", ["loose", "packed"])
def test_a_rotted_store_blob_is_refused_reported_and_repaired_by_logging_again(
    soko_env: object, tmp_path: Path, torture_seed: int, kind: str
) -> None:
    good = large_tree(torture_seed) if kind == "loose" else small_tree(torture_seed)
    victim = "weights.bin" if kind == "loose" else "shard/17.bin"
    log(tmp_path / "src", good, "rot", "data")
    store_root = Path(os.environ["SOKO_DIR"]) / "store"
    damaged = flip_inside(store_root / ("blobs" if kind == "loose" else "packs"), good[victim])
    assert (damaged.suffix == ".pack") == (kind == "packed"), damaged

    assert_refused("rot", "data", tmp_path / "out1", good)
    code, said = verify()
    assert code == 1, said
    assert str(Digest.of_bytes(good[victim], Algorithm.XXH128)) in said, said

    # Logging the intact files again stores the blob again, and everything is sound.
    log(tmp_path / "src", good, "rot", "data")
    code, said = verify()
    assert code == 0, f"the store still does not verify after logging the files again:\n{said}"
    assert download("rot", "data", tmp_path / "out2") == good


def test_a_rotted_manifest_blob_is_refused_and_reported(
    soko_env: object, tmp_path: Path, torture_seed: int
) -> None:
    good = small_tree(torture_seed)
    log(tmp_path / "src", good, "rot", "manifest")
    blobs = Path(os.environ["SOKO_DIR"]) / "store" / "blobs"
    # The manifest is the one blob naming the files; it is stored under its digest.
    (manifest_file,) = (p for p in files_under(blobs) if b'"shard/05.bin"' in p.read_bytes())
    hex_digest = manifest_file.name
    # A bit of a file's name: still valid JSON, a manifest naming "shard/05.bio".
    raw = manifest_file.read_bytes()
    flip_at(manifest_file, raw.index(b'"shard/05.bin"') + len(b'"shard/05.bi'))

    assert_refused("rot", "manifest", tmp_path / "out", good)
    code, said = verify()
    assert code == 1, said
    assert hex_digest in said, said


# ----- the client's cache of server downloads -------------------------------------------


@pytest.fixture
def server_client(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_soko_run: None
) -> Path:
    """The SDK of this test talks to the session's server; returns its cache folder."""
    env = point_sdk_at(
        soko_server, soko_server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch
    )
    return env.cache


def _heals(project: str, name: str, good: dict[str, bytes], tmp_path: Path) -> None:
    again = download(project, name, tmp_path / "out2")
    assert again == good, f"downloaded {short(again)}, expected {short(good)}"
    # And the cache holds the right bytes again: a third download from it is right too.
    third = download(project, name, tmp_path / "out3")
    assert third == good, f"downloaded {short(third)}, expected {short(good)}"


def test_a_rotted_blob_in_a_cache_pack_is_fetched_again(
    server_client: Path, tmp_path: Path, torture_seed: int
) -> None:
    project = unique_project("rot")
    good = small_tree(torture_seed)
    log(tmp_path / "src", good, project, "data")
    assert download(project, "data", tmp_path / "out1") == good
    damaged = flip_inside(server_client / "packs", good["shard/23.bin"])
    assert damaged.suffix == ".pack", damaged
    _heals(project, "data", good, tmp_path)


def test_a_rotted_loose_cached_blob_is_fetched_again(
    server_client: Path, tmp_path: Path, torture_seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOKO_CACHE_LARGE", "always")  # the large blob goes into the cache
    project = unique_project("rot")
    good = large_tree(torture_seed)
    log(tmp_path / "src", good, project, "data")
    assert download(project, "data", tmp_path / "out1") == good
    flip_inside(server_client / "blobs", good["weights.bin"])
    _heals(project, "data", good, tmp_path)


def test_a_rotted_cached_manifest_is_evicted_and_fetched_again(
    server_client: Path, tmp_path: Path, torture_seed: int
) -> None:
    project = unique_project("rot")
    good = small_tree(torture_seed)
    log(tmp_path / "src", good, project, "data")
    assert download(project, "data", tmp_path / "out1") == good
    (manifest_file,) = (
        p for p in files_under(server_client / "blobs") if b'"shard/05.bin"' in p.read_bytes()
    )
    raw = manifest_file.read_bytes()
    flip_at(manifest_file, raw.index(b'"shard/05.bin"') + len(b'"shard/05.bi'))
    _heals(project, "data", good, tmp_path)


@pytest.mark.parametrize("kind", ["loose", "packed"])
def test_a_rotted_blob_on_the_server_is_refused_by_the_client(
    soko_server: SokoServer, server_client: Path, tmp_path: Path, torture_seed: int, kind: str
) -> None:
    project = unique_project("rot")
    good = large_tree(torture_seed) if kind == "loose" else small_tree(torture_seed)
    victim = "weights.bin" if kind == "loose" else "shard/31.bin"
    log(tmp_path / "src", good, project, "data")
    damaged = flip_inside(soko_server.log_path.parent / "blobs", good[victim])
    assert (damaged.suffix == ".pack") == (kind == "packed"), damaged
    assert_refused(project, "data", tmp_path / "out", good)
