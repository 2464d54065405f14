"""Pages from the templates of this package: Jinja2, every value escaped.

Autoescaping is on for every template, so a description, a metadata value or a file name
holding HTML is shown as text; the pages are also sent with a Content-Security-Policy that
runs no script but the UI's own file, as a second wall.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from soko.server.ui.files import image_type
from soko.server.ui.kinds import preview_kind
from soko.server.ui.session import Viewer

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def when(stamp: datetime | None) -> str:
    return "" if stamp is None else stamp.strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("soko.server.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = human_size
    env.filters["when"] = when
    env.filters["pretty"] = pretty_json
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.globals["preview_kind"] = preview_kind
    env.globals["viewable_image"] = image_type
    return env


ENVIRONMENT = _environment()


def base_url(request: Request) -> str:
    """The path prefix of the UI (a reverse proxy's ``--root-path``)."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def page(
    request: Request,
    template: str,
    viewer: Viewer | None,
    *,
    status: int = 200,
    **values: Any,
) -> Response:
    base = base_url(request)

    def url(target: str, /, **query: Any) -> str:
        shown = {k: v for k, v in query.items() if v is not None and v != ""}
        return base + target + (f"?{urlencode(shown)}" if shown else "")

    # The page's own path without the proxy's prefix, which url() puts back: links to
    # its other pages would otherwise carry the prefix twice.
    own = request.url.path
    if base and own.startswith(base + "/"):
        own = own[len(base) :]
    html = ENVIRONMENT.get_template(template).render(
        url=url, viewer=viewer, request_path=own, **values
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def error_page(request: Request, status: int, message: str, viewer: Viewer | None) -> Response:
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
    return page(
        request,
        "error.html",
        viewer,
        status=status,
        title=titles.get(status, "Error"),
        message=message,
        code=status,
    )
