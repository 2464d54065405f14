"""The server's capture: a folder's small files sent while they are hashed, in windows
ordered by digest, and a refusal that leaves the rest to the log."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from soko.client import http_capture
from soko.client.http_capture import UploadCapture
from soko.client.http_upload import BlobUploads
from soko.core.digests import Algorithm
from soko.errors import PermissionDeniedError
from soko.wire.framing import read_frames
from soko.wire.missing_bits import bits_of

ALGORITHM = Algorithm.parse("xxh128")


class FakeUploads:
    """Records each batch body; refuses from the *refuse_from*-th on."""

    def __init__(self, refuse_from: int | None = None) -> None:
        self.bodies: list[bytes] = []
        self.refuse_from = refuse_from
        self.calls = 0
        self.owners: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def send_batch(self, body: bytes, owner: dict[str, str]) -> None:
        with self._lock:
            self.calls += 1
            if self.refuse_from is not None and self.calls >= self.refuse_from:
                raise PermissionDeniedError("this key may not upload")
            self.bodies.append(body)
            self.owners.append(owner)


def _blobs(count: int) -> tuple[list[bytes], list[bytes]]:
    datas = [f"blob {i}".encode() for i in range(count)]
    return [ALGORITHM.digest_of(d) for d in datas], datas


def _capture(uploads: FakeUploads, held: frozenset[bytes] = frozenset()) -> UploadCapture:
    """A capture whose server holds the blobs of raw digests *held* already."""

    def ask(algorithm: Algorithm, raws: bytes) -> bytes:
        asked = [raws[i : i + 16] for i in range(0, len(raws), 16)]
        return bits_of(asked, {raw for raw in asked if raw not in held})

    return UploadCapture(cast(BlobUploads, uploads), ask, entity="e", project="p")


def test_every_blob_is_sent_once_for_the_project_in_digest_order_per_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_capture, "WINDOW_BYTES", 20_000)
    monkeypatch.setattr(http_capture, "BATCH_BLOBS", 300)
    uploads = FakeUploads()
    capture = _capture(uploads)
    raws, datas = _blobs(5_000)
    for start in range(0, len(raws), 700):
        capture.store_hashed(ALGORITHM, raws[start : start + 700], datas[start : start + 700])
    capture.close()

    frames = [read_frames(body) for body in uploads.bodies]
    assert all(len(batch) <= 300 for batch in frames)
    sent = {digest.raw: data for batch in frames for digest, data in batch}
    assert sent == dict(zip(raws, datas, strict=True))
    assert sum(map(len, frames)) == len(raws)
    for batch in frames:
        keys = [digest.raw for digest, _ in batch]
        assert keys == sorted(keys)
    assert uploads.owners[0] == {"entity": "e", "project": "p"}
    assert capture.staged() == len(raws)


def test_a_refused_batch_stops_the_capture_without_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_capture, "WINDOW_BYTES", 1_000)
    monkeypatch.setattr(http_capture, "BATCH_BLOBS", 10)
    uploads = FakeUploads(refuse_from=1)
    capture = _capture(uploads)
    raws, datas = _blobs(2_000)
    for start in range(0, len(raws), 100):
        capture.store_hashed(ALGORITHM, raws[start : start + 100], datas[start : start + 100])
    capture.close()
    assert uploads.bodies == []
    assert capture.staged() == 0
    # Only the requests already begun when the first was refused were sent.
    assert uploads.calls <= http_capture.SENDERS


def test_blobs_the_server_holds_are_not_sent_and_count_as_staged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_capture, "WINDOW_BYTES", 5_000)
    raws, datas = _blobs(1_000)
    held = frozenset(raws[::3])
    uploads = FakeUploads()
    capture = _capture(uploads, held)
    capture.store_hashed(ALGORITHM, raws, datas)
    capture.close()
    sent = [digest.raw for body in uploads.bodies for digest, _ in read_frames(body)]
    assert sorted(sent) == sorted(r for r in raws if r not in held)
    assert capture.staged() == len(raws)


def test_larger_files_are_only_hashed(tmp_path: Any) -> None:
    uploads = FakeUploads()
    capture = _capture(uploads)
    path = tmp_path / "large.bin"
    path.write_bytes(b"x" * 10_000)
    hashed = capture.copy_file(str(path), ALGORITHM)
    capture.close()
    assert hashed.digest.raw == ALGORITHM.digest_of(b"x" * 10_000)
    assert hashed.size == 10_000
    assert uploads.calls == 0
