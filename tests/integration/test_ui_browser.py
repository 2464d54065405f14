"""The web UI in a real browser: Playwright driving Debian's Chromium against a real
``soko server`` holding data logged through the SDK.

Every page is loaded with all network access but the server's blocked, and a request to
anywhere else fails the test: the UI must work offline. With ``SOKO_UI_SCREENSHOTS=DIR``
the screenshots of the main pages are written there (``scripts/ui-screenshots`` makes those
of ``docs/ui``); otherwise into the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from server_fixtures import (
    SokoServer,
    point_sdk_at,
    service_unavailable,
    soko_server,
    unique_project,
)
from ui_data import ENTITY, SWEEP, Pipeline, Samples, pipeline, samples

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "samples", "soko_server"]

CHROMIUM = os.environ.get("SOKO_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if shutil.which(CHROMIUM) is None:
        service_unavailable(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        service_unavailable(f"playwright is not installed ({exc}); pip install 'soko[test]'")
    with sync_playwright() as playwright:
        # Root (CI, containers) cannot use Chromium's sandbox.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("SOKO_UI_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Session:
    """A browser context of one user, which lets only the server's requests through."""

    def __init__(self, browser: object, server: SokoServer) -> None:
        self.server = server
        self.origin = urlsplit(server.url).netloc
        self.elsewhere: list[str] = []
        self.context = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 1280, "height": 860}, accept_downloads=True
        )
        self.context.route("**/*", self._only_the_server)
        self.page = self.context.new_page()

    def _only_the_server(self, route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        if urlsplit(url).netloc == self.origin or url.startswith("data:"):
            route.continue_()  # type: ignore[attr-defined]
        else:
            self.elsewhere.append(url)
            route.abort()  # type: ignore[attr-defined]

    def go(self, path: str) -> None:
        self.page.goto(self.server.url + path)

    def sign_in(self, key: str) -> None:
        self.go("/")
        assert urlsplit(self.page.url).path == "/signin"
        self.page.fill("input[name=key]", key)
        self.page.click("button[type=submit]")

    def close(self) -> None:
        self.context.close()
        assert self.elsewhere == [], f"the UI reached for other hosts: {self.elsewhere}"


@pytest.fixture
def session_of(browser: object, soko_server: SokoServer) -> Iterator[object]:
    made: list[Session] = []

    def make(key: str | None = None) -> Session:
        session = Session(browser, soko_server)
        made.append(session)
        if key is not None:
            session.sign_in(key)
        return session

    yield make
    for session in made:
        session.close()


def test_a_bad_key_is_refused(session_of: object) -> None:
    session = session_of()  # type: ignore[operator]
    session.sign_in("soko_wrong_key_0000")
    page = session.page
    assert page.locator("#signin-error").inner_text().startswith("Unknown or revoked API key")
    assert urlsplit(page.url).path == "/signin"
    assert [c["name"] for c in session.context.cookies()] == ["soko_signin"]  # no sign-in


def test_from_the_projects_to_a_file(
    session_of: object, soko_server: SokoServer, pipeline: Pipeline, shots: Path
) -> None:
    session = session_of(soko_server.admin_key)  # type: ignore[operator]
    page = session.page
    assert page.locator("h1").inner_text() == "Projects"
    page.screenshot(path=str(shots / "projects.png"))
    page.click(f"text={pipeline.project}")
    assert page.locator("h1").inner_text() == f"{ENTITY}/{pipeline.project}"
    page.screenshot(path=str(shots / "project.png"))
    page.click("#collections >> text=raw-data")
    page.click("#versions >> text=v0")
    assert page.locator("h1").inner_text().startswith("raw-data:v0")
    # The hostile description is text on the page, and no script of it ran.
    assert "<script>" in page.locator("#description").inner_text()
    assert page.locator("#description script, #description img").count() == 0
    page.screenshot(path=str(shots / "version.png"), full_page=True)
    page.click("#file-table >> text=images/")
    page.click("#file-table >> text=train/")
    page.wait_for_function(
        "() => [...document.querySelectorAll('img.thumb')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    page.locator("#files").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "files.png"))
    with page.expect_download() as event:
        page.click("#file-table >> text=cat.txt")
    download = event.value
    assert download.suggested_filename == "cat.txt"
    assert Path(download.path()).read_bytes() == pipeline.files["images/train/cat.txt"]
    session.go(f"/p/{ENTITY}/{pipeline.project}/c/model")
    page.screenshot(path=str(shots / "collection.png"))


def test_previews_of_a_table_and_of_images(
    session_of: object, soko_server: SokoServer, samples: Samples, shots: Path
) -> None:
    session = session_of(soko_server.admin_key)  # type: ignore[operator]
    page = session.page
    thumbs_loaded = (
        "() => [...document.querySelectorAll('img.thumb')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    session.go(f"/v/{samples.version_id}")
    page.click("#file-table >> text=preview")
    assert page.locator("h1").inner_text().startswith("rows.table.json")
    assert page.locator("#table tbody tr").count() == 50
    # The hostile column name and cell are text, and no script of theirs ran.
    assert "<script>" in page.locator("#table thead").inner_text()
    assert page.locator("#table script, #table img:not(.thumb)").count() == 0
    page.wait_for_function(thumbs_loaded)
    assert page.locator("#table img.thumb").count() == 3
    page.screenshot(path=str(shots / "table.png"))
    page.click("a[rel=next]")
    assert page.locator("#table-rows").inner_text().startswith("Rows 51 to 100 of")
    page.click("text=(top)")
    page.click("#file-table >> text=photos/")
    # The photo's thumbnail, and placeholders for the bomb and the broken file.
    page.wait_for_function(thumbs_loaded)
    sizes = page.eval_on_selector_all(
        "img.thumb", "images => images.map(i => [i.alt, i.naturalWidth, i.naturalHeight])"
    )
    placeholder = [256, 160]
    assert sorted(sizes) == [
        ["bomb.png", *placeholder],
        ["broken.png", *placeholder],
        ["photo.jpg", 256, 128],
    ]
    page.locator("#file-table").screenshot(path=str(shots / "thumbnails.png"))


def test_the_lineage_graph_opens_what_is_clicked(
    session_of: object, soko_server: SokoServer, pipeline: Pipeline, shots: Path
) -> None:
    session = session_of(soko_server.admin_key)  # type: ignore[operator]
    page = session.page
    session.go(f"/v/{pipeline.dataset_id}")
    page.click("#lineage-link")
    svg = page.locator("svg#lineage")
    nodes = svg.locator("a.node")
    shown = {nodes.nth(i).get_attribute("data-node") for i in range(nodes.count())}
    assert f"version:{pipeline.dataset_id}" in shown
    assert f"run:{pipeline.prep_run}" in shown
    labels = svg.locator("text.label").all_text_contents()
    assert f"{SWEEP} runs" in labels
    assert f"{SWEEP} versions of model" in labels
    # The wheel zooms: the viewBox shrinks around the pointer.
    before = svg.get_attribute("viewBox")
    box = svg.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 3)
    page.mouse.wheel(0, -300)
    page.wait_for_function(
        "before => document.querySelector('svg#lineage').getAttribute('viewBox') !== before",
        arg=before,
    )
    page.click("#zoom-reset")
    assert svg.get_attribute("viewBox") == before
    svg.locator(f'a[data-node="run:{pipeline.prep_run}"]').click()
    page.wait_for_url(re.compile(f"/r/{pipeline.prep_run}$"))
    assert page.locator("#job-type").inner_text() == "prep"
    # One hop more, from the run's own graph.
    page.click("#lineage-link")
    page.click("#expand")
    assert "hops=3" in page.url
    session.go(f"/v/{pipeline.dataset_id}/lineage?hops=3")
    assert f"run:{pipeline.eval_run}" in {
        a.get_attribute("data-node") for a in page.locator("svg#lineage a.node").all()
    }
    page.screenshot(path=str(shots / "lineage.png"))
    session.go(f"/r/{pipeline.train_runs[1]}")
    page.screenshot(path=str(shots / "run.png"), full_page=True)


def test_a_writer_edits_an_alias_that_the_sdk_sees_and_a_viewer_cannot(
    session_of: object,
    soko_server: SokoServer,
    pipeline: Pipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scope = {(ENTITY, pipeline.project): "viewer"}
    viewer = session_of(soko_server.new_user(unique_project("v"), scope))  # type: ignore[operator]
    viewer.go(f"/v/{pipeline.model_ids[2]}")
    assert viewer.page.locator("h1").inner_text().startswith("model:v2")
    assert viewer.page.locator("#edit-form").count() == 0
    writer_key = soko_server.new_user(unique_project("w"), {(ENTITY, pipeline.project): "writer"})
    writer = session_of(writer_key)  # type: ignore[operator]
    page = writer.page
    writer.go(f"/v/{pipeline.model_ids[2]}")
    page.click("details.edit summary")
    page.fill("#edit-form input[name=aliases]", "candidate, production")
    page.click("#edit-form button[type=submit]")
    page.wait_for_selector("#aliases >> text=production")
    point_sdk_at(soko_server, writer_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    import soko

    seen = soko.Api().artifact(f"{ENTITY}/{pipeline.project}/model:production")
    assert seen.id == pipeline.model_ids[2]
    assert "candidate" in seen.aliases


def test_the_api_docs_work_offline(session_of: object) -> None:
    session = session_of()  # type: ignore[operator]
    session.go("/api/v1/docs")
    session.page.wait_for_selector(".swagger-ui .info .title")
    assert "soko server" in session.page.locator(".swagger-ui .info .title").inner_text()
    assert session.page.locator(".opblock").count() > 10
