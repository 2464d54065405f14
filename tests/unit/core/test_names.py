"""Validation of names, types, aliases, tags, metadata, TTLs and artifact paths."""

from __future__ import annotations

import datetime
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soko.core import names
from soko.core.manifest import Manifest
from soko.core.names import (
    METADATA_MAX_KEYS,
    NAME_MAX_LENGTH,
    TTL_MAX_SECONDS,
    is_version_alias,
    parse_selector,
    validate_alias,
    validate_aliases,
    validate_artifact_path,
    validate_config,
    validate_description,
    validate_distributed_id,
    validate_group,
    validate_job_type,
    validate_metadata,
    validate_name,
    validate_project,
    validate_run_id,
    validate_run_name,
    validate_size,
    validate_tags,
    validate_ttl,
    validate_type,
    validate_version_id,
)
from soko.errors import ValidationError
from soko.metadata import schema

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
    for bad in (0, -1, -5, datetime.timedelta(0), "1d", True, math.nan):
        with pytest.raises(ValidationError):
            validate_ttl(bad)


def test_ttl_has_an_upper_bound_that_a_bigint_and_a_date_hold() -> None:
    assert validate_ttl(TTL_MAX_SECONDS) == TTL_MAX_SECONDS
    assert validate_ttl(datetime.timedelta(days=365 * 100)) == TTL_MAX_SECONDS
    for bad in (TTL_MAX_SECONDS + 1, 10**30, 1e30, math.inf, datetime.timedelta(days=365 * 101)):
        with pytest.raises(ValidationError, match="at most"):
            validate_ttl(bad)
    # A version created today can still expire: its expiry date is representable.
    assert datetime.datetime.now() + datetime.timedelta(seconds=TTL_MAX_SECONDS)


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


# ----- identifiers, labels and text that reach the database ----------------------------


def _column_length(table: str, column: str) -> int:
    length = getattr(schema.metadata.tables[table].c[column].type, "length", None)
    assert isinstance(length, int)
    return length


@pytest.mark.parametrize(
    ("limit", "table", "column"),
    [
        (names.NAME_MAX_LENGTH, "collections", "name"),
        (names.NAME_MAX_LENGTH, "collections", "type"),
        (names.NAME_MAX_LENGTH, "aliases", "alias"),
        (names.NAME_MAX_LENGTH, "entities", "name"),
        (names.NAME_MAX_LENGTH, "projects", "name"),
        (names.NAME_MAX_LENGTH, "project_roles", "entity"),
        (names.NAME_MAX_LENGTH, "users", "name"),
        (names.TAG_MAX_LENGTH, "tags", "tag"),
        (names.RUN_ID_MAX_LENGTH, "runs", "id"),
        (names.RUN_ID_MAX_LENGTH, "versions", "created_by_run"),
        (names.RUN_NAME_MAX_LENGTH, "runs", "name"),
        (names.JOB_TYPE_MAX_LENGTH, "runs", "job_type"),
        (names.GROUP_MAX_LENGTH, "runs", "group_name"),
        (names.DISTRIBUTED_ID_MAX_LENGTH, "versions", "distributed_id"),
        (names.VERSION_ID_MAX_LENGTH, "versions", "id"),
        (names.KEY_ID_RULE.max_length, "api_keys", "id"),
        (names.PENDING_PATH_MAX_LENGTH, "pending_entries", "path"),
    ],
)
def test_limits_are_the_widths_of_the_columns(limit: int, table: str, column: str) -> None:
    assert limit == _column_length(table, column)


def test_integer_limits_fit_their_columns() -> None:
    assert names.INDEX_MAX == 2**31 - 1  # INTEGER on PostgreSQL: version and link indexes
    assert names.SIZE_MAX == 2**63 - 1  # BIGINT: sizes, TTLs
    assert names.TTL_MAX_SECONDS < names.SIZE_MAX


