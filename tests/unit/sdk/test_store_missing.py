"""The log's upload of what the backend lacks: a blob the draft has no source for fails it,
before any upload when a bar counts the work first, after the others otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

import soko
from soko.client.backend import Progress
from soko.client.sources import BlobSource
from soko.core.digests import Algorithm, Digest
from soko.errors import DigestMismatchError
from soko.sdk import transfer
from soko.sdk.draft import Draft
from soko.sdk.missing import MissingDigests

pytestmark = pytest.mark.usefixtures("soko_env")


class Recording:
    """A backend that stores nothing and records the sources it was given."""

    def __init__(self) -> None:
        self.stored: list[Digest] = []

    def missing_blobs(
        self, digests: Iterable[Digest], *, entity: str, project: str, name: str | None = None
    ) -> set[Digest]:
        return set(digests)

    def store_blobs(
        self,
        sources: Sequence[BlobSource],
        *,
        entity: str,
        project: str,
        progress: Progress | None = None,
        staging: bool = False,
    ) -> list[BlobSource]:
        self.stored += [source.digest for source in sources]
        return []


class Counting:
    """A shown bar: it takes the totals first, then the progress."""

    def __init__(self) -> None:
        self.totals: tuple[int, int | None] | None = None

    def start(self, items: int, nbytes: int | None) -> None:
        self.totals = (items, nbytes)

    def __call__(self, items: int, nbytes: int) -> None:
        pass


def _draft(tmp_path: Path) -> tuple[Draft, soko.Artifact, set[Digest]]:
    folder = tmp_path / "files"
    folder.mkdir()
    for name in ("a", "b", "c"):
        (folder / name).write_bytes(name.encode() * 10)
    artifact = soko.Artifact("data", "dataset")
    artifact.add_dir(str(folder), policy="immutable")
    draft = artifact._draft
    assert draft is not None
    digests = {entry.blob_digest() for entry in artifact.manifest.entries.values()}
    return draft, artifact, digests


def _store(
    backend: Recording,
    draft: Draft,
    artifact: soko.Artifact,
    missing: MissingDigests,
    bar: Counting | None,
) -> None:
    transfer.store_missing(
        backend,
        draft,
        artifact.manifest,
        entity="e",
        project="p",
        name="data",
        missing=missing,
        progress=bar,
    )


@pytest.mark.parametrize("shown", [False, True], ids=["no bar", "a bar"])
def test_a_missing_blob_the_draft_has_no_source_for_fails_the_upload(
    tmp_path: Path, shown: bool
) -> None:
    draft, artifact, digests = _draft(tmp_path)
    sourceless = Digest.of_bytes(b"in no file of the draft", Algorithm.XXH128)
    missing = MissingDigests([*digests, sourceless])
    backend = Recording()
    bar = Counting() if shown else None

    with pytest.raises(DigestMismatchError, match="neither a local file nor a stored blob"):
        _store(backend, draft, artifact, missing, bar)

    # A bar counts the sources first and finds one lacking; otherwise the others went up,
    # each taken out of what is missing.
    if shown:
        assert backend.stored == []
        assert set(missing) == {*digests, sourceless}
    else:
        assert set(backend.stored) == digests
        assert list(missing) == [sourceless]


def test_a_bar_gets_the_totals_before_the_upload(tmp_path: Path) -> None:
    draft, artifact, digests = _draft(tmp_path)
    backend = Recording()
    bar = Counting()

    _store(backend, draft, artifact, MissingDigests(digests), bar)

    assert bar.totals == (3, 30)
    assert set(backend.stored) == digests
