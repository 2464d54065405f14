"""Links inside a download root, through a soko server: whichever way a blob arrives (a
framed batch, a stream, the cache's packs or files, a remembered copy), nothing is written
through a link to a folder, and a link where a file goes is replaced, its target left
alone."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import server_fixtures
from server_fixtures import ServerEnv, unique_project

import soko
from soko.errors import ValidationError

pytestmark = pytest.mark.integration

soko_server = server_fixtures.soko_server
server_env = server_fixtures.server_env

SMALL = {f"sub/inner/s{i:03d}.txt": f"small file {i}\n".encode() for i in range(40)}  # batched
BIG = os.urandom(3 * 1024 * 1024 + 5)  # streamed alone


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


def log_sample(workdir: Path) -> soko.Artifact:
    source = workdir / "source"
    files = {**SMALL, "sub/big.bin": BIG, "top.txt": b"top"}
    for relative, content in files.items():
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(content)
    project = unique_project("links")
    with soko.init(project=project) as run:
        artifact = soko.Artifact("sample", "dataset")
        artifact.add_dir(str(source))
        run.log_artifact(artifact)
        artifact.wait()
    return soko.Api().artifact(f"{project}/sample:latest")


def outside_folder(workdir: Path) -> Path:
    outside = workdir / "outside"
    (outside / "inner").mkdir(parents=True)
    (outside / "mine.txt").write_text("the user's own")
    (outside / "inner" / "s000.txt").write_text("the user's own too")
    return outside


DOWNLOADS: dict[str, Callable[[soko.Artifact, str], object]] = {
    "whole": lambda artifact, root: artifact.download(root),
    "skip-cache": lambda artifact, root: artifact.download(root, skip_cache=True),
    "one-small-file": lambda artifact, root: artifact.get_entry("sub/inner/s001.txt").download(
        root
    ),
    "large-file": lambda artifact, root: artifact.get_entry("sub/big.bin").download(root),
    "checkout": lambda artifact, root: artifact.checkout(root),
}


@pytest.mark.parametrize("warm_cache", [False, True], ids=["from-server", "from-cache"])
@pytest.mark.parametrize("how", list(DOWNLOADS))
def test_a_download_refuses_a_linked_folder_in_the_root_and_changes_nothing(
    server_env: ServerEnv, how: str, warm_cache: bool
) -> None:
    artifact = log_sample(server_env.workdir)
    if warm_cache:
        artifact.download("warm")  # the cache and the remembered copies hold every blob
    outside = outside_folder(server_env.workdir)
    root = Path("root")
    root.mkdir()
    (root / "sub").symlink_to(outside, target_is_directory=True)
    (root / "extra.txt").write_text("a checkout would delete this")
    before_root, before_outside = tree(root), tree(outside)

    with pytest.raises(ValidationError, match=r"'root/sub' is a symbolic link"):
        DOWNLOADS[how](artifact, "root")

    assert tree(outside) == before_outside
    assert tree(root) == before_root


def test_a_link_where_a_file_goes_is_replaced_and_its_target_left_alone(
    server_env: ServerEnv,
) -> None:
    artifact = log_sample(server_env.workdir)
    outside = outside_folder(server_env.workdir)
    before_outside = tree(outside)
    links = {
        "sub/inner/s000.txt": outside / "inner" / "s000.txt",  # a small blob
        "sub/big.bin": outside / "mine.txt",  # a large one
        "top.txt": outside / "missing.txt",  # a dangling link
    }
    # Past the cache (batches and a stream into the root), then filling the cache, then
    # from the cache's packs and the remembered copy of the large blob.
    for root, skip_cache in (("past", True), ("first", False), ("cached", False)):
        (Path(root) / "sub" / "inner").mkdir(parents=True)
        for relative, target in links.items():
            (Path(root) / relative).symlink_to(target)

        artifact.download(root, skip_cache=skip_cache)

        for relative in links:
            assert not (Path(root) / relative).is_symlink(), (root, relative)
        got = tree(Path(root))
        assert got["sub/inner/s000.txt"] == SMALL["sub/inner/s000.txt"]
        assert got["sub/big.bin"] == BIG
        assert got["top.txt"] == b"top"
        assert tree(outside) == before_outside
        artifact.verify(root)
