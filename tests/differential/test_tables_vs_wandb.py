"""Tables and images in artifacts: soko and the `wandb` package write the same bytes.

Each scenario builds the same Table / Image / JoinedTable / PartitionedTable objects with
``wandb`` and with ``soko`` and adds them to an MD5 artifact of each. Every entry (the JSON
files and the media files named by content hash) must hold identical bytes, and the two
manifests must agree entry by entry. Then the files wandb wrote are put into a soko
artifact and read with ``soko`` (and soko's files are read with wandb's ``from_json``), so
a table written by one is read by the other.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import wandb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from wandb_parity import assert_same_artifact

import soko

pytestmark = pytest.mark.differential

Build = Callable[[Any, Any, Path], None]


def pixels(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def wandb_files(art: wandb.Artifact) -> dict[str, bytes]:
    return {p: Path(e.local_path).read_bytes() for p, e in art.manifest.entries.items()}


def soko_files(art: soko.Artifact) -> dict[str, bytes]:
    return {e.path: Path(art.get_entry(e.path).local_path or "").read_bytes() for e in art.manifest}


def build_both(build: Build, tmp_path: Path) -> tuple[wandb.Artifact, soko.Artifact]:
    w_art = wandb.Artifact("parity", "dataset")
    s_art = soko.Artifact("parity", "dataset", digest_algorithm="MD5")
    build(wandb, w_art, tmp_path)
    build(soko, s_art, tmp_path)
    return w_art, s_art


# ----- scenarios: each takes the package (wandb or soko), an artifact and a scratch dir --


def mixed_types(mod: Any, art: Any, _: Path) -> None:
    rows = [
        [1, "x", None, 1.5, True, [1, 2], {"k": 1, "s": "a"}, -3],
        [2, None, "s", float("nan"), False, [3], {"k": 2, "s": "b"}, 2**40],
        [None, "é✓", "t", 1e-7, None, [], {"k": 0, "s": "c"}, 0],
    ]
    art.add(mod.Table(columns=["i", "s", "n", "f", "b", "l", "d", "big"], data=rows), "mixed")


def nones_and_optional(mod: Any, art: Any, _: Path) -> None:
    art.add(mod.Table(columns=["a", "b"], data=[[None, None], [None, 1], ["x", None]]), "nones")
    art.add(mod.Table(columns=["a"], data=[[1], [2]], optional=False), "required")
    art.add(mod.Table(columns=["a", "b"], data=[[1, "a"]], dtype=[float, str]), "typed")
    art.add(mod.Table(columns=["m"], data=[[1], ["a"], [[1]]], allow_mixed_types=True), "mixed")


def images_in_cells(mod: Any, art: Any, tmp_path: Path) -> None:
    on_disk = tmp_path / "disk.png"
    if not on_disk.exists():
        PILImage.fromarray(pixels((5, 6, 3), 9), mode="RGB").save(on_disk)
    images = [
        mod.Image(pixels((4, 5, 3), 1), caption="rgb"),
        mod.Image(pixels((4, 5), 2)),
        mod.Image(pixels((3, 3, 4), 3), caption="rgba"),
        mod.Image(PILImage.fromarray(pixels((2, 7, 3), 4), mode="RGB"), grouping=3),
        mod.Image(str(on_disk), caption="from disk"),
        mod.Image(pixels((4, 4, 3), 5), file_type="jpg"),
    ]
    table = mod.Table(columns=["id", "img"], data=[[i, img] for i, img in enumerate(images)])
    table.add_data(len(images), None)
    art.add(table, "images")
    art.add(images[0], "alone")


def timestamps_and_arrays(mod: Any, art: Any, _: Path) -> None:
    rows = [
        [datetime.datetime(2020, 1, 1, 12, 30), np.arange(3), np.float32(0.5), np.int64(7)],
        [datetime.date(2021, 2, 3), np.arange(3) * 2, np.float32(1.5), np.int64(-1)],
        [
            datetime.datetime(2022, 3, 4, tzinfo=datetime.UTC),
            np.arange(3),
            np.float32(2.5),
            np.int64(0),
        ],
    ]
    art.add(mod.Table(columns=["t", "emb", "f32", "i64"], data=rows), "arrays")


def dataframe_and_ndarray(mod: Any, art: Any, _: Path) -> None:
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", None], "z": [0.5, np.nan, 2.0]})
    art.add(mod.Table(dataframe=frame), "frame")
    art.add(mod.Table(columns=["a", "b", "c"], data=np.arange(12).reshape(4, 3)), "matrix")


def linked_tables(mod: Any, art: Any, _: Path) -> None:
    users = mod.Table(columns=["id", "name"], data=[["u1", "Ann"], ["u2", "Bo"]])
    users.set_pk("id")
    events = mod.Table(columns=["user", "n"], data=[["u1", 1], ["u2", 2], ["u1", 3]])
    events.set_fk("user", users, "id")
    art.add(events, "events")
    scores = mod.Table(columns=["row", "score"], data=[[i, i * 0.5] for i in users.get_index()])
    art.add(scores, "scores")


def joined(mod: Any, art: Any, _: Path) -> None:
    left = mod.Table(columns=["id", "x"], data=[[1, "a"], [2, "b"]])
    right = mod.Table(columns=["id", "y"], data=[[1, 0.5], [2, 1.5]])
    art.add(left, "left")
    art.add(right, "right")
    art.add(mod.JoinedTable(left, right, "id"), "joined")
    art.add(mod.JoinedTable("left.table.json", "right.table.json", ["id", "id"]), "by-path")


def partitioned(mod: Any, art: Any, _: Path) -> None:
    for part in range(5):
        rows = [[part * 10 + r, f"p{part}r{r}"] for r in range(4)]
        art.add(mod.Table(columns=["n", "s"], data=rows), f"parts/part-{part}")
    art.add(mod.data_types.PartitionedTable("parts"), "whole")


SCENARIOS = [
    mixed_types,
    nones_and_optional,
    images_in_cells,
    timestamps_and_arrays,
    dataframe_and_ndarray,
    linked_tables,
    joined,
    partitioned,
]


@pytest.mark.parametrize("build", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
def test_same_objects_give_byte_identical_entries(build: Build, tmp_path: Path) -> None:
    w_art, s_art = build_both(build, tmp_path)
    expected, actual = wandb_files(w_art), soko_files(s_art)
    assert sorted(actual) == sorted(expected)
    for path in expected:
        assert actual[path] == expected[path], path
    assert_same_artifact(w_art, s_art)


def test_multidimensional_arrays_go_to_the_same_npz(tmp_path: Path) -> None:
    def build(mod: Any, art: Any, _: Path) -> None:
        grids = [[i, np.arange(12).reshape(3, 4) * i] for i in range(3)]
        art.add(mod.Table(columns=["i", "grid"], data=grids), "grids")

    w_art, s_art = build_both(build, tmp_path)
    expected, actual = wandb_files(w_art), soko_files(s_art)
    assert any(p.startswith("media/serialized_data/") for p in expected)
    assert actual == expected


_cell = st.one_of(
    st.none(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.booleans(),
    st.lists(st.one_of(st.integers(0, 3), st.none()), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 2), max_size=2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(_cell, min_size=3, max_size=3), max_size=8),
    mixed=st.booleans(),
)
def test_random_rows_are_typed_and_written_alike(rows: list[list[Any]], mixed: bool) -> None:
    outcomes = []
    for mod, art in (
        (wandb, wandb.Artifact("t", "dataset")),
        (soko, soko.Artifact("t", "dataset", digest_algorithm="MD5")),
    ):
        table = mod.Table(columns=["a", "b", "c"], allow_mixed_types=mixed)
        refused = []
        for row in rows:
            try:
                table.add_data(*row)
            except TypeError:
                refused.append(row)
        art.add(table, "t")
        files = wandb_files(art) if mod is wandb else soko_files(art)
        outcomes.append((refused, files))
    assert outcomes[0][0] == outcomes[1][0] or repr(outcomes[0][0]) == repr(outcomes[1][0])
    assert outcomes[1][1] == outcomes[0][1]


# ----- reading what the other wrote --------------------------------------------------------


def soko_artifact_from_files(files: dict[str, bytes], root: Path) -> soko.Artifact:
    if root.exists():
        shutil.rmtree(root)
    for path, data in files.items():
        target = root.joinpath(*path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    art = soko.Artifact("copied", "dataset")
    art.add_dir(str(root))
    return art


def test_tables_written_by_wandb_are_read_by_soko(tmp_path: Path) -> None:
    w_art = wandb.Artifact("from-wandb", "dataset")
    images = [wandb.Image(pixels((4, 3, 3), s), caption=f"c{s}") for s in range(3)]
    rows = [
        [0, "a", 0.5, True, images[0], datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)],
        [1, None, float("nan"), None, images[1], None],
        [2, "c", -1.0, False, images[2], datetime.datetime(2021, 6, 1, tzinfo=datetime.UTC)],
    ]
    columns = ["i", "s", "f", "b", "img", "t"]
    w_art.add(wandb.Table(columns=columns, data=rows), "evals")
    for part in range(5):
        w_art.add(wandb.Table(columns=["n"], data=[[part], [part + 10]]), f"parts/{part}")
    w_art.add(wandb.data_types.PartitionedTable("parts"), "all")
    left = wandb.Table(columns=["id"], data=[[1]])
    w_art.add(left, "left")
    w_art.add(wandb.JoinedTable(left, "evals.table.json", "i"), "joined")

    s_art = soko_artifact_from_files(wandb_files(w_art), tmp_path / "copy")
    evals = s_art.get("evals")
    assert isinstance(evals, soko.Table)
    assert evals.columns == columns
    assert [row[:4] for row in evals.data] == [[0, "a", 0.5, True], [1, None, None, None],
                                                [2, "c", -1.0, False]]  # fmt: skip
    assert evals.get_column("t") == [rows[0][5], None, rows[2][5]]
    for got, original in zip(evals.get_column("img"), images, strict=True):
        assert isinstance(got, soko.Image)
        assert got._sha256 == original._sha256
        assert got._caption == original._caption
        assert np.array_equal(np.asarray(got.image), np.asarray(original.image))
    whole = s_art.get("all")
    assert [row[0] for _, row in whole.iterrows()] == [n for p in range(5) for n in (p, p + 10)]
    join = s_art.get("joined")
    assert join.join_key == "i"
    assert join.table1.data == [[1]]
    # Written back by soko, wandb's table bytes come out unchanged.
    again = soko.Artifact("again", "dataset", digest_algorithm="MD5")
    again.add(evals, "evals")
    assert soko_files(again)["evals.table.json"] == wandb_files(w_art)["evals.table.json"]


class _SokoSource:
    """The part of a wandb Artifact that wandb's ``from_json`` uses, over a soko draft."""

    def __init__(self, art: soko.Artifact) -> None:
        self.art = art

    def get_entry(self, path: str) -> Any:
        local = self.art.get_entry(path).local_path

        class _Entry:
            def download(self) -> str:
                assert local is not None
                return local

        return _Entry()


