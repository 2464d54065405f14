"""The request to log a version: one value from the SDK to the service.

The SDK builds a :class:`CommitRequest` when ``log_artifact``, ``upsert_artifact`` or
``finish_artifact`` is called; it travels unchanged through the client's Backend to the
service (``commit_version``, ``distributed.upsert``/``finish``), in process for the embedded
store. Over HTTP the wire model ``soko.wire.requests.CommitIn`` is converted from and back to
it, with the manifest travelling as a blob (``manifest_blob`` + ``algorithm``). What a
server computes for itself (which blobs of other projects the commit borrows, see
``soko.service.possession``) is passed beside it, never mixed into the client's request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from soko.core.manifest import Manifest


@dataclass(frozen=True)
class CommitRequest:
    """A new version of ``entity/project/name`` holding *manifest*, or a part of one.

    ``distributed_id`` names the pending version that many writers build together
    (``upsert``/``finish``); a plain commit has none. ``incremental`` (W&B's
    ``Artifact(..., incremental=True)``): *manifest* holds only what the draft added, laid
    over the entries of the collection's latest version where the commit happens
    (``soko.service.incremental``). The service validates every field
    (``soko.service.commit.validated``) before anything is stored.
    """

    entity: str
    project: str
    name: str
    type: str
    manifest: Manifest
    aliases: Sequence[str] = ()
    tags: Sequence[str] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    ttl_seconds: int | None = None
    run_id: str | None = None
    distributed_id: str | None = None
    incremental: bool = False
