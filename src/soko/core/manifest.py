"""Manifests: the entries of a version, and their W&B manifest-v1 JSON form.

A :class:`ManifestBuilder` collects entries while a draft is edited; :meth:`build` freezes
them into a :class:`Manifest`, whose entries are kept in path order so that the same
content always encodes to the same bytes and the same version digest.

JSON (W&B manifest v1)::

    {"version": 1, "storagePolicy": "wandb-storage-policy-v1",
     "storagePolicyConfig": {"storageLayout": "V2"},
     "contents": {path: {"digest", "ref"?, "birthArtifactID"?, "size"?, "extra"?}}}

Entry keys appear in that order, as W&B's serialiser writes them. Pure: no I/O.
"""

from __future__ import annotations

import io
import itertools
import json
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from soko.core.digests import (
    VERSION_DIGEST_HEADER,
    Algorithm,
    BatchedDigests,
    Digest,
    digest_batches,
    parse_digest,
    version_digest,
)
from soko.core.entries import (
    ALG_EXTRA_KEY,
    RAW,
    Columns,
    Entry,
    EntryTable,
    algorithm_of,
)
from soko.core.manifest_json import append_json, check_version, parse_streaming
from soko.errors import CorruptBlobError, ValidationError

__all__ = [
    "ALG_EXTRA_KEY",
    "DEFAULT_POLICY_CONFIG",
    "MANIFEST_ALGORITHM",
    "STORAGE_POLICY",
    "Entry",
    "EntryTable",
    "Manifest",
    "ManifestBuilder",
    "ManifestRef",
]

