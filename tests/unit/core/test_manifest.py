"""Manifests: W&B v1 JSON round trips, canonical bytes, builder rules, refused input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soko.core.digests import Algorithm, Digest, version_digest
from soko.core.manifest import STORAGE_POLICY, Entry, Manifest, ManifestBuilder
from soko.errors import ValidationError

_segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", "..") and not (len(s) >= 2 and s[1] == ":"))
_paths = st.lists(_segment, min_size=1, max_size=3).map("/".join)


def file_entry(path: str, content: bytes, algorithm: Algorithm = Algorithm.MD5) -> Entry:
    extra = {"alg": algorithm.value} if algorithm is Algorithm.XXH128 else {}
    digest = Digest.of_bytes(content, algorithm).b64
    return Entry(path=path, digest=digest, size=len(content), extra=extra)


@st.composite
def entries(draw: st.DrawFn) -> list[Entry]:
    paths = draw(st.lists(_paths, unique=True, max_size=8))
    found: list[Entry] = []
    for path in paths:
        content = draw(st.binary(max_size=32))
        if draw(st.booleans()):
            found.append(file_entry(path, content))
        else:
            uri = f"https://example.com/{path}"
            etag = draw(st.text(alphabet="0123456789abcdef", min_size=1, max_size=12))
            found.append(
                Entry(path=path, digest=etag, size=len(content), ref=uri, extra={"etag": etag})
            )
    return found


@given(entries())
def test_json_round_trip_keeps_every_entry(items: list[Entry]) -> None:
    manifest = Manifest.of(items)
    again = Manifest.from_json(json.loads(json.dumps(manifest.to_json())))
    assert again == manifest
    assert again.to_bytes() == manifest.to_bytes()
    assert again.digest() == manifest.digest()


@given(entries(), st.randoms())
def test_canonical_bytes_do_not_depend_on_insertion_order(items: list[Entry], rnd: Any) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    first, second = Manifest.of(items), Manifest.of(shuffled)
    assert first.to_bytes() == second.to_bytes()
    assert list(json.loads(first.to_bytes())["contents"]) == sorted(e.path for e in items)


def test_json_layout_is_wandb_manifest_v1() -> None:
    manifest = Manifest.of(
        [
            file_entry("b.txt", b"hello"),
            Entry(
                path="a/ref",
                digest="abc",
                size=3,
                ref="https://example.com/x",
                extra={"etag": '"abc"'},
                birth_artifact_id="QXJ0aWZhY3Q6MQ==",
            ),
        ]
    )
    data = manifest.to_json()
    assert data["version"] == 1
    assert data["storagePolicy"] == STORAGE_POLICY
    assert data["storagePolicyConfig"] == {"storageLayout": "V2"}
    assert list(data["contents"]) == ["a/ref", "b.txt"]
    # W&B's serialiser writes these keys in this order, omitting absent ones.
    assert list(data["contents"]["a/ref"]) == ["digest", "ref", "birthArtifactID", "size", "extra"]
    assert data["contents"]["b.txt"] == {"digest": "XUFAKrxLKna5cZ2REBfFkg==", "size": 5}


def test_manifest_digest_and_size() -> None:
    items = [
        file_entry("file1.txt", b"hello"),
        file_entry("empty", b""),
        Entry(path="untracked", digest="s3://b/k", ref="s3://b/k"),
    ]
    manifest = Manifest.of(items)
    assert manifest.size == 5
    assert manifest.digest() == version_digest(((e.path, e.digest) for e in items), Algorithm.MD5)
    assert manifest.blob_digests() == {Digest.of_bytes(b"hello"), Digest.of_bytes(b"")}


def test_algorithm_is_inferred_from_file_entries() -> None:
    md5 = Manifest.of([file_entry("a", b"x")])
    xxh = Manifest.of([file_entry("a", b"x", Algorithm.XXH128)], Algorithm.XXH128)
    assert Manifest.from_json(md5.to_json()).algorithm is Algorithm.MD5
    assert Manifest.from_json(xxh.to_json()).algorithm is Algorithm.XXH128
    assert Manifest.from_json(xxh.to_json()).digest() == xxh.digest()
    assert xxh.digest() != Manifest.of(xxh, Algorithm.MD5).digest()


def test_blob_digest_of_reference_is_refused() -> None:
    with pytest.raises(ValidationError, match="reference"):
        Entry(path="r", digest="x", ref="https://example.com/r").blob_digest()


def test_manifest_of_refuses_duplicate_paths() -> None:
    with pytest.raises(ValidationError, match="twice"):
        Manifest.of([file_entry("a", b"1"), file_entry("a", b"2")])


def _manifest(contents: Any, **top: Any) -> dict[str, Any]:
    return {"version": 1, "storagePolicy": STORAGE_POLICY, "contents": contents, **top}


@pytest.mark.parametrize(
    "data",
    [
        [],
        "manifest",
        {"version": 2, "contents": {}},
        {"version": True, "contents": {}},
        {"version": "1", "contents": {}},
        {"version": 1},
        _manifest([]),
        _manifest({"a": "digest"}),
        _manifest({"a": {}}),
        _manifest({"a": {"digest": 5}}),
        _manifest({"a": {"digest": "x", "size": -1}}),
        _manifest({"a": {"digest": "x", "size": "5"}}),
        _manifest({"a": {"digest": "x", "size": True}}),
        _manifest({"a": {"digest": "x", "ref": 5}}),
        _manifest({"a": {"digest": "x", "birthArtifactID": 5}}),
        _manifest({"a": {"digest": "x", "extra": [1]}}),
        _manifest({"a": {"digest": "x", "extra": "ab"}}),
        _manifest({"a": {"digest": "x", "extra": {"alg": "SHA1"}}}),
        _manifest({"../a": {"digest": "x"}}),
        _manifest({"/a": {"digest": "x"}}),
        _manifest({"a//b": {"digest": "x"}}),
        _manifest({}, storagePolicyConfig=[1]),
    ],
)
def test_from_json_refuses_bad_input(data: Any) -> None:
    with pytest.raises(ValidationError):
        Manifest.from_json(data)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"null", b"[1]"])
def test_from_bytes_refuses_bad_input(raw: bytes) -> None:
    with pytest.raises(ValidationError):
        Manifest.from_bytes(raw)


# ----- the builder ------------------------------------------------------------------


def test_builder_same_path_same_digest_replaces() -> None:
    builder = ManifestBuilder()
    builder.add(file_entry("a", b"1"))
    ref_like = Entry(path="a", digest=file_entry("a", b"1").digest, size=99)
    builder.add(ref_like)
    assert builder.get("a") == ref_like


def test_builder_same_path_other_digest_is_refused_and_changes_nothing() -> None:
    builder = ManifestBuilder()
    first = builder.add(file_entry("a", b"1"))
    before = builder.build()
    with pytest.raises(ValidationError, match="overwrite=True"):
        builder.add(file_entry("a", b"2"))
    with pytest.raises(ValidationError):
        builder.check_add(file_entry("a", b"2"))
    assert builder.get("a") == first
    assert builder.build() == before
    replaced = builder.add(file_entry("a", b"2"), overwrite=True)
    assert builder.get("a") == replaced


def test_builder_add_all_is_all_or_nothing() -> None:
    builder = ManifestBuilder(entries=[file_entry("d/x", b"old")])
    before = builder.build()
    batch = [file_entry("d/a", b"a"), file_entry("d/x", b"new"), file_entry("d/z", b"z")]
    with pytest.raises(ValidationError):
        builder.add_all(batch)
    assert builder.build() == before
    builder.add_all(batch, overwrite=True)
    assert sorted(e.path for e in builder) == ["d/a", "d/x", "d/z"]
    assert builder.get("d/x") == batch[1]


def test_builder_add_all_refuses_a_conflict_inside_the_batch() -> None:
    builder = ManifestBuilder()
    with pytest.raises(ValidationError):
        builder.add_all([file_entry("a", b"1"), file_entry("a", b"2")])
    assert len(builder) == 0


def test_builder_origins_by_digest_come_in_the_order_of_their_digests_first_byte() -> None:
    # A server's indexes of blobs are keyed by digest: uploads in this order write a few
    # neighbouring pages of them per batch.
    builder = ManifestBuilder()
    for number in range(1, 301):
        builder.add(file_entry(f"f{number}", str(number).encode()), origin=number)
    builder.add(file_entry("replaced", b"old"), origin=301)
    builder.add(file_entry("replaced", b"new"), overwrite=True, origin=302)
    builder.add(file_entry("no origin", b"x"))

    plain = list(builder.origins())
    ordered = list(builder.origins(by_digest=True))

    assert sorted(ordered) == sorted(plain)
    assert len(ordered) == 301
    assert ("replaced", 302, Digest.of_bytes(b"new"), 3) in ordered
    firsts = [digest.raw[0] for _, _, digest, _ in ordered]
    assert firsts == sorted(firsts)
    assert firsts != [digest.raw[0] for _, _, digest, _ in plain]
    # The order added, within one first byte.
    for first in set(firsts):
        same = [path for path, _, digest, _ in ordered if digest.raw[0] == first]
        assert same == [path for path, _, digest, _ in plain if digest.raw[0] == first]


def test_builder_origins_by_digest_keep_windows_of_files_in_the_order_added(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("soko.core.manifest._WINDOW", 50)
    builder = ManifestBuilder()
    for number in range(1, 201):
        builder.add(file_entry(f"f{number}", str(number).encode()), origin=number)

    ordered = [origin for _, origin, _, _ in builder.origins(by_digest=True)]

    assert [sorted(ordered[start : start + 50]) for start in range(0, 200, 50)] == [
        list(range(start + 1, start + 51)) for start in range(0, 200, 50)
    ]


def test_builder_remove_one_path_or_a_folder_prefix() -> None:
    paths = ["data/a", "data/sub/b", "database", "data", "other/data/c"]
    builder = ManifestBuilder(entries=[file_entry(p, p.encode()) for p in paths])
    # An exact path wins over the folder of the same name.
    assert [e.path for e in builder.remove("data")] == ["data"]
    assert sorted(e.path for e in builder.remove("data/")) == ["data/a", "data/sub/b"]
    assert sorted(e.path for e in builder) == ["database", "other/data/c"]
    assert builder.remove("data") == []
    assert builder.remove("missing") == []
    assert builder.remove("") == []
    assert sorted(e.path for e in builder) == ["database", "other/data/c"]


def test_builder_build_is_frozen_snapshot() -> None:
    builder = ManifestBuilder(Algorithm.XXH128)
    builder.add(file_entry("a", b"1", Algorithm.XXH128))
    snapshot = builder.build()
    builder.add(file_entry("b", b"2", Algorithm.XXH128))
    assert [e.path for e in snapshot] == ["a"]
    assert snapshot.algorithm is Algorithm.XXH128
    assert "b" in builder and "b" not in snapshot.entries
