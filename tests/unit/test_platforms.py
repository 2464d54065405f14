"""soko where the Linux-only calls are missing: no ``fcntl`` (Windows), no ``syncfs``, no
``sync_file_range``, no ``copy_file_range``/``preadv``, no reflinks. Each is made absent in
a fresh process before soko is imported; logging, downloading and checking out still work,
through their fallbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = r"""
import json, os, sys

sys.modules["fcntl"] = None  # `import fcntl` now fails, as on Windows
for name in ("copy_file_range", "preadv"):
    if hasattr(os, name):
        delattr(os, name)

import soko
import soko.storage.copying as copying
import soko.storage.durability as durability

asked = []
durability._syncfs = lambda: asked.append("syncfs")  # None: the platform has none
copying._sync_file_range = lambda: asked.append("sync_file_range")

data, root = sys.argv[1], sys.argv[2]
with soko.init(project="platforms") as run:
    artifact = soko.Artifact("ds", "dataset")
    artifact.add_dir(data)
    run.log_artifact(artifact).wait()
got = soko.Api().artifact("platforms/ds:latest")
got.download(root)
os.makedirs(os.path.join(root + "-co", "stray"), exist_ok=True)
open(os.path.join(root + "-co", "stray", "x"), "w").close()
got.checkout(root + "-co")
got.verify(root + "-co")
print(json.dumps({
    "asked": sorted(set(asked)),
    "fcntl_loaded": sys.modules.get("fcntl") is not None,
    "files": len(got.manifest),
}))
"""


def test_soko_works_without_the_linux_only_calls(tmp_path: Path, user_config_dir: Path):
    data = tmp_path / "data"
    data.mkdir()
    small = {f"f{i:03}.txt": f"file {i}" for i in range(40)}  # more than one fsync batch
    for name, text in small.items():
        (data / name).write_text(text)
    large = os.urandom(40 * 1024 * 1024)  # a pipelined copy into the store
    (data / "large.bin").write_bytes(large)
    root = tmp_path / "root"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SOKO_")},
        "SOKO_DIR": str(tmp_path / "store"),
        "SOKO_CACHE_DIR": str(tmp_path / "cache"),
        "SOKO_CONFIG_DIR": str(user_config_dir),
        "SOKO_LINK": "reflink",  # asks for clones, which fall back to copies
        "SOKO_SILENT": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), str(root)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "asked": ["sync_file_range", "syncfs"],
        "fcntl_loaded": False,
        "files": 41,
    }
    for name, text in small.items():
        assert (root / name).read_text() == text
    assert (root / "large.bin").read_bytes() == large
    checked_out = tmp_path / "root-co"
    assert sorted(p.name for p in checked_out.iterdir()) == [*sorted(small), "large.bin"]
