"""``s3://`` references against a real S3 endpoint (moto's server mode).

Entries must be W&B's byte for byte (checked against the ``wandb`` package pointed at the
same server), prefixes expand under ``name/``, exceeding ``max_objects`` is an error that
leaves the artifact unchanged, and ``fetch`` returns the recorded bytes or refuses.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pytest

import soko
from soko.core.manifest import Entry
from soko.errors import DigestMismatchError, NotFoundError, ValidationError
from soko.refs import s3 as s3_refs
from soko.refs.base import handler_for

pytestmark = pytest.mark.integration


def put(client: Any, bucket: str, objects: dict[str, bytes]) -> dict[str, str | None]:
    """Upload *objects*; return each key's VersionId (None in an unversioned bucket)."""
    versions: dict[str, str | None] = {}
    for key, body in objects.items():
        response = client.put_object(Bucket=bucket, Key=key, Body=body)
        versions[key] = response.get("VersionId")
    return versions


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


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ----- entries ------------------------------------------------------------------------


def test_single_object_is_recorded_by_etag_and_size(s3_client: Any, s3_bucket: str) -> None:
    put(s3_client, s3_bucket, {"data/a.txt": b"hello"})
    etag = s3_client.head_object(Bucket=s3_bucket, Key="data/a.txt")["ETag"].strip('"')

    artifact, entries = add(f"s3://{s3_bucket}/data/a.txt")

    # A single-part upload's ETag is the MD5 of its bytes: an independent check of the digest.
    assert etag == md5_hex(b"hello")
    assert contents(artifact) == {
        "a.txt": {
            "digest": etag,
            "ref": f"s3://{s3_bucket}/data/a.txt",
            "size": 5,
            "extra": {"etag": etag},
        }
    }
    assert [e.path for e in entries] == ["a.txt"]


def test_single_object_takes_the_given_name(s3_client: Any, s3_bucket: str) -> None:
    put(s3_client, s3_bucket, {"data/a.txt": b"hello"})
    artifact, _ = add(f"s3://{s3_bucket}/data/a.txt", name="inputs/renamed.txt")
    (path,) = contents(artifact)
    assert path == "inputs/renamed.txt"
    assert contents(artifact)[path]["ref"] == f"s3://{s3_bucket}/data/a.txt"


def test_versioned_bucket_records_the_version_id(s3_client: Any, s3_versioned_bucket: str) -> None:
    versions = put(s3_client, s3_versioned_bucket, {"model.bin": b"weights v1"})
    assert versions["model.bin"]

    artifact, (entry,) = add(f"s3://{s3_versioned_bucket}/model.bin")

    assert contents(artifact)["model.bin"]["extra"] == {
        "etag": md5_hex(b"weights v1"),
        "versionID": versions["model.bin"],
    }
    assert entry.extra["versionID"] == versions["model.bin"]


def test_fetch_gets_the_recorded_version_after_an_overwrite(
    s3_client: Any, s3_versioned_bucket: str
) -> None:
    put(s3_client, s3_versioned_bucket, {"model.bin": b"weights v1"})
    _, (entry,) = add(f"s3://{s3_versioned_bucket}/model.bin")
    put(s3_client, s3_versioned_bucket, {"model.bin": b"weights v2, longer"})

    assert fetch(entry) == b"weights v1"


def test_version_id_in_the_uri_selects_that_version(
    s3_client: Any, s3_versioned_bucket: str
) -> None:
    old = put(s3_client, s3_versioned_bucket, {"model.bin": b"old"})["model.bin"]
    put(s3_client, s3_versioned_bucket, {"model.bin": b"newer"})

    _, (entry,) = add(f"s3://{s3_versioned_bucket}/model.bin?versionId={old}")

    assert entry.ref == f"s3://{s3_versioned_bucket}/model.bin"
    assert entry.extra == {"etag": md5_hex(b"old"), "versionID": old}
    assert entry.size == 3
    assert fetch(entry) == b"old"


