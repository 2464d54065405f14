"""``gs://`` references against a GCS emulator (gcp-storage-emulator, in memory).

Entries must be W&B's byte for byte (checked against the ``wandb`` package pointed at the
same emulator): etag, size and ``extra.versionID`` = the generation; prefixes expand under
``name/``; exceeding ``max_objects`` is an error that leaves the artifact unchanged; and
``fetch`` returns the recorded bytes or refuses. The emulator keeps one generation per
object, so fetching an overwritten object's old generation is covered for S3 only.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

import pytest

import soko
from soko.core.manifest import Entry
from soko.errors import DigestMismatchError, NotFoundError, ValidationError
from soko.refs import gcs as gcs_refs
from soko.refs.base import handler_for

pytestmark = pytest.mark.integration


def put(bucket: Any, objects: dict[str, bytes]) -> dict[str, Any]:
    """Upload *objects*; return each key's blob as the emulator now describes it."""
    for key, body in objects.items():
        bucket.blob(key).upload_from_string(body)
    return {key: bucket.get_blob(key) for key in objects}


def add(uri: str, **kwargs: Any) -> tuple[soko.Artifact, list[Entry]]:
    artifact = soko.Artifact("refs", "dataset")
    returned = artifact.add_reference(uri, **kwargs)
    return artifact, [e.to_core() for e in returned]


def contents(artifact: Any) -> dict[str, Any]:
    return dict(artifact.manifest.to_json()["contents"])


def fetch(entry: Entry) -> bytes:
    out = io.BytesIO()
    assert entry.ref is not None
    handler_for(entry.ref).fetch(entry, out)
    return out.getvalue()


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def expected_entry(blob: Any, ref: str) -> dict[str, Any]:
    return {
        "digest": blob.etag,
        "ref": ref,
        "size": blob.size,
        "extra": {"versionID": blob.generation},
    }


# ----- entries ------------------------------------------------------------------------


def test_single_object_is_recorded_by_etag_size_and_generation(gcs_bucket: Any) -> None:
    blobs = put(gcs_bucket, {"data/a.txt": b"hello"})
    blob = blobs["data/a.txt"]
    uri = f"gs://{gcs_bucket.name}/data/a.txt"

    artifact, entries = add(uri)

    assert blob.md5_hash == md5_b64(b"hello")
    assert isinstance(blob.generation, int)
    assert contents(artifact) == {"a.txt": expected_entry(blob, uri)}
    # W&B writes the generation as a JSON number, not a string.
    assert f'"versionID":{blob.generation}' in artifact.manifest.to_bytes().decode()
    assert [e.path for e in entries] == ["a.txt"]


def test_single_object_takes_the_given_name(gcs_bucket: Any) -> None:
    put(gcs_bucket, {"data/a.txt": b"hello"})
    artifact, _ = add(f"gs://{gcs_bucket.name}/data/a.txt", name="inputs/renamed.txt")
    assert list(contents(artifact)) == ["inputs/renamed.txt"]


PREFIX_OBJECTS = {
    "data/a.txt": b"alpha",
    "data/sub/b.bin": b"bravo!",
    "data/empty.txt": b"",  # kept: W&B's GCS handler skips only names ending in "/"
    "data/marker/": b"",
    "dataset/c.txt": b"not under data/",
    "top.txt": b"top",
}


@pytest.mark.parametrize("suffix", ["data", "data/"])
def test_prefix_expands_to_its_objects_under_name(gcs_bucket: Any, suffix: str) -> None:
    blobs = put(gcs_bucket, PREFIX_OBJECTS)
    base = f"gs://{gcs_bucket.name}"

    artifact, entries = add(f"{base}/{suffix}", name="d")

    assert contents(artifact) == {
        "d/a.txt": expected_entry(blobs["data/a.txt"], f"{base}/data/a.txt"),
        "d/empty.txt": expected_entry(blobs["data/empty.txt"], f"{base}/data/empty.txt"),
        "d/sub/b.bin": expected_entry(blobs["data/sub/b.bin"], f"{base}/data/sub/b.bin"),
    }
    assert len(entries) == 3


