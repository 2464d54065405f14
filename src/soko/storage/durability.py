"""When the writes of a local store reach the disk: one flush for many puts.

A put returns before its blob is durable; :meth:`Unsynced.sync` flushes every write since
the last sync in one go (``syncfs(2)`` of the store's file system when more than a few
files wait, else fsyncs spread over a few threads), so 20,000 small files do not cost
20,000 serial fsyncs. Packs are fsynced as they are written and do not count.

This module imports only the standard library and :mod:`soko.errors`.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from soko.errors import StoreError
from soko.storage.layout import fsync_dir

_SYNC_THREADS = 8
FSYNC_UP_TO = 32
"""Up to this many blobs written since the last sync are fsynced one by one, more with one
``syncfs`` (packs are fsynced as they are written and do not count)."""
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


class Unsynced:
    """The blob files of one store root written (or found) since its last sync; shared
    by every store instance on that root in this process, so that any of them can sync
    what the others wrote."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.sync_lock = threading.Lock()
        """Held through a whole sync, so that a second caller returns only once the files
        it counts on are flushed (not merely taken over by a flush still running)."""
        self.dirty = False
        """A put returned since the last sync (or skipped a blob that exists)."""
        self.paths: set[str] = set()

    def note(self, path: str) -> None:
        """*path* was written, or a put counted on it: the next sync flushes it."""
        with self.lock:
            self.dirty = True
            self.paths.add(path)

    def note_all(self, paths: Iterable[str]) -> None:
        with self.lock:
            self.dirty = True
            self.paths.update(paths)

    def sync(self) -> None:
        """Make every write noted before this call durable."""
        with self.sync_lock:
            with self.lock:
                if not self.dirty:
                    return
                self.dirty = False
                paths, self.paths = self.paths, set()
            try:
                syncfs = _syncfs()
                # A few files are flushed one by one: syncfs would also flush whatever
                # else is dirty on the file system (the user's own freshly written data).
                if syncfs is not None and len(paths) > FSYNC_UP_TO:
                    self._run_syncfs(syncfs)
                else:
                    _fsync_all(paths)
            except BaseException:
                self.note_all(paths)
                raise

    def _run_syncfs(self, syncfs: Callable[[int], int]) -> None:
        fd = os.open(self.root, os.O_RDONLY)
        try:
            if syncfs(fd) != 0:
                errno = ctypes.get_errno()
                raise StoreError(f"syncfs of {self.root} failed: {os.strerror(errno)}")
        finally:
            os.close(fd)

    def after_fork_in_child(self) -> None:
        # Locks held by other threads at fork() would never be released in the child.
        self.lock = threading.Lock()
        self.sync_lock = threading.Lock()


def _fsync_all(paths: set[str]) -> None:
    folders = {os.path.dirname(p) for p in paths}
    # A new fan-out folder is an entry of its parent, and so on up to blobs/.
    folders |= {os.path.dirname(f) for f in folders}
    folders |= {os.path.dirname(f) for f in folders}
    with ThreadPoolExecutor(max_workers=_SYNC_THREADS) as pool:
        list(pool.map(fsync_file, paths))
        list(pool.map(fsync_dir, folders))


def fsync_file(path: str) -> None:
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


_by_root: dict[str, Unsynced] = {}
_by_root_lock = threading.Lock()


def unsynced_of(root: str) -> Unsynced:
    """The one :class:`Unsynced` of *root* (a real path) in this process."""
    with _by_root_lock:
        found = _by_root.get(root)
        if found is None:
            found = _by_root[root] = Unsynced(root)
        return found


def _reset_after_fork() -> None:
    global _by_root_lock
    _by_root_lock = threading.Lock()
    for unsynced in _by_root.values():
        unsynced.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
