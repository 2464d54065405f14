"""Putting a blob's bytes at a path in a download root, verified, atomically.

The file is written under a temporary name beside its destination and renamed into place,
so a reader never sees half a file. ``copy`` hashes while copying (one read); ``reflink``
clones the extents (no data written) and then hashes the clone; ``hardlink`` and
``symlink`` share the store's file and are used only when asked for (SOKO_LINK), since a
user editing the result would edit the stored blob.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Callable, Iterable

from soko.core.digests import Digest
from soko.errors import CorruptBlobError, DigestMismatchError
from soko.storage import copying

_FICLONE = 0x40049409
_CHUNK = 8 * 1024 * 1024
_SMALL = 1024 * 1024
_reflink_works: dict[int, bool] = {}


def _temp_beside(dest: str) -> str:
    folder, name = os.path.split(dest)
    return os.path.join(folder, f".{name}.soko-{uuid.uuid4().hex[:12]}.tmp")


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def write_new(path: str, data: bytes) -> None:
    """Create the file *path* (it must not exist) holding *data*."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        _write_fd(fd, data)
    finally:
        os.close(fd)


def stream_new(
    path: str,
    digest: Digest,
    chunks: Iterable[bytes],
    *,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Create the file *path* from *chunks* (a download), hashing them; returns the size.
    Bytes that do not hash to *digest* raise DigestMismatchError and the file is removed."""
    hasher = digest.algorithm.hasher()
    size = 0
    try:
        with open(path, "xb") as out:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
                if on_chunk:
                    on_chunk(len(chunk))
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


def _copy_hashing(src: str, tmp: str, digest: Digest) -> None:
    if os.path.getsize(src) <= _SMALL:
        with open(src, "rb", buffering=0) as reader:
            data = reader.read()
        if digest.algorithm.hasher(data).digest() != digest.raw:
            raise CorruptBlobError(f"Blob {digest} does not match its digest (read from {src}).")
        write_new(tmp, data)
        return
    # The kernel copies (copy_file_range) and each chunk is hashed as read back from the
    # new file, so what is verified is what the root receives, with no per-file buffer.
    hasher = digest.algorithm.hasher()
    source = os.open(src, os.O_RDONLY)
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
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
    return hasher.digest() == digest.raw


def _try_reflink(src: str, tmp: str) -> bool:
    device = os.stat(src).st_dev
    if _reflink_works.get(device) is False:
        return False
    try:
        with open(src, "rb") as reader, open(tmp, "wb") as writer:
            fcntl.ioctl(writer.fileno(), _FICLONE, reader.fileno())
    except OSError:
        _reflink_works[device] = False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        return False
    _reflink_works[device] = True
    return True


def materialize(
    src: str, dest: str, digest: Digest, *, mode: str = "auto", make_dirs: bool = True
) -> None:
    """Make *dest* hold the blob stored at *src*, verified against *digest*.

    *make_dirs* False skips creating the parent folder (the caller made them all at once).
    """
    if make_dirs:
        os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    tmp = _temp_beside(dest)
    try:
        if mode in ("hardlink", "symlink"):
            if not _hash_path(src, digest):
                raise CorruptBlobError(f"Blob {digest} does not match its digest ({src}).")
            if mode == "hardlink":
                os.link(src, tmp)
            else:
                os.symlink(os.path.abspath(src), tmp)
        elif mode in ("reflink", "auto") and _try_reflink(src, tmp):
            if not _hash_path(tmp, digest):
                raise CorruptBlobError(f"Blob {digest} does not match its digest ({src}).")
        else:
            _copy_hashing(src, tmp, digest)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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
            _write_fd(fd, data)
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
    tmp = _temp_beside(dest)
    try:
        write_new(tmp, data)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
