"""The web UI of a soko server: pages rendered on the server, served from this package.

``soko server`` serves it at ``/`` (sign in with an API key); ``soko ui`` serves it over the
embedded store on 127.0.0.1 with no sign-in. Its templates, stylesheet and script are files
of this package, and the API docs page loads Swagger UI from the ``swagger-ui-py`` package:
nothing is fetched from another site, so the UI works offline.
"""

from __future__ import annotations

import secrets
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from soko.server.ui import pages, previews
from soko.server.ui.render import error_page
from soko.server.ui.session import Sessions
from soko.server.ui.tables import Shapes
from soko.server.ui.thumbs import Thumbs
from soko.wire import API_PREFIX

STATIC_PREFIX = "/_ui"
DOCS_STATIC = f"{API_PREFIX}/docs/static"


def install(app: FastAPI, *, secret: str, local: bool = False) -> None:
    """Serve the UI on *app*; *local*: everyone is the local user (``soko ui``)."""
    app.state.ui_sessions = Sessions(secret=secret or secrets.token_urlsafe(32), local=local)
    app.state.ui_table_shapes = Shapes()
    app.state.ui_thumbs = Thumbs()
    app.state.ui_not_found = not_found
    app.mount(
        STATIC_PREFIX,
        StaticFiles(packages=[("soko.server.ui", "static")]),
        name="ui-static",
    )
    app.include_router(pages.router)
    app.include_router(previews.router)
    _install_docs(app)


def not_found(request: Request) -> Response:
    """The page for a path that is neither a page nor an API endpoint."""
    return error_page(request, 404, f"There is no page at {request.url.path}.", None)


def _install_docs(app: FastAPI) -> None:
    """Swagger UI at ``/api/v1/docs``, its files from the ``swagger-ui-py`` package."""
    static = resources.files("swagger_ui") / "static"
    app.mount(DOCS_STATIC, StaticFiles(directory=str(static)), name="docs-static")

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{API_PREFIX}/openapi.json",
            title="soko server API",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon-32x32.png",
        )
