"""Sending the outbox of automations (:mod:`soko.service.automations`) to the webhooks.

:func:`deliver_due` claims the deliveries that are due, POSTs each with its signature and
records the attempt. Claiming moves a row's next attempt a lease ahead inside one short
transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that several workers share the
rows; SQLite's write lock serialises them), so a worker that dies mid-send leaves the row
to be retried once the lease passes: delivery is at least once, and a receiver drops
repeats by the ``X-Soko-Event-Id`` header. A failed attempt is retried after 1 s, doubling
up to 5 min, until the retry window (24 h after the event) has passed: then ``failed``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event, select, update

if TYPE_CHECKING:
    import httpx

from soko.core.automations import (
    DELIVERED,
    EVENT_ID_HEADER,
    FAILED,
    PENDING,
    SIGNATURE_HEADER,
)
from soko.metadata.schema import automations, deliveries
from soko.service.automations import EVENTS_WRITTEN, utc
from soko.service.catalog import now
from soko.service.store import Store

TIMEOUT_SECONDS = 10.0
FIRST_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(minutes=5)
RETRY_WINDOW = timedelta(hours=24)
LEASE = timedelta(seconds=60)
"""How long a claimed row is left to its worker: longer than one POST can take."""
BATCH = 50
EXIT_WAIT_SECONDS = 2.0
_COMMITTED_EVENTS = "soko_events_committed"
"""Left in a connection's ``info`` by a commit that wrote events, until it is checked in."""

DELIVERED_NOW = "delivered"
RETRYING = "retried"
GIVEN_UP = "failed"
OnAttempt = Callable[[str, float], None]
"""Told of each attempt: its outcome (:data:`DELIVERED_NOW`, :data:`RETRYING` when it failed
and will be tried again, :data:`GIVEN_UP` when it failed for good) and its duration in
seconds. A server counts them into its metrics."""


