"""The entries of a manifest: :class:`Entry`, one path of a version, and
:class:`EntryTable`, many of them kept as columns.

A million entries as a million :class:`Entry` objects (each with its base64 digest as a
string) cost about 500 bytes each; as columns (the paths, the raw digests back to back,
the sizes in an array, each distinct ``extra`` once) they cost about a fifth of that. An
:class:`EntryTable` is a read-only mapping of path to :class:`Entry` in path order, and
makes each :class:`Entry` when it is asked for. Pure: no I/O.
"""

from __future__ import annotations

import binascii
import itertools
import json
from array import array
from bisect import bisect_left
from collections.abc import ItemsView, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from types import MappingProxyType
from typing import Any

from soko.core.digests import DIGEST_BATCH, Algorithm, Digest, DigestBatch, path_digest_lines
from soko.core.names import validate_artifact_path
from soko.errors import ValidationError

ALG_EXTRA_KEY = "alg"
_EXACT_ALGORITHMS = {algorithm.value: algorithm for algorithm in Algorithm}
RAW = 16
"""Bytes of a raw digest (MD5 and XXH128 alike)."""
_NO_SIZE = -1
_ZERO = bytes(RAW)
_quote: Any = encode_basestring  # json.dumps of a str, ensure_ascii=False, in C


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def algorithm_of(extra: Mapping[str, Any]) -> Algorithm:
    """The algorithm an entry's *extra* names (``alg``), MD5 when it names none."""
    alg = extra.get(ALG_EXTRA_KEY)
    if not isinstance(alg, str):
        return Algorithm.MD5
    # The exact spellings W&B writes skip Algorithm.parse (an enum call per entry).
    return _EXACT_ALGORITHMS.get(alg) or Algorithm.parse(alg)


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of a version: a stored file (``ref`` is None) or a reference.

    ``digest`` is the text W&B writes: the base64 content digest of a stored file, or for a
    reference whatever its handler records (an ETag, a URI, a base64 digest).
    """

    path: str
    digest: str
    size: int | None = None
    ref: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    birth_artifact_id: str | None = None

    @property
    def is_reference(self) -> bool:
        return self.ref is not None

    @property
    def algorithm(self) -> Algorithm:
        """The algorithm of a stored entry's digest: ``extra.alg``, MD5 when absent."""
        return algorithm_of(self.extra)

    def blob_digest(self) -> Digest:
        """The content digest of a stored entry, parsed; references have none."""
        if self.ref is not None:
            raise ValidationError(f"{self.path!r} is a reference; it has no stored blob.")
        return Digest.from_b64(self.digest, self.algorithm)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"digest": self.digest}
        if self.ref is not None:
            data["ref"] = self.ref
        if self.birth_artifact_id is not None:
            data["birthArtifactID"] = self.birth_artifact_id
        if self.size is not None:
            data["size"] = self.size
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_json(cls, path: str, data: Mapping[str, Any]) -> Entry:
        path, digest, size, ref, extra, birth = checked_json(path, data)
        return cls(path, digest, size, ref, _shared_extra(extra), birth)


def checked_json(
    path: str, data: Any
) -> tuple[str, str, int | None, str | None, Mapping[str, Any], str | None]:
    """The fields of the manifest entry *data* at *path* (path, digest, size, ref, extra,
    birth artifact id), checked; ValidationError for anything a manifest cannot hold."""
    if not isinstance(data, Mapping) or not isinstance(data.get("digest"), str):
        raise ValidationError(f"Manifest entry {path!r} has no digest.")
    size = data.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValidationError(f"Manifest entry {path!r} has a bad size: {size!r}")
    ref = data.get("ref")
    birth = data.get("birthArtifactID")
    for key, value in (("ref", ref), ("birthArtifactID", birth)):
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"Manifest entry {path!r} has a bad {key}: {value!r}")
    extra = data.get("extra") or {}
    if not isinstance(extra, Mapping):
        raise ValidationError(f"Manifest entry {path!r} has a bad extra: {extra!r}")
    # Segment lengths are checked at add time and at download, not here: a version
    # logged before that check stays readable (listing, gc) and its download refuses.
    path = validate_artifact_path(path, check_segment_length=False)
    return path, data["digest"], size, ref, extra, birth