def test_prefix_without_name_is_relative_and_bucket_is_whole(gcs_bucket: Any) -> None:
    put(gcs_bucket, PREFIX_OBJECTS)

    folder, _ = add(f"gs://{gcs_bucket.name}/data")
    whole, _ = add(f"gs://{gcs_bucket.name}")

    assert sorted(contents(folder)) == ["a.txt", "empty.txt", "sub/b.bin"]
    assert sorted(contents(whole)) == [
        "data/a.txt",
        "data/empty.txt",
        "data/sub/b.bin",
        "dataset/c.txt",
        "top.txt",
    ]


def test_nothing_at_or_under_the_uri_is_an_error(gcs_bucket: Any) -> None:
    put(gcs_bucket, {"data/a.txt": b"a"})
    artifact = soko.Artifact("refs", "dataset")
    for uri in (f"gs://{gcs_bucket.name}/missing", f"gs://{gcs_bucket.name}/dat"):
        with pytest.raises(NotFoundError):
            artifact.add_reference(uri)
    assert contents(artifact) == {}


def test_a_generation_the_store_cannot_give_is_never_recorded_as_another(
    gcs_bucket: Any,
) -> None:
    old = put(gcs_bucket, {"a.txt": b"old"})["a.txt"]
    new = put(gcs_bucket, {"a.txt": b"newer"})["a.txt"]
    assert new.generation != old.generation
    uri = f"gs://{gcs_bucket.name}/a.txt#{old.generation}"

    # A versioned bucket returns the old generation; one that kept no versions (the
    # emulator) has none to give. Either way the entry never names the newer object.
    try:
        _, (entry,) = add(uri)
    except NotFoundError:
        return
    assert entry.extra == {"versionID": old.generation}
    assert fetch(entry) == b"old"


def test_bad_generation_fragment_is_refused(gcs_bucket: Any) -> None:
    with pytest.raises(ValidationError, match="generation"):
        add(f"gs://{gcs_bucket.name}/a.txt#latest")


# ----- max_objects ----------------------------------------------------------------------


def test_exceeding_max_objects_is_an_error_and_changes_nothing(
    gcs_bucket: Any, tmp_path: Any
) -> None:
    put(gcs_bucket, {f"many/{i}.txt": f"object {i}".encode() for i in range(5)})
    put(gcs_bucket, {"one.txt": b"one"})
    local = tmp_path / "local.txt"
    local.write_text("local file")
    artifact = soko.Artifact("refs", "dataset")
    artifact.add_file(str(local))
    artifact.add_reference(f"gs://{gcs_bucket.name}/one.txt")
    before = artifact.manifest.to_bytes()

    with pytest.raises(ValidationError, match="max_objects=4"):
        artifact.add_reference(f"gs://{gcs_bucket.name}/many", max_objects=4)

    assert artifact.manifest.to_bytes() == before
    assert len(artifact.add_reference(f"gs://{gcs_bucket.name}/many", max_objects=5)) == 5


