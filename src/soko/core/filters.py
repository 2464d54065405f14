"""W&B Registry's filter documents (MongoDB-style) and their evaluation against one item.

A filter maps a field to a value (equality) or to an operator document, and combines with
``$and``, ``$or``, ``$nor`` and ``$not``; top-level fields are ANDed::

    {"name": {"$regex": "yolo"}, "tag": "cnn"}
    {"$or": [{"tag": "image-classification"}, {"alias": "production"}]}
    {"alias": "latest", "created_at": {"$gte": "2024-01-08", "$lte": "2025-03-04 13:10:00"}}

An item is a mapping of field name to value: a string, a number, a datetime, a list (tags,
aliases: a condition holds when it holds for one element, as MongoDB does for arrays;
``$ne`` and ``$nin`` hold when it holds for none) or a dict (``metadata``, reached with
dotted names such as ``metadata.accuracy``). Times given as strings are read as
``YYYY-MM-DD[ HH:MM:SS]`` in UTC, as W&B's documentation writes them.

Pure: no I/O. Unknown fields and operators are refused (ValidationError), not ignored, so
that a typo does not silently match everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from soko.errors import ValidationError

Filter = Mapping[str, Any]

_MISSING: Any = object()


def _as_time(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(
                f"Cannot read {value!r} as a time; write YYYY-MM-DD or YYYY-MM-DD HH:MM:SS."
            ) from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return value


def _comparable(actual: Any, operand: Any) -> tuple[Any, Any]:
    if isinstance(actual, datetime):
        return actual, _as_time(operand)
    return actual, operand


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(actual: Any, operand: Any) -> bool:
        left, right = _comparable(actual, operand)
        try:
            return bool(test(left, right))
        except TypeError:
            return False  # values of different kinds never compare, as in MongoDB

    return compare


def _equal(actual: Any, operand: Any) -> bool:
    left, right = _comparable(actual, operand)
    return bool(left == right)


def _regex(actual: Any, operand: Any) -> bool:
    if not isinstance(operand, str):
        raise ValidationError(f"$regex takes a string pattern, not {operand!r}.")
    try:
        pattern = re.compile(operand)
    except re.error as exc:
        raise ValidationError(f"Invalid $regex pattern {operand!r}: {exc}.") from None
    return isinstance(actual, str) and pattern.search(actual) is not None


def _contains(actual: Any, operand: Any) -> bool:
    return isinstance(actual, str) and str(operand) in actual


def _in(actual: Any, operand: Any) -> bool:
    if not isinstance(operand, (list, tuple)):
        raise ValidationError(f"$in and $nin take a list, not {operand!r}.")
    return any(_equal(actual, o) for o in operand)


_ELEMENT_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": _equal,
    "$gt": _ordered(lambda a, b: a > b),
    "$gte": _ordered(lambda a, b: a >= b),
    "$lt": _ordered(lambda a, b: a < b),
    "$lte": _ordered(lambda a, b: a <= b),
    "$in": _in,
    "$regex": _regex,
    "$contains": _contains,
}
# Negations hold when the positive form holds for no element of a list.
_NEGATED = {"$ne": "$eq", "$nin": "$in"}


def _lookup(item: Mapping[str, Any], field: str) -> Any:
    head, _, rest = field.partition(".")
    value = item.get(head, _MISSING)
    for part in rest.split(".") if rest else ():
        if not isinstance(value, Mapping):
            return _MISSING
        value = value.get(part, _MISSING)
    return value


def _any_element(value: Any, test: Callable[[Any], bool]) -> bool:
    if value is _MISSING or value is None:
        return False
    if isinstance(value, list):
        return any(test(v) for v in value)
    return test(value)


def _field_matches(value: Any, condition: Any) -> bool:
    is_operators = isinstance(condition, Mapping) and any(k.startswith("$") for k in condition)
    if not is_operators:
        if condition is None:  # as in MongoDB, null matches a field that is null or missing
            return value is _MISSING or value is None
        return _any_element(value, lambda v: _equal(v, condition))
    for operator, operand in condition.items():
        if operator == "$exists":
            present = value is not _MISSING and value is not None and value != []
            if present != bool(operand):
                return False
        elif operator == "$not":
            if _field_matches(value, operand):
                return False
        elif operator in _NEGATED:
            positive = _ELEMENT_OPERATORS[_NEGATED[operator]]
            if _any_element(value, lambda v, p=positive, o=operand: p(v, o)):  # type: ignore[misc]
                return False
        elif operator in _ELEMENT_OPERATORS:
            test = _ELEMENT_OPERATORS[operator]
            if not _any_element(value, lambda v, t=test, o=operand: t(v, o)):  # type: ignore[misc]
                return False
        else:
            raise ValidationError(f"Unknown filter operator {operator!r}.")
    return True


def matches(query: Filter | None, item: Mapping[str, Any]) -> bool:
    """Whether *item* satisfies the filter document *query* (None or ``{}``: always)."""
    if not query:
        return True
    if not isinstance(query, Mapping):
        raise ValidationError(f"A filter is a dict, not {type(query).__name__}.")
    for key, condition in query.items():
        if key in ("$and", "$or", "$nor"):
            if not isinstance(condition, (list, tuple)) or not condition:
                raise ValidationError(f"{key} takes a non-empty list of filters.")
            results = [matches(part, item) for part in condition]
            if key == "$and" and not all(results):
                return False
            if key == "$or" and not any(results):
                return False
            if key == "$nor" and any(results):
                return False
        elif key == "$not":
            if matches(condition, item):
                return False
        elif key.startswith("$"):
            raise ValidationError(f"Unknown filter operator {key!r}.")
        elif not _field_matches(_lookup(item, key), condition):
            return False
    return True


def check_fields(query: Filter | None, allowed: Collection[str], *, what: str) -> None:
    """ValidationError when *query* names a field outside *allowed* (``metadata.*`` is
    allowed when ``metadata`` is)."""
    if not query:
        return
    if not isinstance(query, Mapping):
        raise ValidationError(f"A filter is a dict, not {type(query).__name__}.")
    for key, condition in query.items():
        if key in ("$and", "$or", "$nor"):
            for part in condition if isinstance(condition, (list, tuple)) else ():
                check_fields(part, allowed, what=what)
        elif key == "$not":
            check_fields(condition, allowed, what=what)
        elif not key.startswith("$") and key.partition(".")[0] not in allowed:
            raise ValidationError(
                f"Cannot filter {what} by {key!r}; the fields are {sorted(allowed)}."
            )