def test_tables_written_by_soko_are_read_by_wandb() -> None:
    import json

    images = [soko.Image(pixels((3, 4, 3), s)) for s in range(2)]
    s_art = soko.Artifact("from-soko", "dataset")
    rows = [[0, "a", images[0], [1, 2]], [1, None, images[1], [3]]]
    s_art.add(soko.Table(columns=["i", "s", "img", "l"], data=rows), "t")
    raw = json.loads(Path(s_art.get_entry("t.table.json").local_path or "").read_text())
    table = wandb.Table.from_json(raw, _SokoSource(s_art))
    assert table.columns == ["i", "s", "img", "l"]
    assert [[r[0], r[1], r[3]] for r in table.data] == [[0, "a", [1, 2]], [1, None, [3]]]
    for got, original in zip(table.get_column("img"), images, strict=True):
        assert isinstance(got, wandb.Image)
        assert got._sha256 == original._sha256


def test_a_column_type_soko_does_not_model_is_kept_verbatim(tmp_path: Path) -> None:
    w_art = wandb.Artifact("html", "dataset")
    w_art.add(wandb.Table(columns=["h", "n"], data=[[wandb.Html("<b>x</b>"), 1], [None, 2]]), "t")
    files = wandb_files(w_art)
    table = soko_artifact_from_files(files, tmp_path / "copy").get("t")
    assert table.data[0][0]["_type"] == "html-file"
    again = soko.Artifact("again", "dataset", digest_algorithm="MD5")
    again.add(table, "t")
    assert soko_files(again)["t.table.json"] == files["t.table.json"]
