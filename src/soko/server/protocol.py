"""uvicorn's HTTP/1.1 protocol (httptools), with large bodies received and sent with less
CPU: the request body in fewer copies, a file sent from the disk to the socket without
passing through Python objects (the ASGI ``http.response.pathsend`` extension).

Receiving: for each piece of a body, uvicorn as it comes appends the piece httptools
hands it to a ``bytearray``, copies that into the ``bytes`` of the ASGI message, and
pauses the socket above 64 KiB buffered, to resume it at the next ``receive``: three
copies of every byte besides the kernel's, and two ``epoll_ctl`` calls per 256 KiB read.
Here the pieces are kept as they come and a message carries the lone piece itself (they
are joined only when several arrived between two ``receive`` calls), and the socket is
paused only past :data:`HIGH_WATER` bytes buffered. (Larger socket reads were tried: a
megabyte per read cost more than it saved, the heap growing and shrinking by a megabyte
at a time.)

Sending a file: uvicorn has no ``pathsend``, so an app (Starlette's ``FileResponse``)
reads the file into ``bytes`` a chunk at a time and hands each to the event loop, which
copies what the socket does not take at once. Here a worker thread writes the file to the
socket itself, once uvicorn's own writes (the headers) are out, and uvicorn then ends the
response as usual. A large file (:data:`DIRECT_READ_MIN`) is read past the page cache
into one reused page-aligned buffer (:class:`~soko.storage.direct.DirectReader`: a blob
read once gains nothing from the cache, and filling it costs as much as the reading),
which is written to the socket; a smaller one goes from the page cache to the socket
without a copy in the process (``sendfile``). Where the connection is not a plain
socket, or the answer not of a known length, the file goes through uvicorn a chunk at a
time.

Only the body's bytes take another path: parsing, headers, keep-alive and pipelining,
timeouts, ``--root-path`` and the forwarded headers stay uvicorn's own. The class is
named by import string in the uvicorn configuration (``http=``), so ``--workers N``
processes use it too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from soko.storage.direct import DirectReader

HIGH_WATER = 512 * 1024
"""Bytes of a body buffered before the socket is paused until the app reads them (two of
asyncio's reads): the memory a connection holds for a body the app reads slower than it
arrives."""
FILE_CHUNK = 4 * 1024 * 1024
"""Bytes of a file read and written to the socket at a time."""
DIRECT_READ_MIN = 64 * 1024 * 1024
"""A file from this size on is read past the page cache; a smaller one (a small blob, a
page's asset, likely read again) goes from the page cache to the socket (``sendfile``)."""
SEND_TIMEOUT = 120.0
"""Seconds a client may take to accept one :data:`FILE_CHUNK` before it is dropped."""
PATHSEND = "http.response.pathsend"
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


Scope = dict[str, Any]
Message = dict[str, Any]

log = logging.getLogger("soko.server")


class SokoHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bodies received and files sent as described above."""

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

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        async def with_pathsend(scope: Scope, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})[PATHSEND] = {}

            async def send_or_pathsend(message: Message) -> None:
                if message["type"] == PATHSEND:
                    await self._send_path(cycle, send, message["path"])
                else:
                    await send(message)

            await app(scope, receive, send_or_pathsend)

        # uvicorn types its apps with its own scope and message types; these are plain dicts.
        super()._start_asgi_task(cycle, with_pathsend)  # type: ignore[arg-type]

    async def _send_path(self, cycle: RequestResponseCycle, send: Any, path: str) -> None:
        """The file at *path* as the body of the response whose headers are sent."""
        sock = self.transport.get_extra_info("socket")
        direct = (
            cycle.chunked_encoding is False
            and cycle.scope["method"] != "HEAD"
            and sock is not None
            and self.transport.get_extra_info("sslcontext") is None
        )
        if not direct:
            await _send_path_through(self.loop, send, path)
            return
        await self._drained(cycle)
        if cycle.disconnected:
            return
        stop = threading.Event()
        size = cycle.expected_content_length
        try:
            sent = await self.loop.run_in_executor(
                None, _send_file, sock.fileno(), path, size, stop
            )
        except OSError as exc:
            # The client went away or stopped reading: the connection ends here, as
            # uvicorn ends one whose client is gone.
            log.info("sending %s ended: %s", os.path.basename(path), exc)
            cycle.disconnected = True
            self.transport.close()
            return
        finally:
            stop.set()  # a cancelled task stops the thread at its next chunk
        cycle.expected_content_length -= sent
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _drained(self, cycle: RequestResponseCycle) -> None:
        """Once every byte uvicorn wrote (the headers) has left for the socket."""
        transport = self.transport
        if not transport.get_write_buffer_size():
            return
        # Writing is paused above the high mark and resumed at the low one: at 0, resumed
        # when the buffer is empty.
        transport.set_write_buffer_limits(high=0)
        try:
            while transport.get_write_buffer_size() and not cycle.disconnected:
                await cycle.flow.drain()
        finally:
            transport.set_write_buffer_limits()


def _send_file(fd: int, path: str, size: int, stop: threading.Event) -> int:
    """Write the first *size* bytes of the file at *path* to the socket *fd* (non-blocking,
    the event loop's); the number written."""
    sent = 0
    out = socket.socket(fileno=os.dup(fd))
    try:
        out.settimeout(SEND_TIMEOUT)
        if size < DIRECT_READ_MIN:
            with open(path, "rb") as file:
                return out.sendfile(file, 0, size)
        reader = DirectReader(path, chunk=FILE_CHUNK, piece=FILE_CHUNK, buffers=2)
        # The next chunk is read while this one is sent, as the kernel's read-ahead
        # would: a direct read waits for the disk.
        ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="soko-read")
        try:
            pending = ahead.submit(reader.read_view)
            while sent < size and not stop.is_set():
                view = pending.result()
                if not view:
                    break
                pending = ahead.submit(reader.read_view)
                out.sendall(view[: size - sent])
                sent += min(len(view), size - sent)
                del view  # before the reader closes its buffers
        finally:
            ahead.shutdown(wait=True)  # no read in flight into a buffer closed here
            reader.close()
    finally:
        out.close()
    return sent


async def _send_path_through(loop: asyncio.AbstractEventLoop, send: Any, path: str) -> None:
    """The file at *path* sent through uvicorn, a chunk at a time."""
    with open(path, "rb") as file:
        while chunk := await loop.run_in_executor(None, file.read, FILE_CHUNK // 4):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
