"""soko.Table on its own: construction, type inference and checks, columns, keys."""

from __future__ import annotations

import datetime
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import soko
from soko.errors import ValidationError
from soko.sdk.data_types import dtypes


def type_json(table: soko.Table) -> dict[str, Any]:
    return table._column_types.to_json()


def test_default_columns_and_list_data() -> None:
    table = soko.Table(data=[[1, "a", True]])
    assert table.columns == ["Input", "Output", "Expected"]
    assert table.data == [[1, "a", True]]


def test_inferred_types_are_optional_unions() -> None:
    table = soko.Table(columns=["n", "s", "b"], data=[[1, "x", True], [2.5, None, False]])
    assert type_json(table)["params"]["type_map"] == {
        "n": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "number"}]},
              "wb_type": "union"},
        "s": {"params": {"allowed_types": [{"wb_type": "none"}, {"wb_type": "string"}]},
              "wb_type": "union"},
        "b": {"params": {"allowed_types": [{"wb_type": "boolean"}, {"wb_type": "none"}]},
              "wb_type": "union"},
    }  # fmt: skip


def test_a_value_of_another_type_is_a_type_error_and_the_row_is_not_added() -> None:
    table = soko.Table(columns=["n"], data=[[1]])
    with pytest.raises(TypeError, match="incompatible types"):
        table.add_data("one")
    assert table.data == [[1]]


def test_wrong_row_length_is_refused() -> None:
    table = soko.Table(columns=["a", "b"])
    with pytest.raises(ValidationError, match="expects 2 columns"):
        table.add_data(1)
    assert table.data == []


def test_allow_mixed_types_accepts_anything_but_none() -> None:
    table = soko.Table(columns=["x"], allow_mixed_types=True)
    table.add_data(1)
    table.add_data("s")
    table.add_data([1, 2])
    assert type_json(table)["params"]["type_map"]["x"] == {
        "params": {"allowed_types": [{"wb_type": "any"}, {"wb_type": "none"}]},
        "wb_type": "union",
    }
    table.add_data(None)
    assert table.data[-1] == [None]


def test_optional_false_refuses_none() -> None:
    table = soko.Table(columns=["x"], optional=False)
    table.add_data(1)
    with pytest.raises(TypeError):
        table.add_data(None)


def test_explicit_dtype_is_enforced() -> None:
    table = soko.Table(columns=["x", "y"], dtype=[int, str])
    table.add_data(3, "a")
    with pytest.raises(TypeError):
        table.add_data("a", "b")


def test_nan_counts_as_none() -> None:
    table = soko.Table(columns=["x"], data=[[1.0], [float("nan")]])
    assert type_json(table)["params"]["type_map"]["x"]["wb_type"] == "union"
    assert math.isnan(table.data[1][0])


def test_from_numpy_array() -> None:
    table = soko.Table(columns=["a", "b"], data=np.arange(6).reshape(3, 2))
    assert [list(map(int, row)) for row in table.data] == [[0, 1], [2, 3], [4, 5]]
    assert type_json(table)["params"]["type_map"]["a"]["params"]["allowed_types"][1] == {
        "wb_type": "number"
    }


def test_from_dataframe_and_back() -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    for table in (soko.Table(dataframe=frame), soko.Table(data=frame)):
        assert table.columns == ["x", "y"]
        back = table.get_dataframe()
        assert list(back.columns) == ["x", "y"]
        assert back["x"].tolist() == [1, 2, 3]
        assert back["y"].tolist() == ["a", "b", "c"]


def test_legacy_rows_argument() -> None:
    assert soko.Table(columns=["a"], rows=[[1], [2]]).data == [[1], [2]]


def test_bad_data_and_columns_are_refused() -> None:
    with pytest.raises(ValidationError):
        soko.Table(columns=["a"], data="not rows")
    with pytest.raises(ValidationError):
        soko.Table(columns=[1.5])  # type: ignore[list-item]
    with pytest.raises(ValidationError):
        soko.Table(columns=["a"], log_mode="SOMETIMES")


def test_add_column_and_get_column() -> None:
    table = soko.Table(columns=["a"], data=[[1], [2]])
    table.add_column("b", ["x", "y"])
    assert table.columns == ["a", "b"]
    assert table.get_column("b") == ["x", "y"]
    assert table.get_column("a", convert_to="numpy").tolist() == [1, 2]
    with pytest.raises(ValidationError, match="Expected length 2"):
        table.add_column("c", [1])
    with pytest.raises(ValidationError):
        table.get_column("missing")


