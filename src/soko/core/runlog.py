"""What a run keeps of ``run.log``, ``run.summary`` and ``run.config``: the value rules and
the bounds, checked alike by the SDK, the service and the server's wire models. Pure.

History rows and the summary are JSON objects that may hold NaN and infinities (a loss
that diverged is worth keeping as it was), so they travel and are stored as JSON *text*
(``NaN``, ``Infinity`` tokens, as Python's ``json`` writes them) rather than as database
JSON, which PostgreSQL refuses for those numbers.

Bounds, so that one run cannot fill the metadata database: a history row is at most
:data:`ROW_MAX_BYTES` of JSON, the summary and the config at most
:data:`SUMMARY_MAX_BYTES` / :data:`CONFIG_MAX_BYTES`, and a run keeps its last
:data:`HISTORY_MAX_ROWS` rows (older rows are dropped as new ones arrive).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from soko.core.names import JSON_MAX_DEPTH, validate_config
from soko.errors import ValidationError

HISTORY_MAX_ROWS = 10_000
"""Rows of history a run keeps: the newest ones."""
ROW_MAX_BYTES = 64 * 1024
"""The largest history row, as JSON text (W&B's rows are scalars, mostly)."""
SUMMARY_MAX_BYTES = 1024 * 1024
CONFIG_MAX_BYTES = 1024 * 1024
ROWS_PER_REQUEST_MAX = 1000
"""The most rows one write may carry (the SDK sends fewer, see ``sdk.runlog``)."""
STEP_MAX = 2**53
"""The largest step: a JSON integer every client reads exactly."""

STEP_KEY = "_step"


def plain(value: Any, key: str, depth: int = 0) -> Any:
    """*value* as JSON can hold it (NaN and infinities kept); numpy values by ``tolist``,
    dates by ``isoformat``. Raises ValidationError naming *key* for anything else."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value
    if depth >= JSON_MAX_DEPTH:
        raise ValidationError(
            f"The value of {key!r} nests objects and arrays more than {JSON_MAX_DEPTH} levels."
        )
    if isinstance(value, Mapping):
        return {str(k): plain(v, key, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, key, depth + 1) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return plain(tolist(), key, depth + 1)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise ValidationError(
        f"The value of {key!r} is a {type(value).__name__}; soko keeps JSON values "
        "(numbers, strings, booleans, lists, dicts) in a run's history and summary."
    )


def encode(data: Mapping[str, Any], *, what: str, max_bytes: int) -> str:
    """*data* (already :func:`plain`) as compact JSON text (control characters escaped, so
    NUL is storable), refused above *max_bytes* or with a string that is not Unicode."""
    try:
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what} is not JSON: {exc}") from None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        # A lone surrogate: PostgreSQL cannot store it, so neither backend takes it.
        raise ValidationError(f"{what} holds a string that is not valid Unicode.") from None
    if size > max_bytes:
        raise ValidationError(
            f"{what} is {size} bytes of JSON; the most soko keeps is {max_bytes}."
        )
    return text


def decode(text: str, *, what: str, max_bytes: int) -> dict[str, Any]:
    """JSON text of an object, as :func:`encode` writes it; ValidationError otherwise."""
    if len(text) > max_bytes:  # characters ≤ bytes: a cheap first bound
        raise ValidationError(f"{what} is more than {max_bytes} bytes of JSON.")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object, not {type(value).__name__}.")
    encode(value, what=what, max_bytes=max_bytes)  # the exact size, and strings storable
    return value


def validate_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= STEP_MAX:
        raise ValidationError(f"A step must be an integer from 0 to {STEP_MAX}, not {step!r}.")
    return step


def validate_run_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A run's config as :func:`soko.core.names.validate_config` has it, at most
    :data:`CONFIG_MAX_BYTES` of JSON."""
    cleaned = validate_config(config)
    encode(cleaned, what="A run config", max_bytes=CONFIG_MAX_BYTES)
    return cleaned


def validate_row_text(text: str) -> str:
    """One history row as JSON text: an object of at most :data:`ROW_MAX_BYTES` with an
    integer ``_step``."""
    validate_step(decode(text, what="A history row", max_bytes=ROW_MAX_BYTES).get(STEP_KEY))
    return text


def validate_summary_text(text: str) -> str:
    decode(text, what="A run summary", max_bytes=SUMMARY_MAX_BYTES)
    return text
