"""What the embedded store promises, checked through the SDK: SPEC §3 on one machine.

Versions and aliases (dedup of identical content, type conflicts, ``latest``, numbers never
reused, deletion rules), downloads that keep what is already right and refuse what is not
(corrupt blobs, paths leaving the root), incremental drafts that upload only what was
added, ``file://`` references, and run states.
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
from soko.errors import (
    CorruptBlobError,
    DigestMismatchError,
    SokoError,
    TypeConflictError,
    ValidationError,
)
from soko.service.commit import CommitRequest, commit_version
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


def log(
    name: str,
    files: dict[str, str | bytes],
    *,
    type: str = "dataset",
    aliases: Sequence[str] = (),
    project: str | None = None,
) -> soko.Artifact:
    """Log *files* as the next version of *name* from a run of its own; returns it logged."""
    folder = Path(f"src-{name}-{len(list(Path('.').glob(f'src-{name}-*')))}")
    for relative, content in files.items():
        write(folder / relative, content)
    with soko.init(project=project) as run:
        artifact = soko.Artifact(name, type)
        artifact.add_dir(str(folder))
        run.log_artifact(artifact, aliases=list(aliases))
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


# ----- versions and aliases ---------------------------------------------------------------


def test_identical_content_makes_no_new_version_and_records_the_second_logger() -> None:
    first = log("data", {"a.txt": "alpha", "b/c.txt": "gamma"}, aliases=["raw"])
    first_run = first.logged_by()
    second = log("data", {"a.txt": "alpha", "b/c.txt": "gamma"}, aliases=["again", "best"])

    assert first.version == second.version == "v0"
    assert second.id == first.id
    versions = soko.Api().artifacts("dataset", "data")
    assert [v.version for v in versions] == ["v0"]
    assert sorted(versions[0].aliases) == ["again", "best", "latest", "raw"]

    loggers = local_backend().runs_of_version(first.id, "logged")
    assert len(loggers) == 2
    assert loggers[0].id == first_run.id
    second_run_ids = {r.id for r in soko.Api().runs()} - {first_run.id}
    assert {loggers[1].id} == second_run_ids


def test_identical_content_of_an_older_version_does_not_move_latest() -> None:
    log("data", {"a.txt": "one"})
    log("data", {"a.txt": "two"})
    again = log("data", {"a.txt": "one"}, aliases=["old-again"])

    assert again.version == "v0"
    api = soko.Api()
    assert api.artifact("data:latest").version == "v1"
    assert api.artifact("data:old-again").version == "v0"
    assert [v.version for v in api.artifacts("dataset", "data")] == ["v0", "v1"]


def test_a_name_logged_under_another_type_is_a_type_conflict() -> None:
    log("cats", {"cat.png": b"meow"}, type="dataset")
    write("model.h5", b"weights")

    run = soko.init()
    artifact = soko.Artifact("cats", "model")
    artifact.add_file("model.h5")
    run.log_artifact(artifact)
    with pytest.raises(TypeConflictError, match="cats"):
        artifact.wait()
    with pytest.raises(TypeConflictError):
        run.finish()

    assert soko.Api().run(run.id).state == "failed"
    assert [v.version for v in soko.Api().artifacts("dataset", "cats")] == ["v0"]
    assert [t.name for t in soko.Api().artifact_types()] == ["dataset"]


def test_type_conflict_surfaces_from_finish_without_wait() -> None:
    log("cats", {"cat.png": b"meow"}, type="dataset")
    write("model.h5", b"weights")
    run = soko.init()
    artifact = soko.Artifact("cats", "model")
    artifact.add_file("model.h5")
    run.log_artifact(artifact)
    with pytest.raises(TypeConflictError):
        run.finish()
    assert soko.run is None


def test_latest_is_always_the_newest_committed_version() -> None:
    api = soko.Api()
    for i in range(4):
        log("steps", {"s.txt": f"step {i}"})
        assert api.artifact("steps:latest").version == f"v{i}"

    api.artifact("steps:v3").delete()
    assert api.artifact("steps:latest").version == "v2"
    api.artifact("steps:v1").delete()
    assert api.artifact("steps:latest").version == "v2"
    log("steps", {"s.txt": "step 4"})
    assert api.artifact("steps:latest").version == "v4"
    latest_holders = [v.version for v in api.artifacts("dataset", "steps") if "latest" in v.aliases]
    assert latest_holders == ["v4"]


def test_version_numbers_are_never_reused_after_delete() -> None:
    api = soko.Api()
    log("nums", {"n.txt": "zero"})
    log("nums", {"n.txt": "one"})
    api.artifact("nums:v1").delete()
    api.artifact("nums:v0").delete()
    assert api.artifacts("dataset", "nums") == []

    again = log("nums", {"n.txt": "one"})  # the content of the deleted v1
    assert again.version == "v2"
    assert log("nums", {"n.txt": "three"}).version == "v3"
    assert [v.version for v in api.artifacts("dataset", "nums")] == ["v2", "v3"]
    assert not api.artifact_exists("nums:v1")


def test_delete_refuses_while_user_aliases_point_at_the_version() -> None:
    artifact = log("held", {"h.txt": "held"}, aliases=["production"])
    api = soko.Api()

    with pytest.raises(ValidationError, match="production"):
        artifact.delete()
    assert api.artifact("held:production").version == "v0"
    assert api.artifact("held:v0").state == "COMMITTED"

    artifact.delete(delete_aliases=True)
    assert artifact.state == "DELETED"
    assert not api.artifact_exists("held:v0")
    assert not api.artifact_exists("held:production")
    assert not api.artifact_exists("held:latest")


def test_delete_of_a_version_with_only_latest_needs_no_flag() -> None:
    artifact = log("plain", {"p.txt": "plain"})
    artifact.delete()
    assert not soko.Api().artifact_exists("plain:v0")


def test_deleting_a_linked_version_moves_the_registry_latest() -> None:
    for i in range(3):
        artifact = log("model", {"w.bin": f"weights {i}"}, type="model")
        artifact.link("wandb-registry-model/production")
    api = soko.Api()
    assert api.artifact("wandb-registry-model/production:latest").id == artifact.id

    artifact.delete()

    assert api.artifact("model:latest").version == "v1"
    assert api.artifact("wandb-registry-model/production:latest").version == "v1"
    assert not api.artifact_exists("wandb-registry-model/production:v2")
    assert api.artifact("wandb-registry-model/production:v0").version == "v0"


def test_artifact_exists() -> None:
    log("present", {"p.txt": "here"}, aliases=["best"], project="proj")
    api = soko.Api()
    assert api.artifact_exists("proj/present")
    assert api.artifact_exists("proj/present:v0")
    assert api.artifact_exists("proj/present:best")
    assert api.artifact_exists("local/proj/present:latest")
    assert api.artifact_exists("proj/present", type="dataset")
    assert not api.artifact_exists("proj/present", type="model")
    assert not api.artifact_exists("proj/present:v1")
    assert not api.artifact_exists("proj/present:worst")
    assert not api.artifact_exists("proj/absent")
    assert not api.artifact_exists("other/present")
    assert not api.artifact_exists("present")  # not in the default project


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


def test_download_leaves_other_files_in_the_root_alone() -> None:
    artifact = log("data", FILES)
    write("root/notes.txt", "mine")
    write("root/d/extra/deep.txt", "also mine")

    artifact.download(root="root")

    assert Path("root/notes.txt").read_text() == "mine"
    assert Path("root/d/extra/deep.txt").read_text() == "also mine"
    assert Path("root/d/b.txt").read_text() == "beta"


def test_download_removes_the_temp_files_a_killed_download_left() -> None:
    artifact = log("data", FILES)
    write("root/d/.b.txt.soko-dl-0123456789ab.tmp", "half")  # as a killed download leaves it
    write("root/d/.b.txt.soko-dl-ba9876543210.tmp", "half")  # written a moment ago: alive
    write("root/d/.notes.soko-dl-0123456789ab.tmp", "half")  # no file of this artifact
    long_ago = time.time() - 3600
    for name in (".b.txt.soko-dl-0123456789ab.tmp", ".notes.soko-dl-0123456789ab.tmp"):
        os.utime(f"root/d/{name}", (long_ago, long_ago))

    artifact.download(root="root")

    assert sorted(p.name for p in Path("root/d").iterdir() if p.name.startswith(".")) == [
        ".b.txt.soko-dl-ba9876543210.tmp",
        ".notes.soko-dl-0123456789ab.tmp",
    ]
    assert Path("root/d/b.txt").read_text() == "beta"


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


def test_checkout_removes_extra_files_and_restores_changed_ones() -> None:
    artifact = log("data", FILES)
    write("root/notes.txt", "extra")
    write("root/d/extra/deep.txt", "extra")
    write("root/a.txt", "changed")

    root = artifact.checkout("root")

    assert files_below(root) == {"a.txt": b"alpha", "d/b.txt": b"beta", "d/e/c.bin": b"\x00gamma"}
    assert not Path("root/d/extra").exists()
    artifact.verify(root)


def test_verify_raises_on_a_changed_extra_or_missing_file() -> None:
    artifact = log("data", FILES)
    root = Path(artifact.download(root="root"))
    artifact.verify(str(root))

    (root / "d/b.txt").write_text("BETA")
    with pytest.raises(ValueError, match=r"d/b\.txt"):
        artifact.verify(str(root))
    (root / "d/b.txt").write_text("beta")
    artifact.verify(str(root))

    write(root / "stray.txt", "stray")
    with pytest.raises(ValueError, match=r"stray\.txt"):
        artifact.verify(str(root))
    (root / "stray.txt").unlink()

    (root / "a.txt").unlink()
    with pytest.raises(ValueError, match=r"a\.txt"):
        artifact.verify(str(root))


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


@pytest.mark.parametrize("bad", ["../x", "/etc/x", "a/../../x", "a//b", "C:/x"])
def test_a_path_leaving_the_artifact_is_refused_when_added(bad: str) -> None:
    write("f.txt", "content")
    write("dir/g.txt", "content")
    artifact = soko.Artifact("data", "dataset")
    with pytest.raises(ValidationError):
        artifact.add_file("f.txt", name=bad)
    with pytest.raises(ValidationError):
        artifact.add_dir("dir", name=bad)
    with pytest.raises(ValidationError):
        artifact.add_reference(f"file://{Path('f.txt').resolve()}", name=bad)
    with pytest.raises(ValidationError), artifact.new_file(bad) as handle:
        handle.write("x")
    assert len(artifact.manifest) == 0


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
    root = draft.download(root="v1")
    assert Path(root, "f3.txt").read_text() == "file 3 changed"
    assert Path(root, "new.txt").read_text() == "a new file"
    assert len(files_below(root)) == 21
    assert base.version == "v0"


def test_remove_in_a_new_draft_makes_a_version_without_the_entries() -> None:
    log("data", {"keep.txt": "keep", "drop/a.txt": "a", "drop/b.txt": "b", "one.txt": "1"})
    draft = soko.Api().artifact("data:latest").new_draft()
    draft.remove("drop")
    draft.remove(draft.get_entry("one.txt"))
    with pytest.raises(FileNotFoundError):
        draft.remove("nothing-here")
    with soko.init() as run:
        run.log_artifact(draft)

    api = soko.Api()
    assert [e.path for e in api.artifact("data:v1").manifest] == ["keep.txt"]
    assert files_below(api.artifact("data:v1").download(root="v1")) == {"keep.txt": b"keep"}
    assert len(api.artifact("data:v0").manifest) == 4


def test_a_logged_artifact_cannot_be_logged_again_but_its_draft_can() -> None:
    artifact = log("data", {"a.txt": "a"})
    with soko.init() as run, pytest.raises(SokoError):
        run.log_artifact(artifact)
    draft = artifact.new_draft()
    write("b.txt", "b")
    draft.add_file("b.txt")
    with soko.init() as run:
        run.log_artifact(draft)
    assert draft.version == "v1"


def test_a_bad_alias_refuses_the_log_and_leaves_the_draft_loggable() -> None:
    write("a.txt", "a")
    artifact = soko.Artifact("data", "dataset")
    artifact.add_file("a.txt")
    with soko.init() as run:
        for bad in (["v3"], ["a/b"], ["x:y"], [""]):
            with pytest.raises(ValidationError):
                run.log_artifact(artifact, aliases=bad)
        assert artifact.is_draft()
        assert not soko.Api().artifact_exists("data")
        run.log_artifact(artifact, aliases=["good"])
    assert artifact.version == "v0"
    assert sorted(artifact.aliases) == ["good", "latest"]


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


def test_file_references_are_downloaded_and_checked(soko_env: Any) -> None:
    mount = soko_env.workdir / "mount"
    write(mount / "data/x.csv", "1,2,3\n")
    write(mount / "data/sub/y.csv", "4,5,6\n")
    write(mount / "single.bin", b"\x01\x02")

    with soko.init() as run:
        artifact = soko.Artifact("refs", "dataset")
        artifact.add_reference(f"file://{mount}/data", name="tables")
        artifact.add_reference(f"file://{mount}/single.bin")
        run.log_artifact(artifact)
    assert local_backend().missing_blobs([]) == set()

    root = soko.Api().artifact("refs:latest").download(root="root")
    assert files_below(root) == {
        "tables/x.csv": b"1,2,3\n",
        "tables/sub/y.csv": b"4,5,6\n",
        "single.bin": b"\x01\x02",
    }

    write(mount / "data/sub/y.csv", "changed")
    with pytest.raises(DigestMismatchError, match=r"y\.csv"):
        soko.Api().artifact("refs:latest").download(root="root2")
    assert not Path("root2/tables/sub/y.csv").exists()
    soko.Api().artifact("refs:latest").download(root="root3", allow_missing_references=True)
    assert not Path("root3/tables/sub/y.csv").exists()
    assert Path("root3/tables/x.csv").read_text() == "1,2,3\n"


def test_file_references_are_not_copied_into_the_store(soko_env: Any) -> None:
    mount = soko_env.workdir / "mount"
    write(mount / "big.bin", b"\xab" * 4096)
    with soko.init() as run:
        artifact = soko.Artifact("refs", "dataset")
        artifact.add_reference(f"file://{mount}/big.bin")
        run.log_artifact(artifact)
    stored = [b for b in (soko_env.store / "store" / "blobs").rglob("*") if b.is_file()]
    assert all(b.read_bytes() != b"\xab" * 4096 for b in stored)


# ----- runs -----------------------------------------------------------------------------------


def test_a_run_used_as_a_context_manager_is_failed_by_an_exception() -> None:
    with pytest.raises(RuntimeError, match="boom"), soko.init(project="p") as run:
        raise RuntimeError("boom")
    assert soko.Api().run(f"p/{run.id}").state == "failed"
    assert soko.run is None

    with soko.init(project="p") as ok:
        pass
    assert soko.Api().run(f"p/{ok.id}").state == "finished"


def test_logged_and_used_artifacts_of_a_run() -> None:
    first = log("data", {"a.txt": "a"})
    write("m.h5", b"model")
    with soko.init(job_type="train") as run:
        used = run.use_artifact("data:latest")
        model = soko.Artifact("model", "model")
        model.add_file("m.h5")
        run.log_artifact(model)

    public = soko.Api().run(run.id)
    assert [a.qualified_name for a in public.used_artifacts()] == [used.qualified_name]
    assert [a.qualified_name for a in public.logged_artifacts()] == [model.qualified_name]
    assert [r.id for r in first.used_by()] == [run.id]
    assert model.logged_by().job_type == "train"
