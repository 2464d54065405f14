"""The missing-blob question in bytes: ``POST /blobs/missing/raw``.

The question is the raw digests of one algorithm back to back (16 bytes each, the way a
manifest's columns hold them); the answer is one bit per digest asked, in the order
asked, set when the blob is missing: bit ``i % 8`` of byte ``i // 8``. A million digests
then travel as 16 MB one way and 125 KB the other, and neither side makes a text, a
JSON value or an object of each digest.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence

from soko.core.digests import Algorithm, Digest, DigestBatch, algorithm_of_key
from soko.errors import ValidationError

MEDIA_TYPE = "application/octet-stream"

MAX_RAW_DIGESTS = 65_536
"""The most digests one binary question may carry (a body of 1 MiB)."""


def algorithm_of(key: str) -> Algorithm:
    """The algorithm written as in a blob digest (``xxh128``, ``md5``); ValidationError
    for anything else."""
    algorithm = algorithm_of_key(key)
    if algorithm is None:
        known = ", ".join(sorted(a.key for a in Algorithm))
        raise ValidationError(f"Unknown digest algorithm {key!r}; expected one of {known}.")
    return algorithm


def batch_of(algorithm: Algorithm, body: bytes) -> DigestBatch:
    """The digests of a question's body; ValidationError unless it is whole digests, at
    least one and at most :data:`MAX_RAW_DIGESTS`."""
    size = algorithm.raw_size
    count, rest = divmod(len(body), size)
    if rest or not count:
        raise ValidationError(
            f"A missing-blob question is {algorithm.key} digests of {size} bytes back to "
            f"back; got {len(body)} bytes."
        )
    if count > MAX_RAW_DIGESTS:
        raise ValidationError(
            f"A missing-blob question carries at most {MAX_RAW_DIGESTS} digests; got {count}."
        )
    return DigestBatch(algorithm, body)


def bits_of(raws: Sequence[bytes], missing: Container[bytes]) -> bytes:
    """The answer: one bit per digest of *raws*, set when it is in *missing*."""
    bits = bytearray((len(raws) + 7) // 8)
    for index, raw in enumerate(raws):
        if raw in missing:
            bits[index >> 3] |= 1 << (index & 7)
    return bytes(bits)


def check_answer(bits: bytes, count: int) -> None:
    """ValidationError unless the answer *bits* is one bit per digest of *count*."""
    if len(bits) != (count + 7) // 8:
        raise ValidationError(
            f"The server answered {len(bits)} bytes for {count} digests; expected "
            f"{(count + 7) // 8}."
        )


def missing_of(batch: DigestBatch, bits: bytes) -> Iterator[Digest]:
    """The digests of *batch* the answer *bits* sets; ValidationError when the answer
    is not one bit per digest."""
    raws = batch.raw_list()
    check_answer(bits, len(raws))
    algorithm = batch.algorithm
    for start, byte in enumerate(bits):
        if byte:
            base = start * 8
            for bit in range(8):
                if byte >> bit & 1:
                    yield Digest(algorithm, raws[base + bit])
