"""A backend is built from the settings it is given, not from the environment read again."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from soko import settings
from soko.client import connect
from soko.client.http import HttpBackend


def test_a_server_backend_uses_the_settings_it_is_given(soko_env: Any, tmp_path: Path) -> None:
    given = dataclasses.replace(
        settings.load(),
        base_url="http://127.0.0.1:9",
        api_key="given-key",
        cache_dir=tmp_path / "given-cache",
        link_mode="copy",
        cache_large="always",
    )
    backend = connect.get_backend(given)
    try:
        assert isinstance(backend, HttpBackend)
        assert Path(backend.cache.root) == tmp_path / "given-cache"  # not SOKO_CACHE_DIR
        assert backend.link_mode == "copy"
        assert backend.session.api.headers["Authorization"] == "Bearer given-key"
        assert backend._downloads.cache_large == "always"
    finally:
        backend.close()
