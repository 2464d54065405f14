"""A manifest spliced from a stored one and a change is the manifest built whole: the same
bytes, version digest, count and size, and an index that reads back the same entries and
folders, over many random edits (additions between, before and after the slices,
replacements, removals, entries no pattern copies)."""

from __future__ import annotations

import random

import pytest

from soko.core.digests import Algorithm
from soko.core.entries import b64_of
from soko.core.layered import LayeredManifest
from soko.core.manifest import Entry, Manifest, ManifestRef
from soko.core.manifest_index import ManifestIndex, build, check_slice, slice_entries
from soko.core.splice import digest_lines, splice
from soko.errors import CorruptBlobError

_XXH = {"alg": "xxh128"}


def _entry(rng: random.Random, path: str) -> Entry:
    kind = rng.random()
    digest = b64_of(rng.randbytes(16))
    if kind < 0.75:
        return Entry(path=path, digest=digest, size=rng.choice([0, 1, 1024, 7]), extra=_XXH)
    if kind < 0.85:
        return Entry(path=path, digest=digest, size=None)  # MD5: no extra, no size
    if kind < 0.93:
        return Entry(
            path=path,
            digest=f'etag-{rng.randrange(99)}"q',  # an escape in the slice
            size=5,
            ref=f"s3://bucket/{path}",
            extra={"etag": "x", "versionID": rng.randrange(9)},
        )
    return Entry(path=path, digest=digest, size=3, birth_artifact_id="abc", extra=_XXH)


_NAMES = ["a", "b", "c", "d0", "d1", "é", "z z", "m-n", "ü€", "q", "},", ":{", "a,b}"]


def _path(rng: random.Random) -> str:
    depth = rng.randrange(1, 4)
    return "/".join(rng.choice(_NAMES) + str(rng.randrange(40)) for _ in range(depth)) + ".f"


def _base(rng: random.Random, count: int) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    while len(entries) < count:
        path = _path(rng)
        entries[path] = _entry(rng, path)
    return entries


def _edit(rng: random.Random, base: dict[str, Entry]) -> tuple[list[Entry], set[str]]:
    """Changes (new paths, replaced ones) and removed paths of the base."""
    paths = sorted(base)
    changes: dict[str, Entry] = {}
    removed: set[str] = set()
    for _ in range(rng.randrange(0, 12)):
        path = _path(rng) if rng.random() < 0.6 else rng.choice(["!first.f", "~~last.f"])
        changes[path] = _entry(rng, path)
    for _ in range(rng.randrange(0, 6)):
        if paths:
            path = rng.choice(paths)
            changes[path] = _entry(rng, path)
    for _ in range(rng.randrange(0, 8)):
        if paths:
            removed.add(rng.choice(paths))
    if paths and rng.random() < 0.3:
        # Just after a path of the base: between two of its entries, maybe two slices.
        after = rng.choice(paths) + "0"
        changes[after] = _entry(rng, after)
    return list(changes.values()), removed


def _whole(base: dict[str, Entry], changes: list[Entry], removed: set[str]) -> Manifest:
    final = {p: e for p, e in base.items() if p not in removed}
    final.update((e.path, e) for e in changes)
    return Manifest.of(final.values(), Algorithm.XXH128)


def _check_index(index: ManifestIndex, raw: bytes, expected: Manifest) -> None:
    whole = build(raw)
    assert (index.count, index.size, index.references) == (
        whole.count,
        whole.size,
        whole.references,
    )
    read: list[Entry] = []
    start = 0
    for number, part in enumerate(index.slices):
        piece = raw[part.offset : part.offset + part.length]
        check_slice(part, piece)
        entries = slice_entries(piece)
        assert entries[0].path == part.first and len(entries) == part.count
        assert part.start == start
        start += part.count
        refs = sum(1 for e in entries if e.ref is not None)
        assert dict(index.reference_slices).get(number, 0) == refs
        read.extend(entries)
    assert read == list(expected)
    assert set(index.folders) == set(whole.folders)
    for path, folder in index.folders.items():
        other = whole.folders[path]
        assert (folder.size, folder.files, folder.own) == (other.size, other.files, other.own)
        own = [
            e.path
            for number, _ in folder.slices
            for e in slice_entries(
                raw[
                    index.slices[number].offset : index.slices[number].offset
                    + index.slices[number].length
                ]
            )
            if e.path.rpartition("/")[0] == path
        ]
        assert own == [e.path for e in expected if e.path.rpartition("/")[0] == path]
        assert sum(c for _, c in folder.slices) == folder.own