_SHARED_MAX = 256
_shared_extras: dict[tuple[tuple[str, str], ...], Mapping[str, Any]] = {}
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _shared_key(extra: Mapping[str, Any]) -> tuple[tuple[str, str], ...] | None:
    if all(type(v) is str for v in extra.values()):
        return tuple(extra.items())
    return None


def _shared_extra(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only *extra*, one object for the equal ones: a million entries of a manifest
    mostly carry the same ``{"alg": "xxh128"}``. Extras of other values (a reference's
    ETag, say) are copied as they are."""
    if not extra:
        return _EMPTY
    key = _shared_key(extra)
    if key is None:
        return dict(extra)
    shared = _shared_extras.get(key)
    if shared is None:
        shared = MappingProxyType(dict(extra))
        if len(_shared_extras) < _SHARED_MAX:
            _shared_extras[key] = shared
    return shared


def b64_of(raw: bytes | bytearray | memoryview) -> str:
    return binascii.b2a_base64(raw, newline=False).decode("ascii")


def raw_of_b64(text: str) -> bytes | None:
    """The raw digest whose base64 is exactly *text*, or None (another length or text)."""
    if len(text) != 24:
        return None
    try:
        raw = binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != RAW or binascii.b2a_base64(raw, newline=False) != text.encode("ascii"):
        return None
    return raw


class Columns:
    """Entries appended as columns: the rows of an :class:`EntryTable` or of a draft.

    A stored entry's digest is kept raw (16 bytes) when its base64 text is exactly the
    encoding of those bytes; any other digest text (a reference's) is kept as it is, in a
    sparse dict, as are ``ref`` and ``birthArtifactID``. Each distinct ``extra`` is kept
    once. Rows are numbered from 0 in the order appended.
    """

    __slots__ = ("_ids", "births", "extra_ids", "extras", "paths", "raw", "refs", "sizes", "texts")

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.raw = bytearray()
        self.sizes = array("q")
        self.extra_ids = array("I")
        self.extras: list[Mapping[str, Any]] = [_EMPTY]
        self.texts: dict[int, str] = {}
        self.refs: dict[int, str] = {}
        self.births: dict[int, str] = {}
        self._ids: dict[Any, int] = {(): 0}

    def __len__(self) -> int:
        return len(self.paths)

    def extra_id(self, extra: Mapping[str, Any]) -> int:
        """The number of *extra* in this table (added when new)."""
        if not extra:
            return 0
        key = _shared_key(extra)
        if key is not None:
            found = self._ids.get(key)
            if found is not None:
                return found
        self.extras.append(_shared_extra(extra))
        number = len(self.extras) - 1
        if key is not None:
            self._ids[key] = number
        return number

    def append(
        self,
        path: str,
        digest: str,
        size: int | None,
        ref: str | None,
        extra_id: int,
        birth: str | None,
    ) -> int:
        row = len(self.paths)
        self.paths.append(path)
        raw = raw_of_b64(digest) if ref is None else None
        if raw is None:
            self.texts[row] = digest
            self.raw += _ZERO
        else:
            self.raw += raw
        self.sizes.append(_NO_SIZE if size is None else size)
        self.extra_ids.append(extra_id)
        if ref is not None:
            self.refs[row] = ref
        if birth is not None:
            self.births[row] = birth
        return row

    def append_entry(self, entry: Entry) -> int:
        return self.append(
            entry.path,
            entry.digest,
            entry.size,
            entry.ref,
            self.extra_id(entry.extra),
            entry.birth_artifact_id,
        )

    def append_stored(
        self, path: str, raw: bytes | bytearray | memoryview, size: int, extra_id: int
    ) -> int:
        """A stored file's row, from its raw digest: no base64 text is made."""
        row = len(self.paths)
        self.paths.append(path)
        self.raw += raw
        self.sizes.append(size)
        self.extra_ids.append(extra_id)
        return row

    def extend_stored(
        self, paths: Sequence[str], raws: bytes | bytearray, sizes: Sequence[int], extra_id: int
    ) -> None:
        """Rows of stored files, appended whole: :meth:`append_stored` for each of *paths*,
        its raw digest in *raws* (back to back) and its size in *sizes*."""
        if len(raws) != len(paths) * RAW or len(sizes) != len(paths):
            raise ValueError("paths, raw digests and sizes differ in number")
        self.paths.extend(paths)
        self.raw += raws
        self.sizes.extend(sizes)
        self.extra_ids.extend(array("I", [extra_id]) * len(paths))

    def digest_text(self, row: int) -> str:
        text = self.texts.get(row) if self.texts else None
        if text is None:
            return b64_of(self.raw[row * RAW : row * RAW + RAW])
        return text

    def raw_digest(self, row: int) -> bytes | None:
        """A stored row's raw digest; None for a reference or a digest kept as text."""
        if row in self.texts:
            return None
        return bytes(self.raw[row * RAW : row * RAW + RAW])

    def size(self, row: int) -> int | None:
        size = self.sizes[row]
        return None if size == _NO_SIZE else size

    def entry(self, row: int) -> Entry:
        return Entry(
            self.paths[row],
            self.digest_text(row),
            self.size(row),
            self.refs.get(row) if self.refs else None,
            self.extras[self.extra_ids[row]],
            self.births.get(row) if self.births else None,
        )

    def copy_row(self, source: Columns, row: int) -> None:
        """Append row *row* of *source* as it is."""
        new = len(self.paths)
        self.paths.append(source.paths[row])
        self.raw += source.raw[row * RAW : row * RAW + RAW]
        self.sizes.append(source.sizes[row])
        extra_id = source.extra_ids[row]
        self.extra_ids.append(
            extra_id if source.extras is self.extras else self.extra_id(source.extras[extra_id])
        )
        for mine, theirs in (
            (self.texts, source.texts),
            (self.refs, source.refs),
            (self.births, source.births),
        ):
            if theirs:
                value = theirs.get(row)
                if value is not None:
                    mine[new] = value

    def stored_batches(self, size: int = DIGEST_BATCH) -> Iterator[DigestBatch]:
        """The content digests of the stored (non-reference) rows, in row order, a batch of
        at most *size* rows of one algorithm at a time: slices of the raw column as they
        are when every row is stored with one algorithm (no object per row)."""
        algorithms = [algorithm_of(extra) for extra in self.extras]
        raw, extra_ids, texts, refs = self.raw, self.extra_ids, self.texts, self.refs
        if not texts and not refs and len(set(algorithms)) == 1:
            for start in range(0, len(self.paths) * RAW, size * RAW):
                yield DigestBatch(algorithms[0], bytes(raw[start : start + size * RAW]))
            return
        for start in range(0, len(self.paths), size):
            groups: dict[Algorithm, bytearray] = {}
            for row in range(start, min(len(self.paths), start + size)):
                if refs and row in refs:
                    continue
                algorithm = algorithms[extra_ids[row]]
                group = groups.get(algorithm)
                if group is None:
                    group = groups[algorithm] = bytearray()
                text = texts.get(row) if texts else None
                group += raw[row * RAW : row * RAW + RAW] if text is None else _raw_of_text(text)
            for algorithm, group in groups.items():
                yield DigestBatch(algorithm, bytes(group))

    def rows_json(self, rows: Sequence[int] | range) -> str:
        """The members ``"path":{...}`` of the JSON ``contents`` object for *rows*, joined
        by commas: the text ``json.dumps`` writes for their entries (keys in W&B's order)."""
        extras_json = [_dumps(dict(extra)) if extra else "" for extra in self.extras]
        paths, raw, sizes, extra_ids = self.paths, self.raw, self.sizes, self.extra_ids
        texts, refs, births = self.texts, self.refs, self.births
        b2a = binascii.b2a_base64
        parts: list[str] = []
        for row in rows:
            text = texts.get(row) if texts else None
            if text is None:
                # Base64 needs no JSON escape.
                b64 = b2a(raw[row * RAW : row * RAW + RAW], newline=False).decode("ascii")
                part = f'{_quote(paths[row])}:{{"digest":"{b64}"'
            else:
                part = f'{_quote(paths[row])}:{{"digest":{_quote(text)}'
            if refs:
                ref = refs.get(row)
                if ref is not None:
                    part += f',"ref":{_quote(ref)}'
            if births:
                birth = births.get(row)
                if birth is not None:
                    part += f',"birthArtifactID":{_quote(birth)}'
            size = sizes[row]
            if size != _NO_SIZE:
                part += f',"size":{size}'
            extra_json = extras_json[extra_ids[row]]
            if extra_json:
                part += f',"extra":{extra_json}'
            parts.append(part + "}")
        return ",".join(parts)

    def path_digests(self, start: int, stop: int) -> str:
        """``path:digest`` lines of rows start..stop, each ending in a newline (the lines of
        a version digest)."""
        paths, raw = self.paths, self.raw
        if self.texts:
            return "".join(f"{paths[row]}:{self.digest_text(row)}\n" for row in range(start, stop))
        b2a = binascii.b2a_base64
        return "".join(
            f"{paths[row]}:{b2a(raw[row * RAW : row * RAW + RAW], newline=False).decode()}\n"
            for row in range(start, stop)
        )

    def path_digest_lines(self, start: int, stop: int) -> bytes:
        """:meth:`path_digests` encoded, made in C when every digest is raw."""
        if self.texts:
            return self.path_digests(start, stop).encode()
        return path_digest_lines(self.paths[start:stop], self.raw[start * RAW : stop * RAW])


class EntryTable(Mapping[str, Entry]):
    """A read-only mapping of path to :class:`Entry`, in path order, kept as
    :class:`Columns` whose paths are sorted and distinct; an entry is made when asked."""

    __slots__ = ("_columns",)

    def __init__(self, columns: Columns) -> None:
        self._columns = columns

    @classmethod
    def of_sorted(cls, columns: Columns) -> EntryTable:
        """The table of *columns* whose paths are sorted and distinct already."""
        return cls(columns)

    @classmethod
    def of_rows(cls, columns: Columns) -> EntryTable:
        """The table of *columns* in any order: sorted by path, a path given twice keeping
        its last row (as ``json.loads`` keeps a key's last value)."""
        paths = columns.paths
        if all(a < b for a, b in itertools.pairwise(paths)):
            return cls(columns)
        order = sorted(range(len(paths)), key=paths.__getitem__)
        kept = [
            row
            for i, row in enumerate(order)
            if i + 1 == len(order) or paths[order[i + 1]] != paths[row]
        ]
        # A stable sort keeps equal paths in the order they came: the last one is kept.
        ordered = Columns()
        ordered.extras = columns.extras
        ordered._ids = columns._ids
        for row in kept:
            ordered.copy_row(columns, row)
        return cls(ordered)

    @property
    def columns(self) -> Columns:
        """The columns (read-only by convention: the table is shared)."""
        return self._columns

    def _row(self, path: object) -> int:
        paths = self._columns.paths
        if type(path) is not str:
            return -1
        row = bisect_left(paths, path)
        return row if row < len(paths) and paths[row] == path else -1

    def __getitem__(self, path: str) -> Entry:
        row = self._row(path)
        if row < 0:
            raise KeyError(path)
        return self._columns.entry(row)

    def get(self, path: str, default: Any = None) -> Any:
        row = self._row(path)
        return default if row < 0 else self._columns.entry(row)

    def __contains__(self, path: object) -> bool:
        return self._row(path) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns.paths)

    def __len__(self) -> int:
        return len(self._columns.paths)

    def values(self) -> ValuesView[Entry]:
        return EntryValues(self)

    def items(self) -> ItemsView[str, Entry]:
        return _Items(self)

    def iter_entries(self) -> Iterator[Entry]:
        columns = self._columns
        return map(columns.entry, range(len(columns.paths)))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EntryTable):
            a, b = self._columns, other._columns
            return (
                a.paths == b.paths
                and a.raw == b.raw
                and a.sizes == b.sizes
                and a.texts == b.texts
                and a.refs == b.refs
                and a.births == b.births
                and all(
                    a.extras[x] == b.extras[y]
                    for x, y in zip(a.extra_ids, b.extra_ids, strict=True)
                )
            )
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EntryTable({len(self)} entries)"


class EntryValues(ValuesView[Entry]):
    """A table's entries, each made as it is read."""

    _mapping: EntryTable

    def __iter__(self) -> Iterator[Entry]:
        return self._mapping.iter_entries()

    def paths(self) -> Iterator[str]:
        """The entries' paths, in order, without making an entry for each."""
        return iter(self._mapping)


class _Items(ItemsView[str, Entry]):
    _mapping: EntryTable

    def __iter__(self) -> Iterator[tuple[str, Entry]]:
        return ((e.path, e) for e in self._mapping.iter_entries())


def _raw_of_text(text: str) -> bytes:
    """The raw digest a stored row's digest text encodes (one not in canonical base64)."""
    return Digest.from_b64(text).raw
