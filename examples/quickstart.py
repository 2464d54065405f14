"""soko's main job on the embedded store: version a folder, then fetch it back.

Run it with ``python examples/quickstart.py``; it writes under ./soko-quickstart/ (the store,
the cache and the downloads) so it leaves your home directory alone. The same code runs on
W&B: only the import differs.
"""

from __future__ import annotations

import os
import pathlib
import random

workdir = pathlib.Path("soko-quickstart").resolve()
os.environ.setdefault("SOKO_DIR", str(workdir / "store"))
os.environ.setdefault("SOKO_CACHE_DIR", str(workdir / "cache"))

import soko as wandb  # noqa: E402 - the environment above must be set first

data = workdir / "data"
(data / "images").mkdir(parents=True, exist_ok=True)
rng = random.Random(0)
for i in range(100):
    (data / "images" / f"img_{i:03}.bin").write_bytes(rng.randbytes(4096))
(data / "labels.csv").write_text("".join(f"img_{i:03},{i % 10}\n" for i in range(100)))

with wandb.init(project="quickstart", job_type="prepare") as run:
    dataset = wandb.Artifact("mnist-mini", type="dataset", metadata={"rows": 100})
    dataset.add_dir(str(data))
    run.log_artifact(dataset, aliases=["raw"])
    dataset.wait()
    print(f"logged   {dataset.qualified_name}  {dataset.file_count} files, {dataset.size} bytes")

with wandb.init(project="quickstart", job_type="train") as run:
    used = run.use_artifact("mnist-mini:latest")
    root = used.download(root=str(workdir / "download"))
    used.verify(root)
    print(f"download {used.qualified_name} -> {root} (verified)")
    print(f"lineage  logged by {used.logged_by().id}, used by {[r.id for r in used.used_by()]}")
