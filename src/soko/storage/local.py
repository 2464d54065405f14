"""A BlobStore in a folder of the local file system.

Layout of the root: a :class:`~.folder.BlobFolder` (``blobs/``, ``packs/``, ``tmp/``) and::

    format_version            "2\\n": the store's format (see :mod:`.layout`)
    quarantine/<alg>/<hex>    blobs found not to match their digest, set aside (:mod:`.quarantine`)

Write order (the rules of :mod:`soko.storage.base` follow from it):

1. The bytes are copied into a file of ``tmp/`` whose name holds the pid, the thread id
   and random bits, so no two writers ever share one, and hashed as they are copied: the
   source is read once and the hash is of the bytes written (see :mod:`.copying`).
2. The digest is checked; on a mismatch the temp file is removed and nothing is stored.
3. ``os.replace`` moves the temp file to the blob's key. The rename is atomic, so a reader
   sees no blob or the whole blob; two writers of one blob both succeed, the second rename
   swapping in identical bytes.
4. No fsync here: :meth:`LocalBlobStore.sync` flushes every write since the last sync in one
   go (see :mod:`.durability`).

A writer killed between 1 and 3 leaves a file in ``tmp/`` that is never a blob;
:meth:`LocalBlobStore.remove_stale_temp` deletes such files once they are old enough.

:meth:`LocalBlobStore.put_files` stores a batch: blobs up to 1 MiB go into packs (one file,
one fsync and one index transaction per pack, see :mod:`.packs`), larger ones as above.
Every read looks for a loose blob first and then in the pack index.

This module imports only the standard library, :mod:`soko.core` and :mod:`soko.errors`.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import os
import stat as stat_module
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, cast

from soko.core.digests import Algorithm, Digest, Hasher, digest_batches
from soko.errors import DigestMismatchError, StoreError
from soko.storage import copying
from soko.storage.base import (
    BlobInfo,
    ComparingReader,
    blob_not_found,
    digest_mismatch,
    same_bytes,
)
from soko.storage.durability import unsynced_of
from soko.storage.folder import BLOBS, BlobFolder
from soko.storage.folder import O_BINARY as _O_BINARY
from soko.storage.layout import open_root, replace_into
from soko.storage.pack_writer import StagedPacks
from soko.storage.packs import MAX_PACKED, PACK_TARGET, CompactReport, SizedReads
from soko.storage.quarantine import Quarantine

_SMALL = 1024 * 1024
PACK_MIN_BLOBS = 32
"""A batch of fewer blobs is stored loose: a pack's fsync would cost more than it saves."""


