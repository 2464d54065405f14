"""Validation of names, types, aliases, tags, metadata and artifact paths.

The rules are W&B's, written once here and applied at every edge (draft methods, the
service, the server) so that nothing invalid reaches a store:

- a collection name matches ``[A-Za-z0-9_.-]+`` and has at most 128 characters;
- a type or an alias contains neither ``/`` nor ``:``; ``vN`` and ``latest`` are managed by
  soko, so ``vN`` is refused as a user alias; a type may not start with ``wandb-``;
- a tag is words of ``[-\\w]`` separated by single spaces; one call gives a version at most
  100 aliases and 100 tags;
- metadata is a JSON object of at most 100 top-level keys, nested at most 64 levels deep;
  NaN becomes null and infinities are refused;
- an artifact path is a relative POSIX path without ``..``, empty segments or a drive letter,
  whose segments are at most 255 bytes in UTF-8 (the longest file name most file systems
  take: a longer one would fail the download of the version).

Identifiers and labels (entity and project names, run ids, run names, job types, groups,
distributed ids, version ids) hold no control characters and fit their database columns; free
text (descriptions, metadata and config strings) holds no NUL, which PostgreSQL refuses in
text; numbers fit the integer columns they go to. A limit that PostgreSQL would enforce and
SQLite would not is enforced here, so that a store accepts the same input on either database.
The server's wire models state these rules in the API schema from the same :class:`TextRule`
objects and constants.

Pure functions: no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from soko.errors import NotFoundError, ValidationError, WrongTypeError

# The widths of the columns in soko.metadata.schema that each kind of text goes to (a test
# keeps the two equal).
NAME_MAX_LENGTH = 128
"""Collection names, types, aliases, entity and project names, user names."""
TAG_MAX_LENGTH = 256
RUN_ID_MAX_LENGTH = 64
RUN_NAME_MAX_LENGTH = 256
JOB_TYPE_MAX_LENGTH = 128
GROUP_MAX_LENGTH = 256
DISTRIBUTED_ID_MAX_LENGTH = 256
VERSION_ID_MAX_LENGTH = 36
PENDING_PATH_MAX_LENGTH = 1024
"""The longest artifact path a distributed version can hold while it is pending."""
METADATA_MAX_KEYS = 100
ALIASES_MAX_COUNT = 100
"""The most aliases one call may give a version (each is a row written under the lock of
its collection)."""
TAGS_MAX_COUNT = 100
"""The most tags one call may give a version."""
JSON_MAX_DEPTH = 64
"""The deepest nesting of objects and arrays in metadata and a run config (the outer object
is level 1): deeper input is refused, not walked until the stack runs out."""

INDEX_MAX = 2**31 - 1
"""The largest version or link index (an INTEGER column); a ``vN`` beyond it names nothing."""
SIZE_MAX = 2**63 - 1
"""The largest byte size a version may total (a BIGINT column)."""
TTL_MAX_SECONDS = 100 * 365 * 24 * 3600
"""A century: longer is "forever", which is a TTL of None; it keeps expiry dates computable."""

# fullmatch, not match: "$" would also accept a trailing newline.
NAME_PATTERN = "^[A-Za-z0-9_.-]+$"
TAG_PATTERN = r"^[-\w]+( +[-\w]+)*$"
_NAME_RE = re.compile(NAME_PATTERN)
_VERSION_ALIAS_RE = re.compile(r"^v\d+$")
_TAG_RE = re.compile(TAG_PATTERN)
# C0 and C1 control characters (NUL, newline, escape, ...), written as a regular-expression
# class body that Python and ECMAScript (the API schema's patterns) read alike.
_CONTROLS = r"\x00-\x1f\x7f-\x9f"
# Lone surrogates cannot be encoded as UTF-8, so no database can store them.
_UNSTORABLE_RE = re.compile(r"[\x00\ud800-\udfff]")
_CONTROL_RE = re.compile(rf"[{_CONTROLS}\ud800-\udfff]")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_SEPARATORS = frozenset("/:")
_PLAIN_SEGMENT = r"(?!\.\.?(?:/|$))[^/\\\x00]+"
_PLAIN_PATH_RE = re.compile(rf"(?![A-Za-z]:){_PLAIN_SEGMENT}(?:/{_PLAIN_SEGMENT})*")
SEGMENT_MAX_BYTES = 255
_SHORT_PATH = SEGMENT_MAX_BYTES // 4  # UTF-8 takes at most 4 bytes a character, ASCII 1


def validate_name(name: str) -> str:
    """A collection name: ``[A-Za-z0-9_.-]+``, at most 128 characters."""
    if not isinstance(name, str):
        raise ValidationError("An artifact name must be a non-empty string.")
    # W&B's checks, in its order and words; a name of absurd length is shown cut.
    if not _NAME_RE.fullmatch(name):
        shown = name if len(name) <= 1000 else f"{name[:1000]} ..."
        raise ValidationError(
            "Artifact name may only contain alphanumeric characters, dashes, underscores, "
            f"and dots. Invalid name: {shown!r}"
        )
    if len(name) > NAME_MAX_LENGTH:
        cut = f"{name[:NAME_MAX_LENGTH]} ..."
        raise ValidationError(
            f"Artifact name is longer than {NAME_MAX_LENGTH!r} characters: {cut!r}"
        )
    return name


def validate_project(name: str) -> str:
    """An entity or project name: 1 to 128 characters, no ``/\\#?%:``, no control characters."""
    return PROJECT_RULE.check(name)