def test_unknown_version_id_is_not_found(s3_client: Any, s3_versioned_bucket: str) -> None:
    put(s3_client, s3_versioned_bucket, {"model.bin": b"x"})
    artifact = soko.Artifact("refs", "dataset")
    with pytest.raises(NotFoundError):
        artifact.add_reference(f"s3://{s3_versioned_bucket}/model.bin?versionId=nope")
    assert contents(artifact) == {}


PREFIX_OBJECTS = {
    "data/a.txt": b"alpha",
    "data/sub/b.bin": b"bravo!",
    "data/empty.txt": b"",  # skipped: W&B treats empty objects in a listing as folder markers
    "data/marker/": b"",  # a folder marker
    "dataset/c.txt": b"not under data/",
    "top.txt": b"top",
}


@pytest.mark.parametrize("suffix", ["data", "data/"])
def test_prefix_expands_to_its_objects_under_name(
    s3_client: Any, s3_bucket: str, suffix: str
) -> None:
    put(s3_client, s3_bucket, PREFIX_OBJECTS)

    artifact, entries = add(f"s3://{s3_bucket}/{suffix}", name="d")

    assert contents(artifact) == {
        "d/a.txt": {
            "digest": md5_hex(b"alpha"),
            "ref": f"s3://{s3_bucket}/data/a.txt",
            "size": 5,
            "extra": {"etag": md5_hex(b"alpha")},
        },
        "d/sub/b.bin": {
            "digest": md5_hex(b"bravo!"),
            "ref": f"s3://{s3_bucket}/data/sub/b.bin",
            "size": 6,
            "extra": {"etag": md5_hex(b"bravo!")},
        },
    }
    assert sorted(e.path for e in entries) == ["d/a.txt", "d/sub/b.bin"]


def test_prefix_without_name_is_relative_and_bucket_is_whole(
    s3_client: Any, s3_bucket: str
) -> None:
    put(s3_client, s3_bucket, PREFIX_OBJECTS)

    folder, _ = add(f"s3://{s3_bucket}/data")
    whole, _ = add(f"s3://{s3_bucket}")

    assert sorted(contents(folder)) == ["a.txt", "sub/b.bin"]
    assert sorted(contents(whole)) == ["data/a.txt", "data/sub/b.bin", "dataset/c.txt", "top.txt"]
    assert contents(whole)["dataset/c.txt"]["ref"] == f"s3://{s3_bucket}/dataset/c.txt"


def test_an_object_marked_as_a_directory_is_expanded(s3_client: Any, s3_bucket: str) -> None:
    s3_client.put_object(
        Bucket=s3_bucket, Key="folder", Body=b"", ContentType="application/x-directory"
    )
    put(s3_client, s3_bucket, {"folder/a.txt": b"a", "folder/b/c.txt": b"c"})

    artifact, _ = add(f"s3://{s3_bucket}/folder", name="f")

    assert sorted(contents(artifact)) == ["f/a.txt", "f/b/c.txt"]


def test_prefix_in_a_versioned_bucket_records_current_versions(
    s3_client: Any, s3_versioned_bucket: str
) -> None:
    put(s3_client, s3_versioned_bucket, {"data/a.txt": b"1", "data/b.txt": b"2"})
    current = put(s3_client, s3_versioned_bucket, {"data/a.txt": b"1 again"})
    s3_client.delete_object(Bucket=s3_versioned_bucket, Key="data/b.txt")

    artifact, _ = add(f"s3://{s3_versioned_bucket}/data/")

    # b.txt's newest version is a delete marker: it is not a current object.
    assert contents(artifact) == {
        "a.txt": {
            "digest": md5_hex(b"1 again"),
            "ref": f"s3://{s3_versioned_bucket}/data/a.txt",
            "size": 7,
            "extra": {"etag": md5_hex(b"1 again"), "versionID": current["data/a.txt"]},
        }
    }


