"""Entries kept as columns: the same mapping, bytes and digests as one Entry each."""

from __future__ import annotations

import json
import random

import pytest

from soko.core.digests import Algorithm, Digest, digest_batches, version_digest
from soko.core.manifest import Entry, EntryTable, Manifest, ManifestBuilder
from soko.errors import ValidationError


def mixed_entries() -> list[Entry]:
    rng = random.Random(7)
    entries = [
        Entry(
            f'd/é{i:03}"q',
            Digest(Algorithm.XXH128, rng.randbytes(16)).b64,
            i,
            extra={"alg": "xxh128"},
        )
        for i in range(50)
    ]
    entries += [
        Entry("ref/etag", "etag-1", 5, ref="s3://b/a", extra={"etag": "x", "n": [1, 2]}),
        Entry("ref/no-size", "QUJD", None, ref="s3://b/b", birth_artifact_id="QXJ0aWZhY3Q6MQ=="),
        Entry("zero", Digest(Algorithm.XXH128, bytes(16)).b64, 0, extra={"alg": "xxh128"}),
    ]
    rng.shuffle(entries)
    return entries


def test_a_table_encodes_the_bytes_of_one_json_dumps_and_reads_them_back() -> None:
    entries = mixed_entries()
    manifest = Manifest.of(entries, Algorithm.XXH128)
    assert isinstance(manifest.entries, EntryTable)
    whole = json.dumps(manifest.to_json(), separators=(",", ":"), ensure_ascii=False).encode()
    assert manifest.to_bytes() == whole
    assert manifest.digest() == version_digest(
        [(e.path, e.digest) for e in entries], Algorithm.XXH128
    )
    read = Manifest.from_bytes(whole)
    assert read == manifest and read.algorithm is Algorithm.XXH128
    assert list(read) == sorted(entries, key=lambda e: e.path)
    assert read.entries["ref/etag"].extra == {"etag": "x", "n": [1, 2]}
    assert "missing" not in read.entries and read.entries.get("missing") is None
    with pytest.raises(KeyError):
        read.entries["missing"]
    assert dict(read.entries.items()) == {e.path: e for e in entries}
    assert len(read.blob_digests()) == 51  # the references have none


def test_a_document_out_of_order_is_sorted_and_a_path_given_twice_keeps_its_last_entry() -> None:
    a, b = Digest.of_bytes(b"a").b64, Digest.of_bytes(b"b").b64
    raw = (
        '{"version":1,"storagePolicy":"wandb-storage-policy-v1","storagePolicyConfig":{},'
        f'"contents":{{"z":{{"digest":"{a}"}},"m":{{"digest":"{a}"}},"z":{{"digest":"{b}"}}}}}}'
    ).encode()
    manifest = Manifest.from_bytes(raw)
    assert [(e.path, e.digest) for e in manifest] == [("m", a), ("z", b)]
    assert manifest == Manifest.from_json(json.loads(raw))


def test_a_builder_adds_stored_rows_all_or_none() -> None:
    builder = ManifestBuilder(Algorithm.XXH128)
    one, two = bytes(range(16)), bytes(range(1, 17))
    extra = {"alg": "xxh128"}
    builder.add_stored(["a", "b"], one + two, [1, 2], extra=extra, overwrite=False, origin=3)
    with pytest.raises(ValidationError, match="'b'"):
        builder.add_stored(["c", "b"], one + one, [1, 1], extra=extra, overwrite=False)
    assert "c" not in builder and len(builder) == 2
    builder.add_stored(["b"], two, [2], extra=extra, overwrite=False)  # same digest: fine
    # A path given twice in one batch: refused with two digests, kept once with one.
    with pytest.raises(ValidationError, match="'d'"):
        builder.add_stored(["d", "d"], one + two, [1, 2], extra=extra, overwrite=False)
    builder.add_stored(["e", "e"], one + one, [1, 1], extra=extra, overwrite=False)
    assert "d" not in builder and [e.path for e in builder.remove("e")] == ["e"]
    builder.add_stored(["b"], one, [7], extra=extra, overwrite=True)
    built = builder.build()
    assert built.entries["b"] == Entry("b", Digest(Algorithm.XXH128, one).b64, 7, extra=extra)
    assert builder.origin("a") == 3 and builder.origin("b") == 0
    assert [e.path for e in builder.remove("a")] == ["a"] and len(builder) == 1


def test_the_first_stored_rows_of_a_builder_are_checked_as_later_ones() -> None:
    one, two = bytes(range(16)), bytes(range(1, 17))
    extra = {"alg": "xxh128"}
    builder = ManifestBuilder(Algorithm.XXH128)
    with pytest.raises(ValidationError, match="'d'"):
        builder.add_stored(
            ["a", "d", "d"], one + one + two, [1, 2, 3], extra=extra, overwrite=False
        )
    assert (
        len(builder) == 0
        and builder.build().digest() == ManifestBuilder(Algorithm.XXH128).build().digest()
    )
    builder.add_stored(["z", "d", "d"], two + one + one, [1, 2, 3], extra=extra, overwrite=False)
    builder.add_stored(["m", "a"], one + two, [4, 5], extra={}, overwrite=False, origin=2)
    built = builder.build()
    assert [(e.path, e.digest, e.size, dict(e.extra)) for e in built] == [
        ("a", Digest(Algorithm.XXH128, two).b64, 5, {}),
        ("d", Digest(Algorithm.XXH128, one).b64, 3, extra),
        ("m", Digest(Algorithm.XXH128, one).b64, 4, {}),
        ("z", Digest(Algorithm.XXH128, two).b64, 1, extra),
    ]
    assert builder.origin("m") == 2 and builder.origin("z") == 0


@pytest.mark.parametrize("size", [1, 7, 16_384])
def test_stored_blobs_come_in_batches_of_one_algorithm_and_are_the_blob_digests(
    size: int,
) -> None:
    md5 = [Entry(f"m/{i}", Digest.of_bytes(b"%d" % i).b64, i) for i in range(20)]
    # A digest written in base64 that is not canonical is kept as text: its blob is the
    # same as that of the canonical text.
    odd = Entry("m/odd", "AAAAAAAAAAAAAAAAAAAAAB==", 1)
    for entries in (mixed_entries(), [*mixed_entries(), *md5, odd], md5):
        manifest = Manifest.of(entries)
        assert manifest.table is not None
        batches = list(manifest.table.columns.stored_batches(size))
        assert all(0 < len(batch) <= size for batch in batches)
        digests = [digest for batch in batches for digest in batch]
        assert all(d.algorithm is batch.algorithm for batch in batches for d in batch)
        assert set(digests) == manifest.blob_digests()
        assert len(digests) == sum(1 for e in entries if e.ref is None)
        # Read again, they come again; a store that asks one at a time gets the same.
        assert set(manifest.stored_blobs()) == set(manifest.stored_blobs())
        assert set(manifest.stored_blobs()) == manifest.blob_digests()
    odd_digest = Digest(Algorithm.MD5, bytes(16))
    assert odd_digest in set(Manifest.of([odd]).stored_blobs())


def test_digests_given_one_by_one_are_batched_by_algorithm() -> None:
    digests = [
        Digest.of_bytes(b"%d" % i, (Algorithm.MD5, Algorithm.XXH128)[i % 2]) for i in range(9)
    ]
    batches = list(digest_batches(iter(digests), 2))
    assert all(len(batch) <= 2 for batch in batches)
    assert sorted((d.algorithm, d.raw) for b in batches for d in b) == sorted(
        (d.algorithm, d.raw) for d in digests
    )
    assert list(digest_batches([])) == []
