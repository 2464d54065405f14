"""What the embedded store does beneath the SDK, seen through its blobs and its backend.

The behaviour every backend shares (versions, aliases, downloads, drafts, references, runs)
is the backend conformance suite's, in ``tests/conformance/backends/``. Here: which blobs a
download fetches, corrupt blobs and manifests, paths of a hostile manifest leaving the root,
what a new draft adds to the store, several processes logging into one store, and
``file://`` references that stay out of it.
"""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

import soko
from soko.client import connect
from soko.client.local import LocalBackend
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.errors import CorruptBlobError, ValidationError
from soko.service.commit import commit_version
from soko.storage.base import blob_key

pytestmark = pytest.mark.usefixtures("soko_env")

Items = Sequence[tuple[Digest, str]]


def write(path: str | Path, content: str | bytes) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        target.write_text(content)
    else:
        target.write_bytes(content)
    return target


def files_below(root: str | Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, root).replace(os.sep, "/")] = Path(full).read_bytes()
    return found


def local_backend() -> LocalBackend:
    backend = connect.get_backend()
    assert isinstance(backend, LocalBackend)
    return backend


def log(name: str, files: dict[str, str | bytes]) -> soko.Artifact:
    """Log *files* as the next version of *name* from a run of its own; returns it logged."""
    folder = Path(f"src-{name}-{len(list(Path('.').glob(f'src-{name}-*')))}")
    for relative, content in files.items():
        write(folder / relative, content)
    with soko.init() as run:
        artifact = soko.Artifact(name, "dataset")
        artifact.add_dir(str(folder))
        run.log_artifact(artifact)
    return artifact


class Spy:
    """Records the items each call of a backend method received, then calls the original."""

    def __init__(self, original: Callable[..., None]) -> None:
        self.original = original
        self.calls: list[list[tuple[Digest, str]]] = []

    def __call__(self, items: Items, **kwargs: Any) -> None:
        self.calls.append(list(items))
        self.original(items, **kwargs)

    @property
    def digests(self) -> list[Digest]:
        return [digest for call in self.calls for digest, _ in call]


@pytest.fixture
def fetch_spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    backend = local_backend()
    spy = Spy(backend.fetch_blobs)
    monkeypatch.setattr(backend, "fetch_blobs", spy)
    return spy


def unchecked_entry(path: str, digest: str, size: int, ref: str | None = None) -> Entry:
    """An Entry whose path skipped every validation, as a hostile manifest would hold it."""
    entry = object.__new__(Entry)
    values = {"path": path, "digest": digest, "size": size, "ref": ref, "extra": {}}
    values["birth_artifact_id"] = None
    for field_name, value in values.items():
        object.__setattr__(entry, field_name, value)
    return entry


# ----- downloads ----------------------------------------------------------------------------


FILES = {"a.txt": "alpha", "d/b.txt": "beta", "d/e/c.bin": b"\x00gamma"}


def test_download_of_an_unchanged_root_reads_no_blob_and_rewrites_nothing(
    fetch_spy: Spy,
) -> None:
    artifact = log("data", FILES)
    root = artifact.download(root="root")
    assert files_below(root) == {
        k: v.encode() if isinstance(v, str) else v for k, v in FILES.items()
    }
    assert len(fetch_spy.digests) == 3
    before = {p: os.stat(Path(root, p)) for p in FILES}

    fetch_spy.calls.clear()
    assert soko.Api().artifact("data:v0").download(root="root") == root

    assert fetch_spy.calls == [[]]
    for path, st in before.items():
        now = os.stat(Path(root, path))
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns), path


def test_download_keeps_matching_files_it_did_not_write_itself(fetch_spy: Spy) -> None:
    artifact = log("data", FILES)
    write("root/a.txt", "alpha")  # the right bytes, put there by the user
    write("root/d/b.txt", "BETA")  # the right size, other bytes
    kept = os.stat("root/a.txt")

    artifact.download(root="root")

    fetched = {d.b64 for d in fetch_spy.digests}
    by_path = {e.path: e.digest for e in artifact.manifest}
    assert fetched == {by_path["d/b.txt"], by_path["d/e/c.bin"]}
    now = os.stat("root/a.txt")
    assert (now.st_ino, now.st_mtime_ns) == (kept.st_ino, kept.st_mtime_ns)
    assert Path("root/d/b.txt").read_text() == "beta"


