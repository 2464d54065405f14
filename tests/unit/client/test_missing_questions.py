"""The missing-blob question of a large log, asked of a server in slices, two at once:
every slice is asked once, and the answers add up to the server's."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest

from soko import settings
from soko.client.http import HttpBackend
from soko.client.statcache import StatCache
from soko.core.digests import Algorithm, Digest
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


def test_slices_are_asked_two_at_once_and_every_answer_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digests = [
        Digest.of_bytes(str(i).encode(), Algorithm.XXH128)
        for i in range(2 * MAX_DIGESTS_PER_REQUEST + 500)
    ]
    asked: list[int] = []
    in_flight = 0
    most = 0
    lock = threading.Lock()
    both_in = threading.Barrier(2, timeout=5)

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        body = json.loads(request.content)
        with lock:
            asked.append(len(body["digests"]))
            in_flight += 1
            most = max(most, in_flight)
            first_two = len(asked) <= 2
        if first_two:
            both_in.wait()  # the second question is sent before the first is answered
        with lock:
            in_flight -= 1
        # The server lacks those whose hex ends in "0".
        return httpx.Response(
            200, json={"missing": [t for t in body["digests"] if t.endswith("0")]}
        )

    backend = _backend(tmp_path, monkeypatch, httpx.MockTransport(answer))
    missing = backend.missing_blobs(digests, entity="e", project="p", name="data")

    assert sorted(asked) == [500, MAX_DIGESTS_PER_REQUEST, MAX_DIGESTS_PER_REQUEST]
    assert most == 2
    assert missing == {d for d in digests if d.hex.endswith("0")}
    # The caller's own objects come back, not parsed copies.
    by_id = {id(d) for d in digests}
    assert all(id(d) in by_id for d in missing)
