"""examples/ray_distributed.py, W&B's distributed-artifact example with ``import soko as
wandb``, run for real: Ray writers upsert tables, a final run finishes the artifact, and the
committed version read back here holds every writer's row."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import soko
from soko.client.connect import get_backend

if TYPE_CHECKING:
    from tests.conftest import SokoEnv

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ray_distributed.py"
WRITERS = 5


def test_ray_writers_build_one_version_that_holds_every_row(
    soko_env: SokoEnv, tmp_path: Path
) -> None:
    try:
        import ray  # noqa: F401 - only checks that the example can run
    except ImportError as exc:
        message = f"ray is not installed ({exc}); pip install 'soko[test]'"
        if os.environ.get("CI", "").strip().lower() in ("true", "1"):
            pytest.fail(f"{message} (CI=true: integration services are required)")
        pytest.skip(message)
    # Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep for them.
    ray_tmp = tempfile.mkdtemp(prefix="soko-ray-", dir="/tmp")
    environment = dict(os.environ)
    environment.update(
        SOKO_DIR=str(soko_env.store), SOKO_CACHE_DIR=str(soko_env.cache), RAY_TMPDIR=ray_tmp
    )
    environment.pop("SOKO_BASE_URL", None)
    try:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE), "--writers", str(WRITERS), "--workdir", str(tmp_path)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert done.returncode == 0, f"the example failed:\n{done.stdout}\n{done.stderr[-4000:]}"

    artifact = soko.Api().artifact("ray-example/raytest:latest")
    assert artifact.version == "v0"
    paths = sorted(e.path for e in artifact.manifest)
    assert paths == [
        *(f"parts/table_{i}.table.json" for i in range(WRITERS)),
        "table.partitioned-table.json",
    ]
    table = artifact.get("table")
    assert isinstance(table, soko.data_types.PartitionedTable)
    rows = sorted(list(row) for row in table)
    assert rows == sorted([i, i * 2, 2**i] for i in range(WRITERS))

    backend = get_backend()
    assert artifact.id is not None
    logged = backend.runs_of_version(artifact.id, "logged")
    assert len(logged) == WRITERS + 1
    assert {r.group for r in logged} == {logged[0].group}
    assert backend.list_pending("local", "ray-example") == []
