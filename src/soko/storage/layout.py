"""The folder of a local store: its format marker, and what opening a root checks.

``format_version`` holds the store's format as ASCII digits and a newline. A folder without
it becomes a store only when it is empty (or holds nothing but what a store creates first),
so soko never writes into a folder of other files; a store of a format this soko does not
know is refused untouched. Version 1 (loose blobs only) is upgraded to 2 (packs added) by
rewriting the marker, since a version 1 store is a version 2 store without packs.

This module imports only the standard library and :mod:`soko.errors`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from soko.errors import StoreError

MARKER_NAME = "format_version"
FORMAT_VERSION = 2
"""Version 2 added ``packs/``; version 1 stores are upgraded by rewriting the marker."""
_UPGRADABLE = frozenset({1})
# Entries a store may hold before its marker exists: a process that created tmp/ and was
# stopped before the marker's rename, or a concurrent opener half-way through.
_STORE_ENTRIES = frozenset({"blobs", "tmp", "packs"})
_O_BINARY = getattr(os, "O_BINARY", 0)
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})


def open_root(root: str, tmp: str, new_temp: Callable[[], str]) -> None:
    """Check (or create) the store at *root*; temp files for the marker go in *tmp*."""
    if os.path.exists(root) and not os.path.isdir(root):
        raise StoreError(f"The store root {root} is not a folder.")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"Cannot create the store root {root}: {exc}") from exc
    marker = os.path.join(root, MARKER_NAME)
    try:
        with open(marker, "rb") as stream:
            text = stream.read(64)
    except FileNotFoundError:
        _create_marker(root, marker, tmp, new_temp)
        return
    except OSError as exc:
        raise StoreError(f"Cannot read {marker}: {exc}") from exc
    _check_marker(root, marker, text, tmp, new_temp)


def _check_marker(
    root: str, marker: str, text: bytes, tmp: str, new_temp: Callable[[], str]
) -> None:
    try:
        version = int(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        raise StoreError(
            f"{marker} does not hold a format version ({text[:32]!r}); {root} is not a soko store."
        ) from None
    if version in _UPGRADABLE:
        # Marking it 2 is the whole upgrade, and from then on a soko that cannot read
        # packs refuses the store rather than missing its packed blobs.
        try:
            _write_marker(root, marker, tmp, new_temp)
        except StoreError as exc:
            if not isinstance(exc.__cause__, OSError) or exc.__cause__.errno not in _READ_ONLY:
                raise
            # A read-only version 1 store (a mount, a shared copy): readable as it is; it
            # cannot gain packs, since nothing can be written to it.
        return
    if version != FORMAT_VERSION:
        raise StoreError(
            f"The store at {root} has format version {version}; this soko reads "
            f"version {FORMAT_VERSION} only. Use a soko release that knows version "
            f"{version}, or another folder."
        )


def _create_marker(root: str, marker: str, tmp: str, new_temp: Callable[[], str]) -> None:
    try:
        foreign = sorted(set(os.listdir(root)) - _STORE_ENTRIES - {MARKER_NAME})
    except OSError as exc:
        raise StoreError(f"Cannot list the store root {root}: {exc}") from exc
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise StoreError(
            f"{root} is not empty and has no {MARKER_NAME} file, so it is not a "
            f"soko store (it holds {shown}). Give soko an empty or new folder."
        )
    _write_marker(root, marker, tmp, new_temp)
    # A concurrent opener may have written the marker first: both wrote the same bytes.
    with open(marker, "rb") as stream:
        _check_marker(root, marker, stream.read(64), tmp, new_temp)


def _write_marker(root: str, marker: str, tmp: str, new_temp: Callable[[], str]) -> None:
    content = f"{FORMAT_VERSION}\n".encode("ascii")
    try:
        os.makedirs(tmp, exist_ok=True)
        temp = new_temp()
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o644)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            # The marker is written once per store; make it durable right away so a
            # crash cannot leave blobs next to an empty marker.
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, marker)
        fsync_dir(root)
    except OSError as exc:
        raise StoreError(f"Cannot write {marker}: {exc}") from exc


def ensure_dir(folder: str, known: set[str]) -> None:
    """Create *folder* unless *known* (folders made before) has it: most puts skip makedirs."""
    if folder not in known:
        os.makedirs(folder, exist_ok=True)
        known.add(folder)


def replace_into(temp: str, final: str, known: set[str]) -> None:
    """Rename *temp* to *final*, making *final*'s folder first; a folder removed since it
    was known (a cleanup pruning empty ones) is made again."""
    folder = os.path.dirname(final)
    ensure_dir(folder, known)
    try:
        os.replace(temp, final)
    except FileNotFoundError:
        known.discard(folder)
        ensure_dir(folder, known)
        os.replace(temp, final)


def fsync_dir(path: str) -> None:
    """Make the entries of folder *path* durable (a no-op where folders cannot be opened)."""
    if os.name == "nt":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
