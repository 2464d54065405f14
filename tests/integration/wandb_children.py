"""Running the real ``wandb`` client in child processes against a ``soko server``.

Each child gets only the two variables a user sets (``WANDB_BASE_URL``, ``WANDB_API_KEY``),
online mode (the suite runs with ``WANDB_MODE=offline``), and folders of its own; nothing
else of the test's environment that starts with ``WANDB_`` or ``SOKO_``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
from server_fixtures import SokoServer

CHILD_TIMEOUT = 180.0

LOG = """
import sys, wandb
project, name, folder = sys.argv[1:4]
aliases = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[4] else None
algorithm = sys.argv[5] if len(sys.argv) > 5 else "MD5"
run = wandb.init(project=project, job_type="train", config={"lr": 0.1, "layers": 3})
run.log({"loss": 1.0})
run.log({"loss": 0.25})
# Passed only when asked: older releases (0.25) have no digest_algorithm.
options = {} if algorithm == "MD5" else {"digest_algorithm": algorithm}
artifact = wandb.Artifact(name, "dataset", metadata={"source": "test"}, **options)
artifact.add_dir(folder)
run.log_artifact(artifact, aliases=aliases)
artifact.wait()
print("RUN", run.id)
print("VERSION", artifact.version)
print("DIGEST", artifact.digest)
run.finish()
"""

USE = """
import sys, wandb
project, name, root = sys.argv[1:4]
run = wandb.init(project=project, job_type="eval")
artifact = run.use_artifact(name)
artifact.download(root=root)
print("RUN", run.id)
print("VERSION", artifact.version)
run.finish()
"""

EVOLVE = """
import sys, wandb
project, name, folder, extra = sys.argv[1:5]
run = wandb.init(project=project, job_type="curate")
artifact = wandb.Artifact(name, "model")
artifact.add_dir(folder)
run.log_artifact(artifact)
artifact.wait()
linked = run.link_artifact(artifact, "wandb-registry-model/" + name, aliases=["prod"])
print("LINKED", linked.qualified_name, linked.version)
portfolio = artifact.link(project + "/" + name + "-best", aliases=["top"])
print("PORTFOLIO", portfolio.qualified_name, portfolio.version)
draft = artifact.new_draft()
draft.remove("a.txt")
draft.add_file(extra, name="added.txt")
run.log_artifact(draft)
draft.wait()
print("DRAFT", draft.version)
increment = wandb.Artifact(name, "model", incremental=True)
increment.add_file(extra, name="more/added-again.txt")
run.log_artifact(increment)
increment.wait()
print("INCREMENT", increment.version)
print("RUN", run.id)
run.finish()
"""

API_DOWNLOAD = """
import sys, wandb
path, root = sys.argv[1:3]
artifact = wandb.Api().artifact(path)
artifact.download(root=root)
print("VERSION", artifact.version)
print("ALIASES", ",".join(sorted(artifact.aliases)))
"""


def child_env(server: SokoServer, key: str, home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SOKO_"))}
    env.update(
        WANDB_BASE_URL=server.url,
        WANDB_API_KEY=key,
        WANDB_MODE="online",
        WANDB_SILENT="true",
        WANDB_DIR=str(home / "runs"),
        WANDB_CACHE_DIR=str(home / "cache"),
        WANDB_CONFIG_DIR=str(home / "config"),
        WANDB_DATA_DIR=str(home / "data"),
    )
    (home / "runs").mkdir(exist_ok=True)
    return env


def run_child(
    script: str, *args: str, env: dict[str, str], cwd: Path, python: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """*script* run by *python* (by default this interpreter, with the pinned ``wandb``)."""
    return subprocess.run(
        [str(python or sys.executable), "-c", textwrap.dedent(script), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )


def printed(result: subprocess.CompletedProcess[str], key: str) -> str:
    """The value the child printed on a ``KEY value`` line."""
    found = re.search(rf"^{key} (.*)$", result.stdout, re.MULTILINE)
    assert found, f"no {key} line; stdout:\n{result.stdout}\nstderr:\n{result.stderr[-3000:]}"
    return found.group(1).strip()


def _metric(server: SokoServer, prefix: str) -> int:
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in lines))


def upload_urls(server: SokoServer) -> int:
    """The upload URLs the server has handed to wandb clients so far: one per blob a
    project lacked (content it holds gets none)."""
    return _metric(server, "soko_wandb_upload_urls_total ")


def uploads_received(server: SokoServer) -> int:
    """The file uploads a server with a folder store has taken (through its signed URLs)."""
    return _metric(
        server, 'soko_http_requests_total{method="PUT",route="/wandb/uploads/{token}",status="200"}'
    )


def tree(root: Path) -> dict[str, bytes]:
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in paths}
