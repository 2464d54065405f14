"""The one exception tree of soko.

Every error soko raises on purpose derives from :class:`SokoError` and carries a stable
``code``. The server writes that code into its JSON error bodies and the HTTP client maps it
back to the class with :func:`error_for_code`, so the two sides cannot drift apart.

Where a caller would naturally catch a builtin, the class also inherits it; where W&B raises
an exception of its own for the same mistake, the class has W&B's name (``wandb.errors`` and
``wandb.sdk.artifacts.exceptions``) or is that name's subclass, so ``except
wandb.errors.CommError`` written for W&B catches what soko raises::

    SokoError = Error                          W&B's root, wandb.errors.Error
    ├── ValidationError (ValueError)           bad name, type, alias, metadata, path
    │   ├── WrongTypeError (TypeError)         metadata that is not a dict, as W&B refuses
    │   ├── UsageError                         W&B: wrong use of the API (a finished run)
    │   │   └── UnsupportedError               W&B: a feature soko does not support
    │   ├── ArtifactStatusError (AttributeError)  W&B: the artifact's state forbids it
    │   │   ├── ArtifactFinalizedError         mutating a logged/finalized artifact
    │   │   └── ArtifactNotLoggedError         reading what only a logged artifact has
    │   └── DigestMismatchError                bytes differ from the digest they claim
    ├── CommError                              W&B: a request the server refused or failed
    │   ├── NotFoundError (LookupError, ValueError)  no such collection, version, entry, blob
    │   │   ├── MissingBlobsError              a commit names blobs the store lacks
    │   │   └── MissingReferenceError (FileNotFoundError)  a reference gone from its source
    │   ├── AuthenticationError                no or bad API key
    │   ├── PermissionDeniedError (PermissionError) the key may not do this
    │   └── ServerUnavailableError (also a StoreError)  no answer, or one that is no error body
    ├── ConflictError                          the store holds something incompatible
    │   └── TypeConflictError (ValueError)     a name logged under another type
    ├── StoreError (OSError)                   the store cannot be used (format, I/O)
    │   └── CorruptBlobError                   a stored blob no longer matches its digest
    ├── CommitError                            a background log failed
    └── WaitTimeoutError (TimeoutError)        W&B: ``wait(timeout)`` ran out

This module imports nothing but the standard library.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SokoError(Exception):
    """Root of every error soko raises deliberately; W&B's ``wandb.errors.Error``.

    Example: ``except soko.errors.SokoError`` (or ``except soko.errors.Error``, as written
    for W&B) catches all of them.
    """

    code: ClassVar[str] = "soko_error"
    http_status: ClassVar[int] = 500

    @property
    def message(self) -> str:
        """The message, as W&B's errors carry it."""
        return str(self.args[0]) if self.args else ""

    @property
    def context(self) -> dict[str, Any]:
        """W&B's errors carry a context dict; soko puts everything in the message."""
        return {}


Error = SokoError
"""W&B's name of the root (``wandb.errors.Error``)."""


class ValidationError(SokoError, ValueError):
    """Input that soko refuses: a bad name, type, alias, tag, metadata or path.

    Example: ``Artifact("a/b", "dataset")`` raises it, since ``/`` is not allowed in a name.
    """

    code = "validation_error"
    http_status = 400


class WrongTypeError(ValidationError, TypeError):
    """A value of a Python type soko cannot take where W&B raises ``TypeError``.

    Example: ``Artifact("a", "dataset", metadata=[1, 2])`` (metadata must be a dict).
    """

    code = "wrong_type"


class UsageError(ValidationError):
    """A call the API does not allow in this state (W&B's ``wandb.errors.UsageError``).

    Example: ``run.log_artifact(...)`` after ``run.finish()``.
    """

    code = "usage_error"


class UnsupportedError(UsageError):
    """A feature soko does not support (W&B's ``wandb.errors.UnsupportedError``)."""

    code = "unsupported"


class ArtifactStatusError(ValidationError, AttributeError):
    """The artifact's state forbids the operation (W&B's ``ArtifactStatusError``).

    An ``AttributeError`` as in W&B, so ``getattr(draft, "version", None)`` gives None; it
    carries ``name`` (the attribute or method) and ``obj`` (the artifact) like one.
    """

    code = "artifact_status"
    http_status = 409

    def __init__(
        self,
        msg: str = "Artifact is in an invalid state for the requested operation.",
        name: str | None = None,
        obj: object | None = None,
    ) -> None:
        super().__init__(msg)
        # AttributeError's own keywords cannot be passed through ValueError's constructor.
        self.name = name or ""
        self.obj = obj


