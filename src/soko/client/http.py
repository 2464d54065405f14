"""HttpBackend: the Backend protocol answered by a soko server (``SOKO_BASE_URL``).

Uploads (:mod:`soko.client.http_upload`): one batched question for the missing blobs,
then their bytes from their sources, verified by the server before a blob can be
referenced. Questions and uploads name the project they are for: a commit may name only
blobs its project uploaded or that a version the client read names, so the client lists
those versions (``sources``) with the question and the commit.

Downloads (:mod:`soko.client.http_download`): every blob goes through the
content-addressed cache (``SOKO_CACHE_DIR``), verified as it arrives, and into the root; a
cached blob is not fetched again. The server serves a blob only through a version that
names it, so the client remembers which version each digest it may fetch came from (the
manifests it read).
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from soko.client.backend import Progress
from soko.client.cache import BlobCache
from soko.client.http_automations import HttpAutomations
from soko.client.http_capture import UploadCapture
from soko.client.http_download import BlobDownloads
from soko.client.http_known import KnownVersions
from soko.client.http_layered import HttpDraftBases, change_of, reference_fields
from soko.client.http_missing import MissingQuestions
from soko.client.http_registries import HttpRegistries
from soko.client.http_session import ApiSession
from soko.client.http_session import path_segment as _q
from soko.client.http_upload import BlobUploads
from soko.client.sources import BlobSource
from soko.client.statcache import StatCache
from soko.core import runlog
from soko.core.digests import Algorithm, Digest
from soko.core.layered import LayeredManifest
from soko.core.manifest import MANIFEST_ALGORITHM, Manifest, ManifestRef
from soko.core.manifest_index import EntriesPage
from soko.core.membership import MembershipCache
from soko.core.names import validate_metadata
from soko.core.records import CollectionRecord, ProjectRecord, RunRecord, VersionRecord
from soko.core.requests import CommitRequest
from soko.errors import (
    CorruptBlobError,
    DigestMismatchError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
)
from soko.settings import Settings
from soko.wire.framing import SMALL_BLOB, frame_header
from soko.wire.records import (
    CollectionList,
    CollectionOut,
    ProjectList,
    RunList,
    RunOut,
    TypeList,
    VersionList,
    VersionOut,
)
from soko.wire.requests import (
    CommitIn,
    CommittedOut,
    EntriesPageOut,
)
from soko.wire.rundata import HistoryOut

_CHUNK = 1024 * 1024

STREAM_MANIFEST_AT = 50_000
"""A manifest of this many entries or more is uploaded a slice at a time, not encoded
whole (a smaller one's bytes are a few megabytes at most)."""


def _jsonable(value: Any) -> Any:
    """*value* with NaN and infinities as null and unknown objects as strings (JSON-safe)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


class HttpBackend(HttpRegistries, HttpAutomations, HttpDraftBases, KnownVersions):
    """The server ``config.base_url`` names, with the key, the download cache and the link
    mode *config* gives; *stat_cache* remembers the root files that are copies of blobs."""

    def __init__(self, config: Settings, *, stat_cache: StatCache) -> None:
        if not config.base_url:
            raise StoreError("No soko server is configured (SOKO_BASE_URL is not set).")
        self.base_url = config.base_url.rstrip("/")
        self.session = ApiSession(self.base_url, api_key=config.api_key)
        self.cache = BlobCache.from_settings(config)
        self.link_mode = config.link_mode
        self._lock = threading.Lock()
        # version id -> the blob digests its manifest names (what this client may fetch),
        # with the sizes it gives them.
        self._members = MembershipCache()
        self._logged: tuple[str, Manifest] | None = None
        self._manifests: OrderedDict[str, Manifest] = OrderedDict()
        self._downloads = BlobDownloads(
            self.session,
            self.cache,
            link_mode=self.link_mode,
            versions_for=self._versions_for,
            copies=stat_cache,
            cache_large=config.cache_large,
        )
        self._uploads = BlobUploads(self.session, self.cache)
        self._missing = MissingQuestions(self.session, self._sources_for)

    def __repr__(self) -> str:
        return f"HttpBackend({self.base_url!r})"

    def begin_upload_capture(self, *, entity: str, project: str, name: str | None) -> UploadCapture:
        def ask(algorithm: Algorithm, raws: bytes) -> bytes | None:
            return self._missing.missing_bits(
                algorithm, raws, entity=entity, project=project, name=name
            )

        return UploadCapture(self._uploads, ask, entity=entity, project=project)

    def close(self) -> None:
        self.session.close()

    # --- blobs: uploads ----------------------------------------------------------------
    def missing_blobs(
        self, digests: Iterable[Digest], *, entity: str, project: str, name: str | None = None
    ) -> set[Digest]:
        return self._missing.ask(digests, entity=entity, project=project, name=name)

    def store_blobs(
        self,
        sources: Sequence[BlobSource],
        *,
        entity: str,
        project: str,
        progress: Progress | None = None,
        staging: bool = False,
    ) -> list[BlobSource]:
        """Upload the sources' bytes for ``entity/project``.

        *staging* (``policy="mutable"``, before ``log_artifact`` returns): the server is the
        staging area, as the embedded store is its own: the bytes go up now, verified
        there, and the log's upload finds them stored (one read of each file, no local
        copy). A key that may not upload stages verified copies in the local cache
        instead, returned as the sources the log's upload then reads.
        """
        owner = {"entity": entity, "project": project}
        if not staging:
            self._uploads.upload(sources, owner=owner, progress=progress)
            return []
        try:
            self._uploads.upload(sources, owner=owner, progress=progress)
        except PermissionDeniedError:
            return self._uploads.stage_in_cache(sources, progress)
        except DigestMismatchError as exc:
            raise DigestMismatchError(str(exc).replace("after", "while")) from None
        return []

    # --- blobs: downloads --------------------------------------------------------------
    def fetch_blobs(
        self,
        items: Sequence[tuple[Digest, str]],
        *,
        progress: Progress | None = None,
        use_cache: bool = True,
        writers: int | None = None,
    ) -> None:
        self._downloads.fetch(items, progress=progress, use_cache=use_cache, writers=writers)

    # --- versions ----------------------------------------------------------------------
    def _put_manifest(self, manifest: Manifest, *, entity: str, project: str) -> str:
        """Upload the manifest for the project unless it holds it already (a commit names
        only a manifest blob its project uploaded)."""
        owner = {"entity": entity, "project": project}
        if len(manifest) >= STREAM_MANIFEST_AT and not isinstance(manifest, LayeredManifest):
            # Hashed, then sent, a slice of entries at a time: its bytes (about 95 a file,
            # 95 MB for a million) are never held whole. Encoding twice costs about 1.3 s
            # of CPU per million entries.
            hasher = MANIFEST_ALGORITHM.hasher()
            for piece in manifest.pieces():
                hasher.update(piece)
            digest = Digest(MANIFEST_ALGORITHM, hasher.digest())
            if self.missing_blobs([digest], **owner):
                self.session.call(
                    "PUT",
                    f"/blobs/{digest.algorithm.key}/{digest.hex}",
                    params=owner,
                    content=_Pieces(manifest),
                    headers={"Content-Type": "application/octet-stream"},
                )
            return ManifestRef(digest).key
        ref, raw = ManifestRef.encode(manifest)
        digest = ref.digest
        if self.missing_blobs([digest], **owner):
            if len(raw) < SMALL_BLOB:
                self._uploads.send_batch(frame_header(digest, len(raw)) + raw, owner)
            else:
                target = f"/blobs/{digest.algorithm.key}/{digest.hex}"
                self.session.call(
                    "PUT",
                    target,
                    params=owner,
                    content=raw,
                    headers={"Content-Type": "application/octet-stream"},
                )
        return ref.key

    def _commit_body(self, request: CommitRequest) -> dict[str, Any]:
        manifest = request.manifest
        layered = self.sent_by_reference(request)
        if layered is not None:
            # Only the change goes up: the server splices it over the base (see
            # soko.client.http_layered).
            manifest = change_of(layered)
        elif isinstance(manifest, LayeredManifest):
            manifest = manifest.whole()
        # The artifact's metadata is a dict its owner may have changed since it was set.
        request = replace(request, metadata=validate_metadata(request.metadata))
        body = CommitIn.of(
            request,
            manifest_blob=self._put_manifest(
                manifest, entity=request.entity, project=request.project
            ),
            # Made a batch at a time as they are compared: a log that read no version
            # makes none of them.
            sources=self._sources_for(manifest.stored_blobs()),
        )
        data = body.model_dump(mode="json")
        if not request.incremental:
            # Sent only when set: a server that predates it then still takes plain commits,
            # and refuses (422) an incremental one rather than commit only what was added.
            del data["incremental"]
        del data["base_version"], data["removed"]  # likewise: sent only when set
        if layered is not None:
            data.update(reference_fields(layered))
        return data

    def _version(self, method: str, path: str, **kwargs: Any) -> VersionRecord:
        return VersionOut.model_validate(self.session.json(method, path, **kwargs)).to_record()

    def commit(self, request: CommitRequest) -> VersionRecord:
        record = self._version("POST", "/versions", json=self._commit_body(request))
        # The logged artifact downloads with the manifest it was built from: its blobs are
        # the version's (or its twin's, which has the same entries). An incremental
        # request holds only part of them: the version's manifest is read when needed.
        if isinstance(request.manifest, LayeredManifest):
            # The change's blobs; the base's are known through the base version, and a
            # read of the whole manifest replaces these.
            self._members.add(record.id, request.manifest.blob_sizes())
        elif not request.incremental:
            self._remember_logged(record.id, request.manifest)
        return record

    def upsert(self, request: CommitRequest) -> VersionRecord:
        return self._version("POST", "/versions/upsert", json=self._commit_body(request))

    def finish_distributed(self, request: CommitRequest) -> VersionRecord:
        return self._version("POST", "/versions/finish", json=self._commit_body(request))

    def list_pending(
        self, entity: str, project: str, name: str | None = None
    ) -> list[VersionRecord]:
        params = {"name": name} if name is not None else {}
        data = self.session.json(
            "GET", f"/projects/{_q(entity)}/{_q(project)}/pending", params=params
        )
        return VersionList.model_validate(data).to_records()

    def abandon_pending(
        self, entity: str, project: str, name: str, distributed_id: str
    ) -> VersionRecord:
        body = {"entity": entity, "project": project, "name": name}
        body["distributed_id"] = distributed_id
        return self._version("POST", "/pending/abandon", json=body, idempotent=False)

    def manifest(self, record: VersionRecord) -> Manifest:
        key = record.manifest_blob
        if key is None:
            raise NotFoundError(f"Version {record.qualified_name} has no manifest yet.")
        with self._lock:
            manifest = self._manifests.get(key)
            if manifest is not None:
                self._manifests.move_to_end(key)
        if manifest is None:
            manifest = self._load_manifest(record, ManifestRef.parse(key))
            with self._lock:
                self._manifests[key] = manifest
                while len(self._manifests) > 16:
                    self._manifests.popitem(last=False)
        self._remember(record.id, manifest)
        return manifest

    def manifest_page(
        self, record: VersionRecord, *, prefix: str = "", after: str | None = None, limit: int
    ) -> EntriesPage:
        params: dict[str, Any] = {"prefix": prefix, "limit": limit}
        if after is not None:
            params["after"] = after
        data = self.session.json("GET", f"/versions/{_q(record.id)}/files", params=params)
        page = EntriesPageOut.model_validate(data).to_page()
        # The entries of the page can be fetched: the server is asked for them as blobs of
        # this version, as for a manifest read whole.
        self._members.add(record.id, page.blob_sizes())
        return page

    def _load_manifest(self, record: VersionRecord, ref: ManifestRef) -> Manifest:
        """The manifest, checked against *ref* (:meth:`ManifestRef.load`): from the cache,
        else from the server. A cached copy that does not match (a flipped bit on disk
        would move one file's bytes to another path) is evicted and fetched again, once."""
        algorithm = Algorithm.parse(record.algorithm)
        digest = ref.digest
        cached = self.cache.get(digest)
        if cached is not None:
            try:
                return ref.load(_read_file(cached), algorithm)
            except FileNotFoundError:
                pass  # removed by a cleanup meanwhile
            except CorruptBlobError:
                self.cache.evict(digest)

        def attempt() -> str:
            with self.session.stream("GET", f"/versions/{_q(record.id)}/manifest") as response:
                return self.cache.put_chunks(digest, response.iter_bytes(_CHUNK))

        try:
            raw = _read_file(self.session.retrying(attempt))
        except DigestMismatchError as exc:
            raise CorruptBlobError(
                f"The manifest of {record.qualified_name} from the server does not match its "
                f"digest {digest}: {exc}"
            ) from None
        return ref.load(raw, algorithm)

    def has_committed_digest(
        self, entity: str, project: str, name: str, digest: str, *, blobs: Iterable[Digest]
    ) -> bool:
        # One question, not the missing-blob question for every blob of the manifest (a
        # million of them for a million files). The server cannot see the client's
        # *blobs*: it answers False whenever it has set any damaged blob aside.
        path = f"/projects/{_q(entity)}/{_q(project)}/collections/{_q(name)}/committed/{_q(digest)}"
        try:
            answer = CommittedOut.model_validate(self.session.json("GET", path))
        except NotFoundError:
            return False  # a server that predates the question
        return answer.committed

    def resolve(self, entity: str, project: str, name: str, selector: str) -> VersionRecord:
        path = (
            f"/projects/{_q(entity)}/{_q(project)}/collections/{_q(name)}/versions/{_q(selector)}"
        )
        return self._version("GET", path)

    def get_version(self, version_id: str) -> VersionRecord:
        return self._version("GET", f"/versions/{_q(version_id)}")

    def list_versions(self, entity: str, project: str, name: str) -> list[VersionRecord]:
        path = f"/projects/{_q(entity)}/{_q(project)}/collections/{_q(name)}/versions"
        return VersionList.model_validate(self.session.json("GET", path)).to_records()

    def list_collections(
        self, entity: str, project: str, type_name: str | None = None
    ) -> list[CollectionRecord]:
        params = {"type": type_name} if type_name is not None else {}
        data = self.session.json(
            "GET", f"/projects/{_q(entity)}/{_q(project)}/collections", params=params
        )
        return [c.to_record() for c in CollectionList.model_validate(data).collections]

    def get_collection(self, entity: str, project: str, name: str) -> CollectionRecord:
        data = self.session.json(
            "GET", f"/projects/{_q(entity)}/{_q(project)}/collections/{_q(name)}"
        )
        return CollectionOut.model_validate(data).to_record()

    def list_types(self, entity: str, project: str) -> list[str]:
        data = self.session.json("GET", f"/projects/{_q(entity)}/{_q(project)}/types")
        return TypeList.model_validate(data).types

    def list_projects(self, entity: str | None = None) -> list[ProjectRecord]:
        params = {"entity": entity} if entity is not None else {}
        data = self.session.json("GET", "/projects", params=params)
        return ProjectList.model_validate(data).to_records()

    def update_version(self, version_id: str, **changes: Any) -> VersionRecord:
        if changes.get("metadata") is not None:
            changes["metadata"] = validate_metadata(changes["metadata"])
        return self._version("PATCH", f"/versions/{_q(version_id)}", json=_jsonable(changes))

    def delete_version(self, version_id: str, *, delete_aliases: bool = False) -> None:
        self.session.call(
            "DELETE",
            f"/versions/{_q(version_id)}",
            params={"delete_aliases": "true" if delete_aliases else "false"},
            idempotent=False,
        )

    def link_version(
        self, version_id: str, *, entity: str, project: str, registry: str, aliases: Sequence[str]
    ) -> VersionRecord:
        body = {
            "entity": entity,
            "project": project,
            "registry": registry,
            "aliases": list(aliases),
        }
        return self._version("POST", f"/versions/{_q(version_id)}/links", json=body)

    def list_links(self, version_id: str) -> list[VersionRecord]:
        data = self.session.json("GET", f"/versions/{_q(version_id)}/links")
        return VersionList.model_validate(data).to_records()

    # --- runs and lineage --------------------------------------------------------------
    def start_run(
        self,
        *,
        run_id: str,
        entity: str,
        project: str,
        name: str | None = None,
        job_type: str | None = None,
        group: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> RunRecord:
        fields = {
            "run_id": run_id,
            "entity": entity,
            "project": project,
            "name": name,
            "job_type": job_type,
            "group": group,
            "config": config,
        }
        data = self.session.json("POST", "/runs", json=_jsonable(fields))
        return RunOut.model_validate(data).to_record()

    def finish_run(self, run_id: str, *, state: str) -> None:
        self.session.call("POST", f"/runs/{_q(run_id)}/finish", json={"state": state})

    def get_run(self, run_id: str) -> RunRecord:
        return RunOut.model_validate(self.session.json("GET", f"/runs/{_q(run_id)}")).to_record()

    def list_runs(self, entity: str, project: str) -> list[RunRecord]:
        data = self.session.json("GET", f"/projects/{_q(entity)}/{_q(project)}/runs")
        return RunList.model_validate(data).to_records()

    def record_use(self, run_id: str, version_id: str) -> None:
        self.session.call("POST", f"/runs/{_q(run_id)}/uses", json={"version_id": version_id})

    def runs_of_version(self, version_id: str, direction: str) -> list[RunRecord]:
        data = self.session.json(
            "GET", f"/versions/{_q(version_id)}/runs", params={"direction": direction}
        )
        return RunList.model_validate(data).to_records()

    def versions_of_run(self, run_id: str, direction: str) -> list[VersionRecord]:
        data = self.session.json(
            "GET", f"/runs/{_q(run_id)}/versions", params={"direction": direction}
        )
        return VersionList.model_validate(data).to_records()

    def write_run_data(
        self,
        run_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        history: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        # Checked here as the service would check them, so a bad value is refused with the
        # embedded store's message before anything is sent.
        body: dict[str, Any] = {
            "history": [
                runlog.encode(row, what="A history row", max_bytes=runlog.ROW_MAX_BYTES)
                for row in history
            ]
        }
        if config is not None:
            body["config"] = runlog.validate_run_config(config)
        if summary is not None:
            body["summary"] = runlog.encode(
                summary, what="A run summary", max_bytes=runlog.SUMMARY_MAX_BYTES
            )
        self.session.call("POST", f"/runs/{_q(run_id)}/data", json=body)

    def run_history(
        self, run_id: str, *, min_step: int = 0, max_step: int | None = None, limit: int = 10_000
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"min_step": min_step, "limit": limit}
        if max_step is not None:
            params["max_step"] = max_step
        data = self.session.json("GET", f"/runs/{_q(run_id)}/history", params=params)
        return [json.loads(row) for row in HistoryOut.model_validate(data).rows]


class _Pieces:
    """The bytes of a manifest, encoded a slice at a time each time they are iterated: a
    retried upload sends them again from the start."""

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest

    def __iter__(self) -> Iterator[bytes]:
        return self._manifest.pieces()
