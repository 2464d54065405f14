"""Request body limits, enforced while the body streams in (ASGI middleware).

JSON endpoints take at most ``max_json_bytes``, blob batches ``max_batch_bytes``; a single
blob PUT has no limit beyond the store's, since its bytes go straight to the store while
they are hashed. A declared Content-Length over the limit is refused before any byte is
read; a chunked body is counted and cut off when it passes the limit.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from soko.server.config import ServerConfig
from soko.server.errors import BodyTooLargeError, error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SINGLE_BLOB = re.compile(r"^/api/v1/blobs/[a-z0-9]+/[0-9a-f]+$")
_BATCH = "/api/v1/blobs/batch"
# A W&B client's file upload streams to the store like a blob PUT; its manifest is bounded
# by the manifest limit.
_WANDB_UPLOAD = re.compile(r"^/wandb/uploads/[^/]+$")
_WANDB_MANIFEST = re.compile(r"^/wandb/manifests/[^/]+$")
# A client sending a body that is too large still gets its 413 when the body is at most
# this big: it is read and dropped first, so that the client is not cut off mid-send.
_DRAIN_LIMIT = 256 * 1024 * 1024


def limit_for(config: ServerConfig, method: str, path: str) -> int | None:
    if method == "PUT" and (_SINGLE_BLOB.match(path) or _WANDB_UPLOAD.match(path)):
        return None
    if method == "PUT" and _WANDB_MANIFEST.match(path):
        return config.max_manifest_bytes
    if path == _BATCH:
        return config.max_batch_bytes
    return config.max_json_bytes


class BodyLimit:
    def __init__(self, app: ASGIApp, *, config: ServerConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(self.config, scope["method"], scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            if declared <= _DRAIN_LIMIT:
                await _drain(receive)
            response = error_response(
                413, "payload_too_large", str(BodyTooLargeError(limit)), Connection="close"
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
