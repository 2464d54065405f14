"""blob_key and its inverse digest_of_key: one mapping, exact both ways."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from soko.core.digests import Algorithm, Digest
from soko.errors import ValidationError
from soko.storage.base import blob_key, digest_of_key

digests = st.builds(Digest, st.sampled_from(list(Algorithm)), st.binary(min_size=16, max_size=16))


@given(digests)
def test_a_key_maps_back_to_its_digest(digest: Digest) -> None:
    key = blob_key(digest)
    assert re.fullmatch(r"blobs/(md5|xxh128)/[0-9a-f]{2}/[0-9a-f]{32}", key)
    assert key.split("/")[1] == digest.algorithm.value.lower()
    assert key.endswith(f"/{digest.hex[:2]}/{digest.hex}")
    assert digest_of_key(key) == digest


def test_a_known_key() -> None:
    digest = Digest.of_bytes(b"hello")  # MD5 5d41402abc4b2a76b9719d911017c592
    assert blob_key(digest) == "blobs/md5/5d/5d41402abc4b2a76b9719d911017c592"
    xxh = Digest.from_hex("00" * 15 + "ff", Algorithm.XXH128)
    assert blob_key(xxh) == "blobs/xxh128/00/" + "00" * 15 + "ff"


def _near_keys() -> st.SearchStrategy[str]:
    """Keys built from parts that are each almost right, to probe the edges of the rule."""
    algorithms = st.sampled_from(["md5", "xxh128", "MD5", "Md5", "sha1", "", "md5 "])
    hexes = st.text("0123456789abcdefABCDEF \t\n_-", min_size=0, max_size=36)
    return st.builds(
        lambda prefix, alg, fan, hex_, tail: f"{prefix}/{alg}/{fan}/{hex_}{tail}",
        st.sampled_from(["blobs", "Blobs", "blob", "", "/blobs"]),
        algorithms,
        st.text("0123456789abcdefA ", min_size=0, max_size=3),
        hexes,
        st.sampled_from(["", "/", "/x", ".tmp"]),
    )


@given(st.one_of(st.text(max_size=80), _near_keys()))
@example("blobs/md5/ab/ab " + "0" * 30)  # bytes.fromhex would skip the space
@example("blobs/md5/ab/ab\n" + "0" * 30)
def test_only_exact_keys_are_accepted(key: str) -> None:
    try:
        digest = digest_of_key(key)
    except ValidationError:
        return
    assert blob_key(digest) == key


VALID = "blobs/md5/5d/5d41402abc4b2a76b9719d911017c592"


@pytest.mark.parametrize(
    "key",
    [
        "",
        "blobs",
        VALID + "/",
        "/" + VALID,
        "store/" + VALID,
        VALID.replace("blobs/", "blob/"),
        VALID.replace("/md5/", "/MD5/"),
        VALID.replace("/md5/", "/sha256/"),
        VALID.replace("/5d/", "/5e/"),
        VALID.replace("/5d/", "/5D/"),
        VALID.replace("5d41402abc", "5D41402ABC"),
        VALID[:-2],
        VALID + "00",
        VALID[:-1] + "g",
        VALID + ".tmp",
        "blobs/md5/5d/5d41402abc4b2a76 b9719d911017c592",
        "blobs\\md5\\5d\\5d41402abc4b2a76b9719d911017c592",
        "tmp/123-456-abcdef.tmp",
        "format_version",
    ],
)
def test_refusals(key: str) -> None:
    with pytest.raises(ValidationError, match="Not a blob key"):
        digest_of_key(key)
