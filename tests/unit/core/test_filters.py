"""W&B Registry's filter documents: each operator, arrays, dotted metadata, times, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from soko.core.filters import check_fields, matches
from soko.errors import ValidationError

ITEM: dict[str, Any] = {
    "name": "yolo-detector",
    "description": None,
    "tag": ["cnn", "vision"],
    "alias": ["latest", "production"],
    "created_at": datetime(2025, 3, 4, 13, 10, tzinfo=UTC),
    "metadata": {"accuracy": 0.93, "framework": {"name": "torch"}},
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (None, True),
        ({}, True),
        ({"name": "yolo-detector"}, True),
        ({"name": "yolo"}, False),
        ({"name": {"$regex": "yolo"}}, True),
        ({"name": {"$regex": "^detector"}}, False),
        ({"name": {"$contains": "det"}}, True),
        ({"name": {"$eq": "yolo-detector"}}, True),
        ({"name": {"$ne": "yolo-detector"}}, False),
        ({"name": {"$in": ["a", "yolo-detector"]}}, True),
        ({"name": {"$nin": ["a", "yolo-detector"]}}, False),
        # An array field holds a condition when one element does; $ne / $nin when none does.
        ({"tag": "cnn"}, True),
        ({"tag": "rnn"}, False),
        ({"tag": {"$in": ["rnn", "vision"]}}, True),
        ({"tag": {"$ne": "cnn"}}, False),
        ({"tag": {"$nin": ["rnn"]}}, True),
        ({"alias": {"$regex": "^prod"}}, True),
        ({"name": {"$regex": "yolo"}, "tag": "cnn"}, True),
        ({"name": {"$regex": "yolo"}, "tag": "rnn"}, False),
        ({"$or": [{"tag": "image-classification"}, {"alias": "production"}]}, True),
        ({"$or": [{"tag": "image-classification"}, {"alias": "staging"}]}, False),
        ({"$and": [{"tag": "cnn"}, {"alias": "latest"}]}, True),
        ({"$nor": [{"tag": "cnn"}]}, False),
        ({"$not": {"tag": "cnn"}}, False),
        ({"name": {"$not": {"$regex": "yolo"}}}, False),
        # Times as W&B's documentation writes them, read in UTC.
        ({"created_at": {"$gte": "2024-01-08", "$lte": "2025-03-04 13:10:00"}}, True),
        ({"created_at": {"$lt": "2025-03-04 13:10:00"}}, False),
        ({"created_at": {"$gt": "2025-03-04"}}, True),
        ({"metadata.accuracy": {"$gt": 0.9}}, True),
        ({"metadata.accuracy": {"$gt": "0.9"}}, False),  # kinds do not compare
        ({"metadata.framework.name": "torch"}, True),
        ({"metadata.missing": {"$exists": False}}, True),
        ({"metadata.accuracy": {"$exists": True}}, True),
        ({"description": {"$exists": True}}, False),
        ({"description": None}, True),
        ({"name": None}, False),
    ],
)
def test_a_filter_matches_as_documented(query: dict[str, Any] | None, expected: bool) -> None:
    assert matches(query, ITEM) is expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"name": {"$like": "x"}}, "Unknown filter operator"),
        ({"$xor": [{"name": "x"}]}, "Unknown filter operator"),
        ({"$or": []}, "non-empty list"),
        ({"name": {"$regex": "("}}, "Invalid \\$regex"),
        ({"name": {"$in": "abc"}}, "take a list"),
        ({"created_at": {"$gt": "yesterday"}}, "Cannot read"),
    ],
)
def test_a_bad_filter_is_refused(query: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        matches(query, ITEM)


def test_fields_outside_the_item_type_are_refused() -> None:
    check_fields({"$or": [{"tag": "a"}, {"metadata.x": 1}]}, {"tag", "metadata"}, what="v")
    with pytest.raises(ValidationError, match="Cannot filter v by 'colour'"):
        check_fields({"$and": [{"tag": "a"}, {"colour": "red"}]}, {"tag"}, what="v")
    with pytest.raises(ValidationError, match="is a dict"):
        check_fields(["tag"], {"tag"}, what="v")  # type: ignore[arg-type]
