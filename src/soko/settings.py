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
| SOKO_CONFIG_DIR   | the folder of the user's config file        | the user's config folder |
| SOKO_MODE         | a run's mode (see below)                    | online             |
| SOKO_RUN_DIR      | where a run's local files folder goes       | current directory  |

W&B's variables are honoured beside soko's own, which win when both are set:
``WANDB_ENTITY``, ``WANDB_PROJECT``, ``WANDB_MODE`` and ``WANDB_DIR`` (for SOKO_ENTITY,
SOKO_PROJECT, SOKO_MODE and SOKO_RUN_DIR). Modes are W&B's: ``online``, ``offline``,
``shared``, ``dryrun`` and ``run`` all record to the configured store (the embedded store
is local already, so there is nothing to sync later); ``disabled`` records a run's data
and artifacts in a throwaway store that is removed when the process exits.

``soko login`` writes ``base_url`` and ``api_key`` to ``config.json`` in the user's config
folder (``~/.config/soko`` on Linux, ``~/Library/Application Support/soko`` on macOS,
``%LOCALAPPDATA%\\soko`` on Windows: platformdirs decides), never into the store. Where that
file does not exist, ``$SOKO_DIR/config.json`` (where soko kept them before) is read instead.
A config file that exists but cannot be read as a JSON object is an error naming the file.
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
RUN_MODES = ("online", "offline", "shared", "disabled", "dryrun", "run")
_TRUE = {"1", "true", "yes", "on"}
CONFIG_FILE = "config.json"
CREDENTIAL_KEYS = ("base_url", "api_key")


@dataclass(frozen=True, slots=True)
class Settings:
    soko_dir: Path
    cache_dir: Path
    config_dir: Path
    """The folder of ``config.json``, where ``soko login`` keeps the server and its key."""
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
    mode: str = "online"
    """A run's mode, one of :data:`RUN_MODES` (see the module's docstring)."""
    run_dir: Path | None = None
    """The folder a run's ``wandb/run-…`` files folder goes in; None: the current one."""

    @property
    def config_path(self) -> Path:
        """The file ``soko login`` writes."""
        return self.config_dir / CONFIG_FILE

    @property
    def legacy_config_path(self) -> Path:
        """Where credentials were kept before: read only when :attr:`config_path` is absent."""
        return self.soko_dir / CONFIG_FILE

    @property
    def config_source(self) -> Path | None:
        """The config file these settings were read from (None: neither exists)."""
        for path in (self.config_path, self.legacy_config_path):
            if path.is_file():
                return path
        return None


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


def default_config_dir() -> Path:
    """``SOKO_CONFIG_DIR``, else the user's config folder for soko (platformdirs)."""
    configured = os.environ.get("SOKO_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    # platformdirs loads when settings are first read, not with ``import soko``.
    import platformdirs

    return platformdirs.user_config_path("soko", appauthor=False)


def read_config(path: Path) -> dict[str, str] | None:
    """The text settings of a config file; None when it does not exist; ValidationError
    naming the file when it cannot be read, is not a JSON object or gives the server or key
    as something other than text (a half-written or hand-edited file must not silently
    switch soko to another store)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"Cannot read the config file {path}: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"The config file {path} is not valid JSON ({exc}); fix it, or delete it and "
            "run `soko login` again."
        ) from None
    if not isinstance(data, dict):
        raise ValidationError(
            f"The config file {path} must hold a JSON object, e.g. "
            '{"base_url": "https://soko.lan", "api_key": "…"}.'
        )
    for key in CREDENTIAL_KEYS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise ValidationError(
                f"The config file {path} gives {key!r} a {type(value).__name__}; expected text."
            )
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _read_configs(config_dir: Path, soko_dir: Path) -> dict[str, str]:
    for path in (config_dir / CONFIG_FILE, soko_dir / CONFIG_FILE):
        found = read_config(path)
        if found is not None:
            return found
    return {}


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
    config_dir = default_config_dir()
    config = _read_configs(config_dir, soko_dir)
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
            f"SOKO_CACHE_LARGE must be one of {', '.join(CACHE_LARGE_MODES)}, not {cache_large!r}"
        )
    return Settings(
        soko_dir=soko_dir,
        cache_dir=cache_dir,
        config_dir=config_dir,
        base_url=env.get("SOKO_BASE_URL") or config.get("base_url") or None,
        api_key=env.get("SOKO_API_KEY") or config.get("api_key") or None,
        link_mode=link_mode,
        silent=(env.get("SOKO_SILENT") or env.get("WANDB_SILENT") or "").lower() in _TRUE,
        entity=_either("ENTITY") or "local",
        project=_either("PROJECT") or "uncategorized",
        cache_max_bytes=parse_size(cache_max) if cache_max else None,
        cache_large=cache_large,
        digest_algorithm=digest_algorithm(),
        mode=check_mode(_either("MODE") or "online"),
        run_dir=Path(run_dir).expanduser() if (run_dir := _either_dir()) else None,
    )


def _either_dir() -> str | None:
    return os.environ.get("SOKO_RUN_DIR") or os.environ.get("WANDB_DIR") or None