REGISTRY_PREFIX = "wandb-registry-"
"""A registry ``R`` keeps its collections in the project ``wandb-registry-R``."""


def registry_name(project: str) -> str | None:
    """The registry a project holds (``wandb-registry-R`` → ``R``), or None."""
    if project.startswith(REGISTRY_PREFIX) and len(project) > len(REGISTRY_PREFIX):
        return project[len(REGISTRY_PREFIX) :]
    return None


RESERVED_TYPE_PREFIX = "wandb-"
"""W&B keeps artifact types starting with it for itself."""
RESERVED_NAME_PREFIX_BY_TYPE = {"job": "", "run_table": "run-", "code": "source-"}
"""W&B's own artifacts: a type with names of this prefix ("" is every name) is refused."""


def validate_type(type_name: str, name: str | None = None) -> str:
    """An artifact type: non-empty, no ``/`` or ``:``, not W&B-reserved (``wandb-*``;
    with the artifact's *name*: ``job``, ``run_table`` for ``run-*``, ``code`` for
    ``source-*``, which W&B's own artifacts use)."""
    if not isinstance(type_name, str) or not type_name:
        raise ValidationError("An artifact type must be a non-empty string.")
    if _SEPARATORS & set(type_name):
        raise ValidationError(f"Artifact types must not contain '/' or ':': {type_name!r}")
    if len(type_name) > NAME_MAX_LENGTH:
        raise ValidationError(f"Artifact types must be at most {NAME_MAX_LENGTH} characters.")
    if type_name.startswith(RESERVED_TYPE_PREFIX) or (
        name is not None
        and (prefix := RESERVED_NAME_PREFIX_BY_TYPE.get(type_name)) is not None
        and name.startswith(prefix)
    ):
        raise ValidationError(
            f"Artifact type {type_name!r} is reserved for internal use. "
            "Please use a different type."
        )
    return TYPE_RULE.check(type_name)


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
    return ALIAS_RULE.check(alias)


def validate_aliases(aliases: Iterable[str] | str | None) -> list[str]:
    """A list of at most 100 user aliases, de-duplicated in order of appearance."""
    if aliases is None:
        return []
    items = [aliases] if isinstance(aliases, str) else list(aliases)
    _check_count(items, ALIASES_MAX_COUNT, "aliases")
    return list(dict.fromkeys(validate_alias(a) for a in items))


def validate_tags(tags: Iterable[str] | str | None) -> list[str]:
    """A list of at most 100 tags, de-duplicated in order of appearance."""
    if tags is None:
        return []
    items = [tags] if isinstance(tags, str) else list(tags)
    _check_count(items, TAGS_MAX_COUNT, "tags")
    return list(dict.fromkeys(validate_tag(tag) for tag in items))


def _check_count(items: list[str], limit: int, what: str) -> None:
    # The items as given, repeats included: the API schema's maxItems counts them so.
    if len(items) > limit:
        raise ValidationError(f"At most {limit} {what} at a time; {len(items)} were given.")


