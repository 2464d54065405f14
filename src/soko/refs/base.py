"""The contract of a reference handler, and the choice of handler by URI scheme."""

from __future__ import annotations

import importlib
import os
from typing import BinaryIO, Protocol
from urllib.parse import urlparse

from soko.core.manifest import Entry
from soko.core.names import validate_artifact_path
from soko.errors import ValidationError


class ReferenceHandler(Protocol):
    """Turns a URI into manifest entries, and fetches what an entry points at.

    ``entries`` reads metadata (or content, for ``file://`` with checksum) but copies
    nothing; ``fetch`` writes the referenced bytes to *out* and raises
    :class:`~soko.errors.DigestMismatchError` when they no longer match the entry.
    """

    def entries(
        self, uri: str, *, name: str | None, checksum: bool, max_objects: int | None
    ) -> list[Entry]: ...

    def fetch(self, entry: Entry, out: BinaryIO) -> None: ...


# Handlers are registered by dotted path and imported on first use, so that boto3 or
# google-cloud-storage are loaded only by someone who references s3:// or gs://.
_HANDLERS: dict[str, tuple[str, str]] = {
    "file": ("soko.refs.file", "FileHandler"),
    "http": ("soko.refs.http", "HttpHandler"),
    "https": ("soko.refs.http", "HttpHandler"),
    "s3": ("soko.refs.s3", "S3Handler"),
    "gs": ("soko.refs.gcs", "GcsHandler"),
}
_INSTALL_HINT = {"s3": "pip install 'soko[cloud]' (boto3)", "gs": "pip install 'soko[cloud]'"}


def scheme_of(uri: str) -> str:
    scheme = urlparse(uri).scheme
    if not scheme:
        raise ValidationError(
            f"References must be URIs, got {uri!r}. To reference a local file, use file://"
        )
    return scheme.lower()


def handler_for(uri: str) -> ReferenceHandler:
    scheme = scheme_of(uri)
    module_name, class_name = _HANDLERS.get(scheme, ("soko.refs.tracking", "TrackingHandler"))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = _INSTALL_HINT.get(scheme, "")
        raise ImportError(f"{scheme}:// references need extra packages: {hint} ({exc})") from exc
    handler: ReferenceHandler = getattr(module, class_name)()
    return handler


def entry_path(name: str | None, relative: str) -> str:
    """The artifact path of an object *relative* to a referenced prefix, under *name*."""
    joined = os.path.join(name, relative) if name else relative
    return validate_artifact_path(joined.replace(os.sep, "/"))


def check_object_count(count: int, max_objects: int, uri: str) -> None:
    if count > max_objects:
        raise ValidationError(
            f"Reference {uri!r} holds more than max_objects={max_objects} objects; pass a "
            "larger max_objects to add_reference."
        )
