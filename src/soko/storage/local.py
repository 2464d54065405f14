"""A BlobStore in a folder of the local file system.

Layout of the root::

    format_version            "1\\n": the store's format; any other value is refused
    blobs/<alg>/<xx>/<hex>    one read-only file per blob (see :func:`~.base.blob_key`)
    tmp/                      blobs being written, under process-unique names

Write order (the rules of :mod:`soko.storage.base` follow from it):

1. The bytes are hashed while they are copied, one read of the source, into a file of
   ``tmp/`` whose name holds the pid, the thread id and random bits, so no two writers
   ever share one.
2. The digest is checked; on a mismatch the temp file is removed and nothing is stored.
3. ``os.replace`` moves the temp file to the blob's key. The rename is atomic, so a reader
   sees no blob or the whole blob; two writers of one blob both succeed, the second rename
   swapping in identical bytes.
4. No fsync here: :meth:`LocalBlobStore.sync` flushes every write since the last sync in one
   go (``syncfs(2)`` of the store's file system, else fsyncs spread over a few threads), so
   20,000 small files do not cost 20,000 serial fsyncs.

A writer killed between 1 and 3 leaves a file in ``tmp/`` that is never a blob;
:meth:`LocalBlobStore.remove_stale_temp` deletes such files once they are old enough.

This module imports only the standard library, :mod:`soko.core` and :mod:`soko.errors`.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import functools
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from soko.core.digests import Algorithm, Digest, Hasher
from soko.errors import DigestMismatchError, NotFoundError, StoreError, ValidationError
from soko.storage.base import FORMAT_VERSION, BlobInfo, blob_key, digest_of_key

MARKER_NAME = "format_version"
_BLOBS = "blobs"
_TMP = "tmp"
_TEMP_SUFFIX = ".tmp"
# Entries a store may hold before its marker exists: a process that created tmp/ and was
# stopped before the marker's rename, or a concurrent opener half-way through.
_STORE_ENTRIES = frozenset({_BLOBS, _TMP})

_SMALL = 1024 * 1024
_CHUNK = 8 * 1024 * 1024
_SYNC_THREADS = 8
# Blobs are never modified in place; read-only files guard them against a hard-linked
# copy being edited. Creating the temp file with these bits costs no extra syscall.
_BLOB_MODE = 0o444
_O_BINARY = getattr(os, "O_BINARY", 0)

# From this size on, put_file hashes on a helper thread while it reads and writes, so a
# large file costs max(hash, copy) rather than their sum (MD5 runs at ~0.5 GB/s a core).
_PIPELINE_MIN = 4 * _CHUNK

_buffers = threading.local()


def _copy_buffer(index: int) -> memoryview:
    """This thread's reused copy buffer *index* (0 or 1), so large copies allocate nothing
    per file; the second one exists only in threads that ran a pipelined copy."""
    views: list[memoryview] | None = getattr(_buffers, "views", None)
    if views is None:
        views = []
        _buffers.views = views
    while len(views) <= index:
        views.append(memoryview(bytearray(_CHUNK)))
    return views[index]


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, or None where the platform has none (then fsyncs are used)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_blob(fd: int, data: bytes | memoryview) -> None:
    """Write to a temp file of the store; failures there (a full disk) are the store's."""
    try:
        _write_all(fd, data)
    except OSError as exc:
        raise StoreError(f"Cannot write to the store: {exc}") from exc


