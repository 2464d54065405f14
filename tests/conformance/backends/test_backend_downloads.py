"""Downloads on every backend: into an empty root, into a root that holds right, wrong and
extra files; ``checkout``, ``verify``, ``path_prefix``, ``skip_cache`` and the temp files a
killed download leaves behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from backend_suite import Backend, as_bytes, files_below, identity, write

import soko

FILES: dict[str, str | bytes] = {"a.txt": "alpha", "d/b.txt": "beta", "d/e/c.bin": b"\x00gamma"}


def test_download_into_an_empty_root_and_the_default_root(backend: Backend) -> None:
    backend.log("data", FILES)
    artifact = soko.Api().artifact("data:v0")
    assert files_below(artifact.download(root="root")) == as_bytes(FILES)

    default = soko.Api().artifact("data:v0").download()
    assert Path(default) == Path("artifacts", "data:v0")
    assert files_below(default) == as_bytes(FILES)


def test_download_keeps_right_files_replaces_wrong_ones_and_leaves_others_alone(
    backend: Backend,
) -> None:
    backend.log("data", FILES)
    write("root/a.txt", "alpha")  # the right bytes, put there by the user
    write("root/d/b.txt", "BETA")  # the right size, other bytes
    write("root/notes.txt", "mine")
    write("root/d/extra/deep.txt", "also mine")
    kept = identity("root/a.txt")

    soko.Api().artifact("data:v0").download(root="root")

    assert identity("root/a.txt") == kept
    assert files_below("root") == {
        **as_bytes(FILES),
        "notes.txt": b"mine",
        "d/extra/deep.txt": b"also mine",
    }


def test_the_artifact_object_that_was_logged_downloads(backend: Backend) -> None:
    # As in W&B: log, wait, then download the same object, in the process that logged it.
    write("f.txt", "logged here")
    artifact = soko.Artifact("data", "dataset")
    artifact.add_file("f.txt")
    with soko.init() as run:
        run.log_artifact(artifact).wait()
        assert files_below(artifact.download(root="root")) == {"f.txt": b"logged here"}


def test_a_second_download_rewrites_only_what_changed_in_the_root(backend: Backend) -> None:
    backend.log("data", FILES)
    root = Path(soko.Api().artifact("data:v0").download(root="root"))
    untouched = identity(root / "a.txt")
    (root / "d/b.txt").write_text("BETA")  # same size, other bytes
    (root / "d/e/c.bin").unlink()

    soko.Api().artifact("data:v0").download(root=str(root))

    assert files_below(root) == as_bytes(FILES)
    assert identity(root / "a.txt") == untouched
    again = {path: identity(root / path) for path in FILES}
    soko.Api().artifact("data:v0").download(root=str(root))
    assert {path: identity(root / path) for path in FILES} == again


def test_checkout_removes_extra_files_and_restores_changed_ones(backend: Backend) -> None:
    backend.log("data", FILES)
    artifact = soko.Api().artifact("data:v0")
    write("root/notes.txt", "extra")
    write("root/d/extra/deep.txt", "extra")
    write("root/a.txt", "changed")

    root = artifact.checkout("root")

    assert files_below(root) == as_bytes(FILES)
    assert not Path("root/d/extra").exists()
    artifact.verify(root)


def test_verify_raises_value_error_on_a_changed_extra_or_missing_file(backend: Backend) -> None:
    artifact = backend.log("data", FILES)
    root = Path(soko.Api().artifact("data:v0").download(root="root"))
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


def test_download_with_a_path_prefix_fetches_only_that_part(backend: Backend) -> None:
    backend.log("data", {**FILES, "dx.txt": "not under d/"})
    artifact = soko.Api().artifact("data:latest")

    assert files_below(artifact.download(root="d-only", path_prefix="d/")) == {
        "d/b.txt": b"beta",
        "d/e/c.bin": b"\x00gamma",
    }
    assert set(files_below(artifact.download(root="d-any", path_prefix="d"))) == {
        "d/b.txt",
        "d/e/c.bin",
        "dx.txt",
    }
    assert files_below(artifact.download(root="none", path_prefix="zzz")) == {}


def test_download_skipping_the_cache_gives_the_same_root(backend: Backend) -> None:
    files = {**FILES, "big.bin": os.urandom(2 * 1024 * 1024), "same/big.bin": b""}
    files["same/big.bin"] = files["big.bin"]  # one blob, two destinations
    backend.log("data", files)
    artifact = soko.Api().artifact("data:latest")

    root = artifact.download(root="root", skip_cache=True)

    assert files_below(root) == as_bytes(files)
    artifact.verify(root)
    again = soko.Api().artifact("data:latest").download(root="cached", skip_cache=False)
    assert files_below(again) == as_bytes(files)


def test_download_removes_the_temp_files_a_killed_download_left(backend: Backend) -> None:
    backend.log("data", FILES)
    artifact = soko.Api().artifact("data:v0")
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
