"""One connection pool to a soko server: authentication, retries with back-off, and errors.

Every answer of 400 and above becomes the :mod:`soko.errors` class its JSON body names
(``{"error": {"code", "message"}}``), so a caller catches the same exceptions as with the
embedded store. Connection failures and the answers that mean "try again" (429, 502, 503,
504) are retried (tenacity) with exponential back-off and jitter, or after the delay the
answer's ``Retry-After`` asks for (up to a minute); other errors are not. Presigned bucket
URLs get a client of their own, so the API key never leaves for another host.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import tenacity

from soko.errors import AuthenticationError, ServerUnavailableError, SokoError, error_for_code
from soko.wire import API_PREFIX

T = TypeVar("T")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_ATTEMPTS = 6
_FIRST_DELAY = 0.25
_MAX_DELAY = 8.0


_RETRY_AFTER_MAX = 60.0
"""A server's Retry-After is honoured up to this many seconds: a longer wait is the
server's outage, better reported than slept through."""

_sleep = time.sleep  # tests replace it to see the waits without waiting


class RetryableError(Exception):
    """A failure worth another attempt: the connection, or a 429/502/503/504 answer,
    with the seconds its ``Retry-After`` header asked to wait (None without one)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after(response: httpx.Response) -> float | None:
    """The seconds an answer's ``Retry-After`` asks for (delta-seconds or an HTTP date),
    capped at :data:`_RETRY_AFTER_MAX`; None when it has none or it cannot be read."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(0.0, seconds), _RETRY_AFTER_MAX)


def error_from_response(response: httpx.Response) -> SokoError:
    """The SokoError an error answer stands for."""
    try:
        detail = response.json()["error"]
        code, message = str(detail["code"]), str(detail["message"])
    except (ValueError, KeyError, TypeError):
        text = response.text[:300].strip()
        if response.status_code == 401:
            return AuthenticationError(f"The server refused the API key: {text}")
        return ServerUnavailableError(
            f"HTTP {response.status_code} from {response.request.url}: {text}"
        )
    return error_for_code(code)(message)


def raise_for_status(response: httpx.Response) -> None:
    if response.status_code in RETRY_STATUSES:
        response.read()
        raise RetryableError(
            f"HTTP {response.status_code} from {response.request.url}",
            retry_after=retry_after(response),
        )
    if response.status_code >= 400:
        response.read()
        raise error_from_response(response)


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt *attempt* (1, 2, …): doubling, capped, jittered."""
    return float(min(_MAX_DELAY, _FIRST_DELAY * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0))


def _wait(state: tenacity.RetryCallState) -> float:
    """The server's Retry-After when it sent one, else :func:`backoff`."""
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, RetryableError) and error.retry_after is not None:
        return error.retry_after
    return backoff(state.attempt_number)


class ApiSession:
    def __init__(self, base_url: str, *, api_key: str | None, timeout: float = 300.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "soko-client"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
        timeouts = httpx.Timeout(timeout, connect=15.0)
        self.api = httpx.Client(
            base_url=self.base_url + API_PREFIX, headers=headers, timeout=timeouts, limits=limits
        )
        self.direct = httpx.Client(timeout=timeouts, limits=limits, follow_redirects=True)

    def close(self) -> None:
        self.api.close()
        self.direct.close()

    def retrying(self, operation: Callable[[], T], *, idempotent: bool = True) -> T:
        """Run *operation*, again after a retryable failure; a non-idempotent one only when
        its request cannot have reached the server (the connection was never made)."""

        def worth_retrying(exc: BaseException) -> bool:
            if not isinstance(exc, RetryableError | httpx.TransportError):
                return False
            reached = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            return idempotent or not reached

        retryer = tenacity.Retrying(
            retry=tenacity.retry_if_exception(worth_retrying),
            stop=tenacity.stop_after_attempt(_ATTEMPTS),
            wait=_wait,
            sleep=lambda seconds: _sleep(seconds),
            reraise=True,
        )
        try:
            return retryer(operation)
        except (RetryableError, httpx.TransportError) as exc:
            raise ServerUnavailableError(
                f"The soko server at {self.base_url} did not answer: {exc}"
            ) from exc

    def call(
        self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """One API request, retried, raising the mapped SokoError on an error answer."""

        def attempt() -> httpx.Response:
            response = self.api.request(method, path, **kwargs)
            raise_for_status(response)
            return response

        return self.retrying(attempt, idempotent=idempotent)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.call(method, path, **kwargs).json()

    @contextmanager
    def stream(
        self, method: str, url: str, *, direct: bool = False, **kwargs: Any
    ) -> Iterator[httpx.Response]:
        """A streamed answer (not retried here: the caller retries the whole transfer)."""
        client = self.direct if direct else self.api
        with client.stream(method, url, **kwargs) as response:
            raise_for_status(response)
            yield response


def path_segment(value: str) -> str:
    """*value* quoted as one segment of an API path (a name may hold a slash)."""
    return quote(value, safe="")
