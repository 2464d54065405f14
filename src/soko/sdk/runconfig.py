"""``run.config`` (``soko.config``): W&B's ``Config`` for the common cases.

Attribute and item access, ``update`` (from a dict, an ``argparse.Namespace`` or any object
with a ``__dict__``), ``setdefaults``, ``get``, ``keys``, ``items``, ``as_dict``. As in W&B,
keys lose leading and trailing ``-`` (``--lr`` is ``lr``), values become JSON (a value of a
class outside the standard library becomes its ``str``, a dataclass a dict), and changing a
key's value raises :class:`ConfigError` unless ``update(..., allow_val_change=True)``.
Each change calls the run back, which writes the config with its next batch of data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from soko.core.names import JSON_MAX_DEPTH, validate_config
from soko.errors import ValidationError


class ConfigError(ValidationError):
    """A config key changed value without ``allow_val_change=True`` (W&B raises its own
    ``ConfigError`` there)."""

    code = "config_error"  # raised in the SDK only; never crosses the network


def as_mapping(params: Any) -> Mapping[str, Any]:
    """What W&B's ``update`` accepts: a mapping, a Config, an argparse ``Namespace`` or
    another object with a ``__dict__``."""
    if isinstance(params, Mapping):
        return params
    if isinstance(params, Config):
        return params.as_dict()
    if params is None:
        return {}
    if not hasattr(params, "__dict__"):
        raise TypeError("config must be a dict or have a __dict__ attribute.")
    return dict(vars(params))


def json_friendly(value: Any, depth: int = 0) -> Any:
    """W&B's ``json_friendly_val``: dicts and sequences walked, a slice and a dataclass as
    dicts, numpy values as lists and numbers, anything else outside the standard library as
    its ``str``; at most :data:`~soko.core.names.JSON_MAX_DEPTH` levels deep."""
    if depth > JSON_MAX_DEPTH:
        raise ValidationError(
            f"Run config must not nest objects and arrays more than {JSON_MAX_DEPTH} levels deep."
        )
    if isinstance(value, Mapping):
        return {key: json_friendly(item, depth + 1) for key, item in value.items()}
    if isinstance(value, slice):
        return {"slice_start": value.start, "slice_step": value.step, "slice_stop": value.stop}
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, type):
        value = tolist()
    if isinstance(value, list | tuple):
        return [json_friendly(item, depth + 1) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_friendly(dataclasses.asdict(value), depth)
    if type(value).__module__ != "builtins":
        return str(value)
    return value


class Config:
    """The run's hyperparameters; see the module's docstring."""

    _items: dict[str, Any]
    _on_change: Callable[[], None] | None

    def __init__(
        self, items: Mapping[str, Any] | None = None, on_change: Callable[[], None] | None = None
    ) -> None:
        object.__setattr__(self, "_items", dict(items or {}))
        object.__setattr__(self, "_on_change", on_change)

    def __repr__(self) -> str:
        return str(dict(self.items()))

    def keys(self) -> list[str]:
        return [key for key in self._items if not key.startswith("_")]

    def items(self) -> list[tuple[str, Any]]:
        return [(key, value) for key, value in self._items.items() if not key.startswith("_")]

    def values(self) -> list[Any]:
        return [value for _, value in self.items()]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.items())

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(f"{type(self)!r} object has no attribute {key!r}") from None

    def __setitem__(self, key: str, value: Any) -> None:
        key, value = self._sanitize(key, value, allow_val_change=False)
        self._items[key] = value
        self._changed()

    __setattr__ = __setitem__

    def __delitem__(self, key: str) -> None:
        del self._items[key]
        self._changed()

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def update(self, d: Any, allow_val_change: bool | None = None) -> None:
        """Set every key of *d*; ConfigError if one would change value, unless
        *allow_val_change*."""
        sanitized = dict(
            self._sanitize(key, value, allow_val_change=bool(allow_val_change))
            for key, value in as_mapping(d).items()
        )
        changed = any(
            key not in self._items or self._items[key] != value for key, value in sanitized.items()
        )
        self._items.update(sanitized)
        if changed:
            self._changed()

    def setdefaults(self, d: Any) -> None:
        """Set the keys of *d* that the config does not have yet."""
        fresh = {
            key: value
            for key, value in as_mapping(d).items()
            if str(key).strip("-") not in self._items
        }
        self.update(fresh)

    def persist(self) -> None:
        """W&B writes the config now; soko writes it with the run's next batch of data."""
        self._changed()

    def _sanitize(self, key: Any, value: Any, *, allow_val_change: bool) -> tuple[str, Any]:
        key = str(key).strip("-")
        value = validate_config({key: json_friendly(value)})[key]
        if not allow_val_change and key in self._items and self._items[key] != value:
            raise ConfigError(
                f'Attempted to change value of key "{key}" from {self._items[key]} to '
                f"{value}\nIf you really want to do this, pass allow_val_change=True to "
                "config.update()"
            )
        return key, value

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()