STORAGE_POLICY = "wandb-storage-policy-v1"
DEFAULT_POLICY_CONFIG: Mapping[str, Any] = MappingProxyType({"storageLayout": "V2"})
_ENCODE_SLICE = 8192


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Manifest:
    """An immutable, path-ordered set of entries with the digest algorithm of its version."""

    entries: Mapping[str, Entry]
    algorithm: Algorithm = Algorithm.MD5
    storage_policy_config: Mapping[str, Any] = field(default_factory=lambda: DEFAULT_POLICY_CONFIG)

    @classmethod
    def of(
        cls,
        entries: Iterable[Entry],
        algorithm: Algorithm = Algorithm.MD5,
        storage_policy_config: Mapping[str, Any] = DEFAULT_POLICY_CONFIG,
    ) -> Manifest:
        ordered = sorted(entries, key=lambda e: e.path)
        columns = Columns()
        previous = None
        for entry in ordered:
            if entry.path == previous:
                raise ValidationError("A manifest cannot hold the same path twice.")
            previous = entry.path
            columns.append_entry(entry)
        return cls(EntryTable.of_sorted(columns), algorithm, storage_policy_config)

    @property
    def table(self) -> EntryTable | None:
        """The entries as columns, when they are kept so (always, unless a mapping of
        entries was given to the constructor)."""
        entries = self.entries
        return entries if isinstance(entries, EntryTable) else None

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, path: str) -> Entry | None:
        return self.entries.get(path)

    @property
    def size(self) -> int:
        """Bytes of every entry with a known size, references included (as W&B counts)."""
        table = self.table
        if table is not None:
            return sum(size for size in table.columns.sizes if size > 0)
        return sum(e.size for e in self.entries.values() if e.size)

    def digest(self) -> str:
        """The version digest (hex) over the entries' paths and digests, as W&B computes it."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        # Asked by the twin check and again by the commit: computed once per manifest.
        table = self.table
        if table is not None:
            # Paths in order already: the lines are hashed a slice at a time.
            hasher = self.algorithm.hasher(VERSION_DIGEST_HEADER)
            columns = table.columns
            for start in range(0, len(columns), _ENCODE_SLICE):
                stop = min(len(columns), start + _ENCODE_SLICE)
                hasher.update(columns.path_digest_lines(start, stop))
            return hasher.hexdigest()
        return version_digest(((e.path, e.digest) for e in self.entries.values()), self.algorithm)

    def blob_digests(self) -> frozenset[Digest]:
        """The distinct content digests of every stored (non-reference) entry."""
        return self._blob_digests

    def stored_blobs(self) -> BatchedDigests:
        """The content digests of the stored entries, made a batch at a time whenever they
        are read (a digest may come twice): what a question about every blob of a large
        manifest reads, instead of :meth:`blob_digests` (an object and a set slot each,
        about 140 bytes a blob, held)."""
        table = self.table
        if table is None or "_blob_digests" in self.__dict__:
            return BatchedDigests(lambda: digest_batches(self.blob_digests()))
        return BatchedDigests(table.columns.stored_batches)

    def stored_entries(self) -> Iterator[tuple[str, Digest, int | None]]:
        """The path, content digest and size of each stored (non-reference) entry, in path
        order, made as they are read: a check of every entry of a large manifest walks
        them a slice at a time instead of holding :meth:`blob_sizes` (about 140 bytes a
        blob, kept with the manifest)."""
        table = self.table
        if table is not None:
            return _stored_rows(table.columns)
        return ((e.path, e.blob_digest(), e.size) for e in self.entries.values() if e.ref is None)

    def paths(self) -> Iterator[str]:
        """The entries' paths, in path order (no entry made)."""
        table = self.table
        return iter(table.columns.paths if table is not None else self.entries)

    def know_blob_digests(self, digests: frozenset[Digest]) -> None:
        """Give the parsed digests of the stored entries, from whoever made them (a draft
        that hashed the files), so that they are not parsed back from base64."""
        self.__dict__["_blob_digests"] = digests

    @cached_property
    def _blob_digests(self) -> frozenset[Digest]:
        # Parsed once per manifest: upload, the missing-blob check and the commit all ask.
        table = self.table
        if table is not None and "_blob_sizes" not in self.__dict__:
            # Straight from the raw column: no dict of sizes is kept beside the set.
            return frozenset(digest for digest, _ in _stored_digests(table.columns))
        return frozenset(self.blob_sizes())

    def blob_sizes(self) -> Mapping[Digest, int | None]:
        """The size each stored (non-reference) entry's content digest was logged with
        (computed once per manifest and shared: read-only)."""
        return self._blob_sizes

    @cached_property
    def _blob_sizes(self) -> dict[Digest, int | None]:
        table = self.table
        if table is not None:
            return _blob_sizes_of(table.columns)
        return stored_blob_sizes(self.entries.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": dict(self.storage_policy_config),
            "contents": {path: entry.to_json() for path, entry in self.entries.items()},
        }

    def to_bytes(self) -> bytes:
        """Canonical encoding: the same manifest always gives the same bytes.

        The bytes of ``json.dumps(self.to_json())``, written a slice of entries at a time
        into one buffer whose bytes getvalue() hands over without a copy: the whole
        document as dicts would cost about 500 bytes per entry at once."""
        out = io.BytesIO()
        for piece in self.pieces():
            out.write(piece)
        return out.getvalue()

    def pieces(self, slice_entries: int = _ENCODE_SLICE) -> Iterator[bytes]:
        """The bytes of :meth:`to_bytes` in pieces, made as they are asked for: the head
        (up to the ``{`` of ``contents``), then each slice of *slice_entries* entries
        (``"path":{...},...``), a ``,`` between two slices, and the closing ``}}``. A
        large manifest is stored (hashed, then written) from them without being held
        whole."""
        head = {
            "version": 1,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": dict(self.storage_policy_config),
        }
        text = _dumps(head)
        yield f'{text[:-1]},"contents":{{'.encode()
        table = self.table
        if table is not None:
            columns = table.columns
            for start in range(0, len(columns), slice_entries):
                if start:
                    yield b","
                stop = min(len(columns), start + slice_entries)
                yield columns.rows_json(range(start, stop)).encode()
        else:
            entries = iter(self.entries.items())
            first = True
            while chunk := list(itertools.islice(entries, slice_entries)):
                if not first:
                    yield b","
                first = False
                yield _dumps({path: entry.to_json() for path, entry in chunk})[1:-1].encode()
        yield b"}}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any], algorithm: Algorithm | None = None) -> Manifest:
        check_version(data)
        contents = data.get("contents")
        if not isinstance(contents, Mapping):
            raise ValidationError("Manifest has no 'contents' object.")
        columns = Columns()
        for path, value in contents.items():
            append_json(columns, path, value)
        return cls._of_document(columns, data, algorithm)

    @classmethod
    def _of_document(
        cls, columns: Columns, data: Mapping[str, Any], algorithm: Algorithm | None
    ) -> Manifest:
        config = data.get("storagePolicyConfig") or DEFAULT_POLICY_CONFIG
        if not isinstance(config, Mapping):
            raise ValidationError("Manifest 'storagePolicyConfig' must be an object.")
        table = EntryTable.of_rows(columns)
        if algorithm is None:
            algorithm = _infer_algorithm(table.columns)
        return cls(table, algorithm, MappingProxyType(dict(config)))

    @classmethod
    def from_bytes(cls, raw: bytes | str, algorithm: Algorithm | None = None) -> Manifest:
        """The manifest of document *raw*, its bytes or their text (a caller that decoded
        them lets the bytes go before the parse)."""
        streamed = parse_streaming(raw)
        if streamed is not None:
            header, columns = streamed
            return cls._of_document(columns, header, algorithm)
        # Anything the streaming parser does not take (bad JSON included) is parsed whole,
        # which gives the error its message.
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"Manifest is not valid JSON: {exc}") from None
        return cls.from_json(data, algorithm)


