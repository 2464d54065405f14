"""The missing-blob question of a large log, asked of a server a batch at a time in
bytes, two at once: every batch is asked once, and the answers add up to the server's; a
server without the binary question is asked in JSON."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from soko import settings
from soko.client.http import HttpBackend
from soko.client.statcache import StatCache
from soko.core.digests import DIGEST_BATCH, Algorithm, Digest
from soko.errors import ValidationError
from soko.wire.requests import MAX_DIGESTS_PER_REQUEST


def _backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handler: httpx.MockTransport
) -> HttpBackend:
    monkeypatch.setenv("SOKO_DIR", str(tmp_path / "soko"))
    monkeypatch.setenv("SOKO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SOKO_BASE_URL", "http://soko.test")
    backend = HttpBackend(settings.load(), stat_cache=StatCache(tmp_path / "stat.db"))
    backend.session.api = httpx.Client(base_url="http://soko.test/api/v1", transport=handler)
    return backend


def _digests(count: int) -> list[Digest]:
    return [Digest.of_bytes(str(i).encode(), Algorithm.XXH128) for i in range(count)]


def _bits(raws: bytes, lacking: Callable[[bytes], bool]) -> bytes:
    """The server's answer: one bit per 16-byte digest, set when it is lacking."""
    bits = bytearray((len(raws) // 16 + 7) // 8)
    for index in range(len(raws) // 16):
        if lacking(raws[index * 16 : index * 16 + 16]):
            bits[index // 8] |= 1 << (index % 8)
    return bytes(bits)


def test_batches_are_asked_in_bytes_two_at_once_and_every_answer_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = _digests(2 * DIGEST_BATCH + 500)
    asked: list[int] = []
    in_flight = 0
    most = 0
    lock = threading.Lock()
    both_in = threading.Barrier(2, timeout=5)

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        assert request.url.path == "/api/v1/blobs/missing/raw"
        assert request.url.params["algorithm"] == "xxh128"
        assert request.url.params["name"] == "data"
        with lock:
            asked.append(len(request.content) // 16)
            in_flight += 1
            most = max(most, in_flight)
            first_two = len(asked) <= 2
        if first_two:
            both_in.wait()  # the second question is sent before the first is answered
        with lock:
            in_flight -= 1
        # The server lacks those whose hex ends in "0".
        return httpx.Response(200, content=_bits(request.content, lambda r: r.hex()[-1] == "0"))

    backend = _backend(tmp_path, monkeypatch, httpx.MockTransport(answer))
    missing = backend.missing_blobs(digests, entity="e", project="p", name="data")

    assert sorted(asked) == [500, DIGEST_BATCH, DIGEST_BATCH]
    assert most == 2
    assert missing == {d for d in digests if d.hex.endswith("0")}


def test_an_answer_of_the_wrong_length_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = _backend(
        tmp_path, monkeypatch, httpx.MockTransport(lambda _: httpx.Response(200, content=b"\0"))
    )
    with pytest.raises(ValidationError, match="answered 1 bytes for 100 digests"):
        backend.missing_blobs(_digests(100), entity="e", project="p")


def test_a_server_without_the_binary_question_is_asked_in_json_from_then_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = _digests(MAX_DIGESTS_PER_REQUEST + 500)
    paths: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path.endswith("/raw"):
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})
        body = json.loads(request.content)
        return httpx.Response(
            200, json={"missing": [t for t in body["digests"] if t.endswith("0")]}
        )

    backend = _backend(tmp_path, monkeypatch, httpx.MockTransport(answer))
    first = backend.missing_blobs(digests, entity="e", project="p")
    second = backend.missing_blobs(digests[:10], entity="e", project="p")

    assert first == {d for d in digests if d.hex.endswith("0")}
    assert second == {d for d in digests[:10] if d.hex.endswith("0")}
    assert paths == ["/api/v1/blobs/missing/raw"] + ["/api/v1/blobs/missing"] * 3
