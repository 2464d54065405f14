"""``soko login``: remember a server's URL and API key in ``$SOKO_DIR/config.json``."""

from __future__ import annotations

import json
import os

from soko import settings as settings_module


def login(*, key: str | None, host: str | None) -> bool:
    """Write the server URL and key; without a host this is the embedded store: a no-op."""
    config = settings_module.load()
    if host is None and key is None:
        return True
    path = config.config_path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        current = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        current = {}
    if host is not None:
        current["base_url"] = host.rstrip("/")
    if key is not None:
        current["api_key"] = key
    tmp = f"{path}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(current, handle)
    os.replace(tmp, path)
    return True
