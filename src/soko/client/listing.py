"""Listing the files of a folder added to an artifact, and naming the files that cannot be.

Links are followed, as W&B's ``add_dir`` follows them (``os.walk(followlinks=True)``): a
linked file is added with the bytes it points to, a linked folder is walked. Where W&B
walks a link back to a folder that contains it forty levels deep and then stops without a
word, a dangling link or an unreadable file fails with a bare ``OSError``, soko refuses
with a :class:`~soko.errors.ValidationError` naming the path, before anything is added.

Imports only the standard library and :mod:`soko.errors`.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Collection, Iterator

from soko.errors import SokoError, ValidationError

_Identity = tuple[int, int]


def walk_files(root: str, prefix: str) -> tuple[list[str], list[str]]:
    """Every file below *root*, following links: (local paths, artifact paths).

    Relative paths are built by concatenation while walking; ``os.path.relpath`` per file
    costs more than hashing a small file. One ``stat`` per folder, to know a folder that
    a link leads back into (a loop); none per file.
    """
    physical: list[str] = []
    logical: list[str] = []
    _walk(root, prefix, physical, logical)
    return physical, logical


def walk_names(root: str, prefix: str) -> list[str]:
    """The artifact paths of :func:`walk_files` alone: the local path of each is
    :func:`folder_base` of *root* + its path less *prefix* (with the local separator),
    as ``os.scandir`` joins them, so a million of them need not be kept."""
    logical: list[str] = []
    _walk(root, prefix, None, logical)
    return logical


def folder_base(root: str) -> str:
    """*root* as the start of the paths ``os.scandir`` gives for what is below it."""
    if root.endswith(os.sep) or (os.altsep is not None and root.endswith(os.altsep)):
        return root
    return root + os.sep


def _walk(root: str, prefix: str, physical: list[str] | None, logical: list[str]) -> None:
    pending: list[tuple[str, str, frozenset[_Identity]]] = [(root, prefix, frozenset())]
    while pending:
        folder, relative, ancestors = pending.pop()
        identity = _identity(folder)
        if identity in ancestors:
            raise ValidationError(
                f"Cannot add {folder!r}: it is a symbolic link to {os.path.realpath(folder)!r}, "
                "a folder that contains it, so the folder never ends (a link loop)."
            )
        below = ancestors | {identity}
        folders: list[os.DirEntry[str]] = []
        for item in _listing(folder):
            try:
                if item.is_dir(follow_symlinks=True):
                    folders.append(item)
                elif item.is_file(follow_symlinks=True):
                    if physical is not None:
                        physical.append(item.path)
                    logical.append(f"{relative}{item.name}")
                elif item.is_symlink():
                    os.stat(item.path)  # a dangling link raises; a link to a socket is skipped
            except OSError as exc:
                raise _unusable(item.path, exc) from None
        # Folders in the order of their inodes (the last pushed is walked first): the files
        # of folders made one after another have neighbouring inodes, so the files hashed
        # together share the stat cache's rows (a block of inodes each), read once.
        folders.sort(key=_inode, reverse=True)
        pending.extend((item.path, f"{relative}{item.name}/", below) for item in folders)


def _inode(item: os.DirEntry[str]) -> int:
    try:
        return item.inode()
    except OSError:
        return 0  # only the order of the walk depends on it


def _identity(folder: str) -> _Identity:
    try:
        found = os.stat(folder)
    except OSError as exc:
        raise _unusable(folder, exc) from None
    return found.st_dev, found.st_ino


def _listing(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as listing:
            return list(listing)
    except OSError as exc:
        raise _unusable(folder, exc) from None


def _unusable(path: str, exc: OSError) -> ValidationError:
    if exc.errno == errno.ELOOP:
        return ValidationError(
            f"Cannot add {path!r}: it is a symbolic link that leads back to itself (a link loop)."
        )
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return ValidationError(
            f"Cannot add {path!r}: it is a symbolic link to {os.readlink(path)!r}, "
            "which does not exist."
        )
    return ValidationError(f"Cannot add {path!r}: {exc.strerror or exc}.")


@contextlib.contextmanager
def naming_unreadable(paths: Collection[str]) -> Iterator[None]:
    """Turn an ``OSError`` about one of *paths* (files being added and hashed) into a
    ValidationError naming it: unreadable (EACCES), or removed meanwhile. Errors about
    other files (the store's) pass unchanged."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, SokoError) or exc.filename is None or exc.filename not in paths:
            raise
        raise _unusable(exc.filename, exc) from exc
