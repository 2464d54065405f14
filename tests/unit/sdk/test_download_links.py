"""Links inside a download root, with the embedded store: a download, checkout or verify
never writes, deletes or reads through a link to a folder; a link where a file goes is
replaced, its target untouched. And a path no file system can hold is refused before
anything is written."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import soko
from soko.client import connect
from soko.client.local import LocalBackend
from soko.core.digests import Algorithm, Digest
from soko.core.manifest import Entry, Manifest
from soko.core.requests import CommitRequest
from soko.errors import ValidationError
from soko.service.catalog import ensure_collection, ensure_project
from soko.service.commit import commit_in

pytestmark = pytest.mark.usefixtures("soko_env")

SMALL = {f"sub/inner/s{i:03d}.txt": f"small file {i}\n".encode() for i in range(40)}  # packed
BIG = os.urandom(2 * 1024 * 1024 + 3)  # a loose blob


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry below *root*, links not followed: a file's bytes, or ``-> target``."""
    found: dict[str, bytes | str] = {}
    for dirpath, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            full = Path(dirpath, name)
            relative = full.relative_to(root).as_posix()
            if full.is_symlink():
                found[relative] = f"-> {os.readlink(full)}"
            elif full.is_file():
                found[relative] = full.read_bytes()
    return found


def log_sample() -> soko.Artifact:
    """Small (packed) and large (loose) files under sub/ and sub/inner/, a file at the top,
    and a reference downloaded to sub/ref.txt."""
    source = Path("source")
    files: dict[str, bytes] = {**SMALL, "sub/big.bin": BIG, "top.txt": b"top"}
    for relative, content in files.items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(content)
    referenced = Path("referenced.txt").resolve()
    referenced.write_text("referenced")
    with soko.init(project="links") as run:
        artifact = soko.Artifact("sample", "dataset")
        artifact.add_dir(str(source))
        artifact.add_reference(f"file://{referenced}", name="sub/ref.txt")
        run.log_artifact(artifact)
    return soko.Api().artifact("links/sample:latest")


def outside_folder() -> Path:
    outside = Path("outside").resolve()
    (outside / "inner").mkdir(parents=True)
    (outside / "mine.txt").write_text("the user's own")
    (outside / "inner" / "s000.txt").write_text("the user's own too")
    return outside


DOWNLOADS: dict[str, Callable[[soko.Artifact, str], object]] = {
    "whole": lambda artifact, root: artifact.download(root),
    "prefix": lambda artifact, root: artifact.download(root, path_prefix="sub/inner/"),
    "skip-cache": lambda artifact, root: artifact.download(root, skip_cache=True),
    "one-file": lambda artifact, root: artifact.get_entry("sub/inner/s001.txt").download(root),
    "large-file": lambda artifact, root: artifact.get_entry("sub/big.bin").download(root),
    "reference": lambda artifact, root: artifact.get_entry("sub/ref.txt").download(root),
    "checkout": lambda artifact, root: artifact.checkout(root),
}


# (link, download) pairs where the download has files below the link.
LINKED_DOWNLOADS = [("sub", how) for how in DOWNLOADS] + [
    ("sub/inner", how) for how in ("whole", "prefix", "one-file", "checkout")
]


@pytest.mark.parametrize(("linked", "how"), LINKED_DOWNLOADS)
def test_a_download_refuses_a_linked_folder_in_the_root_and_changes_nothing(
    linked: str, how: str
) -> None:
    artifact = log_sample()
    outside = outside_folder()
    root = Path("root")
    (root / linked).parent.mkdir(parents=True, exist_ok=True)
    (root / linked).symlink_to(outside / "inner" if linked == "sub/inner" else outside)
    (root / "extra.txt").write_text("a checkout would delete this")
    before_root, before_outside = tree(root), tree(outside)

    with pytest.raises(ValidationError, match=rf"'root/{linked}' is a symbolic link") as caught:
        DOWNLOADS[how](artifact, "root")

    assert "Nothing was changed" in str(caught.value)
    assert tree(outside) == before_outside
    assert tree(root) == before_root


