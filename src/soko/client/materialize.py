"""Putting a blob's bytes at a path in a download root, verified, atomically.

The file is written under a temporary name beside its destination and renamed into place,
so a reader never sees half a file. ``copy`` hashes while copying (one read); ``reflink``
clones the extents (no data written) and then hashes the clone; ``hardlink`` and
``symlink`` share the store's file and are used only when asked for (SOKO_LINK), since a
user editing the result would edit the stored blob.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import queue
import re
import stat
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from soko.core import metering
from soko.core.digests import Digest
from soko.errors import CorruptBlobError, DigestMismatchError
from soko.storage import copying

_FICLONE = 0x40049409
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # Windows has no symbolic-link flag
_CHUNK = 8 * 1024 * 1024
_SMALL = 1024 * 1024
_WRITE_GROUP = 1024 * 1024
_WRITE_PARTS = 256  # a group's parts, whatever their sizes
_GROUPS_AHEAD = 8  # bounds the bytes a slow disk keeps in memory: about 8 MiB
_IDLE_CHECK_SECONDS = 0.2
_TEMP_STEM_MAX = 200
STALE_TEMP_SECONDS = 60.0
"""A temp file beside a destination that nobody wrote to for this long was left by a
download that was killed: the next download of that file removes it."""
_DOWNLOAD_TEMP = re.compile(r"\.(.+)\.soko-dl-[0-9a-f]{12}\.tmp")
_reflink_works: dict[int, bool] = {}


def _load_fcntl() -> Any:
    try:
        return importlib.import_module("fcntl")
    except ImportError:
        return None


_FCNTL = _load_fcntl()
"""``fcntl`` where the platform has it (Linux, macOS); None elsewhere (Windows): download
temps then go unlocked, so a download stalled for :data:`STALE_TEMP_SECONDS` may see
another download of the same file remove its temp (it fails and can be run again), and
no file is cloned (reflinks are Linux ioctls)."""


def lock_temp(fd: int) -> bool:
    """Lock the temp open as *fd* (exclusive, not waiting): False when another process
    holds it, True when taken or when the platform has no such locks."""
    if _FCNTL is None:
        return True
    try:
        _FCNTL.flock(fd, _FCNTL.LOCK_EX | _FCNTL.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _temp_stem(name: str) -> str:
    # A temp name adds up to 27 bytes: a destination name near the 255-byte limit gets a
    # shortened stem, not ENAMETOOLONG.
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= _TEMP_STEM_MAX:
        return name
    return raw[:_TEMP_STEM_MAX].decode("utf-8", "ignore")


def temp_beside(dest: str) -> str:
    """A new temp name beside *dest*, hidden, which :func:`remove_stale_temps` removes
    should the download writing it be killed. A writer that may take long (a stream, a
    large copy, hashing a clone) holds the temp locked meanwhile."""
    folder, name = os.path.split(dest)
    return os.path.join(folder, f".{_temp_stem(name)}.soko-dl-{uuid.uuid4().hex[:12]}.tmp")


def remove_stale_temps(dests: Iterable[str]) -> int:
    """Remove the download temps beside *dests* that killed downloads of them left: nobody
    wrote to them for :data:`STALE_TEMP_SECONDS` and nobody holds their lock (a live
    download stalled on the network keeps its lock). One listing per folder, however many
    destinations it holds. Returns how many were removed."""
    by_folder: dict[str, list[str]] = {}
    for dest in dests:
        folder, name = os.path.split(dest)
        by_folder.setdefault(folder or ".", []).append(name)
    cutoff = time.time() - STALE_TEMP_SECONDS
    removed = 0
    for folder, names in by_folder.items():
        try:
            with os.scandir(folder) as listing:
                entries = [e for e in listing if e.name.endswith(".tmp") and ".soko-dl-" in e.name]
        except OSError:
            continue  # a folder this download is about to create
        if not entries:
            continue
        wanted = {_temp_stem(name) for name in names}
        for entry in entries:
            match = _DOWNLOAD_TEMP.fullmatch(entry.name)
            if match is None or match.group(1) not in wanted:
                continue  # not a download temp, or another file's
            removed += _remove_if_abandoned(entry.path, cutoff)
    return removed


def _remove_if_abandoned(path: str, cutoff: float) -> int:
    with contextlib.suppress(OSError):
        found = os.lstat(path)
        # A hard link to a cache file (its mtime is the cache file's) costs no space and
        # is renamed within microseconds: never taken for a killed download's.
        if not stat.S_ISREG(found.st_mode) or found.st_nlink > 1 or found.st_mtime >= cutoff:
            return 0
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
        if not lock_temp(fd):
            os.close(fd)
            return 0  # its download is alive, stalled on the network
        try:
            os.unlink(path)  # while locked: no live download holds it
            return 1
        finally:
            os.close(fd)
    return 0


def write_new(path: str, data: bytes) -> None:
    """Create the file *path* (it must not exist) holding *data*."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        copying.write_parts(fd, (data,))
    finally:
        os.close(fd)


