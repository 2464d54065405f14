"""URLs the server signs for bytes that move without an API key (W&B's upload/download URLs).

A token is ``<payload>.<mac>``: the payload (URL-safe base64 of compact JSON) says what
the URL is for (``put`` a blob for a project, ``get`` a blob, ``manifest`` of a pending
version, ``discard`` a run file, or the id of a bucket's upload in ``parts``), what it
is bound to and when it expires; the MAC is HMAC-SHA256 under the server's signing key.
Changing any byte of the payload breaks the MAC, so a URL cannot be turned to another
blob, project or purpose. Upload URLs also carry a nonce and are accepted once per server
process (:class:`UsedNonces`): their bytes are verified against the digest anyway, so a
replay on another process of the same server can store nothing else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from soko.errors import PermissionDeniedError, ValidationError

Purpose = Literal["put", "get", "manifest", "discard", "parts"]
_NONCES_MAX = 200_000


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token allows."""

    purpose: Purpose
    subject: Mapping[str, Any]
    nonce: str
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, purpose: Purpose, subject: Mapping[str, Any], *, expires_in: int) -> str:
        body: dict[str, Any] = {"p": purpose, "s": dict(subject)}
        body.update(x=int(time.time()) + expires_in, n=secrets.token_urlsafe(12))
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return f"{payload}.{self._mac(payload)}"

    def upload_id(self, *parts: str) -> str:
        """A staging id for a bucket upload that only this server can name again: the
        upload of one blob for one pending version (32 hex digits)."""
        return hmac.new(self._key, "\0".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def verify(self, token: str, purpose: Purpose) -> Grant:
        """The grant of *token*; PermissionDeniedError (403) when it was not signed here, is
        for another purpose or has expired."""
        payload, _, mac = token.partition(".")
        if not payload or not mac or not hmac.compare_digest(mac, self._mac(payload)):
            raise PermissionDeniedError("This URL was not signed by this server.")
        try:
            body = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            raise ValidationError("This URL's token does not parse.") from None
        if body.get("p") != purpose:
            raise PermissionDeniedError(f"This URL is not for a {purpose} request.")
        if int(body.get("x", 0)) < time.time():
            raise PermissionDeniedError("This URL has expired; ask the server for a new one.")
        return Grant(purpose, body.get("s") or {}, str(body.get("n")), int(body["x"]))


class UsedNonces:
    """Upload tokens already used, until they expire (one server process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, int] = {}

    def claim(self, grant: Grant) -> None:
        """Mark *grant* used; PermissionDeniedError when it was used before."""
        with self._lock:
            if grant.nonce in self._used:
                raise PermissionDeniedError("This upload URL was used already.")
            if len(self._used) >= _NONCES_MAX:
                now = time.time()
                self._used = {n: x for n, x in self._used.items() if x >= now}
            self._used[grant.nonce] = grant.expires

    def release(self, grant: Grant) -> None:
        """Let *grant* be used again (its upload failed, nothing was stored)."""
        with self._lock:
            self._used.pop(grant.nonce, None)
