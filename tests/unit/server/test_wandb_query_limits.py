"""The limits on one GraphQL request to the W&B layer: depth, cost and size are refused
before anything runs; the `wandb` client's own queries pass."""

from __future__ import annotations

import itertools

import pytest
from graphql import DocumentNode, GraphQLError

from soko.server.wandb import graphql, query_limits
from soko.server.wandb.queries import FILES_PAGE_MAX


def _check(text: str, **variables: object) -> DocumentNode | list[GraphQLError]:
    return query_limits.parse_and_validate(
        graphql.schema(), text, variables=variables, page=FILES_PAGE_MAX
    )


def _deep(levels: int) -> str:
    """``project { artifactCollection { project { artifactCollection ... id } } }``: two
    fields a level, 2 * levels + 3 in all."""
    inner = "id"
    for _ in range(levels):
        inner = f'project {{ artifactCollection(name: "c") {{ {inner} }} }}'
    return f'{{ project(name: "p") {{ artifactCollection(name: "c") {{ {inner} }} }} }}'


FILE_URLS = """query Files($first: Int) { project(name: "p") { artifactCollection(name: "c") {
  artifactMembership(aliasName: "latest") { files(first: $first) {
    pageInfo { endCursor hasNextPage } edges { node { name directUrl } } } } } } }"""


def test_the_clients_queries_pass() -> None:
    assert isinstance(_check(FILE_URLS, first=5000), DocumentNode)
    assert isinstance(_check(FILE_URLS), DocumentNode)  # no first: the largest page
    assert isinstance(_check(_deep(8)), DocumentNode)  # 19 fields deep


def test_a_deep_query_is_refused() -> None:
    errors = _check(_deep(10))
    assert isinstance(errors, list) and len(errors) == 1
    assert "nests 23 fields deep" in errors[0].message
    assert f"at most {query_limits.MAX_DEPTH}" in errors[0].message


def test_depth_counts_through_fragments() -> None:
    level = 'fragment {} on Project {{ artifactCollection(name: "c") {{ project {{ ...{} }} }} }}'
    names = [f"F{i}" for i in range(11)]
    fragments = [level.format(a, b) for a, b in itertools.pairwise(names)]
    last = f"fragment {names[-1]} on Project {{ id }}"
    text = "\n".join(['query { project(name: "p") { ...F0 } }', *fragments, last])
    errors = _check(text)
    assert isinstance(errors, list) and "fields deep" in errors[0].message


def test_many_pages_at_once_are_refused() -> None:
    page = "files(first: 10000) { edges { node { name directUrl } } }"
    aliases = " ".join(f"f{i}: {page}" for i in range(10))
    text = f'{{ project(name: "p") {{ artifact(name: "a") {{ {aliases} }} }} }}'
    errors = _check(text)
    assert isinstance(errors, list) and "asks too much at once" in errors[0].message
    # The same pages, small, pass: the cost follows the page size asked.
    small = text.replace("first: 10000", "first: 10")
    assert isinstance(_check(small), DocumentNode)


def test_a_page_size_in_a_variable_counts() -> None:
    page = "files(first: $first) { edges { node { name directUrl } } }"
    aliased = (
        'query Files($first: Int) { project(name: "p") { artifact(name: "a") { '
        + " ".join(f"f{i}: {page}" for i in range(8))
        + " } } }"
    )
    assert isinstance(_check(aliased, first=100), DocumentNode)
    errors = _check(aliased, first=10000)
    assert isinstance(errors, list) and "asks too much" in errors[0].message


def test_a_huge_query_is_refused_while_parsing() -> None:
    text = "{ " + " ".join(f"v{i}: viewer {{ id }}" for i in range(10_000)) + " }"
    errors = _check(text)
    assert isinstance(errors, list)
    assert "more than" in errors[0].message and "tokens" in errors[0].message


@pytest.mark.parametrize("text", ["{ viewer { ", "{ noSuchField }"])
def test_the_standard_errors_come_first(text: str) -> None:
    errors = _check(text)
    assert isinstance(errors, list) and errors
