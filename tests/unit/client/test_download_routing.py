"""Which blobs fetched alone go through the client cache and which straight to the root."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from soko.client import http_download
from soko.client.cache import BlobCache
from soko.client.http_download import BlobDownloads, Single
from soko.client.http_session import ApiSession
from soko.client.statcache import COPY_MIN
from soko.core.digests import Algorithm, Digest

DIGEST = Digest.of_bytes(b"x", Algorithm.XXH128)
LARGE = COPY_MIN


def _downloads(tmp_path: Path, link: str, cache_large: str = "auto") -> BlobDownloads:
    return BlobDownloads(
        cast(ApiSession, None),  # routing asks no server
        BlobCache(tmp_path / "cache"),
        link_mode=link,
        versions_for=lambda digests: {},
        cache_large=cache_large,
    )


@pytest.mark.parametrize(
    ("link", "cache_large", "size", "clones", "through_cache"),
    [
        ("auto", "auto", LARGE, False, False),  # ext4: written once, remembered
        ("auto", "auto", LARGE, True, True),  # btrfs/XFS: cached, cloned into the root
        ("copy", "auto", LARGE, True, False),  # copies asked for: never a second write
        ("reflink", "auto", LARGE, False, True),
        ("hardlink", "auto", LARGE, False, True),  # the root links to the cache's file
        ("symlink", "auto", LARGE, False, True),
        ("auto", "always", LARGE, False, True),  # W&B's way: always in the cache too
        ("copy", "always", LARGE, False, True),
        ("auto", "auto", LARGE - 1, False, True),  # too small to remember as a copy
        ("copy", "auto", None, False, True),  # size unknown: cached, as before
    ],
)
def test_routing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    link: str,
    cache_large: str,
    size: int | None,
    clones: bool,
    through_cache: bool,
) -> None:
    asked: list[Any] = []

    def probe(src: str, dest: str) -> bool:
        asked.append((src, dest))
        return clones

    monkeypatch.setattr(http_download, "clones_between", probe)
    downloads = _downloads(tmp_path, link, cache_large)
    job = Single("version", DIGEST, None, size)
    assert downloads._through_cache(job, str(tmp_path / "root" / "f.bin")) is through_cache
    if asked:
        assert asked == [(str(tmp_path / "cache" / "tmp"), str(tmp_path / "root"))]


def test_soko_cache_large_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from soko import settings
    from soko.errors import ValidationError

    monkeypatch.delenv("SOKO_CACHE_LARGE", raising=False)
    assert settings.load().cache_large == "auto"
    monkeypatch.setenv("SOKO_CACHE_LARGE", "Always")
    assert settings.load().cache_large == "always"
    monkeypatch.setenv("SOKO_CACHE_LARGE", "sometimes")
    with pytest.raises(ValidationError, match="SOKO_CACHE_LARGE must be one of auto, always"):
        settings.load()
