"""``SOKO_DIGEST_ALGORITHM=MD5``: artifacts made with no ``digest_algorithm`` get W&B's digests.

The same files, tables and images go into a ``wandb.Artifact`` (MD5, W&B's default) and a
``soko.Artifact`` made without naming an algorithm: with the setting, the manifests agree
entry by entry (digests, the digest-derived media and table names, sizes) and so does the
version digest; without it, soko's default (XXH128) is the one W&B writes when asked for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import wandb
from wandb_parity import assert_same_artifact

import soko

pytestmark = pytest.mark.differential


def build(mod: Any, art: Any, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    if not folder.exists():
        (folder / "sub").mkdir(parents=True)
        (folder / "a.txt").write_text("hello")
        (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
        (tmp_path / "alone.csv").write_text("x,y\n1,2\n")
    art.add_dir(str(folder), name="data")
    art.add_file(str(tmp_path / "alone.csv"))
    with art.new_file("notes/readme.md") as handle:
        handle.write("# notes\n")
    rng = np.random.default_rng(11)
    images = [mod.Image(rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)) for _ in range(3)]
    users = mod.Table(columns=["id", "name"], data=[["u1", "Ann"], ["u2", "Bo"]])
    users.set_pk("id")
    events = mod.Table(columns=["user", "img"], data=[["u1", images[0]], ["u2", images[1]]])
    events.set_fk("user", users, "id")
    art.add(events, "events")
    art.add(images[2], "cover")
    labels = {0: "bg", 1: "fg"}
    mask = rng.integers(0, 2, (5, 4), dtype=np.uint8)
    art.add(mod.Image(images[0], masks={"m": {"mask_data": mask, "class_labels": labels}}), "seg")


def test_the_md5_setting_gives_wandbs_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOKO_DIGEST_ALGORITHM", "MD5")
    w_art = wandb.Artifact("parity", "dataset")
    s_art = soko.Artifact("parity", "dataset")
    build(wandb, w_art, tmp_path)
    build(soko, s_art, tmp_path)
    assert any(p.startswith("media/tables/") for p in w_art.manifest.entries)
    assert_same_artifact(w_art, s_art)


def test_the_default_is_wandbs_xxh128_manifest(tmp_path: Path) -> None:
    w_art = wandb.Artifact("parity", "dataset", digest_algorithm="XXH128")
    s_art = soko.Artifact("parity", "dataset")
    build(wandb, w_art, tmp_path)
    build(soko, s_art, tmp_path)
    assert_same_artifact(w_art, s_art)
    md5 = wandb.Artifact("parity", "dataset")
    build(wandb, md5, tmp_path)
    # The two algorithms name the digest-named media and tables differently.
    assert sorted(md5.manifest.entries) != sorted(w_art.manifest.entries)
