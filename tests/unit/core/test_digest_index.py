"""DigestIndex: the members of a manifest as arrays answer as its map of blob sizes does."""

from __future__ import annotations

import hashlib

from soko.core.digest_index import DigestIndex, members_of
from soko.core.digests import Algorithm, Digest
from soko.core.entries import Columns, b64_of
from soko.core.manifest import Entry, Manifest

XXH = {"alg": "xxh128"}


def md5(text: str) -> bytes:
    return hashlib.md5(text.encode()).digest()


def manifest_of(entries: list[Entry]) -> Manifest:
    return Manifest.from_bytes(Manifest.of(entries).to_bytes())


def test_an_index_answers_as_the_manifests_map_of_blob_sizes() -> None:
    entries = [Entry(f"f{i:04}", b64_of(md5(str(i))), i) for i in range(300)]
    entries += [
        Entry("same-as-f7", b64_of(md5("7")), 7),  # one blob, two files
        Entry("unknown-size", b64_of(md5("u")), None),
        Entry("xxh", b64_of(md5("7")), 9, extra=XXH),  # the same bytes, another algorithm
        Entry("ref", "etag-text", 5, ref="s3://bucket/key"),
    ]
    manifest = manifest_of(entries)
    index = members_of(manifest)
    assert isinstance(index, DigestIndex)
    expected = manifest_of(entries).blob_sizes()
    assert len(index) == len(expected) == 302
    assert dict(index) == dict(expected)
    assert index[Digest(Algorithm.MD5, md5("7"))] == 7
    assert index[Digest(Algorithm.XXH128, md5("7"))] == 9
    assert index[Digest(Algorithm.MD5, md5("u"))] is None
    assert Digest(Algorithm.MD5, md5("not named")) not in index
    assert index.get(Digest(Algorithm.XXH128, md5("8")), -1) == -1
    assert "f0001" not in index


def test_digests_that_share_their_first_bytes_are_told_apart() -> None:
    columns = Columns()
    same_start = [bytes(8) + bytes([n]) * 8 for n in range(1, 6)]
    for n, raw in enumerate(same_start):
        columns.append(f"f{n}", b64_of(raw), n, None, 0, None)
    columns.append("again", b64_of(same_start[2]), 2, None, 0, None)
    index = DigestIndex(columns)
    assert len(index) == 5
    assert sorted(d.raw for d in index) == sorted(same_start)
    assert [index[Digest(Algorithm.MD5, raw)] for raw in same_start] == [0, 1, 2, 3, 4]
    assert Digest(Algorithm.MD5, bytes(8) + bytes([9]) * 8) not in index


def test_a_digest_kept_as_text_is_a_member_too() -> None:
    columns = Columns()
    columns.append("plain", b64_of(md5("a")), 1, None, 0, None)
    # Valid base64 of 16 bytes that is not the plain encoding of them (its last
    # character carries bits the bytes do not have): kept as text by the columns.
    text = b64_of(md5("b"))
    odd = text[:-3] + chr(ord(text[-3]) ^ 1) + "=="
    columns.append("odd", odd, 2, None, 0, None)
    assert columns.texts
    index = DigestIndex(columns)
    parsed = Digest.from_b64(odd)
    assert len(index) == 2
    assert index[parsed] == 2
    assert set(index) == {Digest(Algorithm.MD5, md5("a")), parsed}


def test_an_index_does_not_change_when_its_columns_do() -> None:
    columns = Columns()
    columns.append("a", b64_of(md5("a")), 1, None, 0, None)
    index = DigestIndex(columns)
    columns.append("b", b64_of(md5("b")), 2, None, 0, None)
    assert Digest(Algorithm.MD5, md5("b")) not in index
    assert len(index) == 1
