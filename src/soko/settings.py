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
| SOKO_MODE         | a run's mode (see below)                    | online             |
| SOKO_RUN_DIR      | where a run's local files folder goes       | current directory  |

W&B's variables are honoured beside soko's own, which win when both are set:
``WANDB_ENTITY``, ``WANDB_PROJECT``, ``WANDB_MODE`` and ``WANDB_DIR`` (for SOKO_ENTITY,
SOKO_PROJECT, SOKO_MODE and SOKO_RUN_DIR). Modes are W&B's: ``online``, ``offline``,
``shared``, ``dryrun`` and ``run`` all record to the configured store (the embedded store
is local already, so there is nothing to sync later); ``disabled`` records a run's data
and artifacts in a throwaway store that is removed when the process exits.

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
RUN_MODES = ("online", "offline", "shared", "disabled", "dryrun", "run")
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
    mode: str = "online"
    """A run's mode, one of :data:`RUN_MODES` (see the module's docstring)."""
    run_dir: Path | None = None
    """The folder a run's ``wandb/run-…`` files folder goes in; None: the current one."""

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


def _either(name: str) -> str | None:
    """``SOKO_<name>``, else ``WANDB_<name>``: soko's own variable wins."""
    return os.environ.get(f"SOKO_{name}") or os.environ.get(f"WANDB_{name}") or None


def check_mode(mode: str) -> str:
    cleaned = mode.strip().lower()
    if cleaned not in RUN_MODES:
        raise ValidationError(f"A run's mode must be one of {', '.join(RUN_MODES)}, not {mode!r}.")
    return cleaned


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
        entity=_either("ENTITY") or "local",
        project=_either("PROJECT") or "uncategorized",
        cache_max_bytes=parse_size(cache_max) if cache_max else None,
        cache_large=cache_large,
        mode=check_mode(_either("MODE") or "online"),
        run_dir=Path(run_dir).expanduser() if (run_dir := _either_dir()) else None,
    )


def _either_dir() -> str | None:
    return os.environ.get("SOKO_RUN_DIR") or os.environ.get("WANDB_DIR") or None