LABELS = [
    (validate_run_id, names.RUN_ID_MAX_LENGTH),
    (validate_run_name, names.RUN_NAME_MAX_LENGTH),
    (validate_job_type, names.JOB_TYPE_MAX_LENGTH),
    (validate_group, names.GROUP_MAX_LENGTH),
    (validate_distributed_id, names.DISTRIBUTED_ID_MAX_LENGTH),
    (validate_version_id, names.VERSION_ID_MAX_LENGTH),
    (validate_project, names.NAME_MAX_LENGTH),
    (validate_alias, names.NAME_MAX_LENGTH),
    (validate_type, names.NAME_MAX_LENGTH),
]


@pytest.mark.parametrize(("validate", "limit"), LABELS)
def test_labels_fit_their_column_exactly(validate: Any, limit: int) -> None:
    assert validate("x" * limit) == "x" * limit
    with pytest.raises(ValidationError, match=f"at most {limit}"):
        validate("x" * (limit + 1))


@pytest.mark.parametrize(("validate", "_limit"), LABELS)
@pytest.mark.parametrize(
    "bad", ["a\x00b", "a\nb", "tab\t", "\x1b[31m", "del\x7f", "\x85", "\ud800"]
)
def test_labels_refuse_nul_and_control_characters(validate: Any, _limit: int, bad: str) -> None:
    with pytest.raises(ValidationError, match="must not contain"):
        validate(bad)


def test_nul_is_named_in_the_message() -> None:
    with pytest.raises(ValidationError, match="A run id must not contain NUL"):
        validate_run_id("r\x00")


@pytest.mark.parametrize("run_id", ["a/b", "a:b", "a;b", "a,b", "a#b", "a?b", "it's", ""])
def test_run_ids_refuse_w_and_b_reserved_characters_and_emptiness(run_id: str) -> None:
    with pytest.raises(ValidationError):
        validate_run_id(run_id)


@pytest.mark.parametrize("run_id", ["3kq9x2ab", "my-run_1", "run.2", "ünïcode", "with space"])
def test_good_run_ids(run_id: str) -> None:
    assert validate_run_id(run_id) == run_id


def test_optional_run_labels_may_be_none_or_empty() -> None:
    for validate in (validate_run_name, validate_job_type, validate_group):
        assert validate(None) is None
        assert validate("") == ""


@pytest.mark.parametrize("name", ["a/b", "a\\b", "a#b", "a?b", "a%b", "a:b", "e\x00", "e\t", ""])
def test_bad_entity_and_project_names(name: str) -> None:
    with pytest.raises(ValidationError):
        validate_project(name)


def test_descriptions_are_free_text_without_nul() -> None:
    text = "line one\nline two\twith a tab, ünïcode and \x1b escapes"
    assert validate_description(text) == text
    assert validate_description(None) is None
    assert validate_description("") == ""
    for bad in ("a\x00b", "\ud800", 5):
        with pytest.raises(ValidationError):
            validate_description(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [{"k": "v\x00"}, {"k\x00": 1}, {"k": ["ok", {"deep": "\x00"}]}, {"k": "\udc00"}],
)
def test_metadata_and_config_strings_refuse_nul(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="must not contain"):
        validate_metadata(bad)
    with pytest.raises(ValidationError, match="must not contain"):
        validate_config(bad)