def signature(secret: str, body: bytes) -> str:
    """The ``X-Soko-Signature`` header of *body*."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    """The wait after the *attempts*-th failed attempt."""
    wait: timedelta = FIRST_BACKOFF * (2 ** min(attempts - 1, 20))
    return min(wait, MAX_BACKOFF)


def deliver_due(
    store: Store,
    *,
    at: datetime | None = None,
    client: httpx.Client | None = None,
    limit: int = BATCH,
    on_attempt: OnAttempt | None = None,
) -> int:
    """Attempt up to *limit* deliveries due at *at* (default: now); returns how many were
    attempted. *at* lets a caller (a test) stand at a later time instead of waiting."""
    moment = at or now()
    with store.engine.begin() as conn:
        claimed = conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.event_id,
                deliveries.c.payload,
                deliveries.c.attempts,
                deliveries.c.created_at,
                automations.c.url,
                automations.c.secret,
            )
            .join(automations, automations.c.id == deliveries.c.automation_id)
            .where(
                deliveries.c.status == PENDING,
                deliveries.c.next_attempt_at <= moment,
                automations.c.enabled.is_(True),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=deliveries)
        ).all()
        if not claimed:
            return 0
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_([row.id for row in claimed]))
            .values(next_attempt_at=moment + LEASE)
        )
    # httpx loads only when there is something to send: the embedded store asks for due
    # deliveries at every commit, and importing httpx costs a script ~80 ms at start-up.
    import httpx

    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS)
    try:
        for row in claimed:
            outcome, seconds = _attempt(store, http, row, moment)
            if on_attempt is not None:
                on_attempt(outcome, seconds)
    finally:
        if own:
            http.close()
    return len(claimed)


def _attempt(store: Store, http: httpx.Client, row: Any, moment: datetime) -> tuple[str, float]:
    import httpx  # loaded by deliver_due already

    body = row.payload.encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(row.secret, body),
        EVENT_ID_HEADER: row.event_id,
        "User-Agent": "soko-webhooks",
    }
    code: int | None = None
    error: str | None = None
    started = time.perf_counter()
    try:
        response = http.post(row.url, content=body, headers=headers)
        code = response.status_code
        if not 200 <= code < 300:
            error = f"HTTP {code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    seconds = time.perf_counter() - started
    latency = seconds * 1000
    outcome = DELIVERED_NOW
    attempts = row.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": code,
        "last_latency_ms": latency,
        "last_error": error,
        "updated_at": now(),
    }
    if error is None:
        values["status"] = DELIVERED
    else:
        retry_at = moment + backoff(attempts)
        if retry_at > utc(row.created_at) + RETRY_WINDOW:
            values["status"] = FAILED
            outcome = GIVEN_UP
        else:
            values["next_attempt_at"] = retry_at
            outcome = RETRYING
    with store.engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
    return outcome, seconds


def drain(store: Store, *, at: datetime | None = None, on_attempt: OnAttempt | None = None) -> int:
    """Attempt every delivery due at *at*, batch after batch; returns how many."""
    total = 0
    while True:
        done = deliver_due(store, at=at, on_attempt=on_attempt)
        total += done
        if done < BATCH:
            return total


class DeliveryWorker:
    """A daemon thread sending due deliveries: every *interval* seconds, or at once when
    :meth:`wake` is called (after a commit). :meth:`stop` ends it between batches."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float = 1.0,
        on_error: Callable[[Exception], None],
        on_attempt: OnAttempt | None = None,
    ) -> None:
        self._store = store
        self._on_attempt = on_attempt
        self._interval = interval
        self._on_error = on_error
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soko-webhooks", daemon=True)

    def start(self) -> None:
        event.listen(self._store.engine, "commit", self._on_commit)
        event.listen(self._store.engine, "rollback", self._on_rollback)
        event.listen(self._store.engine, "checkin", self._on_checkin)
        self._thread.start()

    def _on_commit(self, conn: Connection) -> None:
        # Fired just before the commit, when the worker could not see the rows yet: it is
        # woken once the connection goes back to the pool, after the commit.
        if conn.info.pop(EVENTS_WRITTEN, False):
            conn.info[_COMMITTED_EVENTS] = True

    def _on_checkin(self, _dbapi_connection: Any, record: Any) -> None:
        if record.info.pop(_COMMITTED_EVENTS, False):
            self._wake.set()

    def _on_rollback(self, conn: Connection) -> None:
        conn.info.pop(EVENTS_WRITTEN, None)

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = TIMEOUT_SECONDS + 5) -> None:
        event.remove(self._store.engine, "commit", self._on_commit)
        event.remove(self._store.engine, "rollback", self._on_rollback)
        event.remove(self._store.engine, "checkin", self._on_checkin)
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                drain(self._store, on_attempt=self._on_attempt)
            except Exception as exc:  # a database hiccup must not end the worker
                self._on_error(exc)
            self._wake.wait(self._interval)


HAS_PENDING = (
    select(deliveries.c.id)
    .join(automations, automations.c.id == deliveries.c.automation_id)
    .where(deliveries.c.status == PENDING, automations.c.enabled.is_(True))
    .limit(1)
)
"""Whether a delivery is due: also run through sqlite3 as SQL text that a test checks
against this (soko.service.lite)."""


def has_pending(store: Store) -> bool:
    with store.engine.connect() as conn:
        found = conn.execute(HAS_PENDING).first()
    return found is not None


class InProcessSender:
    """The embedded store's sender: :meth:`kick` (after a commit, link or alias change, and
    at a run's start) sends what is due on a daemon thread, the caller never waiting. Best
    effort: what is not delivered when the process ends, and retries not yet due, stay in
    the outbox until the next kick of any process on the store. At exit, a process waits up
    to :data:`EXIT_WAIT_SECONDS` for its sending."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False
        self._at_exit = False

    def kick(self) -> None:
        if self._busy():
            return
        if not has_pending(self._store):
            return
        with self._lock:
            if self._thread is not None:
                self._again = True
                return
            self._thread = threading.Thread(target=self._run, name="soko-webhooks", daemon=True)
            self._thread.start()
            if not self._at_exit:
                # A short-lived process (a CLI command, a script) gives its sending a
                # moment to finish; what is left stays pending in the outbox.
                atexit.register(self.join, EXIT_WAIT_SECONDS)
                self._at_exit = True

    def _busy(self) -> bool:
        with self._lock:
            if self._thread is not None:
                self._again = True
                return True
            return False

    def join(self, timeout: float | None = None) -> None:
        """Wait for the sending in progress (tests, and a process about to end)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            # Best effort: on an error the rows stay pending for the next kick.
            with contextlib.suppress(Exception):
                drain(self._store)
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False
