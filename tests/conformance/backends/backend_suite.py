"""The one set of helpers of the backend suite: the ``Backend`` handle and file helpers.

A case gets a :class:`Backend` from the ``backend`` fixture (conftest.py) and talks to it
through the public SDK only (``soko``, ``soko.errors``): it never imports ``soko.client``,
``soko.service`` or ``soko.storage``, so it keeps meaning the same thing while those change.

Capabilities name what only some backends offer. A case that needs one is marked
``@pytest.mark.needs(CAPABILITY)`` and is then generated only for the backends that have it:
it is never skipped, it simply does not exist for the others.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soko

MAINTENANCE = "maintenance"
"""``soko gc`` and ``soko verify`` reach the backend's store. Only the embedded store has it:
a server exposes neither over HTTP, and the commands open SOKO_DIR, not a server's store."""


def write(path: str | Path, content: str | bytes) -> Path:
    """Write *content* to *path*, making its folders; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        target.write_text(content)
    else:
        target.write_bytes(content)
    return target


def files_below(root: str | Path) -> dict[str, bytes]:
    """Every file under *root*: POSIX relative path -> bytes."""
    found: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, root).replace(os.sep, "/")] = Path(full).read_bytes()
    return found


def as_bytes(files: Mapping[str, str | bytes]) -> dict[str, bytes]:
    return {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}


def identity(path: str | Path) -> tuple[int, int]:
    """(inode, mtime_ns): unchanged when a download kept the file instead of rewriting it."""
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


@dataclass
class Backend:
    """The backend a case runs on; the SDK of the case is already pointed at it.

    Each case has a project of its own (``SOKO_PROJECT``), so ``soko.init()`` and
    ``soko.Api().artifact("name")`` need no project; servers are shared by the session.
    """

    kind: str
    capabilities: frozenset[str]
    entity: str
    project: str
    maintenance: Callable[[Sequence[str]], dict[str, Any]] | None = None
    _folders: itertools.count[int] = field(default_factory=itertools.count)

    @staticmethod
    def unique(prefix: str) -> str:
        """A name no other case uses (servers are shared: registries, other projects)."""
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def log(
        self,
        name: str,
        files: Mapping[str, str | bytes],
        *,
        type: str = "dataset",
        aliases: Sequence[str] = (),
        tags: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        job_type: str | None = None,
    ) -> soko.Artifact:
        """Log *files* as the next version of *name* from a run of its own; returns it."""
        folder = Path(f"src-{name}-{next(self._folders)}")
        for relative, content in files.items():
            write(folder / relative, content)
        with soko.init(job_type=job_type) as run:
            artifact = soko.Artifact(name, type, metadata=metadata)
            artifact.add_dir(str(folder))
            run.log_artifact(artifact, aliases=list(aliases), tags=tags)
        return artifact

    def gc(self) -> dict[str, Any]:
        """``soko gc --grace 0``: what it deleted, as its JSON report."""
        return self._maintain(["gc", "--grace", "0", "--json"])

    def check_store(self) -> dict[str, Any]:
        """``soko verify``: the whole-store check, as its JSON report."""
        return self._maintain(["verify", "--json"])

    def _maintain(self, argv: Sequence[str]) -> dict[str, Any]:
        assert self.maintenance is not None, f"{self.kind} has no {MAINTENANCE} capability"
        return self.maintenance(argv)
