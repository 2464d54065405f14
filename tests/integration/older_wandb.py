"""An older ``wandb`` release, in a virtualenv of its own, for the client tests.

The suite's own virtualenv holds the ``wandb`` release soko pins; clients already deployed
are often a release or two behind, so the core flows also run with the interpreter of
``.venv-wandb-<version>`` at the repository's root. It is built once (``scripts/test`` builds
it before pytest; a test builds it when it is missing) and kept for the next run.

``python tests/integration/older_wandb.py`` builds it and prints its interpreter.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

# Six minor releases before the pinned one: it asks fields the pinned one does not
# (``Project.artifact(enableTracking:)``) and lacks ``Artifact(digest_algorithm=)``.
OLDER_WANDB_VERSION = "0.25.1"
ROOT = Path(__file__).resolve().parents[2]


def older_wandb_venv(version: str = OLDER_WANDB_VERSION) -> Path:
    return ROOT / f".venv-wandb-{version}"


def _installed(python: Path, version: str) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import wandb; print(wandb.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return probe.returncode == 0 and probe.stdout.strip() == version


def older_wandb_python(version: str = OLDER_WANDB_VERSION) -> Path:
    """The interpreter of a virtualenv holding ``wandb==version``, built if missing (a
    half-built one, from an install that was interrupted, is built again). Raises
    ``RuntimeError`` with pip's output when the release does not install."""
    venv = older_wandb_venv(version)
    python = venv / "bin" / "python"
    if _installed(python, version):
        return python
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         f"wandb=={version}"],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(
                f"cannot install wandb=={version} into {venv}: {' '.join(step)} failed:\n"
                f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    if not _installed(python, version):
        raise RuntimeError(f"wandb=={version} installed into {venv} does not import")
    return python


if __name__ == "__main__":
    print(older_wandb_python())
