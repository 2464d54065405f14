"""SOKO_ADMIN_KEY at start-up (``bootstrap_admin``) on a SQLite database: the key given is
the one env key of the admin, a new one revokes the old and the generated bootstrap key,
weak keys are refused, and the keys of a user are listed by id without their secrets."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from soko.errors import AuthenticationError, ValidationError
from soko.metadata.engine import open_engine, sqlite_url
from soko.metadata.schema import api_keys
from soko.server.auth import (
    ADMIN_USER,
    add_key,
    authenticate,
    bootstrap_admin,
    hash_key,
    list_keys,
    revoke_key,
)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return open_engine(sqlite_url(tmp_path / "meta.db"))


def operator_key() -> str:
    return f"soko_env_{secrets.token_urlsafe(32)}"


def works(engine: Engine, key: str) -> bool:
    try:
        authenticate(engine, key)
    except AuthenticationError:
        return False
    return True


def test_a_new_soko_admin_key_revokes_the_previous_one(engine: Engine) -> None:
    old, new = operator_key(), operator_key()
    assert bootstrap_admin(engine, env_key=old) is None
    assert works(engine, old)
    bootstrap_admin(engine, env_key=new)
    assert works(engine, new)
    assert not works(engine, old)
    first, second = list_keys(engine, ADMIN_USER)  # oldest first
    assert (first.origin, second.origin) == ("env", "env")
    assert first.revoked_at is not None and second.revoked_at is None


def test_adopting_a_soko_admin_key_revokes_the_generated_key(engine: Engine) -> None:
    printed = bootstrap_admin(engine, env_key=None)  # a first start without SOKO_ADMIN_KEY
    assert printed is not None and works(engine, printed)
    _, made = add_key(engine, ADMIN_USER)
    key = operator_key()
    bootstrap_admin(engine, env_key=key)
    assert works(engine, key) and works(engine, made)
    assert not works(engine, printed)
    origins = {k.origin: k.revoked_at is not None for k in list_keys(engine, ADMIN_USER)}
    assert origins == {"generated": True, "api": False, "env": False}


def test_the_generated_key_put_into_soko_admin_key_becomes_the_env_key(engine: Engine) -> None:
    printed = bootstrap_admin(engine, env_key=None)
    assert printed is not None
    bootstrap_admin(engine, env_key=printed)
    assert works(engine, printed)
    [info] = list_keys(engine, ADMIN_USER)
    assert info.origin == "env" and info.revoked_at is None


def test_rotation_leaves_keys_made_through_the_api_alone(engine: Engine) -> None:
    bootstrap_admin(engine, env_key=operator_key())
    _, made = add_key(engine, ADMIN_USER)
    bootstrap_admin(engine, env_key=operator_key())
    assert works(engine, made)


def test_the_same_key_again_keeps_it_and_adds_nothing(engine: Engine) -> None:
    key = operator_key()
    bootstrap_admin(engine, env_key=key)
    bootstrap_admin(engine, env_key=key)
    assert works(engine, key)
    [only] = list_keys(engine, ADMIN_USER)
    assert only.origin == "env" and only.revoked_at is None


def test_servers_starting_together_with_one_key_keep_it(engine: Engine) -> None:
    key = operator_key()
    ready = threading.Barrier(4)
    failures: list[Exception] = []

    def start() -> None:
        ready.wait()
        try:
            bootstrap_admin(engine, env_key=key)
        except Exception as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert works(engine, key)
    assert len(list_keys(engine, ADMIN_USER)) == 1


def test_a_key_from_before_origins_becomes_the_env_key_and_rotates(engine: Engine) -> None:
    # A database of an older soko: the admin's key from SOKO_ADMIN_KEY has no origin.
    old = operator_key()
    bootstrap_admin(engine, env_key=old)
    with engine.begin() as conn:
        conn.execute(api_keys.update().values(origin=None))
    bootstrap_admin(engine, env_key=old)  # the upgraded server starts with the same key
    assert [k.origin for k in list_keys(engine, ADMIN_USER)] == ["env"]
    bootstrap_admin(engine, env_key=operator_key())
    assert not works(engine, old)


def test_a_revoked_key_is_not_revived(engine: Engine) -> None:
    key = operator_key()
    bootstrap_admin(engine, env_key=key)
    admin = authenticate(engine, key)
    [info] = list_keys(engine, ADMIN_USER)
    revoke_key(engine, info.key_id, by=admin)
    with pytest.raises(ValidationError, match="revoked"):
        bootstrap_admin(engine, env_key=key)
    assert not works(engine, key)


@pytest.mark.parametrize(
    "weak",
    [
        "admin",
        "soko_admin_key_1",  # 16 characters
        "ab" * 20,  # long, but two different characters
        "0123456789" * 3 + "0",  # 31 characters
    ],
)
def test_a_weak_soko_admin_key_is_refused(engine: Engine, weak: str) -> None:
    with pytest.raises(ValidationError, match="SOKO_ADMIN_KEY is too weak") as refused:
        bootstrap_admin(engine, env_key=weak)
    assert weak not in str(refused.value)
    assert "\n" not in str(refused.value)
    with engine.connect() as conn:
        assert conn.execute(select(api_keys.c.id)).first() is None


def test_the_first_start_without_soko_admin_key_prints_a_generated_key(engine: Engine) -> None:
    printed = bootstrap_admin(engine, env_key=None)
    assert printed is not None and works(engine, printed)
    assert bootstrap_admin(engine, env_key=None) is None
    [info] = list_keys(engine, ADMIN_USER)
    assert info.origin == "generated"
    with engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.key_hash)).scalar_one()
    assert stored == hash_key(printed)
