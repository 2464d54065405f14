"""Validation of names, types, aliases, tags, metadata and artifact paths.

The rules are W&B's, written once here and applied at every edge (draft methods, the
service, the server) so that nothing invalid reaches a store:

- a collection name matches ``[A-Za-z0-9_.-]+`` and has at most 128 characters;
- a type or an alias contains neither ``/`` nor ``:``; ``vN`` and ``latest`` are managed by
  soko, so ``vN`` is refused as a user alias; a type may not start with ``wandb-``;
- a tag is words of ``[-\\w]`` separated by single spaces;
- metadata is a JSON object of at most 100 top-level keys; NaN becomes null and infinities
  are refused;
- an artifact path is a relative POSIX path without ``..``, empty segments or a drive letter,
  whose segments are at most 255 bytes in UTF-8 (the longest file name most file systems
  take: a longer one would fail the download of the version).

Pure functions: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from soko.errors import ValidationError

NAME_MAX_LENGTH = 128
METADATA_MAX_KEYS = 100

# fullmatch, not match: "$" would also accept a trailing newline.
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")
_VERSION_ALIAS_RE = re.compile(r"^v\d+$")
_TAG_RE = re.compile(r"^[-\w]+( +[-\w]+)*$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = frozenset("/:")
_PLAIN_SEGMENT = r"(?!\.\.?(?:/|$))[^/\\\x00]+"
_PLAIN_PATH_RE = re.compile(rf"(?![A-Za-z]:){_PLAIN_SEGMENT}(?:/{_PLAIN_SEGMENT})*")
SEGMENT_MAX_BYTES = 255
_SHORT_PATH = SEGMENT_MAX_BYTES // 4  # UTF-8 takes at most 4 bytes a character, ASCII 1


def validate_name(name: str) -> str:
    """A collection name: ``[A-Za-z0-9_.-]+``, at most 128 characters."""
    if not isinstance(name, str) or not name:
        raise ValidationError("An artifact name must be a non-empty string.")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            f"Artifact name is longer than {NAME_MAX_LENGTH} characters: {name[:40]!r}..."
        )
    if not _NAME_RE.fullmatch(name):
        raise ValidationError(
            "Artifact name may only contain alphanumeric characters, dashes, underscores "
            f"and dots. Invalid name: {name!r}"
        )
    return name


def validate_project(name: str) -> str:
    """An entity or project name: non-empty, at most 128 characters, no separators."""
    if not isinstance(name, str) or not name:
        raise ValidationError("Project and entity names must be non-empty strings.")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"Name longer than {NAME_MAX_LENGTH} characters: {name[:40]!r}...")
    bad = set(name) & set("/\\#?%:")
    if bad:
        raise ValidationError(f"Invalid project or entity name {name!r}: contains {sorted(bad)}.")
    return name


def validate_type(type_name: str, name: str | None = None) -> str:
    """An artifact type: non-empty, no ``/`` or ``:``, not W&B-reserved."""
    if not isinstance(type_name, str) or not type_name:
        raise ValidationError("An artifact type must be a non-empty string.")
    if _SEPARATORS & set(type_name):
        raise ValidationError(f"Artifact types must not contain '/' or ':': {type_name!r}")
    if len(type_name) > NAME_MAX_LENGTH:
        raise ValidationError(f"Artifact types must be at most {NAME_MAX_LENGTH} characters.")
    if type_name.startswith("wandb-") or type_name == "job":
        raise ValidationError(f"Artifact type {type_name!r} is reserved for internal use.")
    return type_name


def is_version_alias(alias: str) -> bool:
    return bool(_VERSION_ALIAS_RE.fullmatch(alias))


def validate_alias(alias: str) -> str:
    """A user alias: non-empty, no ``/`` or ``:``, not of the form ``vN``."""
    if not isinstance(alias, str) or not alias:
        raise ValidationError("An alias must be a non-empty string.")
    if _SEPARATORS & set(alias):
        raise ValidationError(f"Aliases must not contain '/' or ':': {alias!r}")
    if len(alias) > NAME_MAX_LENGTH:
        raise ValidationError(f"Aliases must be at most {NAME_MAX_LENGTH} characters.")
    if is_version_alias(alias):
        raise ValidationError(f"{alias!r} names a version; it cannot be set as an alias.")
    return alias


def validate_aliases(aliases: Iterable[str] | str | None) -> list[str]:
    """A list of user aliases, de-duplicated in order of appearance."""
    if aliases is None:
        return []
    items = [aliases] if isinstance(aliases, str) else list(aliases)
    return list(dict.fromkeys(validate_alias(a) for a in items))


def validate_tags(tags: Iterable[str] | str | None) -> list[str]:
    """A list of tags, de-duplicated in order of appearance."""
    if tags is None:
        return []
    items = [tags] if isinstance(tags, str) else list(tags)
    for tag in items:
        if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
            raise ValidationError(
                f"Invalid tag {tag!r}: tags are alphanumeric words separated by hyphens, "
                "underscores or single spaces."
            )
    return list(dict.fromkeys(items))


def _json_friendly(value: Any) -> Any:
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValidationError("Metadata must not contain infinite numbers.")
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_friendly(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_friendly(v) for v in value]
    if isinstance(value, str | int | bool) or value is None:
        return value
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _json_friendly(tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise ValidationError(f"Metadata values must be JSON-serialisable, not {type(value).__name__}.")


def validate_metadata(metadata: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """A JSON object of at most 100 keys; NaN → null; infinities refused. Returns a copy."""
    if metadata is None:
        return {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata) if metadata else {}
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Metadata is not valid JSON: {exc}") from None
    if not isinstance(metadata, Mapping):
        raise ValidationError(f"Metadata must be a JSON object, not {type(metadata).__name__}.")
    cleaned = _json_friendly(metadata)
    if len(cleaned) > METADATA_MAX_KEYS:
        raise ValidationError(
            f"Artifact metadata must not have more than {METADATA_MAX_KEYS} keys "
            f"(got {len(cleaned)})."
        )
    assert isinstance(cleaned, dict)
    return cleaned


def validate_ttl(ttl: Any) -> int | None:
    """A TTL in whole seconds (an int or a ``timedelta``), or None for "keep forever"."""
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if hasattr(ttl, "total_seconds") else ttl
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValidationError(f"TTL must be a timedelta or seconds, not {type(ttl).__name__}.")
    if seconds <= 0:
        raise ValidationError("TTL must be positive.")
    return int(seconds)


def validate_artifact_path(path: str, *, check_segment_length: bool = True) -> str:
    """A relative POSIX path inside an artifact, returned in canonical form.

    Backslashes are not separators (a POSIX file name may contain one); a leading ``./`` is
    dropped. Absolute paths, ``..``, empty segments, drive letters and NUL are refused; a
    ``..`` between backslashes is refused too, since Windows reads them as separators. A
    segment of more than 255 bytes in UTF-8 is refused unless *check_segment_length* is
    False: a manifest already stored stays readable, and its download refuses the path.
    """
    path = str(path)
    if _PLAIN_PATH_RE.fullmatch(path):
        # The common case, one regex: no leading "./", "/" or drive, no "." or ".." segment,
        # no empty segment, no backslash, no NUL.
        if len(path) > _SHORT_PATH and check_segment_length and _may_have_long_segment(path):
            _check_segment_lengths(path, path)
        return path
    original = path
    while path.startswith("./"):
        path = path[2:]
    if not path or path == ".":
        raise ValidationError(f"Invalid artifact path: {original!r} is empty.")
    if "\x00" in path:
        raise ValidationError(f"Invalid artifact path: {original!r} contains NUL.")
    if path.startswith("/") or _DRIVE_RE.match(path) or path.startswith("\\"):
        raise ValidationError(f"Invalid artifact path: {original!r} is absolute.")
    if ".." in re.split(r"[/\\]", path):
        raise ValidationError(f"Invalid artifact path: {original!r} leaves the artifact.")
    segments = path.split("/")
    for segment in segments:
        if segment in ("", "."):
            raise ValidationError(f"Invalid artifact path: {original!r} has an empty segment.")
    if check_segment_length and _may_have_long_segment(path):
        _check_segment_lengths(original, path)
    return path


def _may_have_long_segment(path: str) -> bool:
    """False when no segment of *path* can be longer than the limit, decided without
    encoding it: this runs for every entry of 20,000."""
    return len(path) > _SHORT_PATH and (len(path) > SEGMENT_MAX_BYTES or not path.isascii())


def _check_segment_lengths(original: str, path: str) -> None:
    for segment in path.split("/"):
        try:
            # A file name read from disk carries the bytes that are not UTF-8 as escapes.
            size = len(segment.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:
            size = len(segment.encode("utf-8", "surrogatepass"))
        if size > SEGMENT_MAX_BYTES:
            raise ValidationError(
                f"Invalid artifact path: {original!r} has a segment of {size} bytes in UTF-8; "
                f"a file name may have at most {SEGMENT_MAX_BYTES}."
            )


def parse_artifact_path(
    path: str, *, entity: str, project: str, default_selector: str | None = "latest"
) -> tuple[str, str, str, str | None]:
    """Split ``[entity/][project/]name[:alias|:vN]`` into its four parts, with defaults.

    Returns ``(entity, project, name, selector)``; the selector is an alias or ``vN``.
    """
    if not isinstance(path, str) or not path:
        raise ValidationError("An artifact path must be a non-empty string.")
    base, sep, selector = path.partition(":")
    if sep and not selector:
        raise ValidationError(f"Invalid artifact path {path!r}: nothing after ':'.")
    if ":" in selector or "/" in selector:
        raise ValidationError(f"Invalid artifact path {path!r}.")
    parts = base.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        project, name = parts
    elif len(parts) == 3:
        entity, project, name = parts
    else:
        raise ValidationError(
            f"Invalid artifact path {path!r}: expected [entity/][project/]name[:alias]."
        )
    return (
        validate_project(entity),
        validate_project(project),
        validate_name(name),
        selector or default_selector,
    )
