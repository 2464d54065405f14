"""A BlobStore in a folder of the local file system.

Layout of the root::

    format_version            "1\\n": the store's format; any other value is refused
    blobs/<alg>/<xx>/<hex>    one read-only file per blob (see :func:`~.base.blob_key`)
    tmp/                      blobs being written, under process-unique names

Write order (the rules of :mod:`soko.storage.base` follow from it):

1. The bytes are copied into a file of ``tmp/`` whose name holds the pid, the thread id
   and random bits, so no two writers ever share one, and hashed as they are copied: the
   source is read once and the hash is of the bytes written (see :mod:`.copying`).
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from soko.core.digests import Algorithm, Digest, Hasher
from soko.errors import DigestMismatchError, NotFoundError, StoreError, ValidationError
from soko.storage import copying
from soko.storage.base import FORMAT_VERSION, BlobInfo, blob_key, digest_of_key

MARKER_NAME = "format_version"
_BLOBS = "blobs"
_TMP = "tmp"
_TEMP_SUFFIX = ".tmp"
# Entries a store may hold before its marker exists: a process that created tmp/ and was
# stopped before the marker's rename, or a concurrent opener half-way through.
_STORE_ENTRIES = frozenset({_BLOBS, _TMP})

_SMALL = 1024 * 1024
_SYNC_THREADS = 8
# Blobs are never modified in place; read-only files guard them against a hard-linked
# copy being edited. Creating the temp file with these bits costs no extra syscall.
_BLOB_MODE = 0o444
_O_BINARY = getattr(os, "O_BINARY", 0)


@functools.cache
def _syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs``, or None where the platform has none (then fsyncs are used)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return function


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
                copying.write_all(fd, content)
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
        # Read and write: copying.copy_file reads back what the kernel copied, to hash it.
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _O_BINARY
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
                # The file grew since fstat: copy the rest in chunks.
                return self._store_copied(
                    digest,
                    lambda fd, hasher: copying.copy_file(source, fd, hasher, head=data),
                    source_name=path,
                )
            pipelined = st.st_size >= copying.PIPELINE_MIN
            return self._store_copied(
                digest,
                lambda fd, hasher: copying.copy_file(source, fd, hasher, pipelined=pipelined),
                source_name=path,
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
        return self._store_copied(
            digest,
            lambda fd, hasher: copying.copy_stream(stream, fd, hasher),
            source_name="stream",
        )

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
                copying.write_all(fd, data)
            finally:
                os.close(fd)
            self._move_into_place(temp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def _store_copied(
        self, digest: Digest, copy: Callable[[int, Hasher], int], *, source_name: str
    ) -> int:
        """Store what *copy* writes to a temp file (and feeds to the hasher) as *digest*."""
        hasher = digest.algorithm.hasher()
        try:
            fd, temp = self._open_temp()
        except OSError as exc:
            raise StoreError(f"Cannot create a temp file in {self._tmp}: {exc}") from exc
        try:
            try:
                size = copy(fd, hasher)
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
