"""Choosing the backend: a server when SOKO_BASE_URL (or ``soko login``) says so, else the
embedded store in SOKO_DIR. One backend per configuration per process."""

from __future__ import annotations

import threading

from soko import settings as settings_module
from soko.client.backend import Backend
from soko.client.statcache import STAT_CACHE_FILE, StatCache
from soko.errors import StoreError

_lock = threading.Lock()
_backends: dict[tuple[str, str], Backend] = {}
_stat_caches: dict[str, StatCache] = {}


def get_backend(config: settings_module.Settings | None = None) -> Backend:
    config = config or settings_module.load()
    if config.base_url:
        key = ("http", config.base_url)
    else:
        key = ("local", str(config.soko_dir.resolve()))
    with _lock:
        backend = _backends.get(key)
        if backend is None:
            if config.base_url:
                backend = _http_backend(config)
            else:
                # The service and SQLAlchemy load when the embedded store is first used,
                # not with ``import soko``.
                from soko.client.local import LocalBackend

                backend = LocalBackend(config.soko_dir, link_mode=config.link_mode)
            _backends[key] = backend
        return backend


def _http_backend(config: settings_module.Settings) -> Backend:
    try:
        # httpx loads when a server is first used, not with ``import soko``.
        from soko.client.http import HttpBackend
    except ImportError:
        raise StoreError(
            f"SOKO_BASE_URL is set ({config.base_url}) but this soko has no HTTP client; "
            "unset it to use the embedded store."
        ) from None
    return HttpBackend(config, stat_cache=_stat_cache_locked(config))


def get_stat_cache(config: settings_module.Settings | None = None) -> StatCache:
    config = config or settings_module.load()
    with _lock:
        return _stat_cache_locked(config)


def _stat_cache_locked(config: settings_module.Settings) -> StatCache:
    key = str(config.cache_dir)
    cache = _stat_caches.get(key)
    if cache is None:
        cache = StatCache(config.cache_dir / STAT_CACHE_FILE)
        _stat_caches[key] = cache
    return cache


def reset() -> None:
    """Forget every open backend (tests switch SOKO_DIR between cases)."""
    with _lock:
        _backends.clear()
        _stat_caches.clear()
