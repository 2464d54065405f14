"""The pages of the web UI: projects, collections, versions, files, runs and lineage.

Each page checks the viewer's role exactly as the API does (a project the viewer may not
read is answered like one that does not exist) and calls the same service functions.
Errors are pages too: an unknown name is a 404 page, a bad value a 400 page, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute

from soko.core.records import RunRecord, VersionRecord
from soko.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    SokoError,
    ValidationError,
)
from soko.server.deps import get_state
from soko.server.state import ServerState
from soko.server.ui import files, graph
from soko.server.ui.render import error_page, page
from soko.server.ui.session import (
    COOKIE,
    SESSION_MAX_AGE,
    SIGNIN_COOKIE,
    SIGNIN_MAX_AGE,
    Sessions,
    SignInRequired,
    Viewer,
)
from soko.service import automations, browse, registries, runs, versions
from soko.service.registries import home_entity

log = logging.getLogger("soko.server")

VERSIONS_PER_PAGE = 50
FILES_PER_PAGE = 100
COLLECTIONS_PER_PAGE = 100
RUNS_PER_PAGE = 50
MAX_HOPS = 10
REFERENCES_SHOWN = 100


class UIRoute(APIRoute):
    """A UI route: a failure is answered with a page (a redirect to the sign-in page for a
    missing session), not with the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(
                    f"{request.scope.get('root_path', '')}/signin?next={quote(target, safe='')}",
                    status_code=303,
                )
            except RequestValidationError as exc:
                fields = (
                    ", ".join(str(e.get("loc", ("?",))[-1]) for e in exc.errors()) or "the request"
                )
                return error_page(request, 400, f"Bad value for {fields}.", None)
            except SokoError as exc:
                status = exc.http_status
                if status >= 500:
                    log.error("store error: %s", exc, exc_info=exc)
                    return error_page(request, 500, "The store failed; see the server log.", None)
                return error_page(request, status, str(exc), None)

        return answer


router = APIRouter(route_class=UIRoute, include_in_schema=False)


def viewer_of(request: Request) -> Viewer:
    state: ServerState = get_state(request)
    viewer: Viewer = request.app.state.ui_sessions.viewer(request, state)
    return viewer


UIViewer = Annotated[Viewer, Depends(viewer_of)]
State = Annotated[ServerState, Depends(get_state)]


def _page_number(page_text: int) -> int:
    if page_text < 1:
        raise ValidationError(f"page must be 1 or more, not {page_text}.")
    return page_text


def _readable_project(viewer: Viewer, state: ServerState, entity: str, project: str) -> str:
    """The entity the project lives in, if the viewer may read it; else NotFoundError, as
    for a project that does not exist."""
    home = home_entity(state.store, entity, project)
    if not viewer.principal.may(home, project, "viewer") or not browse.project_exists(
        state.store, home, project
    ):
        raise NotFoundError(f"No project {entity}/{project}.")
    return home


# ----- sign-in ---------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path of this server: never another site after signing in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _signin_page(
    request: Request, target: str, *, failed: str | None = None, status: int = 200
) -> Response:
    """The sign-in form, carrying the token of the sign-in cookie it sets (login CSRF)."""
    sessions: Sessions = request.app.state.ui_sessions
    cookie, token = sessions.signin_token(request.cookies.get(SIGNIN_COOKIE))
    response = page(
        request, "signin.html", None, next=target, failed=failed, csrf=token, status=status
    )
    response.set_cookie(
        SIGNIN_COOKIE,
        cookie,
        max_age=SIGNIN_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=request.scope.get("root_path", "") or "/",
    )
    return response


@router.get("/signin")
def signin_form(request: Request, next: str | None = None) -> Response:
    return _signin_page(request, _safe_next(next))


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


