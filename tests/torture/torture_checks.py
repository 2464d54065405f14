"""Checks the torture tests make of what a backend holds, through the SDK, so that the same
check reads the embedded store and a server alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torture_support import read_tree, short

import soko
from soko.sdk.artifact import Artifact


def collection_names(project: str, type_name: str = "dataset") -> list[str]:
    return sorted(c.name for c in soko.Api().artifact_collections(project, type_name))


def versions_of(project: str, collection: str, type_name: str = "dataset") -> list[Artifact]:
    return soko.Api().artifacts(type_name, f"{project}/{collection}")


def assert_numbered_without_gaps(project: str, collection: str, found: list[Artifact]) -> None:
    """v0..vN-1, each number once, each version its own content."""
    numbers = [a.version for a in found]
    assert numbers == [f"v{i}" for i in range(len(found))], (collection, numbers)
    digests = [a.digest for a in found]
    assert len(set(digests)) == len(digests), (collection, "a digest was committed twice")
    if found:
        latest = soko.Api().artifact(f"{project}/{collection}:latest")
        assert latest.version == f"v{len(found) - 1}", (collection, latest.version)


def assert_downloads_exactly(
    artifact: Artifact, expected: dict[str, bytes], root: Path, *, where: str
) -> None:
    """The version downloads into an empty *root* as exactly the files *expected*."""
    downloaded = Path(artifact.download(root=str(root)))
    found = read_tree(downloaded)
    if found != expected:
        raise AssertionError(
            f"{where}: {artifact.qualified_name} downloaded as {short(found)}, "
            f"expected {short(expected)}"
        )


def check_every_version(
    project: str,
    expected_of: Callable[[Artifact], dict[str, bytes]],
    out: Path,
    *,
    where: str,
) -> dict[str, int]:
    """Every collection of *project* is gap-free and every version downloads as
    ``expected_of(version)``; returns the number of versions of each collection."""
    counts: dict[str, int] = {}
    for collection in collection_names(project):
        found = versions_of(project, collection)
        assert_numbered_without_gaps(project, collection, found)
        for artifact in found:
            root = out / collection / artifact.version
            assert_downloads_exactly(artifact, expected_of(artifact), root, where=where)
        counts[collection] = len(found)
    return counts