def test_listing_falls_back_when_versions_cannot_be_listed(
    s3_client: Any, s3_versioned_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    put(s3_client, s3_versioned_bucket, {"data/a.txt": b"a", "data/b/c.txt": b"c"})
    expected, _ = add(f"s3://{s3_versioned_bucket}/data")
    real_client = s3_refs._client()
    calls: list[str] = []

    class VersionsDenied:
        """The real client, except that ListObjectVersions is refused (s3:ListBucketVersions)."""

        def get_paginator(self, operation: str) -> Any:
            calls.append(operation)
            if operation == "list_object_versions":
                raise ClientError(
                    {"Error": {"Code": "AccessDenied", "Message": "denied"}},
                    "ListObjectVersions",
                )
            return real_client.get_paginator(operation)

        def __getattr__(self, name: str) -> Any:
            return getattr(real_client, name)

    monkeypatch.setattr(s3_refs, "_client", VersionsDenied)
    fallback, _ = add(f"s3://{s3_versioned_bucket}/data")

    assert calls == ["list_object_versions", "list_objects_v2"]
    assert contents(fallback) == contents(expected)
    assert all("versionID" in value["extra"] for value in contents(fallback).values())


def test_nothing_at_or_under_the_uri_is_an_error(s3_client: Any, s3_bucket: str) -> None:
    put(s3_client, s3_bucket, {"data/a.txt": b"a"})
    artifact = soko.Artifact("refs", "dataset")
    for uri in (f"s3://{s3_bucket}/missing", f"s3://{s3_bucket}/dat"):
        with pytest.raises(NotFoundError):
            artifact.add_reference(uri)
    with pytest.raises(NotFoundError):
        artifact.add_reference("s3://soko-no-such-bucket-4d1c/a.txt")
    assert contents(artifact) == {}


# ----- max_objects ----------------------------------------------------------------------


def test_exceeding_max_objects_is_an_error_and_changes_nothing(
    s3_client: Any, s3_bucket: str, tmp_path: Any
) -> None:
    put(s3_client, s3_bucket, {f"many/{i}.txt": f"object {i}".encode() for i in range(5)})
    put(s3_client, s3_bucket, {"one.txt": b"one"})
    local = tmp_path / "local.txt"
    local.write_text("local file")
    artifact = soko.Artifact("refs", "dataset")
    artifact.add_file(str(local))
    artifact.add_reference(f"s3://{s3_bucket}/one.txt")
    before = artifact.manifest.to_bytes()

    with pytest.raises(ValidationError, match="max_objects=4"):
        artifact.add_reference(f"s3://{s3_bucket}/many", max_objects=4)

    assert artifact.manifest.to_bytes() == before
    entries = artifact.add_reference(f"s3://{s3_bucket}/many", max_objects=5)
    assert len(entries) == 5


def test_default_max_objects_applies_when_none_is_given(
    s3_client: Any, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert s3_refs.DEFAULT_MAX_OBJECTS == 10_000
    put(s3_client, s3_bucket, {f"many/{i}.txt": b"x" for i in range(3)})
    # Creating 10,001 objects would only test moto's speed; the limit is the same code path.
    monkeypatch.setattr(s3_refs, "DEFAULT_MAX_OBJECTS", 2)
    with pytest.raises(ValidationError, match="max_objects=2"):
        add(f"s3://{s3_bucket}/many")
    monkeypatch.setattr(s3_refs, "DEFAULT_MAX_OBJECTS", 3)
    assert len(add(f"s3://{s3_bucket}/many")[1]) == 3


# ----- checksum=False -------------------------------------------------------------------


def test_checksum_false_records_the_uri_without_reading_s3(s3_client: Any, s3_bucket: str) -> None:
    artifact, _ = add(f"s3://{s3_bucket}/data/not-yet-there.txt", checksum=False)
    uri = f"s3://{s3_bucket}/data/not-yet-there.txt"
    assert contents(artifact) == {"data/not-yet-there.txt": {"digest": uri, "ref": uri}}

    named, _ = add(f"s3://{s3_bucket}/data", name="folder", checksum=False)
    folder_uri = f"s3://{s3_bucket}/data"
    assert contents(named) == {"folder": {"digest": folder_uri, "ref": folder_uri}}


def test_checksum_false_fetch_gets_the_current_bytes(s3_client: Any, s3_bucket: str) -> None:
    _, (entry,) = add(f"s3://{s3_bucket}/a.txt", checksum=False)
    put(s3_client, s3_bucket, {"a.txt": b"whatever is there now"})
    assert fetch(entry) == b"whatever is there now"


# ----- fetch ----------------------------------------------------------------------------


def test_fetch_returns_the_bytes_of_each_expanded_entry(s3_client: Any, s3_bucket: str) -> None:
    objects = {"data/a.txt": b"alpha", "data/sub/b.bin": bytes(range(256)) * 5000}
    put(s3_client, s3_bucket, objects)
    _, entries = add(f"s3://{s3_bucket}/data", name="d")
    fetched = {e.path: fetch(e) for e in entries}
    assert fetched == {"d/a.txt": objects["data/a.txt"], "d/sub/b.bin": objects["data/sub/b.bin"]}


def test_fetch_detects_a_changed_object(s3_client: Any, s3_bucket: str) -> None:
    put(s3_client, s3_bucket, {"a.txt": b"original"})
    _, (entry,) = add(f"s3://{s3_bucket}/a.txt")
    put(s3_client, s3_bucket, {"a.txt": b"replaced"})

    out = io.BytesIO()
    with pytest.raises(DigestMismatchError, match="changed"):
        handler_for(f"s3://{s3_bucket}/a.txt").fetch(entry, out)
    assert out.getvalue() == b""


def test_fetch_finds_the_old_bytes_once_the_bucket_keeps_versions(
    s3_client: Any, s3_bucket: str
) -> None:
    put(s3_client, s3_bucket, {"a.txt": b"original"})
    _, (entry,) = add(f"s3://{s3_bucket}/a.txt")
    assert "versionID" not in entry.extra
    s3_client.put_bucket_versioning(Bucket=s3_bucket, VersioningConfiguration={"Status": "Enabled"})
    put(s3_client, s3_bucket, {"a.txt": b"replaced"})

    assert fetch(entry) == b"original"


def test_fetch_of_a_deleted_object_is_not_found(s3_client: Any, s3_bucket: str) -> None:
    put(s3_client, s3_bucket, {"a.txt": b"original"})
    _, (entry,) = add(f"s3://{s3_bucket}/a.txt")
    s3_client.delete_object(Bucket=s3_bucket, Key="a.txt")
    with pytest.raises(NotFoundError):
        fetch(entry)


def test_fetch_of_a_version_that_no_longer_matches_is_refused(
    s3_client: Any, s3_versioned_bucket: str
) -> None:
    put(s3_client, s3_versioned_bucket, {"a.txt": b"original"})
    _, (entry,) = add(f"s3://{s3_versioned_bucket}/a.txt")
    tampered = Entry(
        path=entry.path,
        digest=md5_hex(b"something else"),
        size=entry.size,
        ref=entry.ref,
        extra={**entry.extra, "etag": md5_hex(b"something else")},
    )
    with pytest.raises(DigestMismatchError):
        fetch(tampered)


# ----- against the wandb package --------------------------------------------------------


DIFFERENTIAL_OBJECTS = {
    "data/a.txt": b"alpha",
    "data/sub/b.bin": b"bravo!",
    "data/sub/deeper/c.json": b'{"c": 1}',
    "data/empty.txt": b"",
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
    ("", {}),
    ("top.txt", {"checksum": False}),
    ("data/sub", {"checksum": False, "name": "lazy"}),
]


@pytest.mark.differential
@pytest.mark.parametrize("versioned", [False, True], ids=["plain", "versioned"])
def test_entries_match_the_wandb_package_byte_for_byte(
    s3_client: Any, wandb_offline: Any, versioned: bool, request: pytest.FixtureRequest
) -> None:
    bucket = request.getfixturevalue("s3_versioned_bucket" if versioned else "s3_bucket")
    put(s3_client, bucket, DIFFERENTIAL_OBJECTS)
    put(s3_client, bucket, {"top.txt": b"top, second version"})

    for suffix, kwargs in DIFFERENTIAL_CASES:
        uri = f"s3://{bucket}/{suffix}" if suffix else f"s3://{bucket}"
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
        if versioned and kwargs.get("checksum", True):
            assert all("versionID" in e["extra"] for e in our_contents.values())
