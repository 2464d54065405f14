"""A manifest is a blob named ``xxh128:<hex>``: one type knows the name, writes the blob
and loads it back, always checked; one cache keeps which blobs recent manifests name."""

from __future__ import annotations

import threading

import pytest

from soko.core.digests import Algorithm, Digest
from soko.core.manifest import MANIFEST_ALGORITHM, Entry, Manifest, ManifestRef
from soko.core.membership import MembershipCache
from soko.errors import CorruptBlobError, ValidationError


def manifest(*names: str) -> Manifest:
    entries = [
        Entry(path=name, digest=Digest.of_bytes(name.encode()).b64, size=len(name))
        for name in names
    ]
    return Manifest.of(entries, Algorithm.MD5)


def test_encode_names_the_blob_by_the_xxh128_of_its_bytes_and_load_reads_it_back() -> None:
    original = manifest("a.txt", "b/c.txt")
    ref, raw = ManifestRef.encode(original)
    assert raw == original.to_bytes()
    assert ref.digest == Digest.of_bytes(raw, Algorithm.XXH128)
    assert ref.key == str(ref) == f"xxh128:{ref.digest.hex}"
    assert ManifestRef.parse(ref.key) == ref
    loaded = ref.load(raw, Algorithm.MD5)
    assert loaded.to_bytes() == raw


def test_load_refuses_bytes_that_parse_but_are_not_the_blob() -> None:
    ref, raw = ManifestRef.encode(manifest("a.txt"))
    flipped = raw.replace(b"a.txt", b"b.txt")  # still a valid manifest
    Manifest.from_bytes(flipped)
    with pytest.raises(CorruptBlobError, match=str(ref.digest)):
        ref.load(flipped)


@pytest.mark.parametrize(
    "key", ["md5:" + "0" * 32, "xxh128", "xxh128:", "XXH128:" + "0" * 32, "xxh128:zz"]
)
def test_a_key_that_is_not_an_xxh128_digest_is_refused(key: str) -> None:
    with pytest.raises(ValidationError):
        ManifestRef.parse(key)


def test_the_manifest_algorithm_is_xxh128_whatever_the_entries_use() -> None:
    with pytest.raises(ValidationError, match="manifest_blob must be an xxh128 digest"):
        ManifestRef(Digest.of_bytes(b"x", Algorithm.MD5))
    assert MANIFEST_ALGORITHM is Algorithm.XXH128


def sizes(*names: str) -> dict[Digest, int | None]:
    return {Digest.of_bytes(name.encode()): len(name) for name in names}


def test_membership_drops_the_least_recently_used_past_its_entries() -> None:
    cache = MembershipCache(max_entries=4)
    cache.remember("one", sizes("a", "b"))
    cache.remember("two", sizes("c", "d"))
    assert cache.get("one") is not None  # now the most recent
    cache.remember("three", sizes("e"))
    assert cache.get("two") is None
    assert [key for key, _ in cache.newest_first()] == ["three", "one"]


def test_membership_keeps_what_it_has_and_the_newest_even_when_too_large() -> None:
    cache = MembershipCache(max_entries=2)
    first = sizes("a")
    assert cache.remember("one", first) is first
    assert cache.remember("one", sizes("other")) is first
    big = sizes("a", "b", "c")
    cache.remember("big", big)
    assert cache.newest_first() == [("big", big)]


def test_pages_add_up_under_a_key_until_the_whole_manifest_replaces_them() -> None:
    cache = MembershipCache(max_entries=10)
    cache.add("v", sizes("a", "b"))
    cache.add("v", sizes("b", "c"))
    assert set(cache.get("v") or {}) == set(sizes("a", "b", "c"))
    whole = sizes("a", "b", "c", "d")
    assert cache.remember("v", whole) is whole
    cache.add("v", sizes("a"))  # nothing new: the whole manifest's members stay as they are
    assert cache.get("v") is whole
    cache.add("w", sizes("x", "y", "z", "q", "r", "s", "t"))  # 7 + 4 > 10: "v" dropped
    assert cache.get("v") is None


def test_membership_is_safe_across_threads() -> None:
    cache = MembershipCache(max_entries=100)
    start = threading.Barrier(4)

    def fill(offset: int) -> None:
        start.wait()
        for index in range(200):
            cache.remember(f"{offset}-{index}", sizes(f"{offset}-{index}"))

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = cache.newest_first()
    assert len(kept) == 100
    assert sum(len(members) for _, members in kept) == 100
