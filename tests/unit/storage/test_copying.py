"""copying: what lands in the destination is exactly what was hashed, by every path."""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from soko.errors import StoreError
from soko.storage import copying

CHUNK = copying.CHUNK
SIZES = [0, 1, 4096, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17]


# The kernel's copy is tested where the platform has one (Linux, where CI runs).
_COPY_PATHS = [True, False] if copying.KERNEL_COPY else [False]


@pytest.fixture(params=_COPY_PATHS, ids=["kernel", "buffered"][-len(_COPY_PATHS) :])
def kernel(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(copying, "KERNEL_COPY", request.param)
    return bool(request.param)


@pytest.fixture(autouse=True)
def _no_helper_thread_left() -> Iterator[None]:
    before = {t.ident for t in threading.enumerate()}
    yield
    left = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert left == [], "a copy left its hashing thread running"


def run_copy(
    tmp_path: Path, data: bytes, *, pipelined: bool, head_size: int = 0
) -> tuple[int, bytes, bytes]:
    """Copy a file holding *data*; return (size reported, bytes stored, digest computed)."""
    source_path = tmp_path / "source.bin"
    source_path.write_bytes(data)
    dest_path = tmp_path / "dest.bin"
    hasher = hashlib.md5()
    source = os.open(source_path, os.O_RDONLY)
    dest = os.open(dest_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        head = os.read(source, head_size) if head_size else b""
        size = copying.copy_file(source, dest, hasher, pipelined=pipelined, head=head)
    finally:
        os.close(source)
        os.close(dest)
    return size, dest_path.read_bytes(), hasher.digest()


@pytest.mark.parametrize("pipelined", [False, True], ids=["inline", "pipelined"])
@pytest.mark.parametrize("size", SIZES)
def test_copy_file_stores_and_hashes_every_byte(
    tmp_path: Path, kernel: bool, pipelined: bool, size: int
) -> None:
    data = os.urandom(size)
    copied, stored, digest = run_copy(tmp_path, data, pipelined=pipelined)
    assert copied == size
    assert stored == data
    assert digest == hashlib.md5(data).digest()


@pytest.mark.parametrize("head_size", [1, 1000, CHUNK + 5])
def test_copy_file_after_a_head_already_read(tmp_path: Path, kernel: bool, head_size: int) -> None:
    data = os.urandom(2 * CHUNK + 3)
    copied, stored, digest = run_copy(tmp_path, data, pipelined=False, head_size=head_size)
    assert (copied, stored, digest) == (len(data), data, hashlib.md5(data).digest())


@pytest.mark.parametrize(
    "code", [errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM]
)
def test_a_kernel_that_cannot_copy_falls_back_to_the_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    monkeypatch.setattr(copying, "KERNEL_COPY", True)

    def refuse(source: int, dest: int, count: int) -> int:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(copying.os, "copy_file_range", refuse, raising=False)
    data = os.urandom(CHUNK + 99)
    assert run_copy(tmp_path, data, pipelined=True)[1:] == (data, hashlib.md5(data).digest())


@pytest.mark.parametrize("chunks_before_stop", [0, 1, 2])
@pytest.mark.parametrize("pipelined", [False, True], ids=["inline", "pipelined"])
def test_a_kernel_copy_that_stops_early_is_finished_by_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks_before_stop: int, pipelined: bool
) -> None:
    # Some file systems (procfs, some FUSE) answer 0 to copy_file_range before the end.
    # The copy is emulated with reads and writes at the files' offsets, as the kernel's
    # does, so the test runs on any platform.
    monkeypatch.setattr(copying, "KERNEL_COPY", True)
    calls = iter(range(1_000))

    def stops_early(source: int, dest: int, count: int) -> int:
        if next(calls) >= chunks_before_stop:
            return 0
        data = os.read(source, count)
        return os.write(dest, data)

    monkeypatch.setattr(copying.os, "copy_file_range", stops_early, raising=False)
    data = os.urandom(4 * CHUNK + 1)
    copied, stored, digest = run_copy(tmp_path, data, pipelined=pipelined)
    assert (copied, stored, digest) == (len(data), data, hashlib.md5(data).digest())


def test_a_full_disk_during_a_kernel_copy_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copying, "KERNEL_COPY", True)

    def full(source: int, dest: int, count: int) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(copying.os, "copy_file_range", full, raising=False)
    with pytest.raises(StoreError, match="No space left"):
        run_copy(tmp_path, os.urandom(CHUNK * 5), pipelined=True)