def test_download_fetches_again_only_a_file_changed_in_the_root(fetch_spy: Spy) -> None:
    artifact = log("data", FILES)
    root = Path(artifact.download(root="root"))
    untouched = os.stat(root / "a.txt")
    (root / "d/b.txt").write_text("BETA")  # same size, other bytes
    (root / "d/e/c.bin").unlink()

    fetch_spy.calls.clear()
    artifact.download(root=str(root))

    assert sorted(d.b64 for d in fetch_spy.digests) == sorted(
        e.digest for e in artifact.manifest if e.path in ("d/b.txt", "d/e/c.bin")
    )
    assert (root / "d/b.txt").read_text() == "beta"
    assert (root / "d/e/c.bin").read_bytes() == b"\x00gamma"
    now = os.stat(root / "a.txt")
    assert (now.st_ino, now.st_mtime_ns) == (untouched.st_ino, untouched.st_mtime_ns)


def test_a_reference_download_removes_its_killed_temp_and_writes_through_a_locked_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write("mount/ref.txt", "referenced")
    with soko.init() as run:
        artifact = soko.Artifact("refs", "dataset")
        artifact.add_reference(f"file://{Path('mount/ref.txt').resolve()}")
        run.log_artifact(artifact)
    stale = Path("root/.ref.txt.soko-dl-0123456789ab.tmp")
    write(stale, "half")
    long_ago = time.time() - 3600
    os.utime(stale, (long_ago, long_ago))
    from soko.refs import base as refs_base

    locked: list[bool] = []
    real_handler_for = refs_base.handler_for

    def handler_for(uri: str) -> Any:
        handler = real_handler_for(uri)
        real_fetch = handler.fetch

        def fetch(entry: Any, out: Any) -> None:
            (temp,) = Path("root").glob(".ref.txt.soko-dl-*.tmp")
            with open(temp, "rb") as probe:
                try:
                    fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    locked.append(False)
                except BlockingIOError:
                    locked.append(True)
            real_fetch(entry, out)

        monkeypatch.setattr(handler, "fetch", fetch)
        return handler

    monkeypatch.setattr("soko.sdk.transfer.handler_for", handler_for)
    soko.Api().artifact("refs:latest").download(root="root")

    assert locked == [True]
    assert sorted(p.name for p in Path("root").iterdir()) == ["ref.txt"]
    assert Path("root/ref.txt").read_text() == "referenced"


def test_a_corrupted_blob_is_detected_on_download(soko_env: Any) -> None:
    artifact = log("data", {"good.txt": "fine", "bad.txt": "to be corrupted"})
    entry = artifact.manifest.get("bad.txt")
    assert entry is not None
    digest = entry.blob_digest()
    blob = soko_env.store / "store" / blob_key(digest)
    assert blob.is_file()
    blob.chmod(blob.stat().st_mode | stat.S_IWUSR)
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    blob.write_bytes(bytes(data))

    with pytest.raises(CorruptBlobError) as caught:
        soko.Api().artifact("data:v0").download(root="root")
    assert digest.hex in str(caught.value)
    # Nothing of the corrupt blob reached the root, not even a temporary file.
    assert set(files_below("root")) <= {"good.txt"}


def test_a_corrupted_manifest_blob_is_detected(soko_env: Any) -> None:
    artifact = log("data", {"a.txt": "alpha"})
    record = local_backend().get_version(str(artifact.id))
    assert record.manifest_blob is not None
    algorithm, _, hex_digest = record.manifest_blob.partition(":")
    digest = Digest.from_hex(hex_digest, Algorithm.parse(algorithm))
    blob = soko_env.store / "store" / blob_key(digest)
    blob.chmod(blob.stat().st_mode | stat.S_IWUSR)
    blob.write_bytes(blob.read_bytes().replace(b"a.txt", b"b.txt"))
    connect.reset()  # a new process: the manifest is not in memory

    with pytest.raises(CorruptBlobError, match=hex_digest):
        soko.Api().artifact("data:v0").download(root="root")
    assert not Path("root").exists()


def _commit_hostile(paths: Sequence[str]) -> None:
    """Commit a version whose manifest names *paths*, each holding a stored blob."""
    backend = local_backend()
    content = b"escaped!"
    digest = Digest.of_bytes(content, Algorithm.MD5)
    backend.store.blobs.put_bytes(digest, content)
    entries = [unchecked_entry(p, digest.b64, len(content)) for p in paths]
    manifest = Manifest.of(entries, Algorithm.MD5)
    commit_version(
        backend.store,
        CommitRequest(entity="local", project="uncategorized", name="evil", type="dataset",
                      manifest=manifest),
    )  # fmt: skip


