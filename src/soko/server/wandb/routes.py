"""The HTTP side of the W&B layer: ``/graphql``, ``file_stream`` and the signed URLs.

The client authenticates with HTTP Basic, user ``api`` and a soko key as password, on
``/graphql`` and ``file_stream``. The URLs it is handed for bytes carry no key: they are
signed here (:mod:`.signing`) for one purpose, one blob and a limited time; uploads are
verified against their digest while they stream to the store, before the blob can be named.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import secrets
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from soko.core.digests import Algorithm, parse_digest
from soko.core.manifest import Manifest
from soko.core.runlog import ROW_MAX_BYTES, SUMMARY_MAX_BYTES, decode
from soko.errors import AuthenticationError, ValidationError
from soko.server import auth
from soko.server.auth import Principal
from soko.server.observe import Metrics
from soko.server.routes.blobs import BodyReader
from soko.server.routes.downloads import blob_file_response
from soko.server.state import ServerState
from soko.server.wandb import graphql, mutations
from soko.server.wandb.joins import Joins
from soko.server.wandb.queries import Context
from soko.server.wandb.signing import Signer, UsedNonces
from soko.service import possession, rundata, runs
from soko.storage.capabilities import LocalFiles

router = APIRouter(include_in_schema=False)

SIGNING_KEY_ENV = "SOKO_URL_SIGNING_KEY"
_SMALL_BODY = 1024 * 1024


class WandbState:
    """What the W&B layer of one server process keeps: its signer, used upload URLs and
    the joins of parts running."""

    def __init__(self, key: bytes) -> None:
        self.signer = Signer(key)
        self.nonces = UsedNonces()
        self.joins = Joins()


def signing_key() -> bytes:
    """``SOKO_URL_SIGNING_KEY`` when set (servers sharing a database share it, so a URL
    signed by one is taken by another), else a key of this process."""
    value = os.environ.get(SIGNING_KEY_ENV)
    return value.encode() if value else secrets.token_bytes(32)


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.soko
    return state


def _wandb(request: Request) -> WandbState:
    found: WandbState = request.app.state.wandb
    return found


def _key_of(request: Request) -> str | None:
    """The key of ``Authorization: Basic base64(api:<key>)`` (W&B's), or a Bearer key."""
    header = request.headers.get("authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError("The Authorization header does not parse.") from None
        return decoded.partition(":")[2] or None
    if scheme.lower() == "bearer":
        return value.strip() or None
    return None


def _caller(request: Request) -> Principal:
    return auth.authenticate(_state(request).store.engine, _key_of(request))


def _context(request: Request, principal: Principal) -> Context:
    base = str(request.base_url).rstrip("/")
    metrics: Metrics = request.app.state.metrics
    return Context(
        _state(request),
        principal,
        _wandb(request).signer,
        base,
        on_upload_url=metrics.wandb_upload_urls.inc,
        joins=_wandb(request).joins,
    )


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except ValueError:
        raise ValidationError("The body is not valid JSON.") from None


@router.post("/graphql")
async def graphql_endpoint(request: Request) -> JSONResponse:
    principal = await run_in_threadpool(_caller, request)
    body = await _json_body(request)
    ctx = _context(request, principal)
    status, answer = await run_in_threadpool(graphql.execute, ctx, body)
    return JSONResponse(answer, status_code=status)


@router.post("/files/{entity}/{project}/{run_id}/file_stream")
async def file_stream(entity: str, project: str, run_id: str, request: Request) -> JSONResponse:
    """History, summary and the end of a run; console output and system metrics are
    dropped (soko keeps no log lines or system metrics of a run)."""
    principal = await run_in_threadpool(_caller, request)
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise ValidationError("A file_stream post must be a JSON object.")
    await run_in_threadpool(_stream, _state(request), principal, run_id, body)
    return JSONResponse({"exitcode": None, "limits": {}})


def _lines(files: Any, name: str) -> list[str]:
    item = files.get(name) if isinstance(files, dict) else None
    content = item.get("content") if isinstance(item, dict) else None
    if content is None:
        return []
    if not isinstance(content, list) or not all(isinstance(c, str) for c in content):
        raise ValidationError(f"file_stream: {name} content must be a list of strings.")
    return content


def _stream(state: ServerState, principal: Principal, run_id: str, body: dict[str, Any]) -> None:
    run = state.writable_run(principal, run_id)
    files = body.get("files")
    history = [
        decode(line, what="A history row", max_bytes=ROW_MAX_BYTES)
        for line in _lines(files, "wandb-history.jsonl")
    ]
    summaries = _lines(files, "wandb-summary.json")
    summary = None
    if summaries:
        found = decode(summaries[-1], what="A run summary", max_bytes=SUMMARY_MAX_BYTES)
        summary = {k: v for k, v in found.items() if k != "_wandb"}
    if history or summary is not None:
        rundata.write_run_data(state.store, run.id, summary=summary, history=history)
    if body.get("complete"):
        exitcode = body.get("exitcode")
        runs.finish_run(state.store, run.id, state="finished" if exitcode == 0 else "failed")


@router.put("/wandb/uploads/{token}")
async def upload(token: str, request: Request) -> Response:
    """A file's bytes, stored as the blob the URL names once they hash to its digest."""
    wandb = _wandb(request)
    grant = wandb.signer.verify(token, "put")
    state = _state(request)
    digest = parse_digest(str(grant.subject["d"]))
    entity, project = str(grant.subject["e"]), str(grant.subject["p"])
    wandb.nonces.claim(grant)
    length = request.headers.get("content-length", "")
    reader: Any
    if length.isdigit() and int(length) <= _SMALL_BODY:
        # Most files are small: read the body here, and hop to a worker thread once.
        reader = io.BytesIO(await request.body())
    else:
        reader = BodyReader(request.stream())

    def store() -> None:
        size = state.store.blobs.put_stream(digest, reader)
        possession.record_uploads(
            state.store, entity=entity, project=project, blobs=[(digest, size)]
        )

    try:
        await anyio.to_thread.run_sync(store)
    except BaseException:
        wandb.nonces.release(grant)  # nothing was stored: the client may try again
        raise
    # S3's answer: the client reads a part's ETag (its MD5) to join the parts.
    headers = {"ETag": f'"{digest.hex}"'} if digest.algorithm is Algorithm.MD5 else {}
    return Response(status_code=200, headers=headers)


@router.get("/wandb/blobs/{token}/{name}")
def download(token: str, name: str, request: Request) -> Response:
    """A blob's bytes (``Range`` honoured for blobs kept as files)."""
    grant = _wandb(request).signer.verify(token, "get")
    blobs = _state(request).store.blobs
    digest = parse_digest(str(grant.subject["d"]))
    path = blobs.local_path(digest) if isinstance(blobs, LocalFiles) else None
    if path is not None and os.path.isfile(path):
        ranged = "range" in request.headers
        return blob_file_response(path, media_type="application/octet-stream", ranged=ranged)
    data = blobs.read_bytes(digest)
    return Response(data, media_type="application/octet-stream")


@router.put("/wandb/manifests/{token}")
async def upload_manifest(token: str, request: Request) -> Response:
    """The manifest of a pending artifact: W&B's JSON, stored as soko's manifest (the
    client's ``local_path`` and ``skip_cache`` are not kept)."""
    wandb = _wandb(request)
    grant = wandb.signer.verify(token, "manifest")
    state = _state(request)
    raw = await request.body()
    if len(raw) > state.config.max_manifest_bytes:
        raise ValidationError(
            f"The manifest has {len(raw)} bytes; this server takes at most "
            f"{state.config.max_manifest_bytes}."
        )
    version_id = str(grant.subject["v"])

    def store() -> None:
        principal = auth.principal_of(state.store.engine, int(grant.subject["u"]))
        record = state.writable_version(principal, version_id)
        try:
            data = json.loads(raw)
        except ValueError:
            raise ValidationError("The manifest is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ValidationError("The manifest must be a JSON object.")
        manifest = Manifest.from_json(data, Algorithm.parse(record.algorithm))
        ctx = Context(state, principal, wandb.signer, str(request.base_url).rstrip("/"))
        incremental = bool(grant.subject.get("i"))
        mutations.store_manifest(ctx, version_id, manifest, incremental=incremental)

    await anyio.to_thread.run_sync(store)
    return Response(status_code=200)


@router.put("/wandb/discard/{token}")
async def discard(token: str, request: Request) -> Response:
    """A run file the client uploads (its config, summary, requirements): read, dropped."""
    _wandb(request).signer.verify(token, "discard")
    async for _chunk in request.stream():
        pass
    return Response(status_code=200)