@dataclass
class _RootState:
    """What the instances of one store root in this process share."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    dirty: bool = False
    """A put returned since the last sync (or skipped a blob that exists)."""
    unsynced: set[str] = field(default_factory=set)
    """Blob files to fsync, kept only when syncfs is unavailable."""
    known_dirs: set[str] = field(default_factory=set)
    """Fan-out folders known to exist, so most puts skip makedirs."""


_states: dict[str, _RootState] = {}
_states_lock = threading.Lock()


def _state_of(root: str) -> _RootState:
    with _states_lock:
        return _states.setdefault(root, _RootState())


class LocalBlobStore:
    """Blobs as files under *root*; see the module docstring for the layout and write order.

    Safe to share between threads, and between processes that open the same root.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self._tmp = os.path.join(self.root, _TMP)
        # Shared by every instance on this root in this process, so that any of them can
        # sync what the others wrote.
        self._state = _state_of(os.path.realpath(self.root))
        self._known_dirs = self._state.known_dirs
        self._open_root()

    def __repr__(self) -> str:
        return f"LocalBlobStore({self.root!r})"

    # -- opening -------------------------------------------------------------------------

    def _open_root(self) -> None:
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise StoreError(f"The store root {self.root} is not a folder.")
        try:
            os.makedirs(self.root, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the store root {self.root}: {exc}") from exc
        marker = os.path.join(self.root, MARKER_NAME)
        try:
            with open(marker, "rb") as stream:
                text = stream.read(64)
        except FileNotFoundError:
            self._create_marker(marker)
            return
        except OSError as exc:
            raise StoreError(f"Cannot read {marker}: {exc}") from exc
        self._check_marker(marker, text)

    def _check_marker(self, marker: str, text: bytes) -> None:
        try:
            version = int(text.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            raise StoreError(
                f"{marker} does not hold a format version ({text[:32]!r}); "
                f"{self.root} is not a soko store."
            ) from None
        if version != FORMAT_VERSION:
            raise StoreError(
                f"The store at {self.root} has format version {version}; this soko reads "
                f"version {FORMAT_VERSION} only. Use a soko release that knows version "
                f"{version}, or another folder."
            )

    def _create_marker(self, marker: str) -> None:
        try:
            foreign = sorted(set(os.listdir(self.root)) - _STORE_ENTRIES - {MARKER_NAME})
        except OSError as exc:
            raise StoreError(f"Cannot list the store root {self.root}: {exc}") from exc
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise StoreError(
                f"{self.root} is not empty and has no {MARKER_NAME} file, so it is not a "
                f"soko store (it holds {shown}). Give soko an empty or new folder."
            )
        content = f"{FORMAT_VERSION}\n".encode("ascii")
        try:
            os.makedirs(self._tmp, exist_ok=True)
            temp = self._new_temp_name()
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
            try:
                _write_all(fd, content)
                # The marker is written once per store; make it durable right away so a
                # crash cannot leave blobs next to an empty marker.
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, marker)
            self._fsync_dir(self.root)
        except OSError as exc:
            raise StoreError(f"Cannot write {marker}: {exc}") from exc
        # A concurrent opener may have written the marker first: both wrote the same bytes.
        with open(marker, "rb") as stream:
            self._check_marker(marker, stream.read(64))

    # -- paths ---------------------------------------------------------------------------

    def _path(self, digest: Digest) -> str:
        # Concatenation, not os.path.join: this runs once per blob of every manifest.
        return f"{self.root}{os.sep}{blob_key(digest)}"

    def _new_temp_name(self) -> str:
        name = f"{os.getpid()}-{threading.get_native_id()}-{os.urandom(8).hex()}{_TEMP_SUFFIX}"
        return os.path.join(self._tmp, name)

    def _ensure_dir(self, folder: str) -> None:
        if folder in self._known_dirs:
            return
        os.makedirs(folder, exist_ok=True)
        self._known_dirs.add(folder)

    def _open_temp(self) -> tuple[int, str]:
        temp = self._new_temp_name()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY
        try:
            return os.open(temp, flags, _BLOB_MODE), temp
        except FileNotFoundError:
            # tmp/ was removed behind our back (a user cleaning up): recreate it once.
            os.makedirs(self._tmp, exist_ok=True)
            return os.open(temp, flags, _BLOB_MODE), temp

    # -- writing -------------------------------------------------------------------------

    def put_file(self, digest: Digest, path: str) -> int:
        """Store the file at *path* as *digest*, hashing while copying; returns its size.

        When the blob exists the file is not read and the stored size is returned.
        Errors reading *path* are raised as the builtin ``OSError`` they are.
        """
        existing = self._existing_size(digest)
        if existing is not None:
            return existing
        source = os.open(path, os.O_RDONLY | _O_BINARY)
        try:
            st = os.fstat(source)
            if stat_module.S_ISREG(st.st_mode) and st.st_size < _SMALL:
                data = os.read(source, st.st_size + 1)
                if len(data) <= st.st_size:
                    self._store_bytes(digest, data, source_name=path)
                    return len(data)
                # The file grew since fstat: fall back to copying it in chunks.
                with os.fdopen(os.dup(source), "rb", buffering=0) as rest:
                    return self._store_chunks(digest, rest, source_name=path, head=data)
            with os.fdopen(os.dup(source), "rb", buffering=0) as stream:
                return self._store_chunks(
                    digest, stream, source_name=path, pipelined=st.st_size >= _PIPELINE_MIN
                )
        finally:
            os.close(source)

    def put_bytes(self, digest: Digest, data: bytes) -> None:
        if self._existing_size(digest) is not None:
            return
        self._store_bytes(digest, data, source_name="bytes")

    def put_stream(self, digest: Digest, stream: BinaryIO) -> int:
        """Store what *stream* yields until EOF as *digest*; returns the size.

        When the blob exists the stream is not read and the stored size is returned.
        """
        existing = self._existing_size(digest)
        if existing is not None:
            return existing
        return self._store_chunks(digest, stream, source_name="stream")

    def _existing_size(self, digest: Digest) -> int | None:
        """The stored size if the blob exists, its mtime refreshed, else None.

        Refreshing the mtime restarts garbage collection's grace period for a blob that a
        new version is about to reference again.
        """
        final = self._path(digest)
        try:
            size = os.stat(final).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"Cannot stat blob {digest}: {exc}") from exc
        with contextlib.suppress(OSError):
            os.utime(final)
        self._note_written(final)
        return size

    def _store_bytes(self, digest: Digest, data: bytes, *, source_name: str) -> None:
        actual = digest.algorithm.hasher(data).digest()
        if actual != digest.raw:
            raise self._mismatch(digest, actual, source_name)
        try:
            fd, temp = self._open_temp()
        except OSError as exc:
            raise StoreError(f"Cannot create a temp file in {self._tmp}: {exc}") from exc
        try:
            try:
                _write_blob(fd, data)
            finally:
                os.close(fd)
            self._move_into_place(temp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def _store_chunks(
        self,
        digest: Digest,
        stream: BinaryIO,
        *,
        source_name: str,
        head: bytes = b"",
        pipelined: bool = False,
    ) -> int:
        hasher = digest.algorithm.hasher()
        try:
            fd, temp = self._open_temp()
        except OSError as exc:
            raise StoreError(f"Cannot create a temp file in {self._tmp}: {exc}") from exc
        try:
            try:
                readinto = getattr(stream, "readinto", None)
                if pipelined and readinto is not None and not head:
                    size = _copy_pipelined(readinto, fd, hasher)
                else:
                    size = _copy(stream, fd, hasher, head)
            finally:
                os.close(fd)
            actual = hasher.digest()
            if actual != digest.raw:
                raise self._mismatch(digest, actual, source_name)
            self._move_into_place(temp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return size

    def _mismatch(self, digest: Digest, actual: bytes, source_name: str) -> DigestMismatchError:
        got = Digest(digest.algorithm, actual)
        return DigestMismatchError(
            f"The bytes of {source_name} hash to {got}, not {digest}; nothing was stored."
        )

    def _move_into_place(self, temp: str, digest: Digest) -> None:
        final = self._path(digest)
        folder = os.path.dirname(final)
        try:
            self._ensure_dir(folder)
            try:
                os.replace(temp, final)
            except FileNotFoundError:
                # The fan-out folder was removed since it was cached (garbage collection
                # may prune empty ones): forget it and create it again.
                self._known_dirs.discard(folder)
                self._ensure_dir(folder)
                os.replace(temp, final)
        except OSError as exc:
            raise StoreError(f"Cannot move blob {digest} into place: {exc}") from exc
        self._note_written(final)

    def _note_written(self, final: str) -> None:
        state = self._state
        with state.lock:
            state.dirty = True
            # Paths are only needed by the fsync fallback; syncfs flushes everything.
            if _syncfs() is None:
                state.unsynced.add(final)

    # -- durability ----------------------------------------------------------------------

    def sync(self) -> None:
        """Make every put that returned before this call durable.

        It also covers a put skipped because another process had just written the blob:
        that blob is flushed here too, so a version never relies on someone else's sync.
        """
        state = self._state
        with state.lock:
            if not state.dirty:
                return
            state.dirty = False
            paths, state.unsynced = state.unsynced, set()
        try:
            syncfs = _syncfs()
            if syncfs is not None:
                self._run_syncfs(syncfs)
            else:
                self._fsync_all(paths)
        except BaseException:
            with state.lock:
                state.dirty = True
                state.unsynced |= paths
            raise

    def _run_syncfs(self, syncfs: Callable[[int], int]) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                errno = ctypes.get_errno()
                raise StoreError(f"syncfs of {self.root} failed: {os.strerror(errno)}")
        finally:
            os.close(fd)

    def _fsync_all(self, paths: set[str]) -> None:
        folders = {os.path.dirname(p) for p in paths}
        # A new fan-out folder is an entry of its parent, and so on up to blobs/.
        folders |= {os.path.dirname(f) for f in folders}
        folders |= {os.path.dirname(f) for f in folders}
        with ThreadPoolExecutor(max_workers=_SYNC_THREADS) as pool:
            list(pool.map(self._fsync_file, paths))
            list(pool.map(self._fsync_dir, folders))

    @staticmethod
    def _fsync_file(path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | _O_BINARY)
        except FileNotFoundError:
            return  # deleted since: nothing to make durable
        except OSError as exc:
            raise StoreError(f"Cannot open {path} to fsync it: {exc}") from exc
        try:
            os.fsync(fd)
        except OSError as exc:
            raise StoreError(f"fsync of {path} failed: {exc}") from exc
        finally:
            os.close(fd)

    @staticmethod
    def _fsync_dir(path: str) -> None:
        if os.name == "nt":
            return  # Windows cannot open a folder to fsync it
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reading -------------------------------------------------------------------------

    def exists(self, digest: Digest) -> bool:
        return os.access(self._path(digest), os.F_OK)

    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        """Which of *digests* the store lacks: one existence check per distinct digest."""
        return {d for d in set(digests) if not os.access(self._path(d), os.F_OK)}

    def open(self, digest: Digest) -> BinaryIO:
        try:
            return open(self._path(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"No blob {digest} in {self.root}.") from None

    def read_bytes(self, digest: Digest) -> bytes:
        with self.open(digest) as stream:
            return stream.read()

    def stat(self, digest: Digest) -> BlobInfo:
        try:
            st = os.stat(self._path(digest))
        except FileNotFoundError:
            raise NotFoundError(f"No blob {digest} in {self.root}.") from None
        return BlobInfo(digest, st.st_size, st.st_mtime)

    def local_path(self, digest: Digest) -> str | None:
        """The blob's file. Not checked: for a missing blob, opening it raises
        ``FileNotFoundError`` (one syscall fewer per file when materialising)."""
        return self._path(digest)

    def delete(self, digest: Digest) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(digest))

    def list(self, algorithm: Algorithm | None = None) -> Iterator[BlobInfo]:
        """Every blob (of one algorithm, when given); files that are not blob keys are
        skipped, so a stray file never shows up as a blob."""
        algorithms = list(Algorithm) if algorithm is None else [Algorithm.parse(algorithm)]
        for alg in algorithms:
            alg_dir = os.path.join(self.root, _BLOBS, alg.key)
            for fanout in _scandir(alg_dir):
                if not fanout.is_dir(follow_symlinks=False):
                    continue
                for entry in _scandir(fanout.path):
                    info = _blob_info(f"{_BLOBS}/{alg.key}/{fanout.name}/{entry.name}", entry)
                    if info is not None:
                        yield info

    # -- temp files ----------------------------------------------------------------------

    def temp_files_older_than(self, seconds: float) -> builtins.list[str]:
        """Paths of files in ``tmp/`` last written more than *seconds* ago.

        A live writer keeps writing to its temp file, so an old one was left by a process
        that was killed; the grace period must exceed the longest pause of a live writer.
        """
        cutoff = time.time() - seconds
        stale = []
        for entry in _scandir(self._tmp):
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    stale.append(entry.path)
            except FileNotFoundError:
                continue  # renamed into place or removed meanwhile
        return stale

    def remove_stale_temp(self, seconds: float) -> int:
        """Delete the files :meth:`temp_files_older_than` finds; returns how many went."""
        removed = 0
        for path in self.temp_files_older_than(seconds):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
        return removed


def _copy(stream: BinaryIO, fd: int, hasher: Hasher, head: bytes) -> int:
    """Copy *stream* to *fd*, feeding the same bytes to *hasher*: what is stored is what
    was hashed, even if the source changes while it is read."""
    size = len(head)
    if head:
        hasher.update(head)
        _write_blob(fd, head)
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
            _write_blob(fd, chunk)
            size += len(chunk)
        return size
    view = _copy_buffer(0)
    while True:
        count = readinto(view)
        if not count:
            return size
        part = view[:count]
        hasher.update(part)
        _write_blob(fd, part)
        size += count


def _copy_pipelined(readinto: Callable[[memoryview], int | None], fd: int, hasher: Hasher) -> int:
    """:func:`_copy` with the hashing of each chunk on a helper thread, overlapping the
    write of that chunk and the read of the next one.

    Two buffers take turns: chunk *k* is hashed while it is written and while chunk *k+1*
    is read into the other buffer; before chunk *k+1* is handed to the hasher, the hash of
    chunk *k* is waited for, so the buffer read next is never one still being hashed, and
    chunks reach the hasher in order.
    """
    views = (_copy_buffer(0), _copy_buffer(1))
    size = 0
    turn = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-hash") as helper:
        hashing: Future[None] | None = None
        try:
            while True:
                view = views[turn]
                count = readinto(view)
                if not count:
                    break
                part = view[:count]
                if hashing is not None:
                    hashing.result()
                hashing = helper.submit(hasher.update, part)
                _write_blob(fd, part)
                size += count
                turn ^= 1
        finally:
            if hashing is not None:
                hashing.result()
    return size


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def _blob_info(key: str, entry: os.DirEntry[str]) -> BlobInfo | None:
    try:
        digest = digest_of_key(key)
    except ValidationError:
        return None
    try:
        if not entry.is_file(follow_symlinks=False):
            return None
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # deleted while listing
    return BlobInfo(digest, st.st_size, st.st_mtime)
