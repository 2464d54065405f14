"""The GraphQL schema (``schema.graphql``) bound to its resolvers, and one request's run.

graphql-core parses and validates each query against the schema, so any selection the
client makes of the fields it defines works (fragments, aliases, ``__typename``), and a
field the schema lacks gets GraphQL's standard "Cannot query field" error. A query too
large, too deep or too costly is refused before it runs (:mod:`.query_limits`). A resolver's
:class:`~soko.errors.SokoError` becomes a GraphQL error with the error's code, and the HTTP
status of the answer is that error's (a viewer logging gets 403, as over REST).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    execute_sync,
)

from soko.errors import SokoError
from soko.server.wandb import mutations, queries, query_limits, uploads
from soko.server.wandb.queries import Context

log = logging.getLogger("soko.server")

Resolver = Callable[..., Any]

FEATURES = ("ARTIFACT_DIGEST_ALGORITHM",)
"""Server features advertised: with this one the client asks for and sends XXH128 digests
(and asks ``entity.xxhashDigestsEnabled``, answered true)."""


def _query_resolvers() -> dict[str, Resolver]:
    def ctx(info: Any) -> Context:
        context: Context = info.context
        return context

    def project(
        _root: Any, info: Any, name: str | None = None, entityName: str | None = None
    ) -> Any:
        c = ctx(info)
        entity = entityName or queries.default_entity(c.principal)
        return queries.project_obj(c, entity, name or mutations.DEFAULT_PROJECT)

    return {
        "viewer": lambda _root, info: queries.viewer(ctx(info)),
        "serverInfo": lambda _root, _info: {
            "features": [{"name": name, "isEnabled": True} for name in FEATURES],
            "cliVersionInfo": {},
            "latestLocalVersionInfo": None,
            "availableBucketProviders": [],
        },
        "entity": lambda _root, info, name: queries.entity_obj(ctx(info), name),
        "project": project,
        "model": project,
        "artifact": lambda _root, info, id: _artifact(ctx(info), id),
        "clientIDMapping": lambda _root, _info, clientID: None,
    }


def _artifact(ctx: Context, artifact_id: str) -> Any:
    record = queries.committed_or_none(ctx, artifact_id)
    return None if record is None else queries.artifact_obj(ctx, record)


_MUTATIONS: Mapping[str, Callable[[Context, Mapping[str, Any]], Any]] = {
    "upsertBucket": mutations.upsert_bucket,
    "createRunFiles": mutations.create_run_files,
    "createArtifact": mutations.create_artifact,
    "createArtifactManifest": mutations.create_artifact_manifest,
    "updateArtifactManifest": mutations.update_artifact_manifest,
    "createArtifactFiles": mutations.create_artifact_files,
    "completeMultipartUploadArtifact": uploads.complete_multipart,
    "commitArtifact": mutations.commit_artifact,
    "useArtifact": mutations.use_artifact,
    "linkArtifact": mutations.link_artifact,
}


def _mutation(function: Callable[[Context, Mapping[str, Any]], Any]) -> Resolver:
    def resolve(_root: Any, info: Any, input: Mapping[str, Any]) -> Any:
        return function(info.context, input)

    return resolve


@cache
def schema() -> GraphQLSchema:
    text = resources.files("soko.server.wandb").joinpath("schema.graphql").read_text("utf-8")
    built = build_schema(text)
    for root, resolvers in (
        (built.query_type, _query_resolvers()),
        (built.mutation_type, {name: _mutation(f) for name, f in _MUTATIONS.items()}),
    ):
        assert isinstance(root, GraphQLObjectType)
        for name, resolver in resolvers.items():
            root.fields[name].resolve = resolver
    return built


def _status_of(errors: list[GraphQLError]) -> int:
    statuses = []
    for error in errors:
        original = error.original_error
        if original is None or error.path is None:
            statuses.append(400)  # the query or its variables do not parse or validate
        elif isinstance(original, SokoError):
            statuses.append(original.http_status)
        else:
            log.error("unexpected error in a GraphQL resolver", exc_info=original)
            statuses.append(500)
    return max(statuses)


def _error_json(error: GraphQLError) -> dict[str, Any]:
    body = error.formatted
    original = error.original_error
    code = original.code if isinstance(original, SokoError) else "graphql_error"
    if isinstance(original, SokoError) or original is None or error.path is None:
        message = error.message
    else:
        message = "Internal server error."
    return {**body, "message": message, "extensions": {"code": code}}


def execute(ctx: Context, body: Any) -> tuple[int, dict[str, Any]]:
    """Run one GraphQL request (the parsed JSON body); the HTTP status and the answer."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return 400, {"errors": [{"message": "The body must be a JSON object with a query."}]}
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        return 400, {"errors": [{"message": "variables must be a JSON object."}]}
    operation = body.get("operationName")
    log.debug("graphql operation %s", operation)
    checked = query_limits.parse_and_validate(
        schema(), body["query"], variables=variables, page=queries.FILES_PAGE_MAX
    )
    if isinstance(checked, list):
        return 400, {"data": None, "errors": [_error_json(e) for e in checked]}
    result = execute_sync(
        schema(),
        checked,
        context_value=ctx,
        variable_values=variables,
        operation_name=operation if isinstance(operation, str) and operation else None,
    )
    answer: dict[str, Any] = {"data": result.data}
    if not result.errors:
        return 200, answer
    answer["errors"] = [_error_json(e) for e in result.errors]
    return _status_of(list(result.errors)), answer
