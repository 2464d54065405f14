"""What a server tells its operator about the requests it serves: metrics and access logs.

:class:`Observe` is pure ASGI middleware, so that it sees every request (errors, 413s and
streamed bodies too) and adds one function call per body chunk, no buffering. It counts
into a :class:`Metrics` of the app, served in Prometheus' text format at ``/metrics``
(outside ``/api/v1``, where scrapers look, and without a key: it holds counts, no names of
projects or users), and writes one access log line per request when asked to.

Routes are labelled by their template (``/api/v1/versions/{version_id}``), never by the
path itself, so that the number of series stays bounded whatever clients ask for.

With several server processes (``--workers``), each counts into files under
``PROMETHEUS_MULTIPROC_DIR`` (set by ``soko server`` for its workers) and any of them
answers ``/metrics`` with the sum over all, as prometheus-client's multiprocess mode does.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

METRICS_PATH = "/metrics"
ACCESS_LOGGER = "soko.access"
_COMMIT_ROUTES = frozenset({("POST", "/api/v1/versions"), ("POST", "/api/v1/versions/finish")})
"""The routes whose success is a committed version: a log, and the finish of a distributed
version (its upserts only add entries to the pending version)."""
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    """The counters of one app, in a registry of its own (several apps may share a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("method", "route")
        self.requests = Counter(
            "soko_http_requests",
            "HTTP requests answered, by route template and status",
            (*labels, "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "soko_http_request_duration_seconds",
            "Time from a request's start to the end of its answer",
            labels,
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.bytes_in = Counter(
            "soko_http_received_bytes", "Request body bytes", labels, registry=self.registry
        )
        self.bytes_out = Counter(
            "soko_http_sent_bytes", "Response body bytes sent", labels, registry=self.registry
        )
        self.commits = Counter(
            "soko_commits",
            "Successful commits (a log, or the finish of a distributed version); a log of "
            "content committed already counts too",
            registry=self.registry,
        )
        self.gc_runs = Counter(
            "soko_gc_runs", "Garbage collections run through this server", registry=self.registry
        )
        self.gc_deleted_blobs = Counter(
            "soko_gc_deleted_blobs", "Blobs deleted by garbage collection", registry=self.registry
        )
        self.gc_freed_bytes = Counter(
            "soko_gc_freed_bytes", "Bytes freed by garbage collection", registry=self.registry
        )
        self.wandb_upload_urls = Counter(
            "soko_wandb_upload_urls",
            "Upload URLs handed to wandb clients (one per blob a project lacks; none for "
            "content it holds already)",
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "soko_webhook_attempts",
            "Webhook deliveries attempted by this server's workers, by outcome: delivered, "
            "retried (failed, to be tried again) or failed (given up)",
            ("outcome",),
            registry=self.registry,
        )
        self.webhook_duration = Histogram(
            "soko_webhook_attempt_duration_seconds",
            "Time from a webhook request's start to its answer (or error)",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def webhook_attempt(self, outcome: str, seconds: float) -> None:
        """Count one attempt of the delivery worker (soko.service.webhooks.OnAttempt)."""
        self.webhook_attempts.labels(outcome).inc()
        self.webhook_duration.observe(seconds)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format (summed over processes in multiprocess
        mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def configure_access_log(log_format: str) -> None:
    """Send the ``soko.access`` logger to stderr, one line per request (text or JSON)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not any(getattr(h, "_soko_access", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._soko_access = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


class Observe:
    """Counts every HTTP request into *metrics*; logs it when *access_log* is text or json."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics, access_log: str = "off") -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self._logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        received = 0
        sent = 0
        status = 500

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal sent, status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":
                # The ASGI server sends the file itself: all of it, or the client is gone.
                sent += os.path.getsize(message["path"])
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, status, received, sent, elapsed)

    def _record(self, scope: Scope, status: int, received: int, sent: int, elapsed: float) -> None:
        method = scope["method"]
        route = _route_of(scope)
        metrics = self.metrics
        metrics.requests.labels(method, route, str(status)).inc()
        metrics.latency.labels(method, route).observe(elapsed)
        if received:
            metrics.bytes_in.labels(method, route).inc(received)
        if sent:
            metrics.bytes_out.labels(method, route).inc(sent)
        if status < 300 and (method, route) in _COMMIT_ROUTES:
            metrics.commits.inc()
        if self.access_log != "off":
            self._log(scope, status, received, sent, elapsed, route)

    def _log(
        self, scope: Scope, status: int, received: int, sent: int, elapsed: float, route: str
    ) -> None:
        client = scope.get("client")
        address = f"{client[0]}:{client[1]}" if client else "-"
        path = scope["path"]
        if self.access_log == "json":
            line = json.dumps(
                {
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "client": client[0] if client else None,
                    "method": scope["method"],
                    "path": path,
                    "route": route,
                    "status": status,
                    "bytes_in": received,
                    "bytes_out": sent,
                    "duration_ms": round(elapsed * 1000, 3),
                },
                separators=(",", ":"),
            )
        else:
            line = (
                f'{address} "{scope["method"]} {path}" {status} in={received}B out={sent}B '
                f"{elapsed * 1000:.1f}ms"
            )
        self._logger.info(line)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else "unmatched"
