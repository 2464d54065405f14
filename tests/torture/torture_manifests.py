"""Manifests written by hand, as a client that is not soko's SDK could send them."""

from __future__ import annotations

import base64
import json
from typing import Any

from soko.core.digests import Algorithm, Digest

MANIFEST_HEAD = {
    "version": 1,
    "storagePolicy": "wandb-storage-policy-v1",
    "storagePolicyConfig": {"storageLayout": "V2"},
}


def manifest_bytes(contents: Any) -> bytes:
    """A W&B manifest of *contents* (path -> entry), or of whatever *contents* is."""
    return json.dumps({**MANIFEST_HEAD, "contents": contents}).encode()


def entry(data: bytes, **overrides: Any) -> dict[str, Any]:
    """The manifest entry of a file holding *data* (XXH128), with fields *overrides*."""
    digest = Digest.of_bytes(data, Algorithm.XXH128)
    encoded = base64.b64encode(digest.raw).decode()
    return {"digest": encoded, "size": len(data), "extra": {"alg": "XXH128"}, **overrides}
