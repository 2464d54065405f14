"""``ArtifactTTL``: the TTL value meaning "inherit the default", as in W&B.

soko has no team default TTL: an inherited TTL is no TTL (the version is kept).
"""

from __future__ import annotations

from enum import Enum


class ArtifactTTL(Enum):
    """``artifact.ttl = ArtifactTTL.INHERIT`` drops a TTL set on the artifact."""

    INHERIT = 0
