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

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

from soko.core.digests import Algorithm, Digest, parse_digest, version_digest
from soko.core.names import validate_artifact_path
from soko.errors import CorruptBlobError, ValidationError

STORAGE_POLICY = "wandb-storage-policy-v1"
DEFAULT_POLICY_CONFIG: Mapping[str, Any] = MappingProxyType({"storageLayout": "V2"})
ALG_EXTRA_KEY = "alg"


_EXACT_ALGORITHMS = {algorithm.value: algorithm for algorithm in Algorithm}
_ENCODE_SLICE = 8192


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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
        alg = self.extra.get(ALG_EXTRA_KEY)
        if not isinstance(alg, str):
            return Algorithm.MD5
        # The exact spellings W&B writes skip Algorithm.parse (an enum call per entry).
        return _EXACT_ALGORITHMS.get(alg) or Algorithm.parse(alg)

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
        return cls(
            # Segment lengths are checked at add time and at download, not here: a version
            # logged before that check stays readable (listing, gc) and its download refuses.
            path=validate_artifact_path(path, check_segment_length=False),
            digest=data["digest"],
            size=_shared_size(size),
            ref=ref,
            extra=_shared_extra(extra),
            birth_artifact_id=birth,
        )


_SHARED_MAX = 256
_shared_extras: dict[tuple[tuple[str, str], ...], Mapping[str, Any]] = {}
_shared_sizes: dict[int, int] = {}