def test_default_max_objects_applies_when_none_is_given(
    gcs_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert gcs_refs.DEFAULT_MAX_OBJECTS == 10_000
    put(gcs_bucket, {f"many/{i}.txt": b"x" for i in range(3)})
    # Creating 10,001 objects would only test the emulator's speed; same code path.
    monkeypatch.setattr(gcs_refs, "DEFAULT_MAX_OBJECTS", 2)
    with pytest.raises(ValidationError, match="max_objects=2"):
        add(f"gs://{gcs_bucket.name}/many")
    monkeypatch.setattr(gcs_refs, "DEFAULT_MAX_OBJECTS", 3)
    assert len(add(f"gs://{gcs_bucket.name}/many")[1]) == 3


# ----- checksum=False -------------------------------------------------------------------


def test_checksum_false_records_the_uri_and_fetches_the_current_bytes(gcs_bucket: Any) -> None:
    uri = f"gs://{gcs_bucket.name}/data/later.txt"
    artifact, (entry,) = add(uri, checksum=False)
    assert contents(artifact) == {"data/later.txt": {"digest": uri, "ref": uri}}

    put(gcs_bucket, {"data/later.txt": b"written afterwards"})
    assert fetch(entry) == b"written afterwards"


# ----- fetch ----------------------------------------------------------------------------


def test_fetch_returns_the_bytes_of_each_expanded_entry(gcs_bucket: Any) -> None:
    objects = {"data/a.txt": b"alpha", "data/sub/b.bin": bytes(range(256)) * 5000}
    put(gcs_bucket, objects)
    _, entries = add(f"gs://{gcs_bucket.name}/data", name="d")
    fetched = {e.path: fetch(e) for e in entries}
    assert fetched == {"d/a.txt": objects["data/a.txt"], "d/sub/b.bin": objects["data/sub/b.bin"]}


def test_fetch_detects_a_changed_object(gcs_bucket: Any) -> None:
    put(gcs_bucket, {"a.txt": b"original"})
    _, (entry,) = add(f"gs://{gcs_bucket.name}/a.txt")
    put(gcs_bucket, {"a.txt": b"replaced"})

    out = io.BytesIO()
    with pytest.raises(DigestMismatchError, match="changed"):
        handler_for(f"gs://{gcs_bucket.name}/a.txt").fetch(entry, out)
    assert out.getvalue() == b""


def test_fetch_of_a_deleted_object_is_not_found(gcs_bucket: Any) -> None:
    put(gcs_bucket, {"a.txt": b"original"})
    _, (entry,) = add(f"gs://{gcs_bucket.name}/a.txt")
    gcs_bucket.blob("a.txt").delete()
    with pytest.raises(NotFoundError):
        fetch(entry)


# ----- against the wandb package --------------------------------------------------------


DIFFERENTIAL_OBJECTS = {
    "data/a.txt": b"alpha",
    "data/sub/b.bin": b"bravo!",
    "data/sub/deeper/c.json": b'{"c": 1}',
    "data/empty.txt": b"",
    "data/marker/": b"",
    "top.txt": b"top",
}
# URIs for which W&B's handler is well defined (see docs/references.md for the others).
DIFFERENTIAL_CASES: list[tuple[str, dict[str, Any]]] = [
    ("top.txt", {}),
    ("top.txt", {"name": "renamed.txt"}),
    ("data/sub/b.bin", {"name": "models/b.bin"}),
    ("data", {}),
    ("data/", {}),
    ("data", {"name": "inputs"}),
    ("data/sub/", {"name": "inputs/sub"}),
    ("top.txt", {"checksum": False}),
    ("data/sub", {"checksum": False, "name": "lazy"}),
]


@pytest.mark.differential
def test_entries_match_the_wandb_package_byte_for_byte(gcs_bucket: Any, wandb_offline: Any) -> None:
    put(gcs_bucket, DIFFERENTIAL_OBJECTS)
    put(gcs_bucket, {"top.txt": b"top, second generation"})

    for suffix, kwargs in DIFFERENTIAL_CASES:
        uri = f"gs://{gcs_bucket.name}/{suffix}"
        theirs = wandb_offline.Artifact("refs", "dataset")
        theirs.add_reference(uri, **kwargs)
        ours = soko.Artifact("refs", "dataset", digest_algorithm="MD5")
        ours.add_reference(uri, **kwargs)

        their_contents = theirs.manifest.to_manifest_json()["contents"]
        our_contents = contents(ours)
        assert their_contents, f"wandb found nothing for {uri} {kwargs}"
        assert sorted(our_contents) == sorted(their_contents), (uri, kwargs)
        for path, their_entry in their_contents.items():
            assert json.dumps(our_contents[path]) == json.dumps(their_entry), (uri, kwargs, path)
        assert ours.manifest.digest() == theirs.manifest.digest(), (uri, kwargs)