def test_a_source_error_during_a_kernel_copy_is_raised_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copying, "KERNEL_COPY", True)

    def broken(source: int, dest: int, count: int) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(copying.os, "copy_file_range", broken, raising=False)
    with pytest.raises(OSError, match="Input/output") as caught:
        run_copy(tmp_path, os.urandom(100), pipelined=False)
    assert not isinstance(caught.value, StoreError)


def test_a_full_disk_during_a_buffered_copy_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(copying, "KERNEL_COPY", False)

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(copying.os, "write", full)
    with pytest.raises(StoreError, match="No space left"):
        run_copy(tmp_path, os.urandom(5 * CHUNK), pipelined=True)


@pytest.mark.parametrize("pipelined", [False, True], ids=["inline", "pipelined"])
def test_a_source_changed_during_the_copy_still_hashes_what_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool, pipelined: bool
) -> None:
    """The rule the store's integrity rests on: the digest is of the stored bytes."""
    source_path = tmp_path / "source.bin"
    original = os.urandom(4 * CHUNK)
    changed = bytes(len(original))

    def change_source() -> None:
        with open(source_path, "r+b") as stream:
            stream.write(changed)  # bytes both already copied and still to come

    if kernel:
        real = os.copy_file_range
        calls = iter(range(1_000))

        def copy_then_change(source: int, dest: int, count: int) -> int:
            done = real(source, dest, count)
            if next(calls) == 0:
                change_source()
            return done

        monkeypatch.setattr(copying.os, "copy_file_range", copy_then_change)
    else:
        real_write = copying.write_all
        writes = iter(range(1_000))

        def write_then_change(fd: int, data: bytes | memoryview) -> None:
            real_write(fd, data)
            if next(writes) == 0:
                change_source()

        monkeypatch.setattr(copying, "write_all", write_then_change)

    _, stored, digest = run_copy(tmp_path, original, pipelined=pipelined)
    assert stored != original, "the change must have reached the copy for this test to mean"
    assert digest == hashlib.md5(stored).digest()