@router.post("/signin")
async def signin(request: Request) -> Response:
    form = await _form(request)
    target = _safe_next(form.get("next"))
    state = get_state(request)
    sessions: Sessions = request.app.state.ui_sessions
    try:
        sessions.check_signin(request.cookies.get(SIGNIN_COOKIE), form.get("csrf"))
    except PermissionDeniedError as exc:
        return _signin_page(request, target, failed=str(exc), status=403)
    try:
        cookie = sessions.new_cookie(state, form.get("key", "").strip())
    except AuthenticationError as exc:
        return _signin_page(request, target, failed=str(exc), status=401)
    root = request.scope.get("root_path", "")
    response = RedirectResponse(root + target, status_code=303)
    response.delete_cookie(SIGNIN_COOKIE, path=root or "/")
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=root or "/",
    )
    return response


@router.post("/signout")
async def signout(request: Request, viewer: UIViewer) -> Response:
    form = await _form(request)
    request.app.state.ui_sessions.check_csrf(viewer, form.get("csrf"))
    root = request.scope.get("root_path", "")
    response = RedirectResponse(f"{root}/signin", status_code=303)
    response.delete_cookie(COOKIE, path=root or "/")
    return response


# ----- projects and collections -----------------------------------------------------------


@router.get("/")
def projects(request: Request, state: State, viewer: UIViewer) -> Response:
    found = [
        p
        for p in versions.list_projects(state.store)
        if viewer.principal.may(p.entity, p.name, "viewer")
    ]
    return page(request, "projects.html", viewer, projects=found)


@router.get("/p/{entity}/{project}")
def project(
    request: Request,
    entity: str,
    project: str,
    state: State,
    viewer: UIViewer,
    q: str = "",
    type: str | None = None,
    sort: str = "updated",
) -> Response:
    home = _readable_project(viewer, state, entity, project)
    order: browse.CollectionOrder = "name" if sort == "name" else "updated"
    number = _page_number(_int_query(request, "page", 1))
    found = browse.collection_page(
        state.store,
        home,
        project,
        search=q.strip(),
        type_name=type or None,
        order=order,
        offset=(number - 1) * COLLECTIONS_PER_PAGE,
        limit=COLLECTIONS_PER_PAGE,
    )
    types = versions.list_types(state.store, home, project)
    return page(
        request,
        "project.html",
        viewer,
        entity=entity,
        project=project,
        collections=found,
        types=types,
        q=q,
        type=type,
        sort=order,
        page_no=number,
    )


@router.get("/p/{entity}/{project}/c/{name}")
def collection(
    request: Request, entity: str, project: str, name: str, state: State, viewer: UIViewer
) -> Response:
    home = _readable_project(viewer, state, entity, project)
    number = _page_number(_int_query(request, "page", 1))
    record = versions.get_collection(state.store, home, project, name)
    found = browse.version_page(
        state.store,
        home,
        project,
        name,
        offset=(number - 1) * VERSIONS_PER_PAGE,
        limit=VERSIONS_PER_PAGE,
    )
    return page(
        request,
        "collection.html",
        viewer,
        entity=entity,
        project=project,
        collection=record,
        versions=found,
        page_no=number,
    )


@router.get("/p/{entity}/{project}/runs")
def project_runs(
    request: Request, entity: str, project: str, state: State, viewer: UIViewer
) -> Response:
    home = _readable_project(viewer, state, entity, project)
    number = _page_number(_int_query(request, "page", 1))
    job_type = request.query_params.get("job_type") or None
    found = browse.run_page(
        state.store,
        home,
        project,
        job_type=job_type,
        offset=(number - 1) * RUNS_PER_PAGE,
        limit=RUNS_PER_PAGE,
    )
    return page(
        request,
        "runs.html",
        viewer,
        entity=entity,
        project=project,
        runs=found,
        job_type=job_type,
        page_no=number,
    )


