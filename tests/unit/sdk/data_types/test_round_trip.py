"""Values added to a draft artifact and read back from the same draft (via local paths)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import soko
from soko.data_types import PartitionedTable
from soko.errors import ArtifactFinalizedError, ValidationError


def stored_json(art: soko.Artifact, path: str) -> Any:
    return json.loads(Path(art.get_entry(path).local_path or "").read_text())


def paths(art: soko.Artifact) -> list[str]:
    return sorted(e.path for e in art.manifest)


def test_mixed_column_types_and_nones_round_trip() -> None:
    rows = [
        [1, "a", 1.5, True, [1, 2], {"k": 1}, None],
        [2, None, None, False, [3], {"k": 2}, "late"],
        [None, "c", -0.25, None, [], {"k": 3}, None],
    ]
    table = soko.Table(columns=["i", "s", "f", "b", "l", "d", "n"], data=rows)
    art = soko.Artifact("mixed", "dataset")
    entry = art.add(table, "mixed")
    assert entry.path == "mixed.table.json"
    got = art.get("mixed")
    assert isinstance(got, soko.Table)
    assert got.columns == table.columns
    assert got.data == rows
    assert got == table
    assert stored_json(art, "mixed.table.json")["nrows"] == 3


def test_nan_is_stored_as_null() -> None:
    art = soko.Artifact("nan", "dataset")
    art.add(soko.Table(columns=["x"], data=[[1.0], [float("nan")]]), "t")
    assert stored_json(art, "t.table.json")["data"] == [[1.0], [None]]
    assert art.get("t").data == [[1.0], [None]]


def test_images_in_cells_round_trip() -> None:
    images = [
        soko.Image(np.full((3, 4, 3), i * 40, dtype=np.uint8), caption=f"c{i}") for i in range(3)
    ]
    table = soko.Table(columns=["id", "img"], data=[[i, img] for i, img in enumerate(images)])
    table.add_data(3, None)
    art = soko.Artifact("cells", "dataset")
    art["with-images"] = table
    media = [p for p in paths(art) if p.startswith("media/images/")]
    assert len(media) == 3
    got = art["with-images"]
    assert [row[1] for row in got.data[:3]] == images
    assert got.data[3] == [3, None]
    assert all(isinstance(row[1], soko.Image) for row in got.data[:3])
    assert got.data[1][1]._caption == "c1"


def test_the_same_image_in_two_cells_is_stored_once() -> None:
    image = soko.Image(np.zeros((2, 2, 3), dtype=np.uint8))
    art = soko.Artifact("dup", "dataset")
    art.add(soko.Table(columns=["img"], data=[[image], [image]]), "t")
    assert len([p for p in paths(art) if p.startswith("media/")]) == 1


def test_timestamps_round_trip_as_utc() -> None:
    moments = [
        datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        datetime.date(2021, 5, 6),
    ]
    art = soko.Artifact("ts", "dataset")
    art.add(soko.Table(columns=["t"], data=[[m] for m in moments]), "t")
    assert stored_json(art, "t.table.json")["data"] == [[1577934245000], [1620259200000]]
    got = art.get("t").get_column("t")
    assert got == [moments[0], datetime.datetime(2021, 5, 6, tzinfo=datetime.UTC)]


def test_embeddings_stay_inline_and_large_arrays_go_to_npz() -> None:
    table = soko.Table(
        columns=["emb", "grid"],
        data=[[np.arange(3) + i, np.arange(6).reshape(2, 3) * i] for i in range(2)],
    )
    art = soko.Artifact("arrays", "dataset")
    art.add(table, "t")
    stored = stored_json(art, "t.table.json")
    assert stored["data"] == [[[0, 1, 2], None], [[1, 2, 3], None]]
    grid_type = stored["column_types"]["params"]["type_map"]["grid"]
    assert grid_type["wb_type"] == "union"
    (ndarray_type,) = [t for t in grid_type["params"]["allowed_types"] if t["wb_type"] == "ndarray"]
    npz = ndarray_type["params"]["serialization_path"]
    assert npz["key"] == "grid" and npz["path"].startswith("media/serialized_data/")
    got = art.get("t")
    assert got.get_column("emb") == [[0, 1, 2], [1, 2, 3]]
    assert np.array_equal(got.data[1][1], np.arange(6).reshape(2, 3))


def test_linked_tables_round_trip() -> None:
    users = soko.Table(columns=["id", "name"], data=[["u1", "Ann"], ["u2", "Bo"]])
    users.set_pk("id")
    events = soko.Table(columns=["user", "row", "n"])
    for index, (user, _) in zip(users.get_index(), users.data, strict=True):
        events.add_data(user, index, 1)
    events.set_fk("user", users, "id")
    art = soko.Artifact("linked", "dataset")
    art.add(events, "events")
    linked = [p for p in paths(art) if p.startswith("media/tables/")]
    assert len(linked) == 1 and linked[0].endswith(".table.json")
    got = art.get("events")
    assert got.data[1][:2] == ["u2", 1]
    assert got.data[1][1].get_row() == {"id": "u2", "name": "Bo"}
    assert got._column_types.params["type_map"]["user"].params["table"] == users


def test_a_table_linking_to_itself_is_refused() -> None:
    table = soko.Table(columns=["a"], data=[[1], [2]])
    table.add_computed_columns(lambda index, row: {"me": index})
    art = soko.Artifact("self", "dataset")
    with pytest.raises(ValidationError, match="links to itself"):
        art.add(table, "t")


def test_200000_rows_round_trip_and_one_more_is_a_clear_error() -> None:
    rows = [[i, f"r{i}"] for i in range(soko.Table.MAX_ARTIFACT_ROWS)]
    table = soko.Table(columns=["i", "s"], data=rows)
    art = soko.Artifact("big", "dataset")
    art.add(table, "big")
    got = art.get("big")
    assert len(got.data) == 200_000
    assert got.data[-1] == [199_999, "r199999"]
    rows.append([200_000, "r200000"])
    too_big = soko.Table(columns=["i", "s"], data=rows)
    before = art.manifest.to_bytes()
    with pytest.raises(ValidationError, match="200001 rows, the limit for an artifact is 200000"):
        art.add(too_big, "too-big")
    assert art.manifest.to_bytes() == before


def write_parts(art: soko.Artifact, columns_of: list[list[str]]) -> None:
    for part, columns in enumerate(columns_of):
        table = soko.Table(columns=columns, data=[[part * 10 + r] * len(columns) for r in range(3)])
        art.add(table, f"parts/{part}")


def test_partitioned_table_of_five_parts() -> None:
    art = soko.Artifact("parted", "dataset")
    write_parts(art, [["a", "b"]] * 5)
    entry = art.add(PartitionedTable("parts"), "whole")
    assert entry.path == "whole.partitioned-table.json"
    assert stored_json(art, entry.path) == {"_type": "partitioned-table", "parts_path": "parts"}
    got = art.get("whole")
    assert isinstance(got, PartitionedTable)
    assert got.part_paths == [f"parts/{i}.table.json" for i in range(5)]
    rows = list(got.iterrows())
    assert [i for i, _ in rows] == list(range(15))
    assert [row[0] for _, row in rows] == [p * 10 + r for p in range(5) for r in range(3)]


def test_partitioned_table_with_differing_columns_is_refused() -> None:
    art = soko.Artifact("parted", "dataset")
    write_parts(art, [["a", "b"], ["a", "b"], ["a", "c"], ["a", "b"], ["a", "b"]])
    before = art.manifest.to_bytes()
    with pytest.raises(ValidationError, match=r"parts/2.table.json has \['a', 'c'\]"):
        art.add(PartitionedTable("parts"), "whole")
    assert art.manifest.to_bytes() == before


def test_iterating_a_partitioned_table_whose_part_changed_raises() -> None:
    art = soko.Artifact("parted", "dataset")
    write_parts(art, [["a", "b"]] * 5)
    art.add(PartitionedTable("parts"), "whole")
    art.add(soko.Table(columns=["z"], data=[[1]]), "parts/3", overwrite=True)
    got = art.get("whole")
    with pytest.raises(ValueError, match="non-matching columns"):
        list(got.iterrows())


def test_joined_table_round_trip() -> None:
    left = soko.Table(columns=["id", "x"], data=[[1, "a"], [2, "b"]])
    right = soko.Table(columns=["id", "y"], data=[[1, 0.5], [2, 1.5]])
    art = soko.Artifact("joined", "dataset")
    art.add(left, "left")
    art.add(right, "right")
    art.add(soko.JoinedTable(left, right, "id"), "j")
    assert stored_json(art, "j.joined-table.json") == {
        "_type": "joined-table",
        "join_key": "id",
        "table1": "left.table.json",
        "table2": "right.table.json",
    }
    got = art.get("j")
    assert isinstance(got, soko.JoinedTable)
    assert got == soko.JoinedTable(left, right, "id")
    assert got.table2 == right


def test_joined_table_of_paths_must_name_existing_tables() -> None:
    art = soko.Artifact("joined", "dataset")
    art.add(soko.Table(columns=["id"], data=[[1]]), "left")
    with pytest.raises(ValidationError, match=r"right\.table\.json not found"):
        art.add(soko.JoinedTable("left.table.json", "right.table.json", "id"), "j")
    assert paths(art) == ["left.table.json"]
    with pytest.raises(ValidationError, match="join_key"):
        soko.JoinedTable("left.table.json", "left.table.json", ["a"])


def test_joined_table_adds_table_objects_itself() -> None:
    left = soko.Table(columns=["id"], data=[[1]])
    right = soko.Table(columns=["id"], data=[[1]])
    art = soko.Artifact("joined", "dataset")
    art.add(soko.JoinedTable(left, right, ["id", "id"]), "j")
    stored = stored_json(art, "j.joined-table.json")
    assert stored["table1"].startswith("t1_") and stored["table2"].startswith("t2_")
    assert art.get("j").table1 == left


def test_get_resolves_names_with_and_without_suffix_and_misses_give_none() -> None:
    art = soko.Artifact("names", "dataset")
    table = soko.Table(columns=["a"], data=[[1]])
    art.add(table, "dir/t")
    assert art.get("dir/t") == table
    assert art.get("dir/t.table.json") == table
    assert art.get("dir/other") is None


def test_adding_the_same_object_twice_returns_the_first_entry() -> None:
    art = soko.Artifact("twice", "dataset")
    table = soko.Table(columns=["a"], data=[[1]])
    first = art.add(table, "one")
    assert art.add(table, "two") == first
    assert paths(art) == ["one.table.json"]


def test_a_name_taken_is_kept_unless_overwrite() -> None:
    art = soko.Artifact("names", "dataset")
    art.add(soko.Table(columns=["a"], data=[[1]]), "t")
    art.add(soko.Table(columns=["a"], data=[[2]]), "t")
    assert art.get("t").data == [[1]]
    art.add(soko.Table(columns=["a"], data=[[3]]), "t", overwrite=True)
    assert art.get("t").data == [[3]]


def test_only_values_can_be_added() -> None:
    art = soko.Artifact("bad", "dataset")
    with pytest.raises(TypeError, match="expected one of"):
        art.add({"not": "a table"}, "x")
    assert paths(art) == []


def test_a_finalized_artifact_refuses_values() -> None:
    art = soko.Artifact("final", "dataset")
    art.finalize()
    with pytest.raises(ArtifactFinalizedError):
        art.add(soko.Table(columns=["a"]), "t")


def test_staged_files_outlive_the_call_and_go_with_the_artifact() -> None:
    import gc

    art = soko.Artifact("staged", "dataset")
    art.add(soko.Table(columns=["a"], data=[[1]]), "t")
    local = Path(art.get_entry("t.table.json").local_path or "")
    assert local.is_file()
    del art
    gc.collect()
    assert not local.exists()


def test_integer_column_names_round_trip() -> None:
    art = soko.Artifact("ints", "dataset")
    art.add(soko.Table(columns=[0, 1], data=[[datetime.date(2020, 1, 1), "a"]]), "t")
    got = art.get("t")
    assert got.columns == [0, 1]
    assert got.data == [[datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC), "a"]]


@pytest.mark.parametrize("name", ["../up", "/abs", "a//b"])
def test_a_bad_name_adds_no_media(name: str) -> None:
    art = soko.Artifact("bad-name", "dataset")
    table = soko.Table(columns=["img"], data=[[soko.Image(np.zeros((2, 2, 3), dtype=np.uint8))]])
    with pytest.raises(ValidationError):
        art.add(table, name)
    assert paths(art) == []
