"""Every error answer as ``{"error": {"code", "message"}}`` (see :mod:`soko.wire.errors`).

A :class:`~soko.errors.SokoError` keeps its class's code and HTTP status; request bodies
that do not parse or validate get 400/422 naming the field; a body over its limit gets 413.
Anything unexpected is logged with its traceback and answered 500 ``internal_error``
without details, so that no bad input can make the server leak its internals; that is
:class:`CatchUnexpected`, the outermost middleware, so the connection survives it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from soko.errors import SokoError
from soko.wire import API_PREFIX
from soko.wire.errors import ErrorBody, ErrorDetail

log = logging.getLogger("soko.server")

_HTTP_CODES = {
    400: "validation_error",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}


class BodyTooLargeError(Exception):
    """A request body over the limit of its route; answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than this endpoint's limit of {limit} bytes.")


def error_response(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers or None)


def _describe(errors: list[Any]) -> tuple[int, str]:
    """A status and one readable sentence for pydantic's list of validation errors."""
    parts: list[str] = []
    status = 422
    for error in errors[:5]:
        kind = error.get("type", "")
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        if kind == "json_invalid":
            status = 400
            parts.append(f"the body is not valid JSON ({error.get('ctx', {}).get('error', '')})")
        elif kind == "extra_forbidden":
            parts.append(f"unknown field {where!r}")
        elif kind == "missing":
            parts.append(f"missing field {where!r}")
        elif kind == "value_error":  # a soko.core validator: its own message says it all
            parts.append(f"{where}: {error.get('ctx', {}).get('error', error.get('msg'))}")
        else:
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    if len(errors) > 5:
        parts.append(f"and {len(errors) - 5} more")
    return status, "Bad request: " + "; ".join(str(p).rstrip(".") for p in parts) + "."


def install(app: FastAPI) -> None:
    @app.exception_handler(SokoError)
    async def soko_error(_request: Request, exc: SokoError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("store error: %s", exc, exc_info=exc)
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else {}
        return error_response(exc.http_status, exc.code, str(exc), **headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _describe(list(exc.errors()))
        return error_response(status, "validation_error", message)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if isinstance(exc.__cause__, BodyTooLargeError):
            # FastAPI wraps any failure to read a JSON body into a 400 of its own.
            return await too_large(request, exc.__cause__)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        page = getattr(request.app.state, "ui_not_found", None)
        if (
            exc.status_code == 404
            and message == "Not Found"
            and page is not None
            and not request.url.path.startswith(f"{API_PREFIX}/")
            and "text/html" in request.headers.get("accept", "")
        ):
            answer: Response = page(request)  # a person's browser: the UI's page
            return answer
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such API endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        # Starlette's 405 names the allowed methods in an Allow header (RFC 9110).
        return error_response(exc.status_code, code, message, **(exc.headers or {}))

    @app.exception_handler(BodyTooLargeError)
    async def too_large(_request: Request, exc: BodyTooLargeError) -> JSONResponse:
        return error_response(413, "payload_too_large", str(exc), Connection="close")


_INTERNAL = "Internal server error; the server log has the details."


class CatchUnexpected:
    """Outermost ASGI middleware: an exception that no handler answered stops here.

    Starlette's ServerErrorMiddleware answers such an exception with a 500 and then raises
    it again, for the ASGI server to log; uvicorn then closes the connection, although the
    500 went out without ``Connection: close``, so a keep-alive client's next request on
    that connection failed. Here the exception is logged once, with its traceback, and:

    - before the answer started, answered 500 ``internal_error``; the connection stays
      usable (uvicorn drops whatever of the request body the route did not read);
    - after the answer was complete (a background task failed), left there: the client
      has a well-formed answer and the connection stays usable;
    - in the middle of an answer, which cannot be finished well-formed, the answer is left
      unfinished: the ASGI server closes the connection of an app that returns without
      completing its answer, so the client sees a cut answer, never a short one that looks
      whole, and retries on a new connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled error in %s %s", scope["method"], scope["path"], exc_info=exc)
            if not started:
                response = error_response(500, "internal_error", _INTERNAL)
                await response(scope, receive, send)
