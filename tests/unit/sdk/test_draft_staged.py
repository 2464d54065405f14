"""``Draft.staged_on``: whether a server holds every blob of the draft for a project, as
``add_dir`` sent it, so that its log need not ask which are missing."""

from __future__ import annotations

from array import array

from soko.client.hashing import HashedFile
from soko.core.digests import Algorithm, Digest
from soko.sdk.draft import Draft

ALGORITHM = Algorithm.parse("xxh128")


def _folder(draft: Draft, prefix: str, count: int, staged: tuple[str, str] | None) -> None:
    datas = [f"{prefix} {i}".encode() for i in range(count)]
    draft.add_folder(
        "/data/",
        prefix,
        [f"{prefix}f{i}" for i in range(count)],
        b"".join(ALGORITHM.digest_of(d) for d in datas),
        array("q", map(len, datas)),
        overwrite=False,
        mutable=True,
        staged=staged,
    )


def test_a_draft_of_folders_staged_for_the_project_is_staged_on_it_only() -> None:
    draft = Draft(ALGORITHM)
    _folder(draft, "a/", 5, ("e", "p"))
    _folder(draft, "b/", 3, ("e", "p"))
    assert draft.staged_on("e", "p")
    assert not draft.staged_on("e", "other")
    assert not draft.staged_on("other", "p")


def test_an_entry_from_elsewhere_makes_the_draft_not_staged_until_it_is_removed() -> None:
    draft = Draft(ALGORITHM)
    _folder(draft, "a/", 5, ("e", "p"))
    _folder(draft, "b/", 3, None)  # some files the server did not confirm
    assert not draft.staged_on("e", "p")
    draft.remove("b")
    assert draft.staged_on("e", "p")
    data = b"one file"
    digest = Digest(ALGORITHM, ALGORITHM.digest_of(data))
    draft.add_files([("c.txt", HashedFile("/c.txt", digest, len(data), None))], overwrite=False)
    assert not draft.staged_on("e", "p")