class ArtifactFinalizedError(ArtifactStatusError):
    """A change to an artifact that is finalized (logged, or finalize() called).

    Example: ``logged.add_file("x")`` raises ``'Artifact.add_file' used on logged artifact.
    Can't modify finalized artifact.`` (W&B's wording). Built as W&B builds it,
    ``ArtifactFinalizedError("Artifact.add_file", artifact)``, or from a message alone.
    """

    code = "artifact_finalized"

    def __init__(self, fullname_or_message: str, obj: object | None = None) -> None:
        if obj is None:
            super().__init__(fullname_or_message)
            return
        name = fullname_or_message.rsplit(".", 1)[-1]
        super().__init__(
            f"{fullname_or_message!r} used on logged artifact. Can't modify finalized artifact.",
            name=name,
            obj=obj,
        )


class ArtifactNotLoggedError(ArtifactStatusError):
    """Something only a logged artifact has, asked of a draft.

    Example: ``draft.file_count`` raises ``'Artifact.file_count' used prior to logging
    artifact or while in offline mode. Call Artifact.wait() before accessing logged artifact
    properties.`` (W&B's wording). Built as W&B builds it,
    ``ArtifactNotLoggedError("Artifact.file_count", artifact)``, or from a message alone.
    """

    code = "artifact_not_logged"

    def __init__(self, fullname_or_message: str, obj: object | None = None) -> None:
        if obj is None:
            super().__init__(fullname_or_message)
            return
        name = fullname_or_message.rsplit(".", 1)[-1]
        wait = f"{type(obj).__qualname__}.wait"
        super().__init__(
            f"{fullname_or_message!r} used prior to logging artifact or while in offline "
            f"mode. Call {wait}() before accessing logged artifact properties.",
            name=name,
            obj=obj,
        )


class DigestMismatchError(ValidationError):
    """Bytes that do not hash to the digest they were announced with."""

    code = "digest_mismatch"
    http_status = 422


class CommError(SokoError):
    """A request the store or server refused or could not answer (W&B's ``CommError``).

    W&B raises it from ``Api().artifact`` for an artifact that does not exist and for any
    error answer of its server; soko's classes for those cases derive from it. *exc* is the
    exception that caused it, as in W&B.
    """

    code = "comm_error"
    http_status = 502

    def __init__(self, msg: str = "", exc: BaseException | None = None) -> None:
        super().__init__(msg)
        self.exc = exc


class NotFoundError(CommError, LookupError, ValueError):
    """A collection, version, alias, entry, run or blob that does not exist.

    Example: ``Api().artifact("missing:v0")``. A ``CommError`` as ``Api().artifact`` raises
    in W&B, and a ``ValueError`` as ``run.use_artifact`` raises there.
    """

    code = "not_found"
    http_status = 404


class MissingBlobsError(NotFoundError):
    """A commit or upsert names blobs the store does not hold (never stored, or collected).

    The SDK answers it by uploading again and retrying once.
    """

    code = "missing_blobs"
    http_status = 409


class MissingReferenceError(NotFoundError, FileNotFoundError):
    """A reference entry whose object is gone from its source (file, bucket, URL).

    A ``FileNotFoundError``, as W&B's storage handlers raise: ``download()`` raises it, and
    with ``allow_missing_references=True`` warns and skips the entry instead.
    """

    code = "missing_reference"
    http_status = 404


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


class ServerUnavailableError(StoreError, CommError):
    """A server that does not answer, or answers with something other than an error body.

    Both a ``StoreError`` (the store cannot be used) and W&B's ``CommError``.
    """

    code = "server_unavailable"
    http_status = 503

    def __init__(self, msg: str = "") -> None:
        StoreError.__init__(self, msg)
        self.exc = None


class CommitError(SokoError):
    """A log or commit that failed; raised from ``wait()`` or ``finish()``."""

    code = "commit_failed"


class WaitTimeoutError(SokoError, TimeoutError):
    """``artifact.wait(timeout)`` ran out before the log committed (W&B's
    ``WaitTimeoutError``); a ``TimeoutError`` too."""

    code = "wait_timeout"
    http_status = 504


class AuthenticationError(CommError):
    """No API key, or one the server does not know (W&B's ``AuthenticationError``, a
    ``CommError``)."""

    code = "unauthenticated"
    http_status = 401


class PermissionDeniedError(CommError, PermissionError):
    """A known key that lacks the role the operation needs."""

    code = "permission_denied"
    http_status = 403


def _all_error_classes() -> list[type[SokoError]]:
    # A class with two parents in the tree (ServerUnavailableError) is met twice.
    found: dict[type[SokoError], None] = {}
    pending: list[type[SokoError]] = [SokoError]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found[cls] = None
            pending.extend(cls.__subclasses__())
    return list(found)


def error_for_code(code: str) -> type[SokoError]:
    """Return the class whose ``code`` is *code*, or :class:`SokoError` when none is."""
    for cls in _all_error_classes():
        if cls.code == code:
            return cls
    return SokoError
