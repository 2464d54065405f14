"""The logged half of an artifact: the version it is, once a log has committed it.

:class:`LoggedVersion` holds the version's record, the backend it lives in and the
background log committing it, and answers W&B's attributes of a logged version
(``version``, ``entity``, ``qualified_name``, ``created_at``, …). An attribute waits for a
background log to commit and raises what made it fail; on a draft it raises
ArtifactNotLoggedError, except those W&B gives drafts too (``id`` None, ``state``
"PENDING"). ``soko.Artifact`` is one, with its draft half (:mod:`soko.sdk.draft`) beside.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Self

from soko.client.backend import Backend
from soko.core.records import VersionRecord
from soko.errors import ArtifactNotLoggedError, WaitTimeoutError


class LoggedVersion:
    """The version an artifact of collection *name* is, once logged."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._record: VersionRecord | None = None
        self._backend: Backend | None = None
        self._pending: Future[VersionRecord] | None = None
        """The background log committing it, until the record is attached."""
        self._source_record: VersionRecord | None = None
        """Of a link: the version it links, read on first need."""

    def _logged_record(self, *, wait: bool) -> VersionRecord | None:
        if self._pending is not None and (wait or self._pending.done()):
            self.wait()
        return self._record

    def _require_logged(self, what: str) -> VersionRecord:
        record = self._logged_record(wait=True)
        if record is None:
            # W&B's message, naming the attribute as W&B does: 'Artifact.<what>'.
            raise ArtifactNotLoggedError(f"Artifact.{what}", self)
        return record

    def _live_backend(self) -> Backend:
        self._require_logged("_live_backend")
        assert self._backend is not None
        return self._backend

    def wait(self, timeout: float | None = None) -> Self:
        """Block until a background log has committed; raise what made it fail."""
        pending = self._pending
        if pending is not None:
            try:
                pending.result(timeout=timeout)
            except TimeoutError as exc:
                if pending.done():
                    raise  # the log itself failed with it
                raise WaitTimeoutError(
                    "Artifact upload wait timed out, failed to fetch Artifact response"
                ) from exc
        elif self._record is None:
            raise ArtifactNotLoggedError("Artifact.wait", self)
        return self

    @property
    def id(self) -> str | None:
        """The version's id; a link's is its source's, as in W&B (the link itself is told
        apart by ``is_link`` and its name)."""
        record = self._logged_record(wait=True)
        if record is None:
            return None
        return record.source_id or record.id

    @property
    def version(self) -> str:
        return self._require_logged("version").version

    @property
    def entity(self) -> str:
        return self._require_logged("entity").entity

    @property
    def project(self) -> str:
        return self._require_logged("project").project

    @property
    def qualified_name(self) -> str:
        record = self._require_logged("qualified_name")
        return f"{record.entity}/{record.project}/{self._name}:{record.version}"

    @property
    def is_link(self) -> bool:
        """Whether this is a link in a registry collection (W&B's linked artifact)."""
        record = self._logged_record(wait=True)
        return record is not None and record.is_link

    def _source(self, what: str) -> VersionRecord:
        """The version holding this one's content: itself, or a link's source."""
        record = self._require_logged(what)
        if record.source_id is None:
            return record
        if self._source_record is None or self._source_record.id != record.source_id:
            self._source_record = self._live_backend().get_version(record.source_id)
        return self._source_record

    @property
    def source_name(self) -> str:
        """``name:vN`` of the version holding the content (a link's source); a draft's is
        its name alone (as in W&B)."""
        if self._logged_record(wait=True) is None:
            return self._name
        source = self._source("source_name")
        return f"{source.collection}:{source.version}"

    @property
    def source_version(self) -> str:
        return self._source("source_version").version

    @property
    def source_entity(self) -> str:
        return self._source("source_entity").entity

    @property
    def source_project(self) -> str:
        return self._source("source_project").project

    @property
    def source_qualified_name(self) -> str:
        source = self._source("source_qualified_name")
        return source.qualified_name

    @property
    def history_step(self) -> int | None:
        """W&B: the step of the logging run's history; soko keeps no history steps."""
        self._require_logged("history_step")
        return None

    def json_encode(self) -> dict[str, Any]:
        """The reference to this version that W&B writes into run configs and tables."""
        record = self._require_logged("json_encode")
        return {
            "_type": "artifactVersion",
            "_version": "v0",
            "id": record.id,
            "version": record.version,
            "sequenceName": self._name,
            "usedAs": None,
        }

    @property
    def collection_name(self) -> str:
        return self._name

    @property
    def state(self) -> str:
        record = self._logged_record(wait=False)
        return record.state if record else "PENDING"

    @property
    def created_at(self) -> str:
        return self._require_logged("created_at").created_at.isoformat()

    @property
    def updated_at(self) -> str:
        return self._require_logged("updated_at").updated_at.isoformat()

    @property
    def commit_hash(self) -> str:
        return self._require_logged("commit_hash").id[:12]

    @property
    def use_as(self) -> None:
        return None