def test_metadata_and_config_nest_at_most_64_levels() -> None:
    def nested(depth: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for _ in range(depth - 1):
            value = {"k": value}
        return value

    assert validate_metadata(nested(names.JSON_MAX_DEPTH)) == nested(names.JSON_MAX_DEPTH)
    assert validate_config(nested(names.JSON_MAX_DEPTH)) == nested(names.JSON_MAX_DEPTH)
    for depth in (names.JSON_MAX_DEPTH + 1, 10_000):
        with pytest.raises(ValidationError, match="64 levels"):
            validate_metadata(nested(depth))
        with pytest.raises(ValidationError, match="64 levels"):
            validate_config(nested(depth))
    with pytest.raises(ValidationError, match="64 levels"):
        validate_metadata('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")


def test_one_call_gives_at_most_100_aliases_and_100_tags() -> None:
    aliases = [f"a{i}" for i in range(names.ALIASES_MAX_COUNT)]
    tags = [f"t{i}" for i in range(names.TAGS_MAX_COUNT)]
    assert validate_aliases(aliases) == aliases
    assert validate_tags(tags) == tags
    with pytest.raises(ValidationError, match="At most 100 aliases"):
        validate_aliases([*aliases, "one more"])
    with pytest.raises(ValidationError, match="At most 100 tags"):
        validate_tags([*tags, "one more"])
    with pytest.raises(ValidationError, match="At most 100 aliases"):
        validate_aliases(["same"] * 101)  # counted as given, like the API schema's maxItems


def test_config_is_cleaned_like_metadata_without_a_key_limit() -> None:
    config = {f"k{i}": i for i in range(METADATA_MAX_KEYS + 5)} | {"lr": math.nan}
    cleaned = validate_config(config)
    assert cleaned["lr"] is None and len(cleaned) == METADATA_MAX_KEYS + 6
    assert validate_config(None) == {}
    with pytest.raises(ValidationError, match="infinite"):
        validate_config({"x": math.inf})
    with pytest.raises(ValidationError, match="JSON object"):
        validate_config([1, 2])  # type: ignore[arg-type]


def test_tags_fit_their_column() -> None:
    assert validate_tags(["t" * names.TAG_MAX_LENGTH]) == ["t" * names.TAG_MAX_LENGTH]
    with pytest.raises(ValidationError, match="at most"):
        validate_tags(["t" * (names.TAG_MAX_LENGTH + 1)])


def test_sizes_fit_a_bigint() -> None:
    assert validate_size(names.SIZE_MAX, "x") == names.SIZE_MAX
    with pytest.raises(ValidationError, match="bytes"):
        validate_size(names.SIZE_MAX + 1, "Artifact 'x'")


# ----- selectors ----------------------------------------------------------------------


def test_selectors_name_an_index_or_an_alias() -> None:
    assert parse_selector("v0") == 0
    assert parse_selector(f"v{names.INDEX_MAX}") == names.INDEX_MAX
    assert parse_selector("v007") == 7
    assert parse_selector("latest") == "latest"
    assert parse_selector("best-model") == "best-model"


@pytest.mark.parametrize(
    "selector",
    [
        f"v{names.INDEX_MAX + 1}",
        "v99999999999999999999",
        "v" + "9" * 5000,
        "a" * (NAME_MAX_LENGTH + 1),
    ],
)
def test_selectors_no_version_can_have_name_nothing(selector: str) -> None:
    assert parse_selector(selector) is None


@pytest.mark.parametrize("selector", ["", "a\x00", "a/b", "a:b", "\n"])
def test_text_that_is_no_selector_is_refused(selector: str) -> None:
    with pytest.raises(ValidationError):
        parse_selector(selector)


# ----- the rules as the API schema states them --------------------------------------------


@pytest.mark.parametrize(
    "rule", [names.PROJECT_RULE, names.RUN_ID_RULE, names.ALIAS_RULE, names.DESCRIPTION_RULE]
)
@given(text=st.text(max_size=300))
def test_a_rule_s_schema_pattern_agrees_with_its_check(rule: names.TextRule, text: str) -> None:
    stated = rule.json_schema()
    # ECMAScript's "$" is the end of the text; Python's also matches before a final newline.
    pattern = stated["pattern"].removesuffix("$") + r"\Z"
    by_schema = (
        re.search(pattern, text) is not None
        and len(text) >= stated.get("minLength", 0)
        and len(text) <= stated.get("maxLength", len(text))
    )
    try:
        rule.check(text)
        by_check = True
    except ValidationError:
        by_check = False
    surrogate = any("\ud800" <= c <= "\udfff" for c in text)
    assert by_check == (by_schema and not surrogate)
