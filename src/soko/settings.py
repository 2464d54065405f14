"""soko's settings: ``SOKO_*`` environment variables over the config file, read when asked.

Nothing is read at import time: :func:`load` resolves the settings each time it is called,
so a test or a user can change the environment between two calls.

| variable          | meaning                                     | default            |
| ----------------- | ------------------------------------------- | ------------------ |
| SOKO_DIR          | the embedded store (and the server's data)  | ~/.soko            |
| SOKO_CACHE_DIR    | the client's download cache                 | ~/.cache/soko      |
| SOKO_BASE_URL     | a soko server; unset → the embedded store   | (config file)      |
| SOKO_API_KEY      | the key for that server                     | (config file)      |
| SOKO_LINK         | copy, reflink, hardlink, symlink or auto    | auto               |
| SOKO_SILENT       | true → no progress bars or messages         | false              |
| SOKO_ENTITY       | default entity                              | local              |
| SOKO_PROJECT      | default project                             | uncategorized      |
| SOKO_CACHE_MAX    | optional size cap of the cache ("20GB")     | none               |
| SOKO_CACHE_LARGE  | auto, or always (large blobs in the cache)  | auto               |
| SOKO_DIGEST_ALGORITHM | entry digests of new artifacts: XXH128 or MD5 (W&B's) | XXH128 |

``soko login`` writes ``base_url`` and ``api_key`` to ``$SOKO_DIR/config.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from soko.errors import ValidationError

LINK_MODES = ("auto", "copy", "reflink", "hardlink", "symlink")
CACHE_LARGE_MODES = ("auto", "always")
DIGEST_ALGORITHMS = ("XXH128", "MD5")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    soko_dir: Path
    cache_dir: Path
    base_url: str | None
    api_key: str | None
    link_mode: str
    silent: bool
    entity: str
    project: str
    cache_max_bytes: int | None
    cache_large: str = "auto"
    """``always``: a large blob downloaded from a server is kept in the cache even where
    that costs a second write (no reflinks); ``auto``: only where it does not."""
    digest_algorithm: str = "XXH128"
    """The algorithm of an artifact made without ``digest_algorithm=``: ``MD5`` gives the
    entry digests (and digest-named media files) W&B's default gives."""

    @property
    def config_path(self) -> Path:
        return self.soko_dir / "config.json"


def parse_size(text: str) -> int:
    """Parse ``"500MB"``, ``"2GiB"``, ``"1024"`` into bytes (decimal and binary units)."""
    units = {
        "": 1, "b": 1,
        "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
        "t": 1000**4, "tb": 1000**4,
        "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
    }  # fmt: skip
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = cleaned[len(number) :]
    try:
        value = float(number)
    except ValueError:
        raise ValidationError(
            f"Cannot parse size {text!r}: use e.g. 500MB, 2GiB or 1024."
        ) from None
    if unit not in units or value < 0:
        raise ValidationError(f"Cannot parse size {text!r}: use e.g. 500MB, 2GiB or 1024.")
    return int(value * units[unit])


def _read_config(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def digest_algorithm() -> str:
    """``SOKO_DIGEST_ALGORITHM`` (``XXH128`` when unset), read alone: an artifact asks for
    it when it is made, and that must not cost a read of the config file."""
    value = (os.environ.get("SOKO_DIGEST_ALGORITHM") or "XXH128").upper()
    if value not in DIGEST_ALGORITHMS:
        raise ValidationError(
            f"SOKO_DIGEST_ALGORITHM must be one of {', '.join(DIGEST_ALGORITHMS)}, "
            f"not {os.environ.get('SOKO_DIGEST_ALGORITHM')!r}"
        )
    return value


def load() -> Settings:
    env = os.environ
    soko_dir = Path(env.get("SOKO_DIR") or Path.home() / ".soko").expanduser()
    config = _read_config(soko_dir / "config.json")
    cache_dir = Path(env.get("SOKO_CACHE_DIR") or Path.home() / ".cache" / "soko").expanduser()
    link_mode = (env.get("SOKO_LINK") or "auto").lower()
    if link_mode not in LINK_MODES:
        raise ValidationError(
            f"SOKO_LINK must be one of {', '.join(LINK_MODES)}, not {link_mode!r}"
        )
    cache_max = env.get("SOKO_CACHE_MAX")
    cache_large = (env.get("SOKO_CACHE_LARGE") or "auto").lower()
    if cache_large not in CACHE_LARGE_MODES:
        raise ValidationError(
            f"SOKO_CACHE_LARGE must be one of {', '.join(CACHE_LARGE_MODES)}, "
            f"not {cache_large!r}"
        )
    return Settings(
        soko_dir=soko_dir,
        cache_dir=cache_dir,
        base_url=env.get("SOKO_BASE_URL") or config.get("base_url") or None,
        api_key=env.get("SOKO_API_KEY") or config.get("api_key") or None,
        link_mode=link_mode,
        silent=(env.get("SOKO_SILENT") or env.get("WANDB_SILENT") or "").lower() in _TRUE,
        entity=env.get("SOKO_ENTITY") or "local",
        project=env.get("SOKO_PROJECT") or "uncategorized",
        cache_max_bytes=parse_size(cache_max) if cache_max else None,
        cache_large=cache_large,
        digest_algorithm=digest_algorithm(),
    )