class LocalBlobStore:
    """Blobs as files under *root*; see the module docstring for the layout and write order.

    Safe to share between threads, and between processes that open the same root.
    """

    def __init__(self, root: str | Path) -> None:
        self.folder = BlobFolder(os.fspath(root), pack_target=PACK_TARGET)
        self.root = self.folder.root
        self._tmp = self.folder.tmp
        open_root(self.root, self._tmp, self.folder.new_temp_name)
        # Shared by every instance on this root in this process, so that any of them can
        # sync what the others wrote.
        self._unsynced = unsynced_of(os.path.realpath(self.root))
        self.packs = self.folder.packs
        self._path = self.folder.path
        self._known_dirs = self.folder.known_dirs
        # Bound once: these run once per blob written.
        self._note_written = self._unsynced.note
        self.quarantine = Quarantine(self.root, loose_path=self._path, packs=self.packs)

    def __repr__(self) -> str:
        return f"LocalBlobStore({self.root!r})"

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
                )[1]
            return self._copy_file_in(source, st, digest, path)[1]
        finally:
            os.close(source)

    def put_new_file(self, path: str, algorithm: Algorithm) -> tuple[Digest, int, os.stat_result]:
        """Store the file at *path* under the digest of the bytes copied, in one pass: the
        copy is hashed as it is read back (see :mod:`.copying`). Returns that digest, the
        size and the file's stat when it was opened. Used to hash a file and store it at
        once, when the digest is not known beforehand."""
        source = os.open(path, os.O_RDONLY | _O_BINARY)
        try:
            st = os.fstat(source)
            digest, size = self._copy_file_in(source, st, algorithm, path)
        finally:
            os.close(source)
        return digest, size, st

    def _copy_file_in(
        self, source: int, st: os.stat_result, expected: Digest | Algorithm, path: str
    ) -> tuple[Digest, int]:
        """The kernel copy of an open regular file into the store, hashed as read back,
        its write-back to disk started chunk by chunk (see :func:`.copying.copy_file`)."""
        pipelined = st.st_size >= copying.PIPELINE_MIN
        return self._store_copied(
            expected,
            lambda fd, hasher: copying.copy_file(
                source, fd, hasher, pipelined=pipelined, write_back=True
            ),
            source_name=path,
        )

    def put_bytes(self, digest: Digest, data: bytes) -> None:
        """Store *data* as *digest*; when the blob exists, *data* is verified and compared
        with the stored copy all the same (see the contract)."""
        if digest.algorithm.digest_of(data) != digest.raw:
            raise digest_mismatch(digest, "bytes")
        stored = self._open_stored(digest)
        if stored is not None:
            with stored:
                same = same_bytes(stored, io.BytesIO(data))
            if self._settle(digest, same, _same_as_bytes(data), "bytes"):
                return
        self._write_bytes(digest, data)

    def put_stream(self, digest: Digest, stream: BinaryIO) -> int:
        """Store what *stream* yields until EOF as *digest*; returns the size.

        When the blob exists the stream is verified and compared with the stored copy as it
        is read (see the contract); it is written to a temp file all the same, dropped when
        the stored copy stays.
        """
        stored = self._open_stored(digest)
        if stored is None:
            return self._store_copied(
                digest,
                lambda fd, hasher: copying.copy_stream(
                    stream, fd, hasher, write_back=True, direct=True
                ),
                source_name="stream",
            )[1]
        with stored:
            reader = ComparingReader(stream, stored)
            return self._store_copied(
                digest,
                lambda fd, hasher: copying.copy_stream(cast(BinaryIO, reader), fd, hasher),
                source_name="stream",
                settle=lambda temp: self._settle(
                    digest, reader.same(), lambda copy: _same_as_file(copy, temp), "stream"
                ),
            )[1]

    def _open_stored(self, digest: Digest) -> BinaryIO | None:
        return self.folder.open_stored(digest)

    def _settle(
        self, digest: Digest, same: bool, matches: Callable[[BinaryIO], bool], source: str
    ) -> bool:
        """Decide a put of verified bytes for a blob that was stored: True when the stored
        copy stays (*same* bytes; it is refreshed, and only now, so that wrong bytes never
        keep an unreferenced blob from garbage collection), False when the caller is to
        store the bytes (the copy is gone meanwhile, or was damaged and is set aside).

        Bytes that hash to the digest but differ from an intact stored copy are other bytes
        with the same digest: DigestMismatchError, as for bytes that do not hash to it.
        *matches* compares a copy found after the damaged one was set aside.
        """
        if same:
            return self._existing_size(digest) is not None
        # Either the stored copy is damaged (a flipped bit no read found yet), or these are
        # other bytes with its digest: a copy that fails its digest goes to the quarantine.
        self.quarantine.set_aside(digest)
        stored = self._open_stored(digest)
        if stored is None:
            return False
        with stored:
            if matches(stored):
                return False  # an intact copy of these bytes is left: writing them is harmless
        raise digest_mismatch(digest, source)

    def put_files(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        contents: Mapping[Digest, bytes] | None = None,
    ) -> builtins.list[int]:
        """Store many files, each as its digest; returns their sizes in the order of *items*.

        Files up to :data:`~.packs.MAX_PACKED` go into packs, read once and verified on the
        way; larger ones are stored loose, as :meth:`put_file` does. *contents* holds the
        bytes of some of the files (read by the caller when it hashed them): those files
        are not read again, and their bytes are verified all the same. Blobs already
        packed are refreshed and not read. The batch's packs are durable when this returns.
        """
        held = contents or {}
        if len(items) < PACK_MIN_BLOBS:
            return [self._put_one(digest, path, held.get(digest)) for digest, path in items]
        packed = self.packs.touch(self.packs.present([d for d, _ in items]))
        sizes = [0] * len(items)
        with self.folder.packer() as writer:
            for index, (digest, path) in enumerate(items):
                if digest in packed or digest in writer:
                    continue
                data = held.get(digest)
                if data is None or len(data) > MAX_PACKED:
                    data = _read_small(path)
                if data is None:
                    sizes[index] = self.put_file(digest, path)
                    continue
                if digest.algorithm.digest_of(data) != digest.raw:
                    raise digest_mismatch(digest, path)
                writer.add(digest, data)
                sizes[index] = len(data)
        return sizes

    def put_blobs(self, blobs: Sequence[tuple[Digest, bytes]]) -> None:
        """Store blobs given as bytes, each verified; a batch of small ones goes into packs
        (durable when this returns), as :meth:`put_files` does."""
        if len(blobs) < PACK_MIN_BLOBS:
            for digest, data in blobs:
                self.put_bytes(digest, data)
            return
        small = {digest: data for digest, data in blobs if len(data) <= MAX_PACKED}
        # Every blob is verified, and compared with its stored copy, before any stored one
        # is refreshed (see the contract): wrong bytes must not keep an unreferenced blob
        # from garbage collection.
        for digest, data in small.items():
            if digest.algorithm.digest_of(data) != digest.raw:
                raise digest_mismatch(digest, "bytes")
        kept = set()
        for digest, copy in self._stored_copies(small).items():
            if copy == small[digest]:
                kept.add(digest)
            else:  # a damaged copy, set aside (the bytes are then stored), or refused
                self._settle(digest, False, _same_as_bytes(small[digest]), "bytes")
        packed = self.packs.touch(kept)
        kept = packed | {d for d in kept - packed if self._existing_size(d) is not None}
        with self.folder.packer() as writer:
            for digest, data in blobs:
                if len(data) > MAX_PACKED:
                    self.put_bytes(digest, data)
                elif digest not in kept and digest not in writer:
                    writer.add(digest, data)

    def put_hashed(
        self,
        algorithm: Algorithm,
        raws: Sequence[bytes],
        datas: Sequence[bytes],
        packs: StagedPacks,
    ) -> None:
        """Store blobs whose raw digests (of *algorithm*) the caller computed from these
        very bytes objects, as hashing a file does: they are not hashed again. Those the
        store lacks are staged into *packs* (durable and readable once it publishes
        them); those it holds go through :meth:`put_blobs`, compared with the stored copy
        and refreshed, as any put of a stored blob is.

        Whether a blob is stored costs one index query per 500 blobs and, for a blob not
        packed, an existence check only where its fan-out folder exists: a new store's
        first log makes no system call per blob here."""
        if len(raws) < PACK_MIN_BLOBS:  # stored loose, as any small batch is
            self.put_blobs([(Digest(algorithm, r), d) for r, d in zip(raws, datas, strict=True)])
            return
        packed = self.packs.present_raw(algorithm, sorted(set(raws)))
        fanouts = self._fanouts(algorithm)
        stored: builtins.list[tuple[Digest, bytes]] = []
        new_raws: builtins.list[bytes] = []
        new_datas: builtins.list[bytes] = []
        for raw, data in zip(raws, datas, strict=True):
            if (
                raw in packed
                or len(data) > MAX_PACKED
                or (
                    raw[:1].hex() in fanouts
                    and os.access(self._path(Digest(algorithm, raw)), os.F_OK)
                )
            ):
                stored.append((Digest(algorithm, raw), data))
            else:
                new_raws.append(raw)
                new_datas.append(data)
        if stored:
            self.put_blobs(stored)
        packs.add(algorithm, new_raws, new_datas)

    def staged_packs(self) -> StagedPacks:
        """A writer of staged packs for :meth:`put_hashed`."""
        return StagedPacks(self.packs)

    def _fanouts(self, algorithm: Algorithm) -> set[str]:
        """The fan-out folders of *algorithm*'s loose blobs: a blob whose folder is not
        among them has no loose copy, known without a system call. A folder made after
        this listing is missed, which makes a stored blob look absent: it is then stored
        again (a blob may be both loose and packed) or uploaded again, never lost."""
        try:
            return set(os.listdir(os.path.join(self.root, BLOBS, algorithm.key)))
        except FileNotFoundError:
            return set()

    def _stored_copies(self, digests: Collection[Digest]) -> dict[Digest, bytes]:
        """The stored bytes of those of *digests* the store holds: packed ones read one
        open per pack, then one open per digest not packed whose fan-out folder exists (a
        loose copy): a server's batch of new blobs makes no failing open per blob."""
        found = dict(self.packs.read_many(digests))
        fanouts = functools.cache(self._fanouts)
        for digest in digests:
            if digest in found:
                continue
            if digest.raw[:1].hex() in fanouts(digest.algorithm):
                try:
                    with open(self._path(digest), "rb") as reader:
                        found[digest] = reader.read()
                except FileNotFoundError:
                    continue
        return found

    def _put_one(self, digest: Digest, path: str, data: bytes | None) -> int:
        if data is None:
            return self.put_file(digest, path)
        try:
            self.put_bytes(digest, data)
        except DigestMismatchError:
            raise digest_mismatch(digest, path) from None
        return len(data)

    def _existing_size(self, digest: Digest) -> int | None:
        """The stored size if the blob exists, its mtime refreshed, else None.

        Refreshing the mtime restarts garbage collection's grace period for a blob that a
        new version is about to reference again.
        """
        final = self._path(digest)
        try:
            size = os.stat(final).st_size
        except FileNotFoundError:
            location = self.packs.locate([digest]).get(digest)
            if location is not None and self.packs.touch([digest]):
                return location.size
            return None
        except OSError as exc:
            raise StoreError(f"Cannot stat blob {digest}: {exc}") from exc
        with contextlib.suppress(OSError):
            os.utime(final)
        self._note_written(final)
        return size

    def _store_bytes(self, digest: Digest, data: bytes, *, source_name: str) -> None:
        if digest.algorithm.hasher(data).digest() != digest.raw:
            raise digest_mismatch(digest, source_name)
        self._write_bytes(digest, data)

    def _write_bytes(self, digest: Digest, data: bytes) -> None:
        """Write verified bytes to a temp file and move it into place."""
        try:
            fd, temp = self.folder.open_temp()
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
        self,
        expected: Digest | Algorithm,
        copy: Callable[[int, Hasher], int],
        *,
        source_name: str,
        settle: Callable[[str], bool] | None = None,
    ) -> tuple[Digest, int]:
        """Store what *copy* writes to a temp file (and feeds to the hasher); returns the
        digest and the size. *expected* is the digest the bytes must have, or only the
        algorithm when the digest is learnt from the copy (a blob stored already then
        keeps its file, refreshed, and the copy is dropped). *settle*, given the temp
        file's path once its bytes proved right, says whether the stored copy stays (the
        copy is then dropped)."""
        algorithm = expected if isinstance(expected, Algorithm) else expected.algorithm
        hasher = algorithm.hasher()
        try:
            fd, temp = self.folder.open_temp()
        except OSError as exc:
            raise StoreError(f"Cannot create a temp file in {self._tmp}: {exc}") from exc
        try:
            try:
                size = copy(fd, hasher)
            finally:
                os.close(fd)
            digest = Digest(algorithm, hasher.digest())
            if isinstance(expected, Digest) and digest != expected:
                raise digest_mismatch(expected, source_name)
            if isinstance(expected, Algorithm):
                stays = self._existing_size(digest) is not None
            else:
                stays = settle is not None and settle(temp)
            if stays:
                os.unlink(temp)
            else:
                self._move_into_place(temp, digest)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        return digest, size

    def _move_into_place(self, temp: str, digest: Digest) -> None:
        final = self._path(digest)
        try:
            replace_into(temp, final, self._known_dirs)
        except OSError as exc:
            raise StoreError(f"Cannot move blob {digest} into place: {exc}") from exc
        self._note_written(final)

    # -- durability ----------------------------------------------------------------------

    def sync(self) -> None:
        """Make every put that returned before this call durable.

        It also covers a put skipped because another process had just written the blob:
        that blob is flushed here too, so a version never relies on someone else's sync.
        """
        self._unsynced.sync()

    # -- reading -------------------------------------------------------------------------

    def exists(self, digest: Digest) -> bool:
        return self.folder.exists(digest)

    def missing(self, digests: Iterable[Digest]) -> set[Digest]:
        """Which of *digests* the store lacks: a batch at a time (:func:`digest_batches`:
        the raw digests of a manifest's columns, sorted), the pack index asked first, then
        one existence check per digest it does not hold. Only the answer is held whole."""
        absent: set[Digest] = set()
        found = []
        fanouts = functools.cache(self._fanouts)
        for batch in digest_batches(digests):
            raws = sorted(set(batch.raw_list()))
            packed = self.packs.present_raw(batch.algorithm, raws)
            algorithm = batch.algorithm
            listed = fanouts(algorithm)
            for raw in raws:
                if raw in packed:
                    continue
                digest = Digest(algorithm, raw)
                if raw[:1].hex() in listed:  # else no loose copy: no path, no system call
                    path = self._path(digest)
                    if os.access(path, os.F_OK):
                        found.append(path)
                        continue
                absent.add(digest)
        if found:
            # Another process may have written these and not synced yet: a commit that
            # counts on them flushes them too (packs are durable once indexed).
            self._unsynced.note_all(found)
        return absent

    def open(self, digest: Digest) -> BinaryIO:
        reader = self._open_stored(digest)
        if reader is None:
            raise blob_not_found(digest)
        return reader

    def read_bytes(self, digest: Digest) -> bytes:
        with self.open(digest) as stream:
            return stream.read()

    def read_packed(self, digests: Iterable[Digest]) -> Iterator[tuple[Digest, bytes]]:
        """The bytes (not verified) of those of *digests* that are packed, one open per
        pack, each read as it is asked for; the others are left out, for
        :meth:`local_path` to find."""
        return self.folder.read_packed(digests)

    def sizes(self, digests: Iterable[Digest]) -> dict[Digest, int]:
        """The stored size of each of *digests* the store holds (absent ones left out): the
        pack index in one query per 500 digests, then a stat per digest not packed. A
        blob stored both ways is given its packed size, which :meth:`read_packed` reads."""
        return self.sized_reads(digests).sizes

    def sized_reads(self, digests: Iterable[Digest]) -> SizedReads:
        """:meth:`sizes`, with the reader of the packed ones at the places found."""
        wanted = builtins.list(digests)
        located = self.packs.locate(wanted)
        found = {digest: location.size for digest, location in located.items()}
        for digest in wanted:
            if digest in found:
                continue
            try:
                found[digest] = os.stat(self._path(digest)).st_size
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(f"Cannot stat blob {digest}: {exc}") from exc
        return SizedReads(found, functools.partial(self.packs.read_many, located, located=located))

    def stat(self, digest: Digest) -> BlobInfo:
        """Size and last write; for a blob stored both loose and packed, the later write
        of the two (garbage collection's age must not miss a fresh copy)."""
        location = self.packs.locate([digest]).get(digest)
        try:
            st = os.stat(self._path(digest))
        except FileNotFoundError:
            if location is None:
                raise blob_not_found(digest) from None
            return BlobInfo(digest, location.size, location.written)
        written = st.st_mtime if location is None else max(st.st_mtime, location.written)
        return BlobInfo(digest, st.st_size, written)

    def local_path(self, digest: Digest) -> str | None:
        """The blob's file. Not checked: for a missing blob, opening it raises
        ``FileNotFoundError`` (one syscall fewer per file when materialising)."""
        return self._path(digest)

    def delete(self, digest: Digest) -> None:
        self.delete_many([digest])

    def delete_many(
        self, digests: Sequence[Digest], *, written_before: float | None = None
    ) -> None:
        """Delete each blob, loose or packed (one index transaction for all); with
        *written_before*, packed copies refreshed since then are kept."""
        self.folder.delete_many(digests, written_before=written_before)

    def list(self, algorithm: Algorithm | None = None) -> Iterator[BlobInfo]:
        """Every blob (of one algorithm, when given); files that are not blob keys are
        skipped, so a stray file never shows up as a blob."""
        return self.folder.list(None if algorithm is None else Algorithm.parse(algorithm))

    def compact(self, grace_seconds: float, *, dry_run: bool = False) -> CompactReport:
        """Reclaim the space of deleted packed blobs (see :meth:`.packs.Packs.compact`)."""
        return self.folder.compact(grace_seconds, dry_run=dry_run)

    def temp_files_older_than(self, seconds: float) -> builtins.list[str]:
        """Paths of files in ``tmp/`` left by killed writers (see :class:`.folder.BlobFolder`)."""
        return self.folder.temp_files_older_than(seconds)

    def remove_stale_temp(self, seconds: float) -> int:
        """Delete the files :meth:`temp_files_older_than` finds; returns how many went."""
        return self.folder.remove_stale_temp(seconds)


def _read_small(path: str) -> bytes | None:
    """The bytes of the regular file at *path* when it is small enough to pack, else None
    (the caller then stores it loose). Errors reading it are raised as they are."""
    fd = os.open(path, os.O_RDONLY | _O_BINARY)
    try:
        st = os.fstat(fd)
        if not stat_module.S_ISREG(st.st_mode) or st.st_size > MAX_PACKED:
            return None
        data = os.read(fd, st.st_size + 1)
        if len(data) > st.st_size:
            return None  # growing while read: the loose path copies and verifies it whole
        return data
    finally:
        os.close(fd)


def _same_as_bytes(data: bytes) -> Callable[[BinaryIO], bool]:
    return lambda reader: same_bytes(reader, io.BytesIO(data))


def _same_as_file(reader: BinaryIO, path: str) -> bool:
    with open(path, "rb") as written:
        return same_bytes(reader, written)