def stream_new(
    path: str,
    digest: Digest,
    chunks: Iterable[bytes],
) -> int:
    """Create the file *path* from *chunks* (a download), hashing them; returns the size.
    Bytes that do not hash to *digest* raise DigestMismatchError and the file is removed.
    Each chunk is counted for a progress bar (:func:`soko.core.metering.count`)."""
    hasher = digest.algorithm.hasher()
    size = 0
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            # Held until the file is closed (the writer's dup shares it): a download of
            # the same file elsewhere then never takes this temp for a killed one's.
            lock_temp(fd)
            with _Writer(fd) as writer:
                for chunk in chunks:
                    hasher.update(chunk)
                    writer.write(chunk)
                    size += len(chunk)
                    metering.count(len(chunk))
        finally:
            os.close(fd)
        actual = Digest(digest.algorithm, hasher.digest())
        if actual != digest:
            raise DigestMismatchError(
                f"Downloaded bytes hash to {actual}, not {digest}; nothing was kept."
            )
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    return size


class _Writer:
    """Writes a download's chunks to *fd*, a megabyte at a time, on a helper thread once
    there is more than a megabyte: receiving and hashing the next chunks then overlap the
    write, which for a large blob costs as much as the transfer. A blob of less is written
    on the calling thread when the block ends.

    The helper writes through a descriptor of its own, which it closes: a caller whose
    wait is cut short (Ctrl-C) closes *fd* without the helper ever writing to a reused
    descriptor number. Given up on, the helper drops what is queued and ends by itself.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._group: list[bytes] = []
        self._group_bytes = 0
        self._queue: queue.Queue[list[bytes] | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._abandoned = False

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is not None:
            self._abandon()
            return
        try:
            self._flush(last=True)
            if self._queue is not None and self._thread is not None:
                self._queue.put(None)
                self._thread.join()
        except BaseException:
            self._abandon()
            raise
        if self._error is not None:
            raise self._error

    def write(self, chunk: bytes) -> None:
        self._group.append(chunk)
        self._group_bytes += len(chunk)
        if self._group_bytes >= _WRITE_GROUP or len(self._group) >= _WRITE_PARTS:
            self._flush(last=False)

    def _flush(self, *, last: bool) -> None:
        group, self._group, self._group_bytes = self._group, [], 0
        if not group:
            return
        if self._queue is None:
            if last:
                copying.write_parts(self._fd, group)
                return
            groups: queue.Queue[list[bytes] | None] = queue.Queue(_GROUPS_AHEAD)
            own = os.dup(self._fd)
            thread = threading.Thread(
                target=self._run, args=(groups, own), name="soko-write", daemon=True
            )
            try:
                thread.start()
            except BaseException:
                os.close(own)
                raise
            self._queue, self._thread = groups, thread
        if self._error is not None:
            raise self._error
        self._queue.put(group)

    def _run(self, groups: queue.Queue[list[bytes] | None], fd: int) -> None:
        try:
            while True:
                try:
                    group = groups.get(timeout=_IDLE_CHECK_SECONDS)
                except queue.Empty:
                    if self._abandoned:
                        return
                    continue
                if group is None:
                    return
                if self._error is None and not self._abandoned:
                    try:
                        copying.write_parts(fd, group)
                    except BaseException as exc:  # raised on the calling thread
                        self._error = exc
        finally:
            os.close(fd)

    def _abandon(self) -> None:
        """Stop the helper without having it write what is queued; it ends by itself
        should this wait be cut short too."""
        self._abandoned = True
        if self._queue is not None:
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join()


def _copy_hashing(src: str, tmp: str, digest: Digest) -> None:
    if os.path.getsize(src) <= _SMALL:
        with open(src, "rb", buffering=0) as reader:
            data = reader.read()
        if digest.algorithm.hasher(data).digest() != digest.raw:
            raise CorruptBlobError(f"Blob {digest} does not match its digest (read from {src}).")
        write_new(tmp, data)
        metering.count(len(data))
        return
    # The kernel copies (copy_file_range) and each chunk is hashed as read back from the
    # new file, so what is verified is what the root receives, with no per-file buffer.
    hasher = digest.algorithm.hasher()
    source = os.open(src, os.O_RDONLY)
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            lock_temp(fd)  # see remove_stale_temps
            copying.copy_file(
                source, fd, hasher, pipelined=os.fstat(source).st_size >= copying.PIPELINE_MIN
            )
        finally:
            os.close(fd)
    finally:
        os.close(source)
    if hasher.digest() != digest.raw:
        raise CorruptBlobError(f"Blob {digest} does not match its digest (read from {src}).")


def _hash_path(path: str, digest: Digest) -> bool:
    hasher = digest.algorithm.hasher()
    with open(path, "rb") as reader:
        while chunk := reader.read(_CHUNK):
            hasher.update(chunk)
            metering.count(len(chunk))
    return hasher.digest() == digest.raw


def _try_reflink(src: str, tmp: str) -> bool:
    device = os.stat(src).st_dev
    if _FCNTL is None or _reflink_works.get(device) is False:
        return False
    try:
        with open(src, "rb") as reader, open(tmp, "wb") as writer:
            _FCNTL.ioctl(writer.fileno(), _FICLONE, reader.fileno())
    except OSError:
        _reflink_works[device] = False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        return False
    _reflink_works[device] = True
    return True


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """Hold *path* (a temp this process just made) locked, as a live download's."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        lock_temp(fd)
        yield
    finally:
        os.close(fd)