@pytest.mark.parametrize("seed", range(60))
def test_a_spliced_manifest_is_the_manifest_built_whole(seed: int) -> None:
    rng = random.Random(seed)
    base = _base(rng, rng.choice([0, 1, 5, 40, 200]))
    per = rng.choice([1, 3, 8, 64])
    raw = Manifest.of(base.values(), Algorithm.XXH128).to_bytes()
    index = build(raw, per)
    # Versions made one from another: each splice is the base of the next.
    for _ in range(3):
        changes, removed = _edit(rng, base)
        expected = _whole(base, changes, removed)
        table = Manifest.of(changes, Algorithm.XXH128).table
        assert table is not None
        spliced = splice(
            raw, index, table, frozenset(removed), Algorithm.XXH128, per_slice=rng.choice([2, 5])
        )
        assert spliced.raw == expected.to_bytes()
        assert spliced.digest == expected.digest()
        assert spliced.ref == ManifestRef.encode(expected)[0]
        assert (spliced.count, spliced.size) == (len(expected), expected.size)
        _check_index(spliced.index, spliced.raw, expected)
        raw, index = spliced.raw, spliced.index
        base = {e.path: e for e in expected}


def test_only_canonical_slices_are_copied() -> None:
    entry = Entry(path="a/b.f", digest=b64_of(bytes(16)), size=3, extra=_XXH)
    raw = Manifest.of([entry]).to_bytes()
    part = build(raw).slices[0]
    body = raw[part.offset : part.offset + part.length]
    assert digest_lines(body) == f"a/b.f:{entry.digest}\n".encode()
    # Another key order, a space, an escape, another extra: decoded and encoded again.
    for other in (
        body.replace(b'"size":3,', b"").replace(b"}}", b',"size":3}}'),
        body.replace(b'"size":3', b'"size": 3'),
        body.replace(b"a/b.f", b"a/\\u0062.f"),
        body.replace(b'{"alg":"xxh128"}', b'{"alg":"xxh128","x":1}'),
        body.replace(b'"a/b.f"', b'"./a/b.f"'),
    ):
        assert digest_lines(other) is None


def test_a_slice_that_does_not_match_its_index_is_refused() -> None:
    rng = random.Random(7)
    base = _base(rng, 30)
    raw = bytearray(Manifest.of(base.values(), Algorithm.XXH128).to_bytes())
    index = build(bytes(raw), 4)
    part = index.slices[3]
    raw[part.offset + 2] ^= 1
    empty = Manifest.of([]).table
    assert empty is not None
    with pytest.raises(CorruptBlobError):
        splice(bytes(raw), index, empty, frozenset(), Algorithm.XXH128)


class _Base:
    def __init__(self, manifest: Manifest, per: int) -> None:
        self._raw = manifest.to_bytes()
        self.key = ManifestRef.encode(manifest)[0].key
        self.index = build(self._raw, per)
        self._manifest = manifest

    def slice_bytes(self, number: int) -> bytes:
        part = self.index.slices[number]
        return self._raw[part.offset : part.offset + part.length]

    def raw(self) -> bytes:
        return self._raw

    def whole(self) -> Manifest:
        return self._manifest


def test_a_layered_manifest_answers_as_its_whole() -> None:
    rng = random.Random(3)
    base = _base(rng, 100)
    changes, removed = _edit(rng, base)
    expected = _whole(base, changes, removed)
    table = Manifest.of(changes, Algorithm.XXH128).table
    assert table is not None
    layered = LayeredManifest(
        _Base(Manifest.of(base.values(), Algorithm.XXH128), 8),
        table,
        frozenset(removed),
        Algorithm.XXH128,
    )
    assert layered.digest() == expected.digest()
    assert len(layered) == len(expected) and layered.size == expected.size
    assert layered.to_bytes() == expected.to_bytes()
    # Its blobs are the change's: the base's are stored.
    assert layered.blob_digests() == Manifest.of(changes).blob_digests()
    layered.release_bytes()
    assert layered.digest() == expected.digest() and len(layered) == len(expected)
    # Its entries, asked for, are the whole's.
    assert dict(layered.entries) == dict(expected.entries)
    assert layered.whole() == expected
    assert list(layered.new_paths()) == sorted(e.path for e in changes)
