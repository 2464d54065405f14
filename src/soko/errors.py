"""The one exception tree of soko.

Every error soko raises on purpose derives from :class:`SokoError` and carries a stable
``code``. The server writes that code into its JSON error bodies and the HTTP client maps it
back to the class with :func:`error_for_code`, so the two sides cannot drift apart.

Where a caller would naturally catch a builtin, the class also inherits it::

    SokoError
    ├── ValidationError (ValueError)           bad name, type, alias, metadata, path
    │   ├── ArtifactFinalizedError             mutating a logged/finalized artifact
    │   ├── ArtifactNotLoggedError             reading what only a logged artifact has
    │   └── DigestMismatchError                bytes differ from the digest they claim
    ├── NotFoundError (LookupError)            no such collection, version, entry, blob
    │   └── MissingBlobsError                  a commit names blobs the store lacks
    ├── ConflictError                          the store holds something incompatible
    │   └── TypeConflictError                  a name logged under another type
    ├── StoreError (OSError)                   the store cannot be used (format, I/O)
    │   └── CorruptBlobError                   a stored blob no longer matches its digest
    ├── CommitError                            a background log failed
    ├── AuthenticationError                    no or bad API key
    └── PermissionDeniedError (PermissionError) the key may not do this

This module imports nothing but the standard library.
"""

from __future__ import annotations

from typing import ClassVar


class SokoError(Exception):
    """Root of every error soko raises deliberately.

    Example: ``except soko.errors.SokoError`` catches all of them.
    """

    code: ClassVar[str] = "soko_error"
    http_status: ClassVar[int] = 500


class ValidationError(SokoError, ValueError):
    """Input that soko refuses: a bad name, type, alias, tag, metadata or path.

    Example: ``Artifact("a/b", "dataset")`` raises it, since ``/`` is not allowed in a name.
    """

    code = "validation_error"
    http_status = 400


class ArtifactFinalizedError(ValidationError):
    """An attempt to change an artifact that is finalized (logged or finalize() called)."""

    code = "artifact_finalized"
    http_status = 409


class ArtifactNotLoggedError(ValidationError):
    """An operation that needs a logged artifact, called on a draft."""

    code = "artifact_not_logged"
    http_status = 409


class DigestMismatchError(ValidationError):
    """Bytes that do not hash to the digest they were announced with."""

    code = "digest_mismatch"
    http_status = 422


class NotFoundError(SokoError, LookupError):
    """A collection, version, alias, entry, run or blob that does not exist.

    Example: ``Api().artifact("missing:v0")``.
    """

    code = "not_found"
    http_status = 404


class MissingBlobsError(NotFoundError):
    """A commit or upsert names blobs the store does not hold (never stored, or collected).

    The SDK answers it by uploading again and retrying once.
    """

    code = "missing_blobs"
    http_status = 409


class ConflictError(SokoError):
    """The request contradicts what the store already holds.

    Example: two distributed writers upserting one path with different content.
    """

    code = "conflict"
    http_status = 409


class TypeConflictError(ConflictError, ValueError):
    """A collection name logged under a type other than the one it has."""

    code = "type_conflict"


class StoreError(SokoError, OSError):
    """The store cannot be used: unknown format version, I/O failure."""

    code = "store_error"
    http_status = 500


class CorruptBlobError(StoreError):
    """A stored or cached blob whose bytes no longer hash to its digest."""

    code = "corrupt_blob"


class CommitError(SokoError):
    """A log or commit that failed; raised from ``wait()`` or ``finish()``."""

    code = "commit_failed"


class AuthenticationError(SokoError):
    """No API key, or one the server does not know."""

    code = "unauthenticated"
    http_status = 401


class PermissionDeniedError(SokoError, PermissionError):
    """A known key that lacks the role the operation needs."""

    code = "permission_denied"
    http_status = 403


def _all_error_classes() -> list[type[SokoError]]:
    found: list[type[SokoError]] = []
    pending: list[type[SokoError]] = [SokoError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def error_for_code(code: str) -> type[SokoError]:
    """Return the class whose ``code`` is *code*, or :class:`SokoError` when none is."""
    for cls in _all_error_classes():
        if cls.code == code:
            return cls
    return SokoError
