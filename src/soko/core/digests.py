"""Digests of entries and versions, in the exact text forms W&B writes.

An entry digest is the standard, padded base64 of the raw hash bytes (MD5 or XXH128); a
version digest is the hex hash of the canonical manifest lines (see :func:`version_digest`).
This module computes hashes of bytes it is given; it opens no file.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import itertools
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import xxhash

from soko.errors import ValidationError


class Hasher(Protocol):
    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


_RAW_SIZE = 16


class Algorithm(StrEnum):
    """The digest algorithm of an artifact; its value is what W&B writes in ``extra.alg``."""

    MD5 = "MD5"
    XXH128 = "XXH128"

    @classmethod
    def parse(cls, value: str | Algorithm) -> Algorithm:
        if isinstance(value, Algorithm):
            return value
        try:
            return cls(value.upper())
        except ValueError:
            raise ValidationError(
                f"Unknown digest algorithm {value!r}; use 'MD5' or 'XXH128'."
            ) from None

    @property
    def raw_size(self) -> int:
        return _RAW_SIZE

    @property
    def key(self) -> str:
        """The lower-case name used in blob keys and cache paths."""
        return self.value.lower()

    def hasher(self, data: bytes = b"") -> Hasher:
        return _HASHERS[self](data)

    def digest_of(self, data: bytes) -> bytes:
        """The raw digest of *data*: one call, for the many small blobs of a batch."""
        return _ONE_SHOT[self](data)


# Looked up by member rather than compared with ``Algorithm.MD5``: reading an enum member
# off its class costs a descriptor call, which adds up over 20,000 files.
_HASHERS: dict[str, Callable[[bytes], Hasher]] = {
    Algorithm.MD5: lambda data: hashlib.md5(data, usedforsecurity=False),
    Algorithm.XXH128: xxhash.xxh128,
}
_ONE_SHOT: dict[str, Callable[[bytes], bytes]] = {
    Algorithm.MD5: lambda data: hashlib.md5(data, usedforsecurity=False).digest(),
    Algorithm.XXH128: xxhash.xxh128_digest,
}


@dataclass(frozen=True, slots=True, eq=False)
class Digest:
    """The content digest of one blob: an algorithm and its raw bytes."""

    algorithm: Algorithm
    raw: bytes

    # Written out rather than generated: sets and dicts of 20,000 digests call these
    # hundreds of thousands of times in one log, and bytes cache their own hash.
    def __hash__(self) -> int:
        return hash(self.raw)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Digest:
            return NotImplemented
        return self.raw == other.raw and self.algorithm is other.algorithm

    def __post_init__(self) -> None:
        # Both algorithms are 16 bytes: compared to a constant, as this runs per blob.
        if len(self.raw) != _RAW_SIZE:
            raise ValidationError(
                f"A {self.algorithm.value} digest has {self.algorithm.raw_size} bytes, "
                f"not {len(self.raw)}."
            )

    @classmethod
    def from_b64(cls, text: str, algorithm: Algorithm = Algorithm.MD5) -> Digest:
        try:
            # a2b_base64 in strict mode refuses what b64decode(validate=True) refuses,
            # in C: this runs once per entry of every manifest read.
            raw = binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError, TypeError):
            raise ValidationError(f"Not a base64 digest: {text!r}") from None
        return cls(algorithm, raw)

    @classmethod
    def from_hex(cls, text: str, algorithm: Algorithm = Algorithm.MD5) -> Digest:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValidationError(f"Not a hex digest: {text!r}") from None
        return cls(algorithm, raw)

    @classmethod
    def of_bytes(cls, data: bytes, algorithm: Algorithm = Algorithm.MD5) -> Digest:
        return cls(algorithm, algorithm.hasher(data).digest())

    @property
    def b64(self) -> str:
        # binascii directly: the same text as base64.b64encode, without its wrappers.
        return binascii.b2a_base64(self.raw, newline=False).decode("ascii")

    @property
    def hex(self) -> str:
        return self.raw.hex()

    def __str__(self) -> str:
        return f"{self.algorithm.key}:{self.hex}"


def parse_digest(text: str) -> Digest:
    """A digest written ``<alg>:<hex>`` (``str(digest)``, how a blob digest travels and
    how a version names its manifest blob); ValidationError for anything else."""
    alg, sep, hex_digest = text.partition(":")
    if not sep or not hex_digest or hex_digest != hex_digest.lower():
        raise ValidationError(f"Not a blob digest: {text!r} (expected '<alg>:<hex>').")
    # The written keys looked up directly: a log's missing-blob questions parse a million.
    algorithm = _BY_KEY.get(alg)
    if algorithm is None:
        try:
            named = Algorithm.parse(alg)
        except ValidationError:
            raise ValidationError(f"Not a blob digest: {text!r} (unknown algorithm).") from None
        raise ValidationError(f"Not a blob digest: {text!r} (expected '{named.key}:').")
    return Digest.from_hex(hex_digest, algorithm)


_BY_KEY = {algorithm.key: algorithm for algorithm in Algorithm}


def algorithm_of_key(key: str) -> Algorithm | None:
    """The algorithm written *key* in blob keys and digests (``xxh128``), else None."""
    return _BY_KEY.get(key)


def b64_of_string(text: str, algorithm: Algorithm = Algorithm.MD5) -> str:
    """The base64 digest of a string's UTF-8 bytes (W&B's ``md5_string``)."""
    return Digest.of_bytes(text.encode("utf-8"), algorithm).b64


VERSION_DIGEST_HEADER = b"wandb-artifact-manifest-v1\n"


def version_digest(path_digests: Iterable[tuple[str, str]], algorithm: Algorithm) -> str:
    """Hex digest of a version: the header line, then ``path:digest`` lines in path order.

    *path_digests* may come in any order; it is sorted here so that callers cannot get
    the order wrong.
    """
    hasher = algorithm.hasher(VERSION_DIGEST_HEADER)
    # One update of the joined lines hashes the same bytes as one update per line.
    hasher.update("".join(f"{path}:{digest}\n" for path, digest in sorted(path_digests)).encode())
    return hasher.hexdigest()


def path_digest_lines(paths: Sequence[str], raws: bytes | bytearray) -> bytes:
    """The ``path:digest`` lines of a version digest (UTF-8, each ending in a newline) for
    *paths* and their raw 16-byte digests (*raws*, back to back, in the same order).

    Made by whole-column steps in C rather than a format per line: a 16-byte digest's
    base64 is that of the digest and two zero bytes with its last two characters ``==``,
    so every digest is encoded in one call, and the lines are joined from the paths and
    pieces cut from one buffer."""
    count = len(paths)
    if len(raws) != count * _RAW_SIZE:
        raise ValueError("paths and raw digests differ in number")
    encoded = "\x00".join(paths).encode()
    names = encoded.split(b"\x00") if count else []
    if len(names) != count:  # a path with a NUL: no artifact path has one
        b64 = [binascii.b2a_base64(raw, newline=False).decode() for raw in cut(raws, _RAW_SIZE)]
        return "".join(f"{p}:{d}\n" for p, d in zip(paths, b64, strict=True)).encode()
    padded = bytearray(_PADDED * count)
    for k in range(_RAW_SIZE):
        padded[k::_PADDED] = raws[k::_RAW_SIZE]
    text = bytearray(binascii.b2a_base64(padded, newline=False))
    text[_B64_SIZE - 2 :: _B64_SIZE] = b"=" * count
    text[_B64_SIZE - 1 :: _B64_SIZE] = b"=" * count
    line = bytearray(_LINE_TAIL * count)
    line[0::_LINE_TAIL] = b":" * count
    for k in range(_B64_SIZE):
        line[k + 1 :: _LINE_TAIL] = text[k::_B64_SIZE]
    line[_LINE_TAIL - 1 :: _LINE_TAIL] = b"\n" * count
    return b"".join(itertools.chain.from_iterable(zip(names, cut(line, _LINE_TAIL), strict=True)))


_PADDED = 18
"""A raw digest and two zero bytes: a whole number of base64's 3-byte groups."""
_B64_SIZE = 24
_LINE_TAIL = 1 + _B64_SIZE + 1
"""``:``, the base64 digest, a newline."""
_CUT_RUN = 64
"""Pieces cut by one struct call (:func:`cut`)."""


