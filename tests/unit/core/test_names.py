"""Validation of names, types, aliases, tags, metadata, TTLs and artifact paths."""

from __future__ import annotations

import datetime
import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soko.core.manifest import Manifest
from soko.core.names import (
    METADATA_MAX_KEYS,
    NAME_MAX_LENGTH,
    is_version_alias,
    validate_alias,
    validate_aliases,
    validate_artifact_path,
    validate_metadata,
    validate_name,
    validate_tags,
    validate_ttl,
    validate_type,
)
from soko.errors import ValidationError

# ----- collection names ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "my-data_set.v2", "A" * NAME_MAX_LENGTH, "0", "..."])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a/b", "a:b", "a b", "é", "a\x00", "x" * (NAME_MAX_LENGTH + 1), "a\n"]
)
def test_bad_names(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_name(name)


def test_name_must_be_a_string() -> None:
    with pytest.raises(ValidationError):
        validate_name(5)  # type: ignore[arg-type]


@given(st.text(alphabet="abcXYZ019_.-", min_size=1, max_size=NAME_MAX_LENGTH))
def test_names_from_the_allowed_alphabet_pass(name: str) -> None:
    assert validate_name(name) == name


# ----- types --------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ["dataset", "model", "raw data", "é", "run_table"])
def test_good_types(type_name: str) -> None:
    assert validate_type(type_name) == type_name


@pytest.mark.parametrize(
    "type_name", ["", "a/b", "a:b", "wandb-history", "job", "t" * (NAME_MAX_LENGTH + 1)]
)
def test_bad_types(type_name: str) -> None:
    with pytest.raises(ValidationError):
        validate_type(type_name, "name")


# ----- aliases and tags ---------------------------------------------------------------


@pytest.mark.parametrize("alias", ["best", "prod", "v", "v3x", "version3", "latest-ok", "V 3"])
def test_good_aliases(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize("alias", ["", "v3", "v0", "v12345", "a/b", "a:b", "x" * 129])
def test_bad_aliases(alias: str) -> None:
    with pytest.raises(ValidationError):
        validate_alias(alias)


def test_version_alias_error_says_why() -> None:
    with pytest.raises(ValidationError, match="names a version"):
        validate_alias("v3")
    assert is_version_alias("v3") and not is_version_alias("v3x")


def test_aliases_are_deduplicated_in_order() -> None:
    assert validate_aliases(["b", "a", "b"]) == ["b", "a"]
    assert validate_aliases("best") == ["best"]
    assert validate_aliases(None) == []
    with pytest.raises(ValidationError):
        validate_aliases(["ok", "v1"])


@pytest.mark.parametrize("tag", ["a", "my-tag", "under_score", "two words", "émoji-free", "9"])
def test_good_tags(tag: str) -> None:
    assert validate_tags([tag]) == [tag]


@pytest.mark.parametrize("tag", ["", " a", "a ", "a/b", "a:b", "a.b", "a\tb", "a\n"])
def test_bad_tags(tag: str) -> None:
    with pytest.raises(ValidationError, match="Invalid tag"):
        validate_tags(["fine", tag])


def test_tags_are_deduplicated_in_order() -> None:
    assert validate_tags(["x", "y", "x"]) == ["x", "y"]
    assert validate_tags("solo") == ["solo"]
    assert validate_tags(None) == []


# ----- metadata -----------------------------------------------------------------------


def test_metadata_nan_becomes_none_at_any_depth() -> None:
    cleaned = validate_metadata({"a": math.nan, "b": [1, math.nan], "c": {"d": math.nan}})
    assert cleaned == {"a": None, "b": [1, None], "c": {"d": None}}
    # The result must be plain JSON.
    assert json.loads(json.dumps(cleaned, allow_nan=False)) == cleaned


@pytest.mark.parametrize("bad", [math.inf, -math.inf, [math.inf], {"x": -math.inf}])
def test_metadata_infinities_are_refused(bad: Any) -> None:
    with pytest.raises(ValidationError, match="infinite"):
        validate_metadata({"k": bad})


def test_metadata_key_limit() -> None:
    at_limit = {f"k{i}": i for i in range(METADATA_MAX_KEYS)}
    assert validate_metadata(at_limit) == at_limit
    with pytest.raises(ValidationError, match="100 keys"):
        validate_metadata({**at_limit, "one-more": 1})


def test_metadata_limit_counts_top_level_keys_only() -> None:
    nested = {"outer": {f"k{i}": i for i in range(500)}}
    assert validate_metadata(nested) == nested


def test_metadata_is_copied_not_aliased() -> None:
    original: dict[str, Any] = {"a": [1, 2], "b": {"c": 1}}
    cleaned = validate_metadata(original)
    cleaned["a"].append(3)
    cleaned["b"]["c"] = 2
    assert original == {"a": [1, 2], "b": {"c": 1}}


def test_metadata_from_json_text_and_none() -> None:
    assert validate_metadata('{"a": 1, "b": NaN}') == {"a": 1, "b": None}
    assert validate_metadata(None) == {}
    assert validate_metadata("") == {}


def test_metadata_converts_tuples_and_dates() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert validate_metadata({"t": (1, 2), "d": when}) == {"t": [1, 2], "d": when.isoformat()}


@pytest.mark.parametrize("bad", [[1], "[1]", "not json", 5, {"x": object()}])
def test_metadata_bad_input(bad: Any) -> None:
    with pytest.raises(ValidationError):
        validate_metadata(bad)


# ----- TTL ----------------------------------------------------------------------------


def test_ttl() -> None:
    assert validate_ttl(None) is None
    assert validate_ttl(datetime.timedelta(days=1)) == 86400
    assert validate_ttl(30) == 30
    for bad in (0, -1, datetime.timedelta(0), "1d", True):
        with pytest.raises(ValidationError):
            validate_ttl(bad)


# ----- artifact paths -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("a.txt", "a.txt"),
        ("dir/sub/a.txt", "dir/sub/a.txt"),
        ("./a.txt", "a.txt"),
        ("././d/a", "d/a"),
        ("é ü/名前.bin", "é ü/名前.bin"),
        ("a..b/c..", "a..b/c.."),
        ("..a", "..a"),
        ("dir/a\\b", "dir/a\\b"),
        ("1:y", "1:y"),
        ("dir/C:file", "dir/C:file"),
        ("x" * 255, "x" * 255),
        ("d/" + "é" * 127, "d/" + "é" * 127),  # 254 bytes
        ("/".join(["x" * 255] * 3), "/".join(["x" * 255] * 3)),
        ("./" + "名" * 85, "名" * 85),  # 255 bytes
    ],
)
def test_good_artifact_paths(path: str, canonical: str) -> None:
    assert validate_artifact_path(path) == canonical


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "empty"),
        (".", "empty"),
        ("./", "empty"),
        ("/etc/passwd", "absolute"),
        ("//host/share", "absolute"),
        ("\\\\host\\share", "absolute"),
        ("\\windows", "absolute"),
        ("C:\\Windows\\x", "absolute"),
        ("c:/x", "absolute"),
        ("D:", "absolute"),
        ("..", "leaves"),
        ("../x", "leaves"),
        ("a/../../x", "leaves"),
        ("a/..", "leaves"),
        ("a\\..\\..\\x", "leaves"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a/./b", "empty segment"),
        ("a\x00b", "NUL"),
        ("x" * 256, "256 bytes"),
        ("d/" + "x" * 300 + "/f", "300 bytes"),
        ("é" * 128, "256 bytes"),  # 128 characters
        ("./d/" + "名" * 86, "258 bytes"),
        ("a/\udcff" + "x" * 255, "256 bytes"),  # an undecodable byte read from disk
    ],
)
def test_bad_artifact_paths(path: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        validate_artifact_path(path)


def test_a_long_segment_is_left_to_the_download_in_a_stored_manifest() -> None:
    path = "d/" + "x" * 300
    assert validate_artifact_path(path, check_segment_length=False) == path
    manifest = Manifest.from_json({"version": 1, "contents": {path: {"digest": "a", "size": 1}}})
    assert [e.path for e in manifest] == [path]


_safe_segment = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/\\\x00"), min_size=1, max_size=10
).filter(lambda s: s not in (".", ".."))


@given(st.lists(_safe_segment, min_size=1, max_size=5))
def test_paths_of_safe_segments_are_kept(segments: list[str]) -> None:
    path = "/".join(segments)
    if len(path) >= 2 and path[0].isascii() and path[0].isalpha() and path[1] == ":":
        with pytest.raises(ValidationError):
            validate_artifact_path(path)
    else:
        assert validate_artifact_path(path) == path