def clones_between(src_folder: str, dest_folder: str) -> bool:
    """Whether a file in *src_folder* can be cloned (reflinked) into *dest_folder*: tried
    once per file system with a one-byte file, as :func:`materialize` would."""
    try:
        device = os.stat(src_folder).st_dev
        if os.stat(dest_folder).st_dev != device:
            return False
    except OSError:
        return False
    known = _reflink_works.get(device)
    if known is not None:
        return known
    probe = os.path.join(src_folder, f".soko-clone-probe-{uuid.uuid4().hex[:12]}")
    try:
        write_new(probe, b"\0")
    except OSError:
        return False
    try:
        clone = temp_beside(os.path.join(dest_folder, "probe"))
        cloned = _try_reflink(probe, clone)
        if cloned:
            os.unlink(clone)
        return cloned
    finally:
        with contextlib.suppress(OSError):
            os.unlink(probe)


def materialize(
    src: str, dest: str, digest: Digest, *, mode: str = "auto", make_dirs: bool = True
) -> None:
    """Make *dest* hold the blob stored at *src*, verified against *digest*.

    *make_dirs* False skips creating the parent folder (the caller made them all at once).
    """
    if make_dirs:
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    tmp = temp_beside(dest)
    try:
        if mode in ("hardlink", "symlink"):
            if not _hash_path(src, digest):
                raise CorruptBlobError(f"Blob {digest} does not match its digest ({src}).")
            if mode == "hardlink":
                os.link(src, tmp)
            else:
                os.symlink(os.path.abspath(src), tmp)
        elif mode in ("reflink", "auto") and _try_reflink(src, tmp):
            with _locked(tmp):  # hashing a large clone may outlast STALE_TEMP_SECONDS
                if not _hash_path(tmp, digest):
                    raise CorruptBlobError(f"Blob {digest} does not match its digest ({src}).")
        else:
            _copy_hashing(src, tmp, digest)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_FOLDER = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_FOLDERS_OPEN = 16