@functools.lru_cache(maxsize=256)
def _cutter(width: int, count: int) -> struct.Struct:
    return struct.Struct(f"{width}s" * count)


def cut(data: bytes | bytearray, width: int) -> Iterator[bytes]:
    """*data* in pieces of *width* bytes (its length a multiple of *width*), cut in C:
    no Python step per piece."""
    if len(data) % width:
        raise ValueError(f"{len(data)} bytes are no whole number of pieces of {width}")
    whole = len(data) // (width * _CUT_RUN) * width * _CUT_RUN
    with memoryview(data) as view:
        runs = list(_cutter(width, _CUT_RUN).iter_unpack(view[:whole]))
    rest = (len(data) - whole) // width
    tail = _cutter(width, rest).unpack_from(data, whole) if rest else ()
    return itertools.chain(itertools.chain.from_iterable(runs), tail)


DIGEST_BATCH = 16_384
"""Digests per batch of a question asked about many blobs: small beside a million (16
bytes each, 256 KiB), large enough that the per-batch costs vanish."""


@dataclass(frozen=True, slots=True)
class DigestBatch:
    """Digests of one algorithm as their raw bytes back to back (16 each): how a batch of
    blobs is asked about without an object per digest."""

    algorithm: Algorithm
    raws: bytes

    def __len__(self) -> int:
        return len(self.raws) // _RAW_SIZE

    def raw_list(self) -> list[bytes]:
        raws = self.raws
        return [raws[i : i + _RAW_SIZE] for i in range(0, len(raws), _RAW_SIZE)]

    def __iter__(self) -> Iterator[Digest]:
        algorithm = self.algorithm
        return (Digest(algorithm, raw) for raw in self.raw_list())


class BatchedDigests:
    """Digests made a batch at a time each time they are read, from a function that
    yields the batches (a manifest's columns): the digests of a million blobs are never
    held at once. A store that asks in batches reads :meth:`batches`
    (:func:`digest_batches`); iterating gives :class:`Digest` objects, which any store
    takes. The same digest may come more than once."""

    __slots__ = ("_batches",)

    def __init__(self, batches: Callable[[], Iterator[DigestBatch]]) -> None:
        self._batches = batches

    def batches(self) -> Iterator[DigestBatch]:
        return self._batches()

    def __iter__(self) -> Iterator[Digest]:
        for batch in self._batches():
            yield from batch


def digest_batches(digests: Iterable[Digest], size: int = DIGEST_BATCH) -> Iterator[DigestBatch]:
    """*digests* in batches of one algorithm each, at most *size* digests a batch (the
    batches of :class:`BatchedDigests` as they come)."""
    if isinstance(digests, BatchedDigests):
        yield from digests.batches()
        return
    groups: dict[Algorithm, bytearray] = {}
    limit = size * _RAW_SIZE
    for digest in digests:
        group = groups.get(digest.algorithm)
        if group is None:
            group = groups[digest.algorithm] = bytearray()
        group += digest.raw
        if len(group) >= limit:
            yield DigestBatch(digest.algorithm, bytes(group))
            group.clear()
    for algorithm, group in groups.items():
        if group:
            yield DigestBatch(algorithm, bytes(group))
