"""The base of every wire model: unknown fields are refused, not silently dropped.

A client that sends a field the server does not know (a typo, or a newer client) gets a
422 naming the field, instead of a request that quietly does less than was asked.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from soko.core.digests import Digest, parse_digest

__all__ = ["WireModel", "format_digest", "parse_digest"]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def format_digest(digest: Digest) -> str:
    """``<alg>:<hex>``: how a blob digest travels (``md5:5d41…``)."""
    return str(digest)