def test_add_column_with_mixed_values_is_undone() -> None:
    table = soko.Table(columns=["a"], data=[[1], [2]])
    with pytest.raises(TypeError):
        table.add_column("b", [1, "x"])
    assert table.columns == ["a"]
    assert table.data == [[1], [2]]


def test_add_column_to_empty_table() -> None:
    table = soko.Table(columns=[])
    table.add_column("a", [1, 2, 3])
    assert table.data == [[1], [2], [3]]


def test_computed_columns() -> None:
    table = soko.Table(columns=["x", "y"], data=[[3, 1], [4, 6]])
    table.add_computed_columns(lambda index, row: {"diff": row["x"] - row["y"], "i": index})
    assert table.get_column("diff") == [2, -2]
    assert table.get_column("i") == [0, 1]


def test_iteration_and_index() -> None:
    table = soko.Table(columns=["a"], data=[[10], [20]])
    assert list(table) == [[10], [20]]
    rows = list(table.iterrows())
    assert [int(i) for i, _ in rows] == [0, 1]
    index = table.get_index()
    assert [int(i) for i in index] == [0, 1]
    assert index[1].get_row() == {"a": 20}


def test_index_column_becomes_a_foreign_index() -> None:
    parent = soko.Table(columns=["a"], data=[[10], [20]])
    child = soko.Table(columns=["ref", "w"], data=[[i, 1.0] for i in parent.get_index()])
    assert type_json_without_tables(child)["ref"] == "foreignIndex"


def type_json_without_tables(table: soko.Table) -> dict[str, str]:
    return {k: v.name for k, v in table._column_types.params["type_map"].items()}


def test_primary_and_foreign_keys() -> None:
    users = soko.Table(columns=["id", "name"], data=[["u1", "Ann"], ["u2", "Bo"]])
    users.set_pk("id")
    assert type_json_without_tables(users)["id"] == "primaryKey"
    with pytest.raises(ValidationError, match="multiple primary keys"):
        users.set_pk("name")
    events = soko.Table(columns=["user", "n"], data=[["u1", 1], ["u2", 2]])
    events.set_fk("user", users, "id")
    assert type_json_without_tables(events)["user"] == "foreignKey"
    assert events.data[0][0]._table is users


def test_equality() -> None:
    a = soko.Table(columns=["a"], data=[[1], [np.array([1, 2])]], allow_mixed_types=True)
    b = soko.Table(columns=["a"], data=[[1], [np.array([1, 2])]], allow_mixed_types=True)
    c = soko.Table(columns=["a"], data=[[1], [np.array([1, 3])]], allow_mixed_types=True)
    assert a == b
    assert a != c
    with pytest.raises(AssertionError, match="Unequal data"):
        a._eq_debug(c, should_assert=True)


def test_timestamps_are_typed() -> None:
    table = soko.Table(columns=["t"], data=[[datetime.datetime(2020, 1, 1)]])
    assert type_json_without_tables(table)["t"] == "union"
    assert table._column_types.params["type_map"]["t"].params["allowed_types"][1].name == (
        "timestamp"
    )


_scalars = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=False, width=32),
    st.text(max_size=3),
    st.booleans(),
    st.lists(st.integers(0, 3), max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(_scalars, min_size=2, max_size=2), max_size=12))
def test_cached_inference_matches_full_inference(rows: list[list[Any]]) -> None:
    """The shortcut for rows whose types are already absorbed changes no outcome."""
    fast = soko.Table(columns=["a", "b"])
    slow = soko.Table(columns=["a", "b"])
    for row in rows:
        fast_error = slow_error = None
        try:
            fast.add_data(*row)
        except TypeError as exc:
            fast_error = type(exc)
        slow._absorbed = (None, set())
        original = dtypes.row_signature
        try:
            dtypes.row_signature = lambda values: None  # type: ignore[assignment]
            slow.add_data(*row)
        except TypeError as exc:
            slow_error = type(exc)
        finally:
            dtypes.row_signature = original  # type: ignore[assignment]
        assert fast_error == slow_error
        assert fast._column_types.to_json() == slow._column_types.to_json()
    assert len(fast.data) == len(slow.data)


@pytest.mark.parametrize(
    ("value", "shape"), [([], [0]), ([[], []], [2, 0]), ([[1, 2], [3, 4], [5, 6]], [3, 2])]
)
def test_ndarray_type_of_a_list_has_its_shape(value: list[Any], shape: list[int]) -> None:
    assert dtypes.NDArrayType.from_obj(value).params["shape"] == shape
