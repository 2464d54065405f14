"""The base of every wire model: unknown fields are refused, not silently dropped.

A client that sends a field the server does not know (a typo, or a newer client) gets a
422 naming the field, instead of a request that quietly does less than was asked.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from soko.core.digests import Algorithm, Digest
from soko.errors import ValidationError


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def format_digest(digest: Digest) -> str:
    """``<alg>:<hex>``: how a blob digest travels (``md5:5d41…``)."""
    return str(digest)


def parse_digest(text: str) -> Digest:
    """The inverse of :func:`format_digest`; ValidationError for anything else."""
    alg, sep, hex_digest = text.partition(":")
    if not sep or not hex_digest or hex_digest != hex_digest.lower():
        raise ValidationError(f"Not a blob digest: {text!r} (expected '<alg>:<hex>').")
    try:
        algorithm = Algorithm.parse(alg)
    except ValidationError:
        raise ValidationError(f"Not a blob digest: {text!r} (unknown algorithm).") from None
    if alg != algorithm.key:
        raise ValidationError(f"Not a blob digest: {text!r} (expected '{algorithm.key}:').")
    return Digest.from_hex(hex_digest, algorithm)