def test_a_download_into_a_root_that_is_itself_a_link_is_the_user_s_choice() -> None:
    artifact = log_sample()
    Path("real-root").mkdir()
    Path("root").symlink_to("real-root", target_is_directory=True)
    artifact.download("root")
    assert tree(Path("real-root"))["sub/big.bin"] == BIG
    artifact.verify("root")


def test_checkout_removes_an_extra_link_as_a_link_and_leaves_its_target() -> None:
    artifact = log_sample()
    outside = outside_folder()
    before_outside = tree(outside)
    root = Path(artifact.download("root"))
    (root / "elsewhere").symlink_to(outside, target_is_directory=True)
    (root / "sub" / "inner" / "old-link.txt").symlink_to(outside / "mine.txt")
    with pytest.raises(ValueError, match="elsewhere"):
        artifact.verify("root")

    artifact.checkout("root")

    assert not os.path.lexists(root / "elsewhere")
    assert not os.path.lexists(root / "sub" / "inner" / "old-link.txt")
    assert tree(outside) == before_outside
    artifact.verify("root")


def test_verify_names_a_folder_of_the_artifact_that_is_a_link() -> None:
    artifact = log_sample()
    root = Path(artifact.download("root"))
    (root / "sub").rename("moved-sub")
    (root / "sub").symlink_to(Path("moved-sub").resolve(), target_is_directory=True)
    with pytest.raises(ValidationError, match=r"'root/sub' is a symbolic link"):
        artifact.verify("root")


def test_a_link_where_a_file_goes_is_replaced_and_its_target_left_alone() -> None:
    artifact = log_sample()
    outside = outside_folder()
    before_outside = tree(outside)
    root = Path("root")
    (root / "sub" / "inner").mkdir(parents=True)
    links = {
        "sub/inner/s000.txt": outside / "inner" / "s000.txt",  # a packed blob
        "sub/big.bin": outside / "mine.txt",  # a loose blob
        "sub/ref.txt": outside / "mine.txt",  # a reference
        "top.txt": outside / "missing.txt",  # a dangling link
    }
    for relative, target in links.items():
        (root / relative).symlink_to(target)

    artifact.download("root")

    for relative in links:
        assert not (root / relative).is_symlink()
    got = tree(root)
    assert got["sub/inner/s000.txt"] == SMALL["sub/inner/s000.txt"]
    assert got["sub/big.bin"] == BIG
    assert got["sub/ref.txt"] == b"referenced"
    assert got["top.txt"] == b"top"
    assert tree(outside) == before_outside
    artifact.verify("root")


def _commit_unchecked(paths: list[str]) -> None:
    """Commit a version whose manifest names *paths* as they are, as a manifest logged by
    an older soko (or another tool) may."""
    backend = connect.get_backend()
    assert isinstance(backend, LocalBackend)
    content = b"content"
    digest = Digest.of_bytes(content, Algorithm.MD5)
    backend.store.blobs.put_bytes(digest, content)
    entries = [Entry(path=p, digest=digest.b64, size=len(content)) for p in paths]
    manifest = Manifest.of(entries, Algorithm.MD5)
    request = CommitRequest(
        entity="local", project="links", name="long", type="dataset", manifest=manifest
    )
    # Step 4 of the commit alone: today's commit_version refuses such a path up front.
    store = backend.store
    key = store.put_manifest(manifest)
    with store.engine.begin() as conn:
        project_id = ensure_project(conn, "local", "links")
        collection = ensure_collection(conn, project_id, "long", "dataset")
        commit_in(conn, collection, request, manifest_key=key)


@pytest.mark.parametrize("fresh_process", [False, True], ids=["cached-manifest", "from-store"])
def test_a_segment_no_file_system_holds_is_refused_before_anything_is_written(
    soko_env: Any, fresh_process: bool
) -> None:
    long_path = "deep/" + "x" * 300
    _commit_unchecked(["a.txt", "b/c.txt", long_path])
    if fresh_process:
        connect.reset()  # the manifest is read back from its blob: it is readable

    artifact = soko.Api().artifact("links/long:v0")
    assert long_path in artifact.manifest.entries
    with pytest.raises(ValidationError, match="300 bytes"):
        artifact.download("root")
    assert not Path("root").exists()
    artifact.download("root", path_prefix="b/")
    assert tree(Path("root")) == {"b/c.txt": b"content"}