MANIFEST_ALGORITHM = Algorithm.XXH128
"""The digest of a manifest blob, whatever the digests of its entries."""


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """Where a version's manifest is stored: a blob of its canonical JSON, named
    ``xxh128:<hex>`` (a version's ``manifest_blob``).

    The one place that knows that name: :meth:`encode` is how a manifest becomes a blob
    (the embedded store and the HTTP client write it so), :meth:`load` how a blob becomes
    a manifest again, always checked against the digest (a flipped bit in a path still
    parses, and would put one file's bytes under another's name).
    """

    digest: Digest

    def __post_init__(self) -> None:
        if self.digest.algorithm is not MANIFEST_ALGORITHM:
            raise ValidationError(f"manifest_blob must be an {MANIFEST_ALGORITHM.key} digest.")

    @classmethod
    def parse(cls, key: str) -> ManifestRef:
        """The ref a version's ``manifest_blob`` names; ValidationError for anything else."""
        return cls(parse_digest(key))

    @classmethod
    def encode(cls, manifest: Manifest) -> tuple[ManifestRef, bytes]:
        """The blob that stores *manifest*: its ref and its bytes."""
        raw = manifest.to_bytes()
        return cls(Digest.of_bytes(raw, MANIFEST_ALGORITHM)), raw

    @property
    def key(self) -> str:
        """``xxh128:<hex>``, as a version row and the wire name it."""
        return str(self.digest)

    def __str__(self) -> str:
        return self.key

    def check(self, raw: bytes) -> None:
        """Raise CorruptBlobError unless *raw* hashes to this ref."""
        digest = self.digest
        if digest.algorithm.digest_of(raw) != digest.raw:
            actual = Digest.of_bytes(raw, digest.algorithm)
            raise CorruptBlobError(
                f"The manifest blob {digest} does not match its digest (its bytes hash to "
                f"{actual})."
            )

    def load(self, raw: bytes, algorithm: Algorithm | None = None) -> Manifest:
        """The manifest stored as *raw*, once :meth:`check` has found that they match:
        every manifest read from a store or a cache is loaded here."""
        self.check(raw)
        return Manifest.from_bytes(raw, algorithm)


