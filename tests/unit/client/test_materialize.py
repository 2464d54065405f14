"""Writing a downloaded blob: verified, written on a helper thread past a megabyte."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from soko.client import materialize
from soko.client.materialize import clones_between, stream_new
from soko.core.digests import Algorithm, Digest
from soko.core.metering import metered
from soko.errors import DigestMismatchError
from soko.storage import copying


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("piece", [1, 4096, 65536, 3 * 1024 * 1024])
def test_stream_new_writes_every_piece_in_order(tmp_path: Path, piece: int):
    data = os.urandom(5 * 1024 * 1024 + 17)
    if piece == 1:
        data = data[:300_000]  # more pieces than one writev takes
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    seen: list[int] = []
    target = tmp_path / "blob"
    with metered(seen.append) as meter:
        size = stream_new(str(target), digest, _pieces(data, piece))
    assert size == len(data) and sum(seen) == len(data) == meter.counted
    assert target.read_bytes() == data


def test_a_large_blob_is_written_on_a_helper_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    writers: set[str] = set()
    original = os.writev

    def recording(fd: int, parts: list[memoryview]) -> int:
        writers.add(threading.current_thread().name)
        return original(fd, parts)

    monkeypatch.setattr(materialize.os, "writev", recording)
    small = os.urandom(1000)
    stream_new(str(tmp_path / "small"), Digest.of_bytes(small, Algorithm.MD5), [small])
    assert writers == {threading.current_thread().name}
    writers.clear()
    large = os.urandom(4 * 1024 * 1024)
    digest = Digest.of_bytes(large, Algorithm.MD5)
    stream_new(str(tmp_path / "large"), digest, _pieces(large, 65536))
    assert writers == {"soko-write"}
    assert (tmp_path / "large").read_bytes() == large


def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    original = os.writev

    def short(fd: int, parts: list[memoryview]) -> int:
        return original(fd, [parts[0][: max(1, len(parts[0]) // 3)]])

    monkeypatch.setattr(materialize.os, "writev", short)
    data = os.urandom(3 * 1024 * 1024 + 5)
    stream_new(str(tmp_path / "b"), Digest.of_bytes(data, Algorithm.MD5), _pieces(data, 70000))
    assert (tmp_path / "b").read_bytes() == data


def test_a_failed_write_raises_and_keeps_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls = 0
    original = os.writev

    def full_disk(fd: int, parts: list[memoryview]) -> int:
        nonlocal calls
        calls += 1
        if calls > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(fd, parts)

    monkeypatch.setattr(materialize.os, "writev", full_disk)
    data = os.urandom(20 * 1024 * 1024)
    with pytest.raises(OSError) as raised:
        stream_new(str(tmp_path / "b"), Digest.of_bytes(data, Algorithm.MD5), _pieces(data, 65536))
    assert raised.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name == "soko-write"]


def test_wrong_bytes_or_a_broken_stream_keep_nothing(tmp_path: Path):
    data = os.urandom(3 * 1024 * 1024)
    wrong = Digest.of_bytes(b"other", Algorithm.XXH128)
    with pytest.raises(DigestMismatchError):
        stream_new(str(tmp_path / "b"), wrong, _pieces(data, 65536))

    def broken() -> Iterator[bytes]:
        yield from _pieces(data, 65536)[:30]
        raise ConnectionError("reset by peer")

    with pytest.raises(ConnectionError):
        stream_new(str(tmp_path / "c"), Digest.of_bytes(data, Algorithm.MD5), broken())
    assert os.listdir(tmp_path) == []
    assert not [t for t in threading.enumerate() if t.name == "soko-write"]


def _kernel_clones(folder: Path) -> bool:
    (folder / "one").write_bytes(b"x")
    try:
        with open(folder / "one", "rb") as src, open(folder / "two", "wb") as dest:
            fcntl.ioctl(dest.fileno(), 0x40049409, src.fileno())  # FICLONE
    except OSError:
        return False
    finally:
        for name in ("one", "two"):
            (folder / name).unlink(missing_ok=True)
    return True


def test_clones_between_says_what_the_kernel_does_and_leaves_nothing(tmp_path: Path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    assert clones_between(str(src), str(dest)) is _kernel_clones(tmp_path)
    assert os.listdir(src) == [] and os.listdir(dest) == []
    assert clones_between(str(src), str(tmp_path / "missing")) is False


def test_an_interrupted_wait_leaves_no_writes_to_a_reused_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Ctrl-C lands while the caller waits for the helper to finish; the caller closes its
    # descriptor and the next file opened gets the same number. The helper's first write
    # waits until then.
    original = os.writev
    reopened = threading.Event()
    helpers: list[threading.Thread] = []

    def held(fd: int, parts: list[memoryview]) -> int:
        if threading.current_thread().name == "soko-write":
            reopened.wait(10)
        return original(fd, parts)

    class InterruptedJoin(threading.Thread):
        def start(self) -> None:
            helpers.append(self)
            super().start()

        def join(self, timeout: float | None = None) -> None:
            raise KeyboardInterrupt

    monkeypatch.setattr(materialize.os, "writev", held)
    monkeypatch.setattr(materialize.threading, "Thread", InterruptedJoin)
    data = os.urandom(8 * 1024 * 1024)
    with pytest.raises(KeyboardInterrupt):
        stream_new(str(tmp_path / "b"), Digest.of_bytes(data, Algorithm.MD5), _pieces(data, 65536))
    monkeypatch.undo()
    (helper,) = helpers
    with open(tmp_path / "next", "wb") as unrelated:
        reopened.set()
        threading.Thread.join(helper, timeout=10)
        assert not helper.is_alive(), "the helper thread did not end"
        unrelated.flush()
    assert (tmp_path / "next").read_bytes() == b""
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("name", ["model.bin", "weights [v2]*?.bin"])
def test_remove_stale_temps_removes_only_old_unlocked_download_temps_of_that_file(
    tmp_path: Path, name: str
):
    dest = tmp_path / name
    old = tmp_path / f".{name}.soko-dl-0123456789ab.tmp"
    fresh = tmp_path / f".{name}.soko-dl-ba9876543210.tmp"
    live = tmp_path / f".{name}.soko-dl-aaaaaaaaaaaa.tmp"  # stalled, its lock still held
    other_file = tmp_path / f".{name}.soko-dl-x.soko-dl-0123456789ab.tmp"  # "name.soko-dl-x"'s
    not_ours = tmp_path / f".{name}.soko-0123456789ab.tmp"  # no download's name
    linked = tmp_path / f".{name}.soko-dl-cccccccccccc.tmp"  # a hard link to a cache file
    cached = tmp_path / "cached"
    for path in (old, fresh, live, other_file, not_ours, cached):
        path.write_bytes(b"partial")
    os.link(cached, linked)
    long_ago = time.time() - materialize.STALE_TEMP_SECONDS - 5
    for path in (old, live, other_file, not_ours, cached):
        os.utime(path, (long_ago, long_ago))
    with open(live, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        assert materialize.remove_stale_temps([str(dest)]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (fresh, live, other_file, not_ours, cached, linked)
    )
    temp = materialize.temp_beside(str(dest))
    assert temp.startswith(str(tmp_path / f".{name}.soko-dl-"))


def test_stream_new_holds_its_temp_locked_while_writing(tmp_path: Path):
    target = tmp_path / ".f.soko-dl-0123456789ab.tmp"
    data = os.urandom(3 * 1024 * 1024)
    seen: list[bool] = []

    def pieces() -> Iterator[bytes]:
        for piece in _pieces(data, 65536):
            if not seen:
                with open(target, "rb") as probe:
                    try:
                        fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        seen.append(True)
                    else:
                        seen.append(False)
            yield piece

    stream_new(str(target), Digest.of_bytes(data, Algorithm.MD5), pieces())
    assert seen == [True]
    with open(target, "rb") as probe:  # released once written
        fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_long_name_gets_a_temp_name_the_file_system_takes(tmp_path: Path):
    name = "n" * 250 + ".bin"
    data = os.urandom(2 * 1024 * 1024)
    stream_new(str(tmp_path / name), Digest.of_bytes(data, Algorithm.MD5), [data])
    temp = materialize.temp_beside(str(tmp_path / name))
    assert len(os.path.basename(temp).encode()) <= 255
    stream_new(temp, Digest.of_bytes(data, Algorithm.MD5), _pieces(data, 65536))
    assert materialize.remove_stale_temps([str(tmp_path / name)]) == 0  # fresh


def test_a_writer_thread_that_cannot_start_leaks_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(materialize.threading.Thread, "start", refuse)
    before = set(os.listdir("/proc/self/fd"))
    data = os.urandom(3 * 1024 * 1024)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        stream_new(str(tmp_path / "b"), Digest.of_bytes(data, Algorithm.MD5), _pieces(data, 65536))
    assert set(os.listdir("/proc/self/fd")) <= before
    assert os.listdir(tmp_path) == []


def _lock_is_held(path: str) -> bool:
    with open(path, "rb") as probe:
        try:
            fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False


def test_a_large_copy_and_the_hash_of_a_clone_hold_their_temp_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    data = os.urandom(3 * 1024 * 1024)
    digest = Digest.of_bytes(data, Algorithm.MD5)
    src = tmp_path / "blob"
    src.write_bytes(data)
    held: list[bool] = []

    real_copy = copying.copy_file

    def copy_file(source: int, fd: int, hasher: Any, **kwargs: Any) -> None:
        (temp,) = tmp_path.glob(".copied.soko-dl-*.tmp")
        held.append(_lock_is_held(str(temp)))
        real_copy(source, fd, hasher, **kwargs)

    monkeypatch.setattr(copying, "copy_file", copy_file)
    materialize.materialize(str(src), str(tmp_path / "copied"), digest, mode="copy")

    def clone(source: str, temp: str) -> bool:  # a file system that clones
        shutil.copyfile(source, temp)
        return True

    real_hash = materialize._hash_path

    def hash_path(path: str, wanted: Digest) -> bool:
        held.append(_lock_is_held(path))
        return real_hash(path, wanted)

    monkeypatch.setattr(materialize, "_try_reflink", clone)
    monkeypatch.setattr(materialize, "_hash_path", hash_path)
    materialize.materialize(str(src), str(tmp_path / "cloned"), digest, mode="reflink")

    assert held == [True, True]
    assert (tmp_path / "copied").read_bytes() == (tmp_path / "cloned").read_bytes() == data
    assert not list(tmp_path.glob("*.tmp"))


def test_the_folder_writer_creates_replaces_and_refuses_wrong_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(materialize, "_FOLDERS_OPEN", 2)  # folders beyond it closed early
    blobs = {f"d{i}/f{j}": os.urandom(100 + i + j) for i in range(5) for j in range(3)}
    for name in blobs:
        (tmp_path / name).parent.mkdir(exist_ok=True)
    (tmp_path / "d1/f1").write_bytes(b"old")  # an existing file is replaced whole
    open_before = len(os.listdir("/proc/self/fd"))
    with materialize.FolderWriter() as writer:
        for name, data in blobs.items():
            writer.write(data, str(tmp_path / name), Digest.of_bytes(data, Algorithm.MD5))
        with pytest.raises(materialize.CorruptBlobError, match="does not match"):
            writer.write(b"bad", str(tmp_path / "d0/new"), Digest.of_bytes(b"good", Algorithm.MD5))
    assert len(os.listdir("/proc/self/fd")) == open_before
    assert {name: (tmp_path / name).read_bytes() for name in blobs} == blobs
    assert not (tmp_path / "d0/new").exists()
    assert sorted(os.listdir(tmp_path / "d1")) == ["f0", "f1", "f2"]  # no temp left


def test_a_failed_write_in_a_folder_keeps_no_short_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def failing(fd: int, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(materialize.os, "write", failing)
    data = os.urandom(2000)
    with materialize.FolderWriter() as writer, pytest.raises(OSError, match="No space"):
        writer.write(data, str(tmp_path / "blob"), Digest.of_bytes(data, Algorithm.XXH128))
    assert os.listdir(tmp_path) == []