def validate_tag(tag: str) -> str:
    """A tag: words of ``[-\\w]`` separated by single spaces, at most 256 characters."""
    if not isinstance(tag, str) or not _TAG_RE.fullmatch(tag):
        raise ValidationError(
            f"Invalid tag {tag!r}: tags are alphanumeric words separated by hyphens, "
            "underscores or single spaces."
        )
    if len(tag) > TAG_MAX_LENGTH:
        raise ValidationError(f"Tags have at most {TAG_MAX_LENGTH} characters: {_shown(tag)}")
    return tag


def _json_string(text: str, what: str) -> str:
    bad = _UNSTORABLE_RE.search(text)
    if bad is not None:
        kind = "NUL" if bad.group() == "\x00" else "a lone surrogate"
        raise ValidationError(f"{what} strings must not contain {kind}: {_shown(text)}.")
    return text


def _json_friendly(value: Any, what: str = "Metadata", depth: int = 0) -> Any:
    """*value* as JSON can hold it, walked to at most :data:`JSON_MAX_DEPTH` levels of
    objects and arrays (checked before going deeper, so no input exhausts the stack)."""
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            raise ValidationError(f"{what} must not contain infinite numbers.")
        return value
    if isinstance(value, str):
        return _json_string(value, what)
    if isinstance(value, int | bool) or value is None:
        return value
    if isinstance(value, Mapping | list | tuple | set | frozenset) and depth >= JSON_MAX_DEPTH:
        raise ValidationError(
            f"{what} must not nest objects and arrays more than {JSON_MAX_DEPTH} levels deep."
        )
    if isinstance(value, Mapping):
        return {
            _json_string(str(k), what): _json_friendly(v, what, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_friendly(v, what, depth + 1) for v in value]
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return _json_friendly(tolist(), what, depth)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return _json_friendly_object(value, what, depth)


def _json_friendly_object(value: Any, what: str, depth: int) -> Any:
    """The conversions W&B makes of other values (``wandb.util.json_friendly_val``)."""
    if isinstance(value, slice):
        bounds = {"slice_start": value.start, "slice_step": value.step, "slice_stop": value.stop}
        return _json_friendly(bounds, what, depth)
    if isinstance(value, bytes):
        try:
            return _json_string(value.decode("utf-8"), what)
        except UnicodeDecodeError:
            raise ValidationError(f"{what} bytes must be UTF-8 text.") from None
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _json_friendly(dataclasses.asdict(value), what, depth)
    if callable(value):
        module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
        return f"{module}.{name}" if module and name else str(value)
    if type(value).__module__ != "builtins":
        return _json_string(str(value), what)
    raise WrongTypeError(f"{what} values must be JSON-serialisable, not {type(value).__name__}.")


def validate_metadata(metadata: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """A JSON object of at most 100 keys; NaN → null; infinities refused. Returns a copy."""
    if metadata is None:
        return {}
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata) if metadata else {}
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Metadata is not valid JSON: {exc}") from None
        except RecursionError:
            raise ValidationError(
                f"Metadata must not nest objects and arrays more than {JSON_MAX_DEPTH} levels deep."
            ) from None
    if not isinstance(metadata, Mapping):
        # W&B's words and class (TypeError).
        raise WrongTypeError(f"Cannot parse {type(metadata)} as artifact metadata")
    cleaned = _json_friendly(metadata)
    if len(cleaned) > METADATA_MAX_KEYS:
        raise ValidationError(
            f"Artifact metadata must not have more than {METADATA_MAX_KEYS} keys "
            f"(got {len(cleaned)})."
        )
    assert isinstance(cleaned, dict)
    return cleaned


def validate_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A run's config: a JSON object (NaN → null, infinities and NUL refused). A copy."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ValidationError(f"A run config must be a JSON object, not {type(config).__name__}.")
    cleaned = _json_friendly(config, "Run config")
    assert isinstance(cleaned, dict)
    return cleaned


def validate_ttl(ttl: Any) -> int | None:
    """A TTL in whole seconds (an int or a ``timedelta``) from 1 to :data:`TTL_MAX_SECONDS`,
    or None for "keep forever"."""
    if ttl is None:
        return None
    seconds = ttl.total_seconds() if hasattr(ttl, "total_seconds") else ttl
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValidationError(f"TTL must be a timedelta or seconds, not {type(ttl).__name__}.")
    if not seconds > 0:  # NaN too
        raise ValidationError("TTL must be positive.")
    if seconds > TTL_MAX_SECONDS:
        raise ValidationError(
            f"TTL must be at most {TTL_MAX_SECONDS} seconds (a century); None keeps a "
            "version forever."
        )
    return max(int(seconds), 1)


def logical_path(path: str | os.PathLike[str]) -> str:
    """*path* as a string naming an artifact path: a ``pathlib`` path by its POSIX form
    (``PureWindowsPath("a\\b")`` is ``a/b``, as in W&B), any other path-like by its text."""
    if isinstance(path, PurePath):
        return path.as_posix()
    return path if isinstance(path, str) else os.fspath(path)


def validate_artifact_path(
    path: str | os.PathLike[str], *, check_segment_length: bool = True
) -> str:
    """A relative POSIX path inside an artifact, returned in canonical form.

    Backslashes are not separators (a POSIX file name may contain one); a leading ``./`` is
    dropped. Absolute paths, ``..``, empty segments, drive letters and NUL are refused; a
    ``..`` between backslashes is refused too, since Windows reads them as separators. A
    segment of more than 255 bytes in UTF-8 is refused unless *check_segment_length* is
    False: a manifest already stored stays readable, and its download refuses the path.
    """
    path = logical_path(path) if not isinstance(path, str) else path
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


def check_new_paths(paths: Iterable[str]) -> None:
    """Refuse a path of a manifest being committed whose segment is too long to download.

    Stored manifests are read without that check (:meth:`Entry.from_json`), so that a
    version logged before it stays readable; a new version must not name such a path,
    whoever built its manifest. Only paths long enough to hold such a segment are looked at.
    """
    for path in paths:
        if _may_have_long_segment(path):
            _check_segment_lengths(path, path)


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


def artifact_not_found(entity: str, project: str, name: str, selector: str) -> NotFoundError:
    """The error for ``name:selector`` naming no version: W&B's wording first ("... not
    found in ..."), which code written for W&B matches."""
    return NotFoundError(
        f"artifact membership '{name}:{selector}' not found in '{entity}/{project}': "
        f"artifact {entity}/{project}/{name}:{selector} does not exist."
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


# ----- identifiers, labels and text that reach the database -----------------------------


def _class_escape(chars: str) -> str:
    """*chars* for a regular-expression character class, the same in Python and ECMAScript."""
    return "".join("\\" + c if c in "\\]^-" else c for c in chars)


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 60 else f"{value[:40]!r}... ({len(value)} characters)"


@dataclass(frozen=True)
class TextRule:
    """What one kind of identifier, label or text may be.

    ``check`` enforces it with a message naming the problem; ``json_schema`` states the same
    rule for the HTTP API's schema. Control characters are refused unless *free_text*, which
    still refuses NUL; lone surrogates are always refused (no database can store them).
    """

    what: str
    max_length: int | None
    forbidden: str = ""
    free_text: bool = False
    min_length: int = 1

    def check(self, value: object) -> str:
        if not isinstance(value, str):
            raise ValidationError(f"{self.what} must be a string, not {type(value).__name__}.")
        if len(value) < self.min_length:
            raise ValidationError(f"{self.what} must not be empty.")
        if self.max_length is not None and len(value) > self.max_length:
            raise ValidationError(
                f"{self.what} must be at most {self.max_length} characters; {_shown(value)} "
                f"has {len(value)}."
            )
        bad = (_UNSTORABLE_RE if self.free_text else _CONTROL_RE).search(value)
        if bad is not None:
            kind = "NUL" if bad.group() == "\x00" else f"the character {bad.group()!r}"
            raise ValidationError(f"{self.what} must not contain {kind}: {_shown(value)}.")
        forbidden = sorted(set(value) & set(self.forbidden))
        if forbidden:
            raise ValidationError(
                f"{self.what} must not contain {', '.join(repr(c) for c in forbidden)}: "
                f"{_shown(value)}."
            )
        return value

    def json_schema(self) -> dict[str, Any]:
        """``minLength``, ``maxLength`` and ``pattern`` (ECMAScript) of the rule."""
        refused = r"\x00" if self.free_text else _CONTROLS
        schema: dict[str, Any] = {"pattern": f"^[^{_class_escape(self.forbidden)}{refused}]*$"}
        if self.min_length:
            schema["minLength"] = self.min_length
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        return schema


PROJECT_RULE = TextRule("An entity or project name", NAME_MAX_LENGTH, forbidden="/\\#?%:")
TYPE_RULE = TextRule("An artifact type", NAME_MAX_LENGTH, forbidden="/:")
ALIAS_RULE = TextRule("An alias", NAME_MAX_LENGTH, forbidden="/:")
# W&B's reserved characters of a run id; "/" also keeps it one segment of an API path.
RUN_ID_RULE = TextRule("A run id", RUN_ID_MAX_LENGTH, forbidden=":;,#?/'")
RUN_NAME_RULE = TextRule("A run name", RUN_NAME_MAX_LENGTH, min_length=0)
JOB_TYPE_RULE = TextRule("A job type", JOB_TYPE_MAX_LENGTH, min_length=0)
GROUP_RULE = TextRule("A run group", GROUP_MAX_LENGTH, min_length=0)
DISTRIBUTED_ID_RULE = TextRule("A distributed id", DISTRIBUTED_ID_MAX_LENGTH)
VERSION_ID_RULE = TextRule("A version id", VERSION_ID_MAX_LENGTH)
DESCRIPTION_RULE = TextRule("A description", None, free_text=True, min_length=0)
KEY_ID_RULE = TextRule("An API key id", 32)
# JSON-schema statements of the rules that are written as regular expressions below.
NAME_SCHEMA: dict[str, Any] = {
    "pattern": NAME_PATTERN,
    "minLength": 1,
    "maxLength": NAME_MAX_LENGTH,
}
TAG_SCHEMA: dict[str, Any] = {
    "pattern": TAG_PATTERN,
    "minLength": 1,
    "maxLength": TAG_MAX_LENGTH,
}


def validate_run_id(run_id: str) -> str:
    """A run id: 1 to 64 characters, no ``:;,#?/'`` (W&B's reserved ones), no controls."""
    return RUN_ID_RULE.check(run_id)


def validate_run_name(name: str | None) -> str | None:
    """A run's display name (or None): at most 256 characters, no control characters."""
    return None if name is None else RUN_NAME_RULE.check(name)


def validate_job_type(job_type: str | None) -> str | None:
    """A run's job type (or None): at most 128 characters, no control characters."""
    return None if job_type is None else JOB_TYPE_RULE.check(job_type)


def validate_group(group: str | None) -> str | None:
    """A run's group (or None): at most 256 characters, no control characters."""
    return None if group is None else GROUP_RULE.check(group)


def validate_run_start(
    *,
    run_id: str,
    entity: str,
    project: str,
    name: str | None,
    job_type: str | None,
    group: str | None,
    config: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Every field of a run's start checked; returns its config as stored."""
    validate_run_id(run_id)
    validate_project(entity)
    validate_project(project)
    validate_run_name(name)
    validate_job_type(job_type)
    validate_group(group)
    return validate_config(config)


def validate_distributed_id(distributed_id: str) -> str:
    """A distributed id: 1 to 256 characters, no control characters."""
    return DISTRIBUTED_ID_RULE.check(distributed_id)


def validate_version_id(version_id: str) -> str:
    """A version id as a caller names it: 1 to 36 characters, no control characters."""
    return VERSION_ID_RULE.check(version_id)


def validate_description(description: str | None) -> str | None:
    """A description (or None): any text without NUL."""
    return None if description is None else DESCRIPTION_RULE.check(description)


def validate_size(size: int, what: str) -> int:
    """A byte size that a BIGINT column holds."""
    if size > SIZE_MAX:
        raise ValidationError(f"{what} is {size} bytes; at most {SIZE_MAX} can be stored.")
    return size


def parse_selector(selector: str) -> int | str | None:
    """What a selector names: the index N of ``vN``, or an alias.

    None when no version can have it (N beyond :data:`INDEX_MAX`, an alias longer than any
    alias may be): the caller answers "not found". ValidationError for text that is no
    selector at all (empty, control characters, ``/`` or ``:``).
    """
    if not isinstance(selector, str) or not selector:
        raise ValidationError("A version selector must be a non-empty string.")
    if is_version_alias(selector):
        digits = selector[1:].lstrip("0") or "0"
        # Compared as text first: int() refuses more than 4,300 digits.
        if len(digits) > len(str(INDEX_MAX)) or int(digits) > INDEX_MAX:
            return None
        return int(digits)
    bad = _CONTROL_RE.search(selector)
    if bad is not None or _SEPARATORS & set(selector):
        raise ValidationError(f"Not an alias or version: {_shown(selector)}.")
    return selector if len(selector) <= NAME_MAX_LENGTH else None
