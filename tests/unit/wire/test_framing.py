"""Blob batch framing: a whole body read at once gives the frames a reader fed in chunks
gives, and a malformed body is refused with the same words either way."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soko.core.digests import Algorithm, Digest
from soko.errors import ValidationError
from soko.wire.framing import FrameReader, frame_header, read_frames


def _body(blobs: list[bytes]) -> bytes:
    return b"".join(frame_header(Digest.of_bytes(b, Algorithm.XXH128), len(b)) + b for b in blobs)


def _fed(body: bytes, cuts: list[int], max_blob: int = 1 << 20) -> list[tuple[Digest, bytes]]:
    reader = FrameReader(max_blob=max_blob)
    frames: list[tuple[Digest, bytes]] = []
    start = 0
    for cut in [*sorted({min(c, len(body)) for c in cuts}), len(body)]:
        frames += reader.feed(body[start:cut])
        start = cut
    reader.close()
    return frames


@given(
    blobs=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=7000), max_size=10),
)
def test_a_whole_body_reads_as_the_chunks_fed_to_a_reader(
    blobs: list[bytes], cuts: list[int]
) -> None:
    body = _body(blobs)
    frames = read_frames(body)
    assert frames == _fed(body, cuts)
    assert [data for _, data in frames] == blobs
    assert [d for d, _ in frames] == [Digest.of_bytes(b, Algorithm.XXH128) for b in blobs]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_body([b"abc"])[:-1], "Truncated blob batch"),
        (_body([b"abc"]).partition(b"\n")[0], "Truncated blob batch"),
        (b"x" * 300, "a frame header is too long"),
        (b"xxh128:00 3\nabc", "digest has 16 bytes, not 1"),
        (b"sha1:00 3\nabc", "Not a blob digest"),
        (b"xxh128:" + b"0" * 32 + b" three\nabc", "Malformed blob batch frame header"),
        (b"xxh128:" + b"0" * 32 + b" -1\n", "Blob batch frame of -1 bytes"),
        (b"xxh128:" + b"0" * 32 + b" 2000\n" + b"x" * 2000, "at most 1000 bytes"),
        (b"\xff" + _body([b"abc"]), "Malformed blob batch frame header"),
    ],
)
def test_a_malformed_body_is_refused_alike(body: bytes, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        read_frames(body, max_blob=1000)
    with pytest.raises(ValidationError, match=words):
        _fed(body, [], max_blob=1000)
