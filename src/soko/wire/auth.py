"""Users, API keys and project roles as the admin endpoints exchange them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from soko.wire.base import WireModel

Role = Literal["viewer", "writer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "writer", "admin")
"""In increasing power: each role may do everything the ones before it may."""

KeyOrigin = Literal["env", "generated", "api"]
"""Where a key came from: ``SOKO_ADMIN_KEY``, printed at the first start, or made through
the API."""


class UserIn(WireModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    admin: bool = False


class UserOut(WireModel):
    name: str
    admin: bool
    created_at: datetime


class UserList(WireModel):
    users: list[UserOut]


class KeyOut(WireModel):
    """A new API key; ``key`` is shown this once and stored only as a hash."""

    key_id: str
    key: str
    user: str


class KeyInfo(WireModel):
    """A key as listings show it: its public id, never its secret or hash. ``origin`` is
    null for keys made before origins were recorded."""

    key_id: str
    created_at: datetime
    revoked_at: datetime | None
    origin: KeyOrigin | None


class KeyList(WireModel):
    keys: list[KeyInfo]


class RoleIn(WireModel):
    """``project`` ``*`` grants the role on every project of the entity."""

    entity: str = Field(min_length=1, max_length=128)
    project: str = Field(min_length=1, max_length=128)
    role: Role


class RoleOut(WireModel):
    entity: str
    project: str
    role: Role


class WhoAmI(WireModel):
    user: str
    admin: bool
    roles: list[RoleOut]
