"""A logged version read a page at a time on every backend: ``files()`` pages through the
entries in path order without loading the manifest, ``files(names=...)`` finds the named
ones, and ``download(path_prefix=...)`` reads only the entries under the prefix and
fetches their bytes."""

from __future__ import annotations

from pathlib import Path

from backend_suite import Backend, as_bytes, files_below

import soko

FILES: dict[str, str | bytes] = {
    **{f"d/{i:02d}.txt": f"d{i}" for i in range(12)},
    **{f"d-x/{i}.txt": f"dx{i}" for i in range(3)},
    "d/e/deep.bin": b"\x00deep",
    "top.txt": "top",
}


def test_files_pages_through_the_entries_without_loading_the_manifest(backend: Backend) -> None:
    backend.log("data", FILES)
    artifact = soko.Api().artifact("data:v0")
    listing = artifact.files(per_page=5)
    assert len(listing) == len(FILES)
    assert listing.more  # only the first page fetched so far
    assert listing[0].path == "d-x/0.txt"
    paths = [entry.path for entry in listing]
    assert paths == sorted(FILES) and not listing.more
    assert listing[-1].path == "top.txt"
    assert artifact._manifest is None  # no page read the whole manifest
    # An entry of a page downloads its file.
    entry = next(e for e in artifact.files() if e.path == "d/e/deep.bin")
    assert Path(entry.download(root="one")).read_bytes() == b"\x00deep"

    named = artifact.files(names=["top.txt", "d/03.txt", "d", "missing.txt"])
    assert [(e.path, e.size) for e in named] == [("d/03.txt", 2), ("top.txt", 3)]
    assert len(named) == 2


def test_download_of_a_prefix_reads_only_its_entries(backend: Backend) -> None:
    backend.log("data", FILES)
    artifact = soko.Api().artifact("data:v0")
    under_d = {p: v for p, v in as_bytes(FILES).items() if p.startswith("d/")}
    assert files_below(artifact.download(root="d-only", path_prefix="d/")) == under_d
    assert artifact._manifest is None
    assert set(files_below(artifact.download(root="dx", path_prefix="d-"))) == {
        "d-x/0.txt",
        "d-x/1.txt",
        "d-x/2.txt",
    }
    assert files_below(artifact.download(root="none", path_prefix="e/")) == {}
    # The whole version after pages of it: every file, the pages read before in no way.
    assert len(files_below(artifact.download(root="all"))) == len(FILES)