@pytest.mark.parametrize("fresh_process", [False, True], ids=["cached-manifest", "from-store"])
def test_a_path_leaving_the_root_is_refused_at_download(soko_env: Any, fresh_process: bool) -> None:
    outside = soko_env.workdir / "outside"
    outside.mkdir()
    absolute = str(outside / "abs-escape.txt")
    _commit_hostile(["ok.txt", "../escape.txt", "sub/../../escape2.txt", absolute.lstrip("/")])
    _commit_hostile([absolute])  # a second version: an absolute path only
    if fresh_process:
        connect.reset()  # the manifest is read back from its blob, not from memory

    before = files_below(soko_env.workdir)
    for selector in ("v0", "v1"):
        with pytest.raises(ValidationError):
            soko.Api().artifact(f"evil:{selector}").download(root="outside/root")
    assert files_below(soko_env.workdir) == before
    assert not Path(absolute).exists()


# ----- incremental drafts -------------------------------------------------------------------


def _stored_blobs() -> set[Digest]:
    return {info.digest for info in local_backend().store.blobs.list()}


def _manifest_digest(artifact: soko.Artifact) -> Digest:
    record = artifact._record
    assert record is not None and record.manifest_blob is not None
    algorithm, _, hex_digest = record.manifest_blob.partition(":")
    return Digest.from_hex(hex_digest, Algorithm.parse(algorithm))


def test_new_draft_stores_only_the_added_files() -> None:
    base = log("data", {f"f{i}.txt": f"file {i}" for i in range(20)})
    before = _stored_blobs()
    assert len(before - {_manifest_digest(base)}) == 20
    write("new.txt", "a new file")
    write("f3-new.txt", "file 3 changed")

    with soko.init() as run:
        draft = run.use_artifact("data:latest").new_draft()
        draft.add_file("new.txt")
        draft.remove("f3.txt")
        draft.add_file("f3-new.txt", name="f3.txt")
        run.log_artifact(draft)

    assert draft.version == "v1"
    expected = {e.blob_digest() for e in draft.manifest if e.path in ("new.txt", "f3.txt")}
    assert _stored_blobs() - before == expected | {_manifest_digest(draft)}


_WRITER = """
import sys
from pathlib import Path

import soko

worker, count = sys.argv[1], int(sys.argv[2])
with soko.init(project="shared") as run:
    for i in range(count):
        path = Path(f"w{worker}-{i}.txt")
        path.write_text(f"worker {worker} step {i}")
        artifact = soko.Artifact("together", "dataset")
        artifact.add_file(str(path), name="data.txt")
        run.log_artifact(artifact, aliases=[f"worker-{worker}"])
"""


def test_processes_logging_at_once_get_distinct_version_numbers(soko_env: Any) -> None:
    script = soko_env.workdir / "writer.py"
    script.write_text(_WRITER)
    workers, count = 3, 8
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(w), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for w in range(workers)
    ]
    outputs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in processes]
    assert [p.returncode for p in processes] == [0] * workers, "\n".join(outputs)

    api = soko.Api()
    versions = api.artifacts("dataset", "shared/together")
    assert sorted(int(v.version[1:]) for v in versions) == list(range(workers * count))
    contents = {Path(v.download(root=f"v/{v.version}"), "data.txt").read_text() for v in versions}
    assert contents == {f"worker {w} step {i}" for w in range(workers) for i in range(count)}
    assert api.artifact("shared/together:latest").version == f"v{workers * count - 1}"
    for w in range(workers):
        assert api.artifact(f"shared/together:worker-{w}").logged_by() is not None


# ----- file:// references -------------------------------------------------------------------


def test_file_references_are_not_copied_into_the_store(soko_env: Any) -> None:
    mount = soko_env.workdir / "mount"
    write(mount / "big.bin", b"\xab" * 4096)
    with soko.init() as run:
        artifact = soko.Artifact("refs", "dataset")
        artifact.add_reference(f"file://{mount}/big.bin")
        run.log_artifact(artifact)
    stored = [b for b in (soko_env.store / "store" / "blobs").rglob("*") if b.is_file()]
    assert all(b.read_bytes() != b"\xab" * 4096 for b in stored)
