"""Users, API keys and project roles as the admin endpoints exchange them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from soko.core.names import NAME_MAX_LENGTH
from soko.wire.base import WireModel
from soko.wire.fields import ProjectName, UtcDatetime

Role = Literal["viewer", "writer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "writer", "admin")
"""In increasing power: each role may do everything the ones before it may."""

KeyOrigin = Literal["env", "generated", "api"]
"""Where a key came from: ``SOKO_ADMIN_KEY``, printed at the first start, or made through
the API."""


UserName = Annotated[
    str, Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=r"^[A-Za-z0-9_.@-]+$")
]


class UserIn(WireModel):
    name: UserName
    admin: bool = False


class UserOut(WireModel):
    name: str
    admin: bool
    created_at: UtcDatetime
    disabled_at: UtcDatetime | None = None
    """When the user was disabled (its keys are refused); null for an active user."""


class UserPatch(WireModel):
    disabled: bool


class UserList(WireModel):
    users: list[UserOut]


class KeyIn(WireModel):
    """``expires_at``: the key is refused from then on (in the future); null: never."""

    expires_at: UtcDatetime | None = None


class KeyOut(WireModel):
    """A new API key; ``key`` is shown this once and stored only as a hash."""

    key_id: str
    key: str
    user: str
    expires_at: UtcDatetime | None = None


class KeyInfo(WireModel):
    """A key as listings show it: its public id, never its secret or hash. ``origin`` is
    null for keys made before origins were recorded."""

    key_id: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None
    origin: KeyOrigin | None
    expires_at: UtcDatetime | None = None


class KeyList(WireModel):
    keys: list[KeyInfo]


def _w_and_b_role(value: object) -> object:
    # W&B calls a registry's writers "Member"; a grant written that way means writer.
    return "writer" if value == "member" else value


class RoleIn(WireModel):
    """``project`` ``*`` grants the role on every project of the entity; ``member`` (W&B's
    name on a registry) is taken for ``writer``."""

    entity: ProjectName
    project: ProjectName
    role: Annotated[Role, BeforeValidator(_w_and_b_role)]


class RoleOut(WireModel):
    entity: str
    project: str
    role: Role


class RoleList(WireModel):
    roles: list[RoleOut]


class WhoAmI(WireModel):
    user: str
    admin: bool
    roles: list[RoleOut]