def _infer_algorithm(columns: Columns) -> Algorithm:
    """A manifest's algorithm when it is not stored beside it: XXH128 if any file says so."""
    xxh = {i for i, extra in enumerate(columns.extras) if algorithm_of(extra) is Algorithm.XXH128}
    if xxh:
        refs = columns.refs
        for row, extra_id in enumerate(columns.extra_ids):
            if extra_id in xxh and row not in refs:
                return Algorithm.XXH128
    return Algorithm.MD5


def stored_blob_sizes(entries: Iterable[Entry]) -> dict[Digest, int | None]:
    """The content digest of each stored (non-reference) entry of *entries*, with the
    size the entry gives it."""
    # The algorithm is parsed once per distinct extra.alg, not once per entry.
    algorithms: dict[Any, Algorithm] = {}
    sizes: dict[Digest, int | None] = {}
    for e in entries:
        if e.ref is None:
            alg = e.extra.get(ALG_EXTRA_KEY)
            alg = alg if isinstance(alg, str) else None  # e.algorithm: MD5 then
            algorithm = algorithms.get(alg)
            if algorithm is None:
                algorithm = algorithms[alg] = e.algorithm
            sizes[Digest.from_b64(e.digest, algorithm)] = e.size
    return sizes


def _blob_sizes_of(columns: Columns) -> dict[Digest, int | None]:
    return dict(_stored_digests(columns))


_WINDOW = 65_536


def _in_digest_order(columns: Columns, rows: Iterable[int]) -> Iterator[int]:
    """*rows* a window of 65,536 at a time, each window in the order of the first byte of
    the rows' digests (rows whose digest is kept as text last), the order given within
    a byte. A thousand consecutive rows then span a sixty-fourth of the digests, while the
    files read stay those of one window (a few folders, not all of them)."""
    raw, texts = columns.raw, columns.texts

    def first_byte(row: int) -> int:
        return 256 if texts and row in texts else raw[row * RAW]

    rows = iter(rows)
    while window := list(itertools.islice(rows, _WINDOW)):
        window.sort(key=first_byte)
        yield from window


def _stored_rows(columns: Columns) -> Iterator[tuple[str, Digest, int | None]]:
    """The path, content digest and size of each stored (non-reference) row."""
    paths = columns.paths
    rows = zip(_stored_row_numbers(columns), _stored_digests(columns), strict=True)
    for row, (digest, size) in rows:
        yield paths[row], digest, size


def _stored_row_numbers(columns: Columns) -> Iterator[int]:
    refs = columns.refs
    return (row for row in range(len(columns)) if not (refs and row in refs))


def _stored_digests(columns: Columns) -> Iterator[tuple[Digest, int | None]]:
    """The content digest and size of each stored (non-reference) row."""
    algorithms = [algorithm_of(extra) for extra in columns.extras]
    raw, sizes, extra_ids, texts, refs = (
        columns.raw,
        columns.sizes,
        columns.extra_ids,
        columns.texts,
        columns.refs,
    )
    for row in range(len(columns)):
        if refs and row in refs:
            continue
        algorithm = algorithms[extra_ids[row]]
        if texts and row in texts:
            digest = Digest.from_b64(texts[row], algorithm)
        else:
            digest = Digest(algorithm, bytes(raw[row * RAW : row * RAW + RAW]))
        size = sizes[row]
        yield digest, None if size < 0 else size


