"""A new draft of a large version keeps the version by reference (the embedded store, and a
soko server: the client reads the base's index and slices, and sends the change alone) and
commits the change alone; the next version is the one a draft holding every entry makes:
the same digest, manifest, files and pages. A draft logged where it cannot go by reference
(into another project) goes whole, with the same result.

The size at which a base is kept by reference is lowered so that a version of a few files
is one (the threshold is an optimisation: below it the draft takes every entry).
"""

from __future__ import annotations

import json

import pytest
from backend_suite import Backend, as_bytes, files_below, write

import soko

_FILES = {
    **{f"d{i % 3}/f{i:02}.txt": f"file {i}" for i in range(30)},
    "top.txt": "top",
    "z/last.txt": "last",
}


@pytest.fixture(autouse=True)
def by_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("soko.sdk.artifact.BASE_BY_REFERENCE_AT", 1)


def test_a_new_draft_by_reference_makes_the_version_a_whole_draft_makes(
    backend: Backend,
) -> None:
    backend.log("data", _FILES)
    write("add/new.txt", "new")
    write("add/d1-between.txt", "between")
    write("add/changed.txt", "file 4 changed")
    write("add/first.txt", "before every path")
    with soko.init() as run:
        draft = run.use_artifact("data:latest").new_draft()
        draft.add_file("add/new.txt", name="n/new.txt")
        draft.add_file("add/d1-between.txt", name="d1/f04b.txt")
        draft.add_file("add/changed.txt", name="d1/f04.txt", overwrite=True)
        draft.add_file("add/first.txt", name="0first.txt")
        draft.remove("d2")
        draft.remove("top.txt")
        # The draft's entries, asked for, are the whole: the base's and the change.
        entries = dict(draft.manifest.entries)
        assert "d0/f00.txt" in entries and "d2/f02.txt" not in entries
        assert draft.get_entry("d0/f03.txt").size == len("file 3")
        whole_json = draft.manifest.to_manifest_json()
        whole_digest = draft.manifest.digest()
        run.log_artifact(draft)
    assert draft.digest == whole_digest

    expected = {k: v for k, v in _FILES.items() if not k.startswith("d2/") and k != "top.txt"}
    expected.update(
        {
            "n/new.txt": "new",
            "d1/f04b.txt": "between",
            "d1/f04.txt": "file 4 changed",
            "0first.txt": "before every path",
        }
    )
    v1 = soko.Api().artifact("data:v1")
    assert v1.digest == whole_digest and v1.file_count == len(expected)
    assert json.dumps(v1.manifest.to_manifest_json()) == json.dumps(whole_json)
    assert [f.name for f in v1.files(per_page=7)] == sorted(expected)
    root = v1.download(root="v1")
    assert files_below(root) == {k: v.encode() for k, v in expected.items()}
    # The logged draft answers with the version's entries, loaded when asked.
    assert [e.path for e in draft.manifest] == sorted(expected)
    assert len(soko.Api().artifact("data:v0").manifest) == len(_FILES)


def test_a_path_of_the_base_keeps_the_same_content_rule(backend: Backend) -> None:
    backend.log("data", {"a.txt": "a", "b/c.txt": "c"})
    write("other.txt", "other")
    write("same.txt", "a")
    draft = soko.Api().artifact("data:latest").new_draft()
    with pytest.raises(ValueError, match=r"a\.txt"):
        draft.add_file("other.txt", name="a.txt")
    draft.add_file("same.txt", name="a.txt")  # the same content: accepted
    draft.remove("a.txt")
    draft.add_file("other.txt", name="a.txt")  # removed first: a new file
    with pytest.raises(FileNotFoundError):
        draft.remove("nothing")
    with soko.init() as run:
        run.log_artifact(draft)
    assert files_below(soko.Api().artifact("data:v1").download(root="v1")) == {
        "a.txt": b"other",
        "b/c.txt": b"c",
    }


def test_an_unchanged_new_draft_is_the_same_version(backend: Backend) -> None:
    base = backend.log("data", _FILES)
    with soko.init() as run:
        draft = run.use_artifact("data:latest").new_draft()
        run.log_artifact(draft, aliases=["again"])
    assert draft.version == "v0" and draft.digest == base.digest
    assert "again" in soko.Api().artifact("data:v0").aliases


def _changed_draft() -> tuple[soko.Artifact, dict[str, str]]:
    """A new draft of data:latest (made of ``_FILES``) with a path added, one replaced and
    one removed; the files it then holds."""
    write("add/new.txt", "new")
    write("add/changed.txt", "file 5 changed")
    draft = soko.Api().artifact("data:latest").new_draft()
    draft.add_file("add/new.txt", name="n/new.txt")
    draft.add_file("add/changed.txt", name="d2/f05.txt", overwrite=True)
    draft.remove("top.txt")
    expected = {k: v for k, v in _FILES.items() if k != "top.txt"}
    expected.update({"n/new.txt": "new", "d2/f05.txt": "file 5 changed"})
    return draft, expected


def test_every_backend_keeps_a_large_base_by_reference(backend: Backend) -> None:
    backend.log("data", _FILES)
    draft, expected = _changed_draft()
    # The draft holds the change only; the base is read a slice at a time.
    assert draft._draft is not None and draft._draft.base is not None
    assert len(draft._draft.builder) == 2
    with soko.init() as run:
        run.log_artifact(draft)
    v1 = soko.Api().artifact("data:v1")
    assert v1.digest == draft.digest and v1.file_count == len(expected)
    assert files_below(v1.download(root="v1")) == as_bytes(expected)
    # A new draft of the version made by reference is kept by reference in its turn.
    again = v1.new_draft()
    write("add/more.txt", "more")
    again.add_file("add/more.txt", name="z/more.txt")
    with soko.init() as run:
        run.log_artifact(again)
    assert files_below(soko.Api().artifact("data:v2").download(root="v2")) == as_bytes(
        {**expected, "z/more.txt": "more"}
    )


def test_a_new_draft_logged_into_another_project_holds_every_entry(backend: Backend) -> None:
    backend.log("data", _FILES)
    draft, expected = _changed_draft()
    other = Backend.unique("other")
    with soko.init(project=other) as run:
        run.log_artifact(draft)
    logged = soko.Api().artifact(f"{backend.entity}/{other}/data:v0")
    assert logged.digest == draft.digest and logged.file_count == len(expected)
    assert files_below(logged.download(root="other")) == as_bytes(expected)


def test_a_new_draft_of_a_version_deleted_since_is_logged_whole(backend: Backend) -> None:
    backend.log("data", _FILES)
    draft, expected = _changed_draft()
    soko.Api().artifact("data:v0").delete(delete_aliases=True)
    # Its blobs are not collected: the commit checks every blob of the whole manifest.
    with soko.init() as run:
        run.log_artifact(draft)
    v1 = soko.Api().artifact("data:v1")
    assert v1.file_count == len(expected)
    assert files_below(v1.download(root="v1")) == as_bytes(expected)
