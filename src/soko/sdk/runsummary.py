"""``run.summary`` (``soko.summary``): W&B's ``Summary``, dict-like.

Each history row that ``run.log`` commits sets the summary of its keys to their values
(``_step``, ``_runtime`` and ``_timestamp`` included, as W&B does); setting a key
(``run.summary["best"] = 0.9``, ``run.summary.update({...})``, ``del run.summary["x"]``)
overrides that until the key is logged again. A nested dict reads back as a sub-summary
whose changes go to the run too. Values follow the history's rules
(:func:`soko.core.runlog.plain`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from soko.core.runlog import SUMMARY_MAX_BYTES, encode, plain

_HIDDEN = "_wandb"


class MissingKeyError(KeyError, AttributeError):
    """A summary key that is not there: W&B raises KeyError for ``summary.x`` and
    ``summary["x"]`` alike; being an AttributeError too keeps ``hasattr`` and ``copy``
    working."""


class SummaryDict:
    """What the summary and its nested dicts share."""

    _items: dict[str, Any]

    def _changed(self) -> None:
        raise NotImplementedError

    def keys(self) -> list[str]:
        return [key for key in self._items if key != _HIDDEN]

    def items(self) -> list[tuple[str, Any]]:
        return [(key, self[key]) for key in self.keys()]

    def values(self) -> list[Any]:
        return [self[key] for key in self.keys()]

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def __getitem__(self, key: str) -> Any:
        try:
            item = self._items[key]
        except KeyError:
            raise MissingKeyError(key) from None
        if isinstance(item, dict):
            return SummarySubDict(item, self)
        return item

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return self[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        try:
            del self._items[key]
        except KeyError:
            raise MissingKeyError(key) from None
        self._changed()

    __delattr__ = __delitem__

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __repr__(self) -> str:
        return repr({key: self._items[key] for key in self.keys()})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SummaryDict):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def update(self, d: Mapping[str, Any]) -> None:
        for key, value in dict(d).items():
            self._items[str(key)] = plain(value, str(key))
        self._changed()


class Summary(SummaryDict):
    """The run's summary; *on_change* is called after every explicit change."""

    _on_change: Callable[[], None] | None

    def __init__(
        self, items: Mapping[str, Any] | None = None, on_change: Callable[[], None] | None = None
    ) -> None:
        object.__setattr__(self, "_items", dict(items or {}))
        object.__setattr__(self, "_on_change", on_change)

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change()

    def update(self, d: Mapping[str, Any]) -> None:
        """Set the keys of *d*; ValidationError, and nothing set, when a value is not JSON
        or the summary would pass its bound (:data:`~soko.core.runlog.SUMMARY_MAX_BYTES`)."""
        values = {str(key): plain(value, str(key)) for key, value in dict(d).items()}
        encode({**self._items, **values}, what="The run summary", max_bytes=SUMMARY_MAX_BYTES)
        self._items.update(values)
        self._changed()

    def _set_logged(self, row: Mapping[str, Any]) -> None:
        """A committed history row: its values become the summary of its keys."""
        self._items.update(row)


class SummarySubDict(SummaryDict):
    """A nested dict of the summary; changes go to the root's callback."""

    _parent: SummaryDict

    def __init__(self, items: dict[str, Any], parent: SummaryDict) -> None:
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_parent", parent)

    def _changed(self) -> None:
        self._parent._changed()
