"""Entry and version digests: W&B's example, text forms, and refused input."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from soko.core.digests import (
    VERSION_DIGEST_HEADER,
    Algorithm,
    Digest,
    b64_of_string,
    cut,
    parse_digest,
    path_digest_lines,
    version_digest,
)
from soko.errors import ValidationError

ALGORITHMS = list(Algorithm)


def _reference_hash(algorithm: Algorithm, data: bytes) -> bytes:
    if algorithm is Algorithm.MD5:
        return hashlib.md5(data).digest()
    return xxhash.xxh128(data).digest()


def test_spec_example_one_file_holding_hello() -> None:
    entry = Digest.of_bytes(b"hello")
    assert version_digest([("file1.txt", entry.b64)], Algorithm.MD5) == (
        "a00c2239f036fb656c1dcbf9a32d89b4"
    )


def test_entry_digest_is_padded_standard_base64_of_md5() -> None:
    digest = Digest.of_bytes(b"hello")
    assert digest.b64 == base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    assert digest.b64.endswith("==")
    assert digest.hex == hashlib.md5(b"hello").hexdigest()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(data=st.binary(max_size=4096))
def test_of_bytes_matches_the_reference_hash(algorithm: Algorithm, data: bytes) -> None:
    assert Digest.of_bytes(data, algorithm).raw == _reference_hash(algorithm, data)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(raw=st.binary(min_size=16, max_size=16))
def test_b64_and_hex_round_trip(algorithm: Algorithm, raw: bytes) -> None:
    digest = Digest(algorithm, raw)
    assert Digest.from_b64(digest.b64, algorithm) == digest
    assert Digest.from_hex(digest.hex, algorithm) == digest
    assert str(digest) == f"{algorithm.key}:{raw.hex()}"


def test_algorithm_is_part_of_identity() -> None:
    raw = bytes(range(16))
    assert Digest(Algorithm.MD5, raw) != Digest(Algorithm.XXH128, raw)


@pytest.mark.parametrize(
    "text",
    ["", "abc", "not base64!", "XUFAKrxLKna5cZ2REBfFkg", "aGVsbG8=", "XUFAKrxLKna5cZ2REBfFkg==AA"],
)
def test_from_b64_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValidationError):
        Digest.from_b64(text)


@pytest.mark.parametrize("text", ["", "xyz", "5d41", "5d41402abc4b2a76b9719d911017c5", "g" * 32])
def test_from_hex_refuses_bad_text(text: str) -> None:
    with pytest.raises(ValidationError):
        Digest.from_hex(text)


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_raw_digest_of_wrong_length_is_refused(size: int) -> None:
    with pytest.raises(ValidationError, match="16 bytes"):
        Digest(Algorithm.MD5, b"\0" * size)


@pytest.mark.parametrize("value", ["md5", "MD5", "Md5", Algorithm.MD5])
def test_algorithm_parse_accepts_any_case(value: str | Algorithm) -> None:
    assert Algorithm.parse(value) is Algorithm.MD5


@pytest.mark.parametrize("value", ["sha256", "", "xxh64"])
def test_algorithm_parse_refuses_unknown(value: str) -> None:
    with pytest.raises(ValidationError, match="Unknown digest algorithm"):
        Algorithm.parse(value)


def test_b64_of_string_hashes_utf8() -> None:
    text = "file:///tmp/é"
    expected = base64.b64encode(hashlib.md5(text.encode("utf-8")).digest()).decode()
    assert b64_of_string(text) == expected


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(
    entries=st.dictionaries(
        st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=30), max_size=8
    )
)
def test_version_digest_is_header_then_sorted_lines(
    algorithm: Algorithm, entries: dict[str, str]
) -> None:
    text = VERSION_DIGEST_HEADER + b"".join(
        f"{path}:{digest}\n".encode() for path, digest in sorted(entries.items())
    )
    expected = _reference_hash(algorithm, text).hex()
    # The order the pairs come in must not matter.
    assert version_digest(reversed(list(entries.items())), algorithm) == expected
    assert version_digest(entries.items(), algorithm) == expected


def test_version_digest_depends_on_algorithm() -> None:
    pairs = [("a", "x")]
    assert version_digest(pairs, Algorithm.MD5) != version_digest(pairs, Algorithm.XXH128)


@given(
    pairs=st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
            st.binary(min_size=16, max_size=16),
        ),
        max_size=150,
    )
)
def test_path_digest_lines_are_the_lines_of_a_version_digest(
    pairs: list[tuple[str, bytes]],
) -> None:
    expected = "".join(f"{path}:{base64.b64encode(raw).decode()}\n" for path, raw in pairs)
    paths = [path for path, _ in pairs]
    assert path_digest_lines(paths, b"".join(raw for _, raw in pairs)) == expected.encode()


def test_path_digest_lines_refuses_digests_that_do_not_match_the_paths() -> None:
    with pytest.raises(ValueError, match="differ in number"):
        path_digest_lines(["a", "b"], bytes(16))


@pytest.mark.parametrize("count", [0, 1, 63, 64, 65, 200])
def test_cut_gives_the_pieces_in_order(count: int) -> None:
    data = bytes(range(256)) * (count * 40 // 256 + 1)
    data = data[: count * 40]
    assert list(cut(data, 40)) == [data[i : i + 40] for i in range(0, len(data), 40)]
    assert list(cut(bytearray(data), 40)) == list(cut(data, 40))
    with pytest.raises(ValueError, match="no whole number"):
        cut(data + b"x", 40)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_written_blob_digest_reads_back(algorithm: Algorithm) -> None:
    digest = Digest.of_bytes(b"hello", algorithm)
    assert parse_digest(str(digest)) == digest


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("md5", "expected '<alg>:<hex>'"),
        ("md5:", "expected '<alg>:<hex>'"),
        ("MD5:" + "00" * 16, "expected 'md5:'"),
        ("sha1:" + "00" * 16, "unknown algorithm"),
        ("md5:" + "AB" * 16, "expected '<alg>:<hex>'"),
        ("md5:zz", "Not a hex digest"),
        ("xxh128:" + "00" * 15, "has 16 bytes, not 15"),
    ],
)
def test_a_malformed_blob_digest_is_refused(text: str, needle: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(needle)):
        parse_digest(text)
