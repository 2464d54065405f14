"""The quarantine of a local store: blobs found not to match their digest, set aside.

Layout under the store root::

    quarantine/<alg>/<hex>    the bytes of a blob that failed its digest when it was read

A stored blob whose bytes no longer hash to its digest (a flipped bit on disk) is found
when something reads it whole: a download from the embedded store, ``soko verify``, the
server loading a manifest. It is moved here at once, so that the store reports it missing
from then on: the next log of the intact bytes stores them again (the store only checks
that a blob is present, never re-reads it), and ``soko verify --repair`` may restore it
from another intact copy. A loose blob is renamed (cheap, and its bytes stay for a person
to inspect); a packed blob has its bytes copied here and its index row deleted, and the
pack, which is never modified, loses those bytes at its next compaction.

A copy is checked again once it is here, and one that matches after all (a read error that
did not last, or a writer that stored the intact bytes again meanwhile) goes back: a blob
is never set aside because of a misread.

Nothing reads these files. ``soko gc`` removes one once its blob is stored again or no
live version needs it, and it has been here longer than gc's grace period (a copy being
checked again may be on its way back); a user may delete them at any time.

This module imports only the standard library, :mod:`soko.core`, :mod:`soko.errors` and
the storage modules it works with.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator

from soko.core.digests import Algorithm, Digest, digest_batches
from soko.errors import ValidationError
from soko.storage.copying import write_parts
from soko.storage.packs import Packs

QUARANTINE = "quarantine"
_CHUNK = 4 * 1024 * 1024


class Quarantine:
    """The ``quarantine/`` folder of the store at *root*, whose loose blob of a digest
    *loose_path* names and whose packed blobs *packs* holds. Safe across threads and
    processes: every step is a rename, an unlink or one index transaction."""

    def __init__(self, root: str, *, loose_path: Callable[[Digest], str], packs: Packs) -> None:
        self.folder = os.path.join(root, QUARANTINE)
        self._loose_path = loose_path
        self._packs = packs

    def path(self, digest: Digest) -> str:
        """Where the set-aside bytes of *digest* are kept."""
        return os.path.join(self.folder, digest.algorithm.key, digest.hex)

    def set_aside(self, digest: Digest) -> bool:
        """Move every stored copy of *digest* that fails its digest here (a loose file, a
        packed one, or both); True when one was moved. A copy that matches is kept."""
        loose = self._set_aside_loose(digest)
        packed = self._set_aside_packed(digest)
        return loose or packed

    def _set_aside_loose(self, digest: Digest) -> bool:
        stored = self._loose_path(digest)
        kept = self.path(digest)
        # Moved before it is checked again, so that a writer storing the intact bytes
        # meanwhile finds the blob missing and writes a new file, never this one.
        if not _move(stored, kept):
            return False
        if _file_matches(kept, digest):
            # Misread before: back into the store (replacing a writer's copy of the same
            # bytes, if one came meanwhile, is harmless).
            os.replace(kept, stored)
            return False
        return True

    def _set_aside_packed(self, digest: Digest) -> bool:
        location = self._packs.locate([digest]).get(digest)
        if location is None:
            return False
        try:
            data: bytes | None = self._packs.read_located(location)
        except FileNotFoundError:
            data = None  # the pack is gone: the row points at nothing
        if data is not None and digest.algorithm.digest_of(data) == digest.raw:
            return False
        if not self._packs.forget(digest, location):
            return False  # moved or set aside by someone else meanwhile
        if data:
            self._keep(digest, data)
        return True

    def _keep(self, digest: Digest, data: bytes) -> None:
        kept = self.path(digest)
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        temp = f"{kept}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        try:
            write_parts(fd, (data,))
        finally:
            os.close(fd)
        os.replace(temp, kept)

    def holds(self, digests: Iterable[Digest]) -> set[Digest]:
        """Those of *digests* that have a copy here: one listing of the folder of each
        algorithm asked about (which fails at once when nothing of it was ever set aside),
        not a stat per digest, so that asking for a manifest of 20,000 blobs is cheap and
        unrelated copies here cost a name each. With nothing set aside, *digests* is not
        even iterated: a caller may hand a lazy collection of a million."""
        if self.is_empty():
            return set()
        names: dict[Algorithm, set[str]] = {}
        found: set[Digest] = set()
        for batch in digest_batches(digests):
            held = names.get(batch.algorithm)
            if held is None:
                folder = os.path.join(self.folder, batch.algorithm.key)
                held = names[batch.algorithm] = {entry.name for entry in _scandir(folder)}
            if held:
                found.update(digest for digest in batch if digest.hex in held)
        return found

    def is_empty(self) -> bool:
        """Whether nothing is set aside: a few directory reads, usually one failing."""
        return next(self.digests(), None) is None

    def digests(self, *, set_aside_before: float | None = None) -> Iterator[Digest]:
        """The digest of every copy here; other files are skipped. With *set_aside_before*
        (seconds since the epoch), only copies that came here before then.

        A loose blob keeps its modification time when it is renamed here, but the rename
        sets its change time: the later of the two is when it came.
        """
        for alg_dir in _scandir(self.folder):
            try:
                algorithm = Algorithm.parse(alg_dir.name)
            except ValidationError:
                continue
            for entry in _scandir(alg_dir.path):
                try:
                    digest = Digest.from_hex(entry.name, algorithm)
                except ValidationError:
                    continue  # a temp file being written, or a stray
                if entry.name != digest.hex:
                    continue
                if set_aside_before is not None:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # moved back or removed meanwhile
                    if max(st.st_mtime, st.st_ctime) >= set_aside_before:
                        continue
                yield digest

    def discard(self, digests: Iterable[Digest]) -> int:
        """Delete the copies of *digests*; returns how many there were."""
        removed = 0
        for digest in digests:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(digest))
                removed += 1
        return removed


def _move(source: str, target: str) -> bool:
    """Rename *source* to *target*, making its folder if need be; False when there is no
    *source* (the common case: the blob is packed, or set aside already)."""
    try:
        os.replace(source, target)
    except FileNotFoundError:
        if not os.path.lexists(source):
            return False
        os.makedirs(os.path.dirname(target), exist_ok=True)
        try:
            os.replace(source, target)
        except FileNotFoundError:
            return False
    return True


def _file_matches(path: str, digest: Digest) -> bool:
    hasher = digest.algorithm.hasher()
    try:
        with open(path, "rb") as reader:
            while chunk := reader.read(_CHUNK):
                hasher.update(chunk)
    except OSError:
        return False  # unreadable: as damaged as a wrong byte
    return hasher.digest() == digest.raw


def _scandir(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
