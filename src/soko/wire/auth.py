"""Users, API keys and project roles as the admin endpoints exchange them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from soko.wire.base import WireModel

Role = Literal["viewer", "writer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "writer", "admin")
"""In increasing power: each role may do everything the ones before it may."""


class UserIn(WireModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    admin: bool = False


class UserOut(WireModel):
    name: str
    admin: bool
    created_at: datetime


class KeyOut(WireModel):
    """A new API key; ``key`` is shown this once and stored only as a hash."""

    key_id: str
    key: str
    user: str


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
