"""Values read back from a logged artifact: only the entries they need are downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import soko
from soko.data_types import PartitionedTable


def downloaded(workdir: Path) -> set[str]:
    root = workdir / "artifacts"
    found = set()
    for path in root.rglob("*") if root.exists() else []:
        if path.is_file():
            found.add(path.relative_to(root).as_posix().split("/", 1)[1])
    return found


def image(seed: int) -> soko.Image:
    return soko.Image(np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8))


def test_get_downloads_only_the_entries_a_value_needs(soko_env: object) -> None:
    workdir = Path.cwd()
    wanted_images = [image(s) for s in range(3)]
    other_images = [image(s) for s in range(10, 14)]
    wanted = soko.Table(columns=["i", "img"], data=[[i, im] for i, im in enumerate(wanted_images)])
    with soko.init(project="values") as run:
        art = soko.Artifact("evals", "dataset")
        art.add(wanted, "wanted")
        art.add(soko.Table(columns=["img"], data=[[im] for im in other_images]), "other")
        for part in range(5):
            art.add(soko.Table(columns=["n"], data=[[part]]), f"parts/{part}")
        art.add(PartitionedTable("parts"), "whole")
        with art.new_file("weights.bin", mode="wb") as handle:
            handle.write(b"\0" * 100_000)
        run.log_artifact(art)
        art.wait()

    with soko.init(project="values") as run:
        logged = run.use_artifact("evals:latest")
        got = logged.get("wanted")
        assert got == wanted
        wanted_paths = {e.path for e in art.manifest if e.path.startswith("media/images/")}
        assert downloaded(workdir) == {"wanted.table.json"} | {
            row[1]._stored_path for row in got.data
        }
        assert len(downloaded(workdir) & wanted_paths) == 3
        assert "weights.bin" not in downloaded(workdir)
        assert "other.table.json" not in downloaded(workdir)

        whole = logged["whole"]
        assert isinstance(whole, PartitionedTable)
        assert not any(p.startswith("parts/") for p in downloaded(workdir))
        assert [row[0] for _, row in whole.iterrows()] == [0, 1, 2, 3, 4]
        assert {p for p in downloaded(workdir) if p.startswith("parts/")} == {
            f"parts/{i}.table.json" for i in range(5)
        }
        assert "weights.bin" not in downloaded(workdir)
        assert logged.get("missing") is None
