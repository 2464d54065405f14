"""BodyReader: a worker thread reads a request body that arrives in chunks on the event
loop, whole buffers per hop (``readinto``) or joined pieces (``read``), every byte once and
in order whatever the chunks' sizes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable

import anyio
import anyio.to_thread
import pytest

from soko.server.routes.blobs import BodyReader


def chunked(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        start, turn = 0, 0
        while start < len(data):
            size = sizes[turn % len(sizes)]
            yield data[start : start + size]
            yield b""  # an empty chunk is skipped
            start += size
            turn += 1

    return chunks()


def on_worker(data: bytes, sizes: list[int], read: Callable[[BodyReader], bytes]) -> bytes:
    async def main() -> bytes:
        reader = BodyReader(chunked(data, sizes))
        return await anyio.to_thread.run_sync(read, reader)

    return anyio.run(main)


def by_readinto(buffer_size: int) -> Callable[[BodyReader], bytes]:
    def read(reader: BodyReader) -> bytes:
        view = memoryview(bytearray(buffer_size))
        out = bytearray()
        while count := reader.readinto(view):
            # Every buffer but the last is filled: the copy writes whole aligned chunks.
            assert count == buffer_size or reader.readinto(view) == 0
            out += view[:count]
        return bytes(out)

    return read


@pytest.mark.parametrize("sizes", [[1], [7, 65536], [300_000], [1 << 20]])
@pytest.mark.parametrize("buffer_size", [4096, 100_000])
def test_readinto_fills_whole_buffers_with_every_byte(sizes: list[int], buffer_size: int) -> None:
    data = os.urandom(250_003) if sizes != [1] else os.urandom(9_000)
    assert on_worker(data, sizes, by_readinto(buffer_size)) == data


def test_read_and_readinto_mixed_lose_nothing() -> None:
    data = os.urandom(3_000_000)

    def read(reader: BodyReader) -> bytes:
        view = memoryview(bytearray(50_000))
        out = bytearray()
        turn = 0
        while True:
            piece = reader.read(70_000) if turn % 2 else bytes(view[: reader.readinto(view)])
            if not piece:
                return bytes(out)
            out += piece
            turn += 1

    assert on_worker(data, [262_144, 1000], read) == data


def test_an_empty_body_reads_as_the_end() -> None:
    assert on_worker(b"", [10], by_readinto(4096)) == b""
    assert on_worker(b"", [10], lambda reader: reader.read()) == b""
