"""uvicorn's HTTP/1.1 protocol (httptools), with a large request body received in fewer
copies and without pausing the socket after every read.

For each piece of a body, uvicorn as it comes reads at most 256 KiB from the socket,
appends the piece httptools hands it to a ``bytearray``, copies that into the ``bytes``
of the ASGI message, and pauses the socket above 64 KiB buffered, to resume it at the
next ``receive``: three copies of every byte besides the kernel's, and two ``epoll_ctl``
calls per 256 KiB. Here the pieces are kept as they come and a message carries the lone
piece itself (they are joined only when several arrived between two ``receive`` calls),
and the socket is paused only past :data:`HIGH_WATER` bytes buffered. (Larger socket reads
were tried: a megabyte per read cost more than it saved, the heap growing and shrinking
by a megabyte at a time.)

Only the body's reception differs: parsing, responses, keep-alive and pipelining,
timeouts, ``--root-path`` and the forwarded headers stay uvicorn's own. The class is
named by import string in the uvicorn configuration (``http=``), so ``--workers N``
processes use it too.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HIGH_WATER = 512 * 1024
"""Bytes of a body buffered before the socket is paused until the app reads them (two of
asyncio's reads): the memory a connection holds for a body the app reads slower than it
arrives."""
PROTOCOL = "soko.server.protocol:SokoHttpProtocol"
"""The class as uvicorn's ``http`` option names it."""


class BodyPieces:
    """A request's body pieces received and not yet handed to the app, in the place of
    uvicorn's ``bytearray`` (which its ``receive`` turns into ``bytes`` and then resets)."""

    __slots__ = ("_pieces", "_size")

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._size = 0

    def append(self, piece: bytes) -> None:
        self._pieces.append(piece)
        self._size += len(piece)

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        pieces = self._pieces
        if len(pieces) == 1:
            return pieces[0]  # no copy: the usual case, a piece per receive
        return b"".join(pieces)


class SokoHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the body received as described above."""

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        pending: Any = cycle.body
        if type(pending) is not BodyPieces:
            # A new request, or uvicorn's receive has just reset the buffer.
            if pending:
                raise RuntimeError("uvicorn buffered body bytes outside of BodyPieces")
            pending = cycle.body = BodyPieces()  # type: ignore[assignment]
        pending.append(body)
        if len(pending) > HIGH_WATER:
            self.flow.pause_reading()
        cycle.message_event.set()