def _shared_extra(extra: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only *extra*, one object for the equal ones: a million entries of a manifest
    read back mostly carry the same ``{"alg": "xxh128"}``, and a dict each would cost
    200 MB. Extras of other values (a reference's ETag, say) are copied as they are."""
    if not extra:
        return _EMPTY
    if all(type(v) is str for v in extra.values()):
        key = tuple(extra.items())
        shared = _shared_extras.get(key)
        if shared is None:
            shared = MappingProxyType(dict(extra))
            if len(_shared_extras) < _SHARED_MAX:
                _shared_extras[key] = shared
        return shared
    return dict(extra)


def _shared_size(size: int | None) -> int | None:
    """One int object per distinct size of the (mostly equal) sizes of many entries."""
    if size is None:
        return None
    shared = _shared_sizes.get(size)
    if shared is None:
        shared = size
        if len(_shared_sizes) < _SHARED_MAX:
            _shared_sizes[size] = size
    return shared


_EMPTY: Mapping[str, Any] = MappingProxyType({})


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
        mapping = {e.path: e for e in ordered}
        if len(mapping) != len(ordered):
            raise ValidationError("A manifest cannot hold the same path twice.")
        return cls(MappingProxyType(mapping), algorithm, storage_policy_config)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def get(self, path: str) -> Entry | None:
        return self.entries.get(path)

    @property
    def size(self) -> int:
        """Bytes of every entry with a known size, references included (as W&B counts)."""
        return sum(e.size for e in self.entries.values() if e.size)

    def digest(self) -> str:
        """The version digest (hex) over the entries' paths and digests, as W&B computes it."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        # Asked by the twin check and again by the commit: computed once per manifest.
        return version_digest(((e.path, e.digest) for e in self.entries.values()), self.algorithm)

    def blob_digests(self) -> frozenset[Digest]:
        """The distinct content digests of every stored (non-reference) entry."""
        return self._blob_digests

    def know_blob_digests(self, digests: frozenset[Digest]) -> None:
        """Give the parsed digests of the stored entries, from whoever made them (a draft
        that hashed the files), so that they are not parsed back from base64."""
        self.__dict__["_blob_digests"] = digests

    @cached_property
    def _blob_digests(self) -> frozenset[Digest]:
        # Parsed once per manifest: upload, the missing-blob check and the commit all ask.
        return frozenset(self.blob_sizes())

    def blob_sizes(self) -> Mapping[Digest, int | None]:
        """The size each stored (non-reference) entry's content digest was logged with
        (computed once per manifest and shared: read-only)."""
        return self._blob_sizes

    @cached_property
    def _blob_sizes(self) -> dict[Digest, int | None]:
        # The algorithm is parsed once per distinct extra.alg, not once per entry.
        algorithms: dict[Any, Algorithm] = {}
        sizes: dict[Digest, int | None] = {}
        for e in self.entries.values():
            if e.ref is None:
                alg = e.extra.get(ALG_EXTRA_KEY)
                alg = alg if isinstance(alg, str) else None  # e.algorithm: MD5 then
                algorithm = algorithms.get(alg)
                if algorithm is None:
                    algorithm = algorithms[alg] = e.algorithm
                sizes[Digest.from_b64(e.digest, algorithm)] = e.size
        return sizes

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": dict(self.storage_policy_config),
            "contents": {path: entry.to_json() for path, entry in self.entries.items()},
        }

    def to_bytes(self) -> bytes:
        """Canonical encoding: the same manifest always gives the same bytes.

        The bytes of ``json.dumps(self.to_json())``, written a slice of entries at a time:
        the whole document as dicts would cost about 500 bytes per entry at once."""
        head = {
            "version": 1,
            "storagePolicy": STORAGE_POLICY,
            "storagePolicyConfig": dict(self.storage_policy_config),
        }
        text = _dumps(head)
        parts = [f'{text[:-1]},"contents":{{'.encode()]
        entries = iter(self.entries.items())
        separator = ""
        while chunk := list(itertools.islice(entries, _ENCODE_SLICE)):
            body = _dumps({path: entry.to_json() for path, entry in chunk})
            parts.append(f"{separator}{body[1:-1]}".encode())
            separator = ","
        parts.append(b"}}")
        return b"".join(parts)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], algorithm: Algorithm | None = None) -> Manifest:
        _check_version(data)
        contents = data.get("contents")
        if not isinstance(contents, Mapping):
            raise ValidationError("Manifest has no 'contents' object.")
        entries = [Entry.from_json(path, value) for path, value in contents.items()]
        return cls._of_document(entries, data, algorithm)

    @classmethod
    def _of_document(
        cls, entries: list[Entry], data: Mapping[str, Any], algorithm: Algorithm | None
    ) -> Manifest:
        if algorithm is None:
            algorithm = _infer_algorithm(entries)
        config = data.get("storagePolicyConfig") or DEFAULT_POLICY_CONFIG
        if not isinstance(config, Mapping):
            raise ValidationError("Manifest 'storagePolicyConfig' must be an object.")
        return cls.of(entries, algorithm, MappingProxyType(dict(config)))

    @classmethod
    def from_bytes(cls, raw: bytes, algorithm: Algorithm | None = None) -> Manifest:
        streamed = _parse_streaming(raw)
        if streamed is not None:
            header, entries = streamed
            return cls._of_document(list(entries.values()), header, algorithm)
        # Anything the streaming parser does not take (bad JSON included) is parsed whole,
        # which gives the error its message.
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"Manifest is not valid JSON: {exc}") from None
        return cls.from_json(data, algorithm)


def _check_version(data: Any) -> None:
    version = data.get("version") if isinstance(data, Mapping) else None
    # `True == 1` in Python, so the type is checked as well as the value.
    if type(version) is not int or version != 1:
        raise ValidationError("Unsupported manifest: expected a version 1 manifest object.")


# The decoder's own scanner, in C: one JSON value at a position (typeshed omits it).
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, pos: int) -> int:
    """Where the JSON whitespace at *pos* ends."""
    match = _SPACE.match(text, pos)
    return match.end() if match else pos


def _parse_streaming(raw: bytes) -> tuple[dict[str, Any], dict[str, Entry]] | None:
    """The top-level fields of a manifest document and its entries, each entry turned into
    an :class:`Entry` as soon as it is read: ``json.loads`` of a million entries holds two
    dicts per entry at once (about 500 MB), this holds one entry's. None for a document it
    does not take (not UTF-8, not an object, bad JSON, no version 1 before the entries):
    the caller parses those whole, as before."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    header: dict[str, Any] = {}
    entries: dict[str, Entry] | None = None
    try:
        pos = _skip_space(text, 0)
        if text[pos : pos + 1] != "{":
            return None
        while True:
            key, pos = _scan(text, _skip_space(text, pos + 1))
            pos = _skip_space(text, pos)
            if type(key) is not str or text[pos : pos + 1] != ":":
                return None
            pos = _skip_space(text, pos + 1)
            if key == "contents" and text[pos : pos + 1] == "{":
                _check_version(header)
                entries, pos = _scan_entries(text, pos)
                header.pop(key, None)
            else:
                header[key], pos = _scan(text, pos)
            pos = _skip_space(text, pos)
            mark = text[pos : pos + 1]
            if mark == "}":
                break
            if mark != ",":
                return None
    except (StopIteration, ValueError):
        return None
    if entries is None or "contents" in header or text[_skip_space(text, pos + 1) :]:
        return None
    return header, entries


def _scan_entries(text: str, pos: int) -> tuple[dict[str, Entry], int]:
    """The entries of the ``contents`` object that starts at *pos*, and where it ends.
    A path written twice keeps its last entry, as ``json.loads`` does."""
    entries: dict[str, Entry] = {}
    pos = _skip_space(text, pos + 1)
    if text[pos : pos + 1] == "}":
        return entries, pos + 1
    while True:
        path, pos = _scan(text, pos)
        pos = _skip_space(text, pos)
        if type(path) is not str or text[pos : pos + 1] != ":":
            raise ValueError("not a manifest entry")
        value, pos = _scan(text, _skip_space(text, pos + 1))
        entries[path] = Entry.from_json(path, value)
        pos = _skip_space(text, pos)
        mark = text[pos : pos + 1]
        if mark == "}":
            return entries, pos + 1
        if mark != ",":
            raise ValueError("not a manifest entry")
        pos = _skip_space(text, pos + 1)


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


def _infer_algorithm(entries: Iterable[Entry]) -> Algorithm:
    """A manifest's algorithm when it is not stored beside it: XXH128 if any file says so."""
    for entry in entries:
        if entry.ref is None and entry.algorithm is Algorithm.XXH128:
            return Algorithm.XXH128
    return Algorithm.MD5


class ManifestBuilder:
    """The mutable set of entries of a draft.

    Adding a path that exists with another digest is refused unless ``overwrite`` is set;
    adding it again with the same digest replaces the entry (W&B's rule).
    """

    def __init__(self, algorithm: Algorithm = Algorithm.MD5, entries: Iterable[Entry] = ()):
        self.algorithm = algorithm
        self._entries: dict[str, Entry] = {e.path: e for e in entries}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path)

    def check_add(self, entry: Entry, *, overwrite: bool = False) -> None:
        """Raise if :meth:`add` would refuse *entry*; changes nothing."""
        old = self._entries.get(entry.path)
        if old is not None and not overwrite and old.digest != entry.digest:
            raise ValidationError(
                f"Cannot add the same path twice with different content: {entry.path!r} "
                "(pass overwrite=True to replace it)"
            )

    def add(self, entry: Entry, *, overwrite: bool = False) -> Entry:
        self.check_add(entry, overwrite=overwrite)
        self._entries[entry.path] = entry
        return entry

    def check_all(self, entries: Iterable[Entry], *, overwrite: bool = False) -> None:
        """Raise if :meth:`add_all` would refuse *entries*; changes nothing."""
        self._merged(list(entries), overwrite=overwrite)

    def add_all(self, entries: Iterable[Entry], *, overwrite: bool = False) -> list[Entry]:
        """Add every entry or, when any would be refused, none."""
        batch = list(entries)
        self._entries.update(self._merged(batch, overwrite=overwrite))
        return batch

    def _merged(self, batch: list[Entry], *, overwrite: bool) -> dict[str, Entry]:
        staged: dict[str, Entry] = {}
        for entry in batch:
            previous = staged.get(entry.path) or self._entries.get(entry.path)
            if previous is not None and not overwrite and previous.digest != entry.digest:
                raise ValidationError(
                    f"Cannot add the same path twice with different content: {entry.path!r} "
                    "(pass overwrite=True to replace it)"
                )
            staged[entry.path] = entry
        return staged

    def remove(self, path: str) -> list[Entry]:
        """Remove one entry, or every entry under the folder *path*; [] when none matched."""
        path = path.rstrip("/")
        if path in self._entries:
            return [self._entries.pop(path)]
        prefix = f"{path}/"
        removed = [e for p, e in self._entries.items() if p.startswith(prefix)]
        for entry in removed:
            del self._entries[entry.path]
        return removed

    def build(self) -> Manifest:
        return Manifest.of(self._entries.values(), self.algorithm)
