"""The index of a manifest: slices that cut its bytes exactly, folders with their sizes and
counts, pages under a prefix, and a slice whose bytes changed refused."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soko.core.digests import Digest
from soko.core.manifest import Entry, Manifest
from soko.core.manifest_index import (
    ManifestIndex,
    build,
    build_of,
    check_slice,
    slice_entries,
)
from soko.errors import CorruptBlobError, ValidationError

_segment = st.sampled_from(["a", "b", "a-b", "ü", "z z", "a.b", "é€"])
_paths = st.lists(_segment, min_size=1, max_size=3).map("/".join)


def manifest_of(paths: list[str]) -> Manifest:
    entries = [
        Entry(path=p, digest=f"d{i}", size=i, ref="s3://b/k" if i % 3 == 0 else None)
        for i, p in enumerate(paths)
    ]
    return Manifest.of(entries)


def folders_of(paths: list[str]) -> set[str]:
    found = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return found


@settings(max_examples=60, deadline=None)
@given(st.sets(_paths, max_size=40), st.integers(1, 5))
def test_slices_cut_the_manifest_bytes_into_its_entries(paths: set[str], per: int) -> None:
    # A path cannot also be a folder of another path: drop those, as a draft refuses them.
    clean = sorted(p for p in paths if not any(q.startswith(f"{p}/") for q in paths))
    manifest = manifest_of(clean)
    raw = manifest.to_bytes()
    index = build(raw, per)
    assert index.count == len(clean) and index.size == manifest.size
    assert index.references == sum(1 for e in manifest if e.ref is not None)
    read = []
    for part in index.slices:
        piece = raw[part.offset : part.offset + part.length]
        check_slice(part, piece)
        entries = slice_entries(piece)
        assert entries[0].path == part.first and len(entries) == part.count
        read.extend(entries)
    assert read == list(manifest)
    assert set(index.folders) == folders_of(clean)
    for folder in index.folders.values():
        under = [e for e in manifest if folder.path == "" or e.path.startswith(f"{folder.path}/")]
        assert folder.files == len(under)
        assert folder.size == sum(e.size or 0 for e in under)
        own = [e for e in manifest if e.path.rpartition("/")[0] == folder.path]
        assert folder.own == len(own) == sum(n for _, n in folder.slices)
    # The stored form reads back the same.
    again = ManifestIndex.from_bytes(index.to_bytes())
    assert again.slices == index.slices and dict(again.folders) == dict(index.folders)


@settings(max_examples=60, deadline=None)
@given(st.sets(_paths, max_size=40), st.sampled_from(["", "a", "a/", "a-", "ü", "b/a"]))
def test_prefix_slices_hold_every_entry_under_the_prefix(paths: set[str], prefix: str) -> None:
    manifest = manifest_of(sorted(paths))
    raw = manifest.to_bytes()
    index = build(raw, 2)
    read = [
        e
        for n in index.prefix_slices(prefix)
        for e in slice_entries(raw[index.slices[n].offset :][: index.slices[n].length])
    ]
    assert [e for e in read if e.path.startswith(prefix)] == [
        e for e in manifest if e.path.startswith(prefix)
    ]


def test_subfolders_by_name_and_folder_slices_skip_own_files() -> None:
    paths = ["b.txt", "a/one.txt", "a/deep/two.txt", "c/x", "top/1", "top/2", "top/3"]
    index = build(manifest_of(paths).to_bytes(), 2)
    assert [f.name for f in index.subfolders("")] == ["a", "c", "top"]
    assert [f.name for f in index.subfolders("a")] == ["deep"]
    top = index.folder("top")
    assert top is not None and top.own == 3 and top.files == 3
    # Slices of two: [a/deep/two.txt, a/one.txt], [b.txt, c/x], [top/1, top/2], [top/3].
    assert top.slices == ((2, 2), (3, 1))
    assert list(index.folder_slices("top", 1)) == [(2, 1), (3, 0)]
    assert list(index.folder_slices("top", 2)) == [(3, 0)]
    assert list(index.folder_slices("top", 3)) == []


def test_a_changed_slice_and_an_unsorted_manifest_are_refused() -> None:
    raw = manifest_of(["a", "b", "c"]).to_bytes()
    index = build(raw, 2)
    part = index.slices[0]
    damaged = raw[part.offset : part.offset + part.length].replace(b"d0", b"d9")
    with pytest.raises(CorruptBlobError):
        check_slice(part, damaged)
    unsorted = json.dumps({"version": 1, "contents": {"b": {"digest": "x"}, "a": {"digest": "y"}}})
    with pytest.raises(ValidationError):
        build(unsorted.encode())


def test_an_empty_manifest_has_the_top_folder_only() -> None:
    index = build(Manifest.of([]).to_bytes())
    assert index.count == 0 and list(index.folders) == [""] and index.slices == ()


@settings(max_examples=60, deadline=None)
@given(st.sets(_paths, max_size=40), st.integers(1, 5))
def test_an_index_built_while_encoding_is_the_index_of_the_bytes(paths: set[str], per: int) -> None:
    # References, digests kept as text, sizes unknown, paths not ASCII: what the slices and
    # folders count is taken from the columns, and must agree with a read of the bytes.
    manifest = Manifest.of(
        Entry(
            path=p,
            digest=f"d{i}" if i % 4 else Digest.of_bytes(p.encode()).b64,
            size=None if i % 5 == 1 else i,
            ref="s3://b/k" if i % 3 == 0 else None,
        )
        for i, p in enumerate(sorted(paths))
    )
    pieces: list[bytes] = []
    index = build_of(manifest, pieces.append, per)
    raw = b"".join(pieces)
    assert raw == manifest.to_bytes() == b"".join(manifest.pieces(per))
    assert index == build(raw, per)
    # A manifest given as a mapping of entries is indexed from its bytes.
    loose = Manifest(dict(manifest.entries.items()))
    pieces.clear()
    assert build_of(loose, pieces.append, per) == index and b"".join(pieces) == raw
