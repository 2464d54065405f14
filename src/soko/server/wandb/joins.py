"""Joins of a file's parts, run in the background: one per file per server process.

Joining a large file's parts means hashing all its bytes (and, on S3, reading them back and
copying them): a minute or more for a file of several GiB. The `wandb` client gives a
GraphQL request 30 s, then asks again, and again, for many minutes. So the request that
completes an upload starts the join here and waits a while for it; while it runs, a request
is answered "ask again" (503, which the client retries), and one that comes while it runs
waits for the same join instead of starting a second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

WAIT_SECONDS = 20.0
"""How long a request waits for a join: less than the client's 30 s per request."""
_WORKERS = 2


class Joins:
    """The joins running in one server process, by key (the file and whom it is for)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, Future[int]] = {}
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="soko-join")

    def run(self, key: str, job: Callable[[], int], *, wait: float = WAIT_SECONDS) -> int | None:
        """Start *job* for *key* unless it is running already, and wait up to *wait*
        seconds for it: its result, None while it still runs; its error is raised. A join
        that ended is forgotten once a request has seen its end."""
        with self._lock:
            future = self._running.get(key)
            if future is None:
                future = self._pool.submit(job)
                self._running[key] = future
        try:
            result = future.result(timeout=wait)
        except FutureTimeout:
            return None
        finally:
            if future.done():
                with self._lock:
                    if self._running.get(key) is future:
                        del self._running[key]
        return result