def test_an_error_in_the_hashing_thread_is_raised_and_the_thread_ends(
    tmp_path: Path, kernel: bool
) -> None:
    class FailingHasher:
        def __init__(self) -> None:
            self.calls = 0

        def update(self, data: bytes | bytearray | memoryview, /) -> None:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("hash failed")

        def digest(self) -> bytes:
            return b""

        def hexdigest(self) -> str:
            return ""

    source_path = tmp_path / "source.bin"
    source_path.write_bytes(os.urandom(5 * CHUNK))
    source = os.open(source_path, os.O_RDONLY)
    dest = os.open(tmp_path / "dest.bin", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with pytest.raises(RuntimeError, match="hash failed"):
            copying.copy_file(source, dest, FailingHasher(), pipelined=True)
    finally:
        os.close(source)
        os.close(dest)


class ReadOnly:
    """A stream with only ``read``, returning short reads like a socket."""

    def __init__(self, data: bytes) -> None:
        self._stream = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(min(size, 777) if size > 0 else 777)


@pytest.mark.parametrize("size", [0, 1, CHUNK + 3])
@pytest.mark.parametrize("kind", ["readinto", "read-only"])
def test_copy_stream(tmp_path: Path, size: int, kind: str) -> None:
    data = os.urandom(size)
    stream = io.BytesIO(data) if kind == "readinto" else ReadOnly(data)
    hasher = hashlib.md5()
    dest_path = tmp_path / "dest.bin"
    dest = os.open(dest_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert copying.copy_stream(stream, dest, hasher) == size  # type: ignore[arg-type]
    finally:
        os.close(dest)
    assert dest_path.read_bytes() == data
    assert hasher.digest() == hashlib.md5(data).digest()


def test_buffers_are_reused_within_a_thread() -> None:
    first = copying.copy_buffer(0)
    assert copying.copy_buffer(0) is first
    assert len(first) == CHUNK
    other: list[memoryview] = []
    thread = threading.Thread(target=lambda: other.append(copying.copy_buffer(0)))
    thread.start()
    thread.join()
    assert other[0] is not first


@pytest.fixture
def write_backs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (offset, count) of each write-back the copies ask the kernel for."""
    calls: list[tuple[int, int]] = []

    def record(fd: int, offset: int, count: int, flags: int) -> int:
        calls.append((offset, count))
        return 0

    monkeypatch.setattr(copying, "_sync_file_range", lambda: record)
    return calls


def test_write_back_asks_the_kernel_to_write_each_chunk_as_it_is_copied(
    tmp_path: Path, kernel: bool, write_backs: list[tuple[int, int]]
) -> None:
    calls = write_backs
    data = os.urandom(2 * CHUNK + 5)
    source = tmp_path / "source"
    source.write_bytes(data)
    hasher = hashlib.md5()
    with open(source, "rb") as src, open(tmp_path / "dest", "w+b") as dest:
        size = copying.copy_file(src.fileno(), dest.fileno(), hasher, write_back=True)
    assert size == len(data) and (tmp_path / "dest").read_bytes() == data
    assert hasher.digest() == hashlib.md5(data).digest()
    # Contiguous ranges covering the whole file, in order.
    assert calls[0][0] == 0
    assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(calls))
    assert sum(n for _, n in calls) == len(data)


def test_write_back_is_a_hint_that_never_fails_a_copy(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x" * 1000)
    with open(source, "rb") as src, open(tmp_path / "dest", "w+b") as dest:
        copying.start_write_back(dest.fileno(), 0, 10**12)  # beyond the end: ignored
        assert copying.copy_file(src.fileno(), dest.fileno(), hashlib.md5(), write_back=True)
    assert (tmp_path / "dest").read_bytes() == b"x" * 1000


@pytest.mark.parametrize("readinto", [True, False], ids=["readinto", "read-only"])
def test_copy_stream_writes_back_each_chunk_when_asked(
    tmp_path: Path, write_backs: list[tuple[int, int]], readinto: bool
) -> None:
    calls = write_backs
    data = os.urandom(2 * CHUNK + 5)

    class ReadOnly:
        def __init__(self) -> None:
            self._stream = io.BytesIO(data)

        def read(self, size: int = -1) -> bytes:
            return self._stream.read(min(size, 1024 * 1024))  # short reads, as a socket's

    stream = io.BytesIO(data) if readinto else ReadOnly()
    with open(tmp_path / "dest", "w+b") as dest:
        size = copying.copy_stream(stream, dest.fileno(), hashlib.md5(), write_back=True)  # type: ignore[arg-type]
        assert size == len(data)
        assert calls[0][0] == 0 and sum(n for _, n in calls) == len(data)
        assert all(a + n == b for (a, n), (b, _) in itertools.pairwise(calls))
        calls.clear()
        dest.seek(0)
        copying.copy_stream(io.BytesIO(data), dest.fileno(), hashlib.md5())
    assert calls == []  # not asked: no hint
    assert (tmp_path / "dest").read_bytes() == data


@pytest.mark.parametrize("most", [13, 1000, 5000])
def test_write_parts_finishes_after_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, most: int
) -> None:
    # A writev may write less than it was given (a signal, a full pipe): the rest goes
    # out from the middle of the part it stopped in.
    parts = [os.urandom(n) for n in (3, 0, 700, 1, 2500)] * 220  # more than one writev's
    real = os.writev

    def short(fd: int, buffers: list[bytes]) -> int:
        head: list[bytes] = []
        for buffer in buffers:
            if sum(map(len, head)) >= most:
                break
            head.append(bytes(buffer[: most - sum(map(len, head))]))
        return real(fd, head)

    monkeypatch.setattr(os, "writev", short)
    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    try:
        copying.write_parts(fd, parts)
    finally:
        os.close(fd)
    assert target.read_bytes() == b"".join(parts)