class ManifestBuilder:
    """The mutable set of entries of a draft, kept as :class:`Columns` (a row per entry
    added; a path maps to its current row) so that a million files cost no million
    :class:`Entry` objects; entries are made when asked for.

    Adding a path that exists with another digest is refused unless ``overwrite`` is set;
    adding it again with the same digest replaces the entry (W&B's rule).

    Each row carries an *origin*, a number the caller gives (the draft's: which local file
    or folder a stored entry came from); 0 when none was given.
    """

    def __init__(self, algorithm: Algorithm = Algorithm.MD5, entries: Iterable[Entry] = ()):
        self.algorithm = algorithm
        self._columns = Columns()
        self._rows: dict[str, int] = {}
        self._origins = array("I")
        for entry in entries:
            self._put(entry, 0)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, path: object) -> bool:
        return path in self._rows

    def __iter__(self) -> Iterator[Entry]:
        return map(self._columns.entry, list(self._rows.values()))

    def get(self, path: str) -> Entry | None:
        row = self._rows.get(path)
        return None if row is None else self._columns.entry(row)

    def origin(self, path: str) -> int:
        """The origin of the entry at *path*; 0 when it has none (or there is none)."""
        row = self._rows.get(path)
        return 0 if row is None else self._origins[row]

    def origins_in_use(self) -> set[int]:
        """The origins of the entries there are now (0 among them if any has none)."""
        return set(map(self._origins.__getitem__, self._rows.values()))

    def origins(self, *, by_digest: bool = False) -> Iterator[tuple[str, int, Digest, int]]:
        """(path, origin, content digest, size) of every stored entry with an origin, in
        the order added, or with *by_digest* a window of 65,536 at a time in the order of
        their digests' first bytes: a server's indexes of blobs are keyed by digest, and a
        batch of blobs uploaded in that order lands on a sixty-fourth of their pages, where
        blobs in the order of their files land anywhere."""
        columns, origins = self._columns, self._origins
        algorithms = [algorithm_of(extra) for extra in columns.extras]
        rows: Iterable[int] = self._rows.values()
        if by_digest:
            rows = _in_digest_order(columns, (row for row in rows if origins[row]))
        paths = columns.paths
        for row in rows:
            origin = origins[row]
            if origin:
                path = paths[row]
                raw = columns.raw_digest(row)
                algorithm = algorithms[columns.extra_ids[row]]
                digest = (
                    Digest.from_b64(columns.texts[row], algorithm)
                    if raw is None
                    else Digest(algorithm, raw)
                )
                yield path, origin, digest, max(0, columns.sizes[row])

    def _put(self, entry: Entry, origin: int) -> None:
        self._rows[entry.path] = self._columns.append_entry(entry)
        self._origins.append(origin)

    def _refused(self, path: str) -> ValidationError:
        return ValidationError(
            f"Cannot add the same path twice with different content: {path!r} "
            "(pass overwrite=True to replace it)"
        )

    def check_add(self, entry: Entry, *, overwrite: bool = False) -> None:
        """Raise if :meth:`add` would refuse *entry*; changes nothing."""
        row = self._rows.get(entry.path)
        if row is not None and not overwrite and self._columns.digest_text(row) != entry.digest:
            raise self._refused(entry.path)

    def add(self, entry: Entry, *, overwrite: bool = False, origin: int = 0) -> Entry:
        self.check_add(entry, overwrite=overwrite)
        self._put(entry, origin)
        return entry

    def check_all(self, entries: Iterable[Entry], *, overwrite: bool = False) -> None:
        """Raise if :meth:`add_all` would refuse *entries*; changes nothing."""
        self._merged(list(entries), overwrite=overwrite)

    def add_all(self, entries: Iterable[Entry], *, overwrite: bool = False) -> list[Entry]:
        """Add every entry or, when any would be refused, none."""
        batch = list(entries)
        for entry in self._merged(batch, overwrite=overwrite).values():
            self._put(entry, 0)
        return batch

    def _merged(self, batch: list[Entry], *, overwrite: bool) -> dict[str, Entry]:
        staged: dict[str, Entry] = {}
        for entry in batch:
            previous = staged.get(entry.path)
            digest = previous.digest if previous is not None else None
            if digest is None:
                row = self._rows.get(entry.path)
                digest = None if row is None else self._columns.digest_text(row)
            if digest is not None and not overwrite and digest != entry.digest:
                raise self._refused(entry.path)
            staged[entry.path] = entry
        return staged

    def add_stored(
        self,
        paths: Sequence[str],
        raws: bytes | bytearray,
        sizes: Sequence[int],
        *,
        extra: Mapping[str, Any],
        overwrite: bool,
        origin: int = 0,
    ) -> None:
        """Add stored files by their raw digests (``raws``: 16 bytes each, back to back),
        all with *extra*: all of them or, when any would be refused, none."""
        columns, rows = self._columns, self._rows
        first = len(columns)
        if not rows:
            # The first files added (a folder walked into a new draft): the map of their
            # rows tells whether any path came twice; when none did, none is refused.
            numbered = dict(zip(paths, range(first, first + len(paths)), strict=True))
            if len(numbered) == len(paths):
                columns.extend_stored(paths, raws, sizes, columns.extra_id(extra))
                self._rows = numbered
                self._origins.extend(array("I", [origin]) * len(paths))
                return
            del numbered
        with memoryview(raws) as view:
            if not overwrite and len(set(paths)) == len(paths):
                # Distinct paths (a folder walked): each is checked against the rows only,
                # without a dict of every path to its number (about 70 bytes a path, held
                # while the draft is at its largest).
                if rows:
                    for i, path in enumerate(paths):
                        row = rows.get(path)
                        if row is not None and columns.raw_digest(row) != bytes(
                            view[i * RAW : i * RAW + RAW]
                        ):
                            raise self._refused(path)
            elif not overwrite:
                staged: dict[str, int] = {}
                for i, path in enumerate(paths):
                    j = staged.get(path)
                    row = rows.get(path) if j is None else None
                    if j is not None:
                        same = view[j * RAW : j * RAW + RAW] == view[i * RAW : i * RAW + RAW]
                    elif row is not None:
                        same = columns.raw_digest(row) == bytes(view[i * RAW : i * RAW + RAW])
                    else:
                        same = True
                    if not same:
                        raise self._refused(path)
                    staged[path] = i
        # Appended whole, in C: a path given twice keeps its last row, as one at a time.
        columns.extend_stored(paths, raws, sizes, columns.extra_id(extra))
        rows.update(zip(paths, range(first, len(columns)), strict=True))
        self._origins.extend(array("I", [origin]) * len(paths))

    def remove(self, path: str) -> list[Entry]:
        """Remove one entry, or every entry under the folder *path*; [] when none matched."""
        path = path.rstrip("/")
        rows = self._rows
        if path in rows:
            return [self._columns.entry(rows.pop(path))]
        prefix = f"{path}/"
        removed = [p for p in rows if p.startswith(prefix)]
        return [self._columns.entry(rows.pop(p)) for p in removed]

    def build(self) -> Manifest:
        source, rows = self._columns, self._rows
        columns = Columns()
        columns.extras = list(source.extras)
        paths = sorted(rows)
        order = list(map(rows.__getitem__, paths))
        columns.paths = paths
        raw, gathered = source.raw, columns.raw
        for r in order:
            gathered += raw[r * RAW : r * RAW + RAW]
        sizes, extra_ids = source.sizes, source.extra_ids
        # Straight into arrays: a list first would hold an int object per entry.
        columns.sizes = array("q", map(sizes.__getitem__, order))
        if extra_ids and extra_ids.count(extra_ids[0]) == len(extra_ids):
            columns.extra_ids = array("I", extra_ids[:1]) * len(order)  # one extra for all
        else:
            columns.extra_ids = array("I", map(extra_ids.__getitem__, order))
        for mine, theirs in (
            (columns.texts, source.texts),
            (columns.refs, source.refs),
            (columns.births, source.births),
        ):
            if theirs:
                mine.update((i, theirs[r]) for i, r in enumerate(order) if r in theirs)
        return Manifest(EntryTable.of_sorted(columns), self.algorithm)
