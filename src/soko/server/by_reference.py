"""A commit sent by reference: a new draft of a committed version, as the change alone.

The body (:class:`~soko.wire.requests.CommitIn`) names the base (``base_version``, a
committed version of the same project), the paths of the base removed (``removed``) and,
as its ``manifest_blob``, the entries added or replaced, uploaded as a manifest of their
own. The server splices the new manifest from the base's (:mod:`soko.service.layered`,
as the embedded store commits such a draft): its cost is in proportion to the change.

Possession (:mod:`soko.service.possession`): the base's blobs are the project's (a
committed version of the project names them, checked again inside the commit's
transaction), so only the change's are checked, against the project's own rows first
and, for any it does not hold, against the versions it may borrow from. The manifest blob
the commit makes is the project's, as one its writer uploaded would be.
"""

from __future__ import annotations

from soko.core.digests import Algorithm
from soko.core.layered import LayeredManifest
from soko.core.manifest import Manifest, ManifestRef
from soko.core.records import COMMITTED, VersionRecord
from soko.errors import CorruptBlobError, MissingBlobsError, NotFoundError, ValidationError
from soko.server.auth import Principal
from soko.server.state import ServerState
from soko.service import possession
from soko.service.commit import Borrowed, commit_version
from soko.service.layered import StoredBase
from soko.wire.base import parse_digest
from soko.wire.requests import CommitIn

_OWNER = "server"


def commit(state: ServerState, caller: Principal, body: CommitIn) -> VersionRecord:
    """Commit *body* (its ``base_version`` set; the caller checked as a committer)."""
    assert body.base_version is not None
    if body.incremental or body.distributed_id is not None:
        raise ValidationError(
            "A draft sent by reference (base_version) is committed by a plain commit only."
        )
    store = state.store
    base = state.readable_version(caller, body.base_version)
    if base.is_link or (base.entity, base.project) != (body.entity, body.project):
        raise ValidationError(
            "A draft is sent by reference only into the project of its base version "
            f"({base.entity}/{base.project}); send its whole manifest."
        )
    if base.manifest_blob is None:
        raise NotFoundError(f"Version {base.qualified_name} has no manifest yet.")
    algorithm = Algorithm.parse(body.algorithm)
    if Algorithm.parse(base.algorithm) is not algorithm:
        raise ValidationError(
            f"The draft's digests are {algorithm.value}, its base's {base.algorithm}."
        )
    change = _change(state, body)
    # The splice reads the base's manifest whole: the server's bound applies.
    state.check_manifest_size(
        ManifestRef.parse(base.manifest_blob).digest, name=base.qualified_name
    )
    table = change.table
    assert table is not None
    manifest = LayeredManifest(
        StoredBase(
            store,
            version_id=base.id,
            key=base.manifest_blob,
            algorithm=algorithm,
            owner=_OWNER,
        ),
        table,
        frozenset(body.removed),
        algorithm,
    )
    # A base deleted since the draft was made no longer vouches for its blobs: the whole
    # manifest is checked then, as any commit's.
    checked = change if base.state == COMMITTED else manifest.whole()
    borrowed = _possessed(state, caller, body, checked, own_first=checked is change)
    request = body.to_request(manifest)
    record = commit_version(store, request, borrowed=borrowed)
    if record.manifest_blob is not None:
        digest = ManifestRef.parse(record.manifest_blob).digest
        possession.record_uploads(
            store,
            entity=body.entity,
            project=body.project,
            blobs=[(digest, store.blobs.stat(digest).size)],
        )
    return record


def _change(state: ServerState, body: CommitIn) -> Manifest:
    """The entries added or replaced: the manifest blob the client uploaded."""
    store = state.store
    ref = ManifestRef(parse_digest(body.manifest_blob))
    possession.require_manifest_blob(
        store, entity=body.entity, project=body.project, digest=ref.digest
    )
    try:
        state.check_manifest_size(ref.digest, name=f"{body.entity}/{body.project}/{body.name}")
        return store.load_manifest(ref, Algorithm.parse(body.algorithm), cached=False)
    except NotFoundError:
        raise possession.manifest_blob_not_stored(ref.digest) from None
    except CorruptBlobError:
        if store.blobs.exists(ref.digest):
            raise
        raise MissingBlobsError(
            f"The stored manifest blob {body.manifest_blob} was damaged and has been set "
            "aside; upload it again."
        ) from None


def _possessed(
    state: ServerState, caller: Principal, body: CommitIn, checked: Manifest, *, own_first: bool
) -> Borrowed:
    """Check that the project may name every blob of *checked*; the blobs it borrows."""
    assert body.base_version is not None
    store = state.store
    entity, project, name = body.entity, body.project, body.name
    if own_first:
        try:
            # The project's own rows first: the blobs of a change were mostly uploaded
            # by this log, and the versions it may borrow from (the collection's latest,
            # often the base, read whole) are read only for a blob it does not hold.
            return possession.check_commit(
                store, entity=entity, project=project, name=name, manifest=checked, sources=[]
            )
        except MissingBlobsError:
            pass
    sources = state.sources(
        caller,
        entity=entity,
        project=project,
        name=name,
        version_ids=[*body.sources, body.base_version],
    )
    return possession.check_commit(
        store, entity=entity, project=project, name=name, manifest=checked, sources=sources
    )
