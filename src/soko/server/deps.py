"""FastAPI dependencies: the server state and the authenticated caller of a request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from soko.server import auth
from soko.server.auth import Principal
from soko.server.state import ServerState


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.soko
    return state


def api_key_of(request: Request) -> str | None:
    """The key of ``Authorization: Bearer <key>`` (or of an ``X-Soko-Api-Key`` header)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-soko-api-key") or None


def get_principal(request: Request) -> Principal:
    return auth.authenticate(get_state(request).store.engine, api_key_of(request))


State = Annotated[ServerState, Depends(get_state)]
Caller = Annotated[Principal, Depends(get_principal)]