_OPENS_IN_FOLDER = {os.open, os.stat, os.unlink} <= os.supports_dir_fd  # not on Windows


class FolderWriter:
    """Writes blobs read from packs into their destinations, like :func:`materialize_bytes`,
    each new file created in a descriptor of its folder (``openat``): the kernel walks
    the root's path once per folder, not once per file. Used as a context manager, which
    closes the folders' descriptors; the folders must exist."""

    def __init__(self) -> None:
        self._folders: dict[str, int] = {}

    def __enter__(self) -> FolderWriter:
        return self

    def __exit__(self, *_: object) -> None:
        for fd in self._folders.values():
            os.close(fd)
        self._folders.clear()

    def write(self, data: bytes, dest: str, digest: Digest, *, verified: bool = False) -> None:
        """Make *dest* hold *data*, verified against *digest* (unless the caller just did:
        *verified*)."""
        if not verified and digest.algorithm.digest_of(data) != digest.raw:
            raise CorruptBlobError(f"Blob {digest} does not match its digest (read from a pack).")
        if not _OPENS_IN_FOLDER:
            materialize_bytes(data, dest, digest, verified=True)
            return
        # A destination is a joined path (``sdk.transfer.destination``): its folder is
        # what precedes the last separator, without os.path's per-call normalising.
        folder, _, name = dest.rpartition(os.sep)
        folder = folder or os.path.dirname(dest) or "."  # "/file" is in "/"
        folder_fd = self._folders.get(folder)
        if folder_fd is None:
            if len(self._folders) >= _FOLDERS_OPEN:
                self.__exit__()  # files scattered over many folders: few descriptors held
            folder_fd = self._folders[folder] = os.open(folder, _FOLDER)
        try:
            fd = os.open(name, _NEW_FILE, 0o644, dir_fd=folder_fd)
        except FileExistsError:
            materialize_bytes(data, dest, digest, verified=True)
            return
        try:
            written = os.write(fd, data)
            if written < len(data):  # a short write: rare, so no view made for each file
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(fd, view) :]
        except BaseException:
            # Removed only if still this file: a concurrent download may have replaced
            # it with a whole one meanwhile.
            with contextlib.suppress(OSError):
                found = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
                if found.st_ino == os.fstat(fd).st_ino:
                    os.unlink(name, dir_fd=folder_fd)
            raise
        finally:
            os.close(fd)


def materialize_bytes(data: bytes, dest: str, digest: Digest, *, verified: bool = False) -> None:
    """Make *dest* hold *data*, a blob read from a pack, verified against *digest* (unless
    the caller just did: *verified*); its parent folder must exist.

    A new file is written where it goes (a first download of 20,000 small files saves a
    rename and a temp name each); an existing one is replaced through a temp file and a
    rename, so that it is never seen half rewritten. A download cut short leaves a short
    new file, which the next download hashes, finds wrong and replaces.
    """
    if not verified and digest.algorithm.digest_of(data) != digest.raw:
        raise CorruptBlobError(f"Blob {digest} does not match its digest (read from a pack).")
    try:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        pass
    else:
        try:
            copying.write_parts(fd, (data,))
        except BaseException:
            # Remove the short file only if it is still ours: a concurrent download may
            # have replaced it with a whole one meanwhile.
            with contextlib.suppress(OSError):
                if os.stat(dest).st_ino == os.fstat(fd).st_ino:
                    os.unlink(dest)
            raise
        finally:
            os.close(fd)
        return
    tmp = temp_beside(dest)
    try:
        write_new(tmp, data)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
