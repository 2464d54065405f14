"""Credentials for a soko server: checked against it, kept in the user's config file.

``soko login`` asks the server who holds the key (``GET /api/v1/whoami``) before it writes
anything, so a wrong key or an unreachable server is an error, not a silent switch away
from the embedded store. The server's URL and key go to ``config.json`` in the user's
config folder (:attr:`soko.settings.Settings.config_path`, mode 0600), never into the
store: a store may be shared, copied or backed up, a key must not travel with it.
``$SOKO_DIR/config.json``, where they were kept before, is still read when the new file
does not exist, and ``logout`` removes them from both.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from soko import settings as settings_module
from soko.errors import AuthenticationError, StoreError, ValidationError

CHECK_TIMEOUT = 10.0
"""Seconds a login waits for the server: one attempt, no retries (a person is waiting)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a key belongs to, as the server says."""

    user: str
    admin: bool
    roles: list[tuple[str, str, str]] = field(default_factory=list)
    """``(entity, project, role)``; project ``*`` for a grant on a whole entity."""


def check_key(base_url: str, key: str, *, timeout: float = CHECK_TIMEOUT) -> Identity:
    """The user holding *key* on the server at *base_url*.

    AuthenticationError when the server refuses the key, StoreError when nothing answers
    at that URL or what answers is not a soko server.
    """
    import httpx

    from soko.client.http_session import error_from_response
    from soko.wire import API_PREFIX

    url = f"{base_url.rstrip('/')}{API_PREFIX}/whoami"
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "soko-client"}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise StoreError(f"Cannot reach a soko server at {base_url}: {exc}") from None
    if response.status_code in (401, 403):
        error = error_from_response(response)
        raise AuthenticationError(
            f"The server at {base_url} refused the API key: {error}"
        ) from None
    if response.status_code >= 400:
        raise StoreError(
            f"{base_url} did not answer as a soko server (HTTP {response.status_code} from {url})."
        )
    return _identity(response, base_url)


def _identity(response: Any, base_url: str) -> Identity:
    try:
        data = response.json()
        roles = [(str(r["entity"]), str(r["project"]), str(r["role"])) for r in data["roles"]]
        return Identity(user=str(data["user"]), admin=bool(data["admin"]), roles=roles)
    except (ValueError, KeyError, TypeError):
        raise StoreError(
            f"{base_url} did not answer as a soko server (its whoami answer is not soko's)."
        ) from None


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write *data* as JSON readable by its owner only, replacing *path* in one rename."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_credentials(
    config: settings_module.Settings, *, base_url: str | None, api_key: str | None
) -> Path:
    """Put the server and key given into the user's config file; returns its path."""
    path = config.config_path
    current = settings_module.read_config(path) or {}
    if base_url is not None:
        current["base_url"] = base_url.rstrip("/")
    if api_key is not None:
        current["api_key"] = api_key
    _write_private(path, current)
    return path


def remove_credentials(config: settings_module.Settings) -> list[Path]:
    """Remove the server and key from the config file and from the old one in SOKO_DIR;
    a file left empty is deleted. Returns the files that held any."""
    changed: list[Path] = []
    for path in (config.config_path, config.legacy_config_path):
        current = settings_module.read_config(path)
        if current is None or not any(k in current for k in settings_module.CREDENTIAL_KEYS):
            continue
        remaining = {k: v for k, v in current.items() if k not in settings_module.CREDENTIAL_KEYS}
        if remaining:
            _write_private(path, remaining)
        else:
            path.unlink()
        changed.append(path)
    return changed


def login(*, key: str | None, host: str | None) -> bool:
    """``soko.login``: store the server URL and key, unchecked, as ``wandb.login`` does by
    default (``soko login`` on the command line checks them first); without either, the
    embedded store: nothing to do."""
    if host is None and key is None:
        return True
    if key is not None and not key.strip():
        raise ValidationError("The API key is empty.")
    save_credentials(settings_module.load(), base_url=host, api_key=key)
    return True
