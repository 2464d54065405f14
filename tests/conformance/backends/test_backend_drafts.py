"""Drafts on every backend: ``new_draft()`` + add/remove makes the next version without
reading the unchanged entries again, and a file changed between add and upload fails the
log instead of storing bytes the draft never hashed."""

from __future__ import annotations

from pathlib import Path

import pytest
from backend_suite import Backend, files_below, write

import soko
from soko.errors import DigestMismatchError


def test_new_draft_makes_the_next_version_from_the_stored_entries(backend: Backend) -> None:
    files = {f"f{i}.txt": f"file {i}" for i in range(20)}
    files["big.bin"] = "x" * (2 * 1024 * 1024)
    for path, content in files.items():
        write(Path("v0-files", path), content)
    with soko.init() as run:
        base = soko.Artifact("data", "dataset")
        base.add_dir("v0-files")
        run.log_artifact(base)
    # The sources of the first log are gone or changed: the next version can only take
    # its unchanged entries from what the backend stored, never from these files.
    Path("v0-files/f5.txt").write_text("changed after the log")
    Path("v0-files/big.bin").unlink()
    write("new.txt", "a new file")
    write("f3-new.txt", "file 3 changed")

    with soko.init() as run:
        draft = run.use_artifact("data:latest").new_draft()
        draft.add_file("new.txt")
        draft.remove("f3.txt")
        draft.add_file("f3-new.txt", name="f3.txt")
        run.log_artifact(draft)

    assert (draft.version, base.version) == ("v1", "v0")
    root = soko.Api().artifact("data:v1").download(root="v1")
    expected = {**files, "f3.txt": "file 3 changed", "new.txt": "a new file"}
    assert files_below(root) == {k: v.encode() for k, v in expected.items()}
    assert len(soko.Api().artifact("data:v0").manifest) == 21


def test_remove_in_a_new_draft_makes_a_version_without_the_entries(backend: Backend) -> None:
    backend.log("data", {"keep.txt": "keep", "drop/a.txt": "a", "drop/b.txt": "b", "one.txt": "1"})
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


@pytest.mark.parametrize("size", [300_000, 300_001, 299_999], ids=["same", "grown", "shrunk"])
def test_a_file_changed_after_it_was_added_fails_the_log(backend: Backend, size: int) -> None:
    # policy="immutable": read at upload time, on every backend (a mutable file is taken at
    # add time by the embedded store and at log time for a server: docs/decisions.md). The
    # file is larger than what a draft keeps in memory from hashing it.
    data = write("model.bin", b"a" * 300_000)
    artifact = soko.Artifact("late", "model")
    artifact.add_file(str(data), policy="immutable")
    data.write_bytes(b"b" * size)

    run = soko.init()
    run.log_artifact(artifact)
    with pytest.raises(DigestMismatchError, match=r"model\.bin"):
        artifact.wait()
    with pytest.raises(DigestMismatchError):
        run.finish()
    assert soko.Api().run(run.id).state == "failed"
    assert not soko.Api().artifact_exists("late")