def _int_query(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValidationError(f"{name} must be a whole number, not {text!r}.") from None


# ----- versions and files -----------------------------------------------------------------


@router.get("/v/{version_id}")
def version(request: Request, version_id: str, state: State, viewer: UIViewer) -> Response:
    record = state.readable_version(viewer.principal, version_id)
    folder = request.query_params.get("dir", "").strip("/")
    number = _page_number(_int_query(request, "page", 1))
    tree = files.VersionFiles(state, record)
    shown, child_count = tree.folder(
        folder, start=(number - 1) * FILES_PER_PAGE, count=FILES_PER_PAGE
    )
    produced_by = None
    if record.created_by_run is not None:
        try:
            produced_by = state.readable_run(viewer.principal, record.created_by_run)
        except SokoError:
            produced_by = None
    used = browse.runs_using(state.store, record.source_id or record.id)
    used_by = [r for r in used.items if viewer.principal.may(r.entity, r.project, "viewer")]
    return page(
        request,
        "version.html",
        viewer,
        v=record,
        folder=folder,
        crumbs=_crumbs(folder),
        children=shown,
        child_count=child_count,
        page_no=number,
        per_page=FILES_PER_PAGE,
        is_file=lambda item: isinstance(item, files.FileRow),
        references=tree.references(REFERENCES_SHOWN),
        reference_count=tree.reference_count,
        produced_by=produced_by,
        used_by=used_by,
        # Whether runs beyond the first page used it, never how many: the count would
        # include runs of projects this viewer may not read.
        used_more=used.total > len(used.items),
        may_write=viewer.principal.may(record.entity, record.project, "writer"),
    )


def _crumbs(folder: str) -> list[tuple[str, str]]:
    """(name, path) of each folder from the top down to *folder*."""
    parts = [p for p in folder.split("/") if p]
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


@router.get("/v/{version_id}/file")
def download_file(request: Request, version_id: str, state: State, viewer: UIViewer) -> Response:
    record = state.readable_version(viewer.principal, version_id)
    path = request.query_params.get("path", "")
    return files.file_response(state, record, files.VersionFiles(state, record), path)


@router.get("/v/{version_id}/image")
def show_image(request: Request, version_id: str, state: State, viewer: UIViewer) -> Response:
    """A raster image of the version, for its preview on the page."""
    record = state.readable_version(viewer.principal, version_id)
    path = request.query_params.get("path", "")
    return files.image_response(state, files.VersionFiles(state, record), path)


@router.get("/v/{version_id}/zip")
def download_zip(request: Request, version_id: str, state: State, viewer: UIViewer) -> Response:
    record = state.readable_version(viewer.principal, version_id)
    return files.zip_response(state, record, files.VersionFiles(state, record))


def _words(text: str) -> list[str]:
    """Aliases or tags as typed in a form: separated by commas or white space."""
    return [w for w in text.replace(",", " ").split() if w]


@router.post("/v/{version_id}/edit")
async def edit_version(
    request: Request, version_id: str, state: State, viewer: UIViewer
) -> Response:
    form = await _form(request)
    request.app.state.ui_sessions.check_csrf(viewer, form.get("csrf"))
    state.writable_version(viewer.principal, version_id)
    changes: dict[str, Any] = {}
    if "aliases" in form:
        changes["aliases_to_set"] = _words(form["aliases"])
    if "tags" in form:
        changes["tags_to_set"] = _words(form["tags"])
    versions.update_version(state.store, version_id, **changes)
    root = request.scope.get("root_path", "")
    return RedirectResponse(f"{root}/v/{quote(version_id, safe='')}", status_code=303)


# ----- runs and lineage -------------------------------------------------------------------


@router.get("/r/{run_id}")
def run(request: Request, run_id: str, state: State, viewer: UIViewer) -> Response:
    record = state.readable_run(viewer.principal, run_id)
    may = viewer.principal.may
    inputs = [
        v
        for v in runs.versions_of_run(state.store, run_id, "used")
        if may(v.entity, v.project, "viewer")
    ]
    outputs = [
        v
        for v in runs.versions_of_run(state.store, run_id, "logged")
        if may(v.entity, v.project, "viewer")
    ]
    return page(request, "run.html", viewer, run=record, inputs=inputs, outputs=outputs)


def _links(request: Request) -> graph.Links:
    root = request.scope.get("root_path", "")

    def q(text: str) -> str:
        return quote(text, safe="")

    return graph.Links(
        run=lambda r: f"{root}/r/{q(r.id)}",
        version=lambda v: f"{root}/v/{q(v.id)}",
        runs=lambda r: (
            f"{root}/p/{q(r.entity)}/{q(r.project)}/runs"
            + (f"?job_type={q(r.job_type)}" if r.job_type else "")
        ),
        collection=lambda v: f"{root}/p/{q(v.entity)}/{q(v.project)}/c/{q(v.collection)}",
    )


def _lineage_page(
    request: Request,
    state: ServerState,
    viewer: Viewer,
    kind: browse.NodeKind,
    node_id: str,
    subject: RunRecord | VersionRecord,
) -> Response:
    hops = _int_query(request, "hops", 2)
    if not 1 <= hops <= MAX_HOPS:
        raise ValidationError(f"hops must be from 1 to {MAX_HOPS}, not {hops}.")
    hood = browse.neighbourhood(state.store, kind, node_id, hops=hops)
    may = viewer.principal.may
    # Lineage crosses projects: what the viewer may not read is left out of the picture.
    hood.runs = {k: r for k, r in hood.runs.items() if may(r.entity, r.project, "viewer")}
    hood.versions = {k: v for k, v in hood.versions.items() if may(v.entity, v.project, "viewer")}
    drawing = graph.draw(hood, _links(request))
    return page(
        request,
        "lineage.html",
        viewer,
        kind=kind,
        subject=subject,
        drawing=drawing,
        hops=hops,
        max_hops=MAX_HOPS,
    )


@router.get("/v/{version_id}/lineage")
def version_lineage(request: Request, version_id: str, state: State, viewer: UIViewer) -> Response:
    record = state.readable_version(viewer.principal, version_id)
    return _lineage_page(request, state, viewer, "version", record.source_id or record.id, record)


@router.get("/r/{run_id}/lineage")
def run_lineage(request: Request, run_id: str, state: State, viewer: UIViewer) -> Response:
    record = state.readable_run(viewer.principal, run_id)
    return _lineage_page(request, state, viewer, "run", run_id, record)


# ----- registries and automations ---------------------------------------------------------

DELIVERIES_SHOWN = 20


@router.get("/registries")
def registry_list(request: Request, state: State, viewer: UIViewer) -> Response:
    """The registries of every organisation that the viewer may read; each one's
    collections and links are the pages of its project (``ORG/wandb-registry-NAME``)."""
    found = []
    for organisation in registries.list_organisations(state.store):
        found += [
            r
            for r in registries.list_registries(
                state.store, entity=organisation, organisation=organisation
            )
            if viewer.principal.may(r.organisation, r.project, "viewer")
        ]
    return page(request, "registries.html", viewer, registries=found)


@router.get("/p/{entity}/{project}/automations")
def automation_list(
    request: Request, entity: str, project: str, state: State, viewer: UIViewer
) -> Response:
    """The project's automations with their last deliveries (writers: as the API)."""
    home = _readable_project(viewer, state, entity, project)
    viewer.principal.require(home, project, "writer")
    found = [
        (a, automations.list_deliveries(state.store, a.id, limit=DELIVERIES_SHOWN))
        for a in automations.list_automations(state.store, entity=home, project=project)
    ]
    return page(
        request, "automations.html", viewer, entity=entity, project=project, automations=found
    )


# ----- diff -----------------------------------------------------------------------------------

DIFF_SHOWN = 500


@router.get("/v/{version_id}/diff")
def diff(request: Request, version_id: str, state: State, viewer: UIViewer) -> Response:
    """What changed from another version of the same collection (``?other=vN`` or an
    alias) to this one: files added, removed and changed, and metadata keys."""
    record = state.readable_version(viewer.principal, version_id)
    other_name = request.query_params.get("other", "").strip()
    if not other_name:
        raise ValidationError("Name the version to compare with: ?other=vN or an alias.")
    other = versions.resolve(
        state.store, record.entity, record.project, record.collection, other_name
    )
    changes = files.diff(files.VersionFiles(state, other), files.VersionFiles(state, record))
    old_meta, new_meta = other.metadata, record.metadata
    metadata = {
        "added": sorted(k for k in new_meta if k not in old_meta),
        "removed": sorted(k for k in old_meta if k not in new_meta),
        "changed": sorted(k for k in new_meta if k in old_meta and new_meta[k] != old_meta[k]),
    }
    return page(
        request,
        "diff.html",
        viewer,
        v=record,
        other=other,
        files=changes,
        shown=DIFF_SHOWN,
        metadata=metadata,
    )
