"""The web UI of ``soko server`` over HTTP: pages, sign-in, roles, CSRF, hostile content,
downloads, the lineage graph's collapsing, and ``soko ui`` over the embedded store.

The browser tests (``tests/browser``) drive the same pages in Chromium; these check what
an HTTP client sees, quickly.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from server_fixtures import SokoServer, point_sdk_at, soko_server, unique_project
from ui_data import (
    ENTITY,
    HOSTILE,
    HOSTILE_FILE,
    SWEEP,
    TABLE_ROWS,
    Pipeline,
    Samples,
    pipeline,
    samples,
)

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "samples", "soko_server"]


def sign_in(client: httpx.Client, key: str, next: str = "/") -> httpx.Response:
    """Posts the sign-in form as a browser does: shown first, then sent with its token."""
    form = client.get("/signin")
    assert form.status_code == 200, form.text
    return client.post("/signin", data={"csrf": csrf_of(form.text), "key": key, "next": next})


@contextlib.contextmanager
def signed_in(server: SokoServer, key: str) -> Iterator[httpx.Client]:
    """A client holding a UI session of *key*."""
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        answer = sign_in(client, key)
        assert answer.status_code == 303, answer.text
        yield client


@pytest.fixture(scope="module")
def admin(soko_server: SokoServer) -> Iterator[httpx.Client]:
    with signed_in(soko_server, soko_server.admin_key) as client:
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def test_pages_need_a_session_and_a_bad_key_is_refused(soko_server: SokoServer) -> None:
    with httpx.Client(base_url=soko_server.url, timeout=30.0) as anonymous:
        first = anonymous.get("/p/team/x")
        assert first.status_code == 303
        assert first.headers["location"] == "/signin?next=%2Fp%2Fteam%2Fx"
        refused = sign_in(anonymous, "soko_nope_123")
        assert refused.status_code == 401
        assert "Unknown or revoked API key" in refused.text
        assert "soko_session" not in refused.headers.get("set-cookie", "")
    forged_cookie = {"soko_session": "eyJrIjoiYWJjIn0.forged.sig"}
    with httpx.Client(base_url=soko_server.url, cookies=forged_cookie) as forged:
        assert forged.get("/").status_code == 303
    with httpx.Client(base_url=soko_server.url, timeout=30.0) as anonymous:
        # Never a redirect to another site after signing in.
        outward = sign_in(anonymous, soko_server.admin_key, next="//evil.example/")
        assert outward.status_code == 303 and outward.headers["location"] == "/"


def test_the_session_cookie_is_httponly_strict_and_holds_no_key(
    soko_server: SokoServer,
) -> None:
    with httpx.Client(base_url=soko_server.url, timeout=30.0) as client:
        answer = sign_in(client, soko_server.admin_key)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("soko_session"))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert soko_server.admin_key not in cookie


def test_the_sign_in_form_is_csrf_protected(soko_server: SokoServer) -> None:
    key = soko_server.admin_key
    with httpx.Client(base_url=soko_server.url, timeout=30.0) as client:
        form = client.get("/signin")
        cookie = next(c for c in form.headers.get_list("set-cookie") if "soko_signin=" in c)
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        token = csrf_of(form.text)
        # The same form shown twice (two tabs) keeps its token: both can be sent.
        assert csrf_of(client.get("/signin").text) == token
    # Another site's page posts the form with the attacker's key: no sign-in cookie comes
    # with it (SameSite=Strict), or a forged one; or a browser's own cookie comes with a
    # token of another browser's form.
    attempts = [
        ({}, {"key": key}),
        ({}, {"key": key, "csrf": token}),
        ({"soko_signin": "forged.value.sig"}, {"key": key, "csrf": token}),
        (None, {"key": key, "csrf": token}),
    ]
    for cookies, data in attempts:
        with httpx.Client(base_url=soko_server.url, timeout=30.0, cookies=cookies) as other:
            if cookies is None:
                other.get("/signin")  # a good cookie of its own
            refused = other.post("/signin", data={"next": "/", **data})
            assert refused.status_code == 403, (cookies, data, refused.text)
            assert "out of date or did not come from this server" in refused.text
            assert "soko_session" not in refused.headers.get("set-cookie", "")
            # The page answered is a fresh form, which works.
            again = other.post(
                "/signin", data={"csrf": csrf_of(refused.text), "key": key, "next": "/"}
            )
            assert again.status_code == 303, again.text


def test_a_revoked_key_ends_its_session(soko_server: SokoServer) -> None:
    name = unique_project("gone")
    key = soko_server.new_user(name, {(ENTITY, "*"): "viewer"})
    with signed_in(soko_server, key) as client:
        assert client.get("/").status_code == 200
        with soko_server.client() as api:
            key_id = api.get(f"/users/{name}/keys").json()["keys"][0]["key_id"]
            assert api.delete(f"/keys/{key_id}").status_code in (200, 204)
        assert client.get("/").status_code == 303


def test_from_projects_to_a_file(
    soko_server: SokoServer, admin: httpx.Client, pipeline: Pipeline
) -> None:
    home = admin.get("/")
    assert home.status_code == 200
    project_path = f"/p/{ENTITY}/{pipeline.project}"
    assert f'href="{project_path}"' in home.text
    project = admin.get(project_path)
    assert "raw-data" in project.text and "model" in project.text
    assert "raw-data" in admin.get(project_path, params={"q": "RAW"}).text
    assert "raw-data" not in admin.get(project_path, params={"q": "mod"}).text
    collection = admin.get(f"{project_path}/c/raw-data")
    assert f"/v/{pipeline.dataset_id}" in collection.text
    version = admin.get(f"/v/{pipeline.dataset_id}")
    assert "images/" in version.text and "labels/" in version.text
    assert "s3://soko-ui-test-bucket/extra/big.parquet" in version.text
    folder = admin.get(f"/v/{pipeline.dataset_id}", params={"dir": "images/train"})
    assert "cat.txt" in folder.text
    data = admin.get(f"/v/{pipeline.dataset_id}/file", params={"path": "images/train/cat.txt"})
    assert data.status_code == 200
    assert data.content == pipeline.files["images/train/cat.txt"]
    assert data.headers["content-type"] == "application/octet-stream"
    assert data.headers["content-disposition"].startswith("attachment;")


def test_the_whole_version_as_a_zip(admin: httpx.Client, pipeline: Pipeline) -> None:
    answer = admin.get(f"/v/{pipeline.dataset_id}/zip")
    assert answer.status_code == 200
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert {n: archive.read(n) for n in archive.namelist()} == pipeline.files


def test_hostile_content_is_shown_as_text(admin: httpx.Client, pipeline: Pipeline) -> None:
    page = admin.get(f"/v/{pipeline.dataset_id}")
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text  # description
    assert page.text.count("&lt;img src=x onerror=alert(1)&gt;") >= 3  # + metadata, file
    assert "script-src 'self'" in page.headers["content-security-policy"]
    data = admin.get(f"/v/{pipeline.dataset_id}/file", params={"path": HOSTILE_FILE})
    assert data.content == b"not a script"
    exact = "filename*=UTF-8''" + quote(HOSTILE_FILE, safe="")
    assert data.headers["content-disposition"].endswith(exact)
    assert HOSTILE not in admin.get(f"/p/{ENTITY}/{pipeline.project}").text


@pytest.mark.parametrize(
    "path",
    [
        "/p/team/no-such-project",
        "/p/team/{project}/c/no-such-collection",
        "/p/team/{project}/c/bad%20name%3Cscript%3E",
        "/v/0123456789abcdef",
        "/v/%3Cscript%3E/lineage",
        "/r/no-such-run",
        "/r/no-such-run/lineage",
        "/no/such/page",
    ],
)
def test_unknown_names_get_a_404_page(admin: httpx.Client, pipeline: Pipeline, path: str) -> None:
    answer = admin.get(path.format(project=pipeline.project), headers={"accept": "text/html"})
    assert answer.status_code in (400, 404), answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "<script>" not in answer.text


def test_bad_values_get_a_400_page(admin: httpx.Client, pipeline: Pipeline) -> None:
    for path, params in [
        (f"/v/{pipeline.dataset_id}", {"page": "x"}),
        (f"/v/{pipeline.dataset_id}", {"page": "0"}),
        (f"/v/{pipeline.dataset_id}/lineage", {"hops": "99"}),
        (f"/v/{pipeline.dataset_id}", {"dir": "no/such/folder"}),
        (f"/v/{pipeline.dataset_id}/file", {"path": "missing.txt"}),
    ]:
        answer = admin.get(path, params=params)
        assert answer.status_code in (400, 404), (path, params, answer.text)
        assert answer.headers["content-type"].startswith("text/html")


def test_roles_and_csrf_guard_the_edit(
    soko_server: SokoServer, pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    viewer_key = soko_server.new_user(
        unique_project("viewer"), {(ENTITY, pipeline.project): "viewer"}
    )
    writer_key = soko_server.new_user(
        unique_project("writer"), {(ENTITY, pipeline.project): "writer"}
    )
    outsider_key = soko_server.new_user(unique_project("outsider"))
    edit = f"/v/{pipeline.dataset_id}/edit"
    with signed_in(soko_server, viewer_key) as viewer:
        page = viewer.get(f"/v/{pipeline.dataset_id}")
        assert page.status_code == 200 and 'id="edit-form"' not in page.text
        refused = viewer.post(edit, data={"csrf": csrf_of(page.text), "aliases": "mine"})
        assert refused.status_code == 403
    with signed_in(soko_server, outsider_key) as outsider:
        assert outsider.get(f"/v/{pipeline.dataset_id}").status_code == 404
        assert f"/p/{ENTITY}/{pipeline.project}" not in outsider.get("/").text
    with signed_in(soko_server, writer_key) as writer:
        page = writer.get(f"/v/{pipeline.dataset_id}")
        assert 'id="edit-form"' in page.text
        no_token = writer.post(edit, data={"aliases": "stolen"})
        assert no_token.status_code == 403
        done = writer.post(
            edit, data={"csrf": csrf_of(page.text), "aliases": "golden, best", "tags": "ok"}
        )
        assert done.status_code == 303, done.text
    point_sdk_at(soko_server, writer_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    import soko

    seen = soko.Api().artifact(f"{ENTITY}/{pipeline.project}/raw-data:golden")
    assert seen.id == pipeline.dataset_id
    assert set(seen.aliases) >= {"golden", "best", "latest"}
    assert seen.tags == ["ok"]


def test_the_lineage_graph_collapses_the_sweep(admin: httpx.Client, pipeline: Pipeline) -> None:
    page = admin.get(f"/v/{pipeline.dataset_id}/lineage")
    assert page.status_code == 200
    nodes = re.findall(r'data-node="([^"]+)"', page.text)
    assert f"version:{pipeline.dataset_id}" in nodes
    assert f"run:{pipeline.prep_run}" in nodes
    assert not any(f"run:{r}" in nodes for r in pipeline.train_runs)
    assert f"{SWEEP} runs" in page.text
    assert f"{SWEEP} versions of model" in page.text
    # One more hop reaches the evaluation, which used only the first model.
    wider = admin.get(f"/v/{pipeline.dataset_id}/lineage", params={"hops": 3})
    assert f"run:{pipeline.eval_run}" in re.findall(r'data-node="([^"]+)"', wider.text)
    run_graph = admin.get(f"/r/{pipeline.train_runs[0]}/lineage")
    run_nodes = re.findall(r'data-node="([^"]+)"', run_graph.text)
    assert f"run:{pipeline.train_runs[0]}" in run_nodes
    assert f"version:{pipeline.model_ids[0]}" in run_nodes


def test_the_run_page(admin: httpx.Client, pipeline: Pipeline) -> None:
    page = admin.get(f"/r/{pipeline.train_runs[1]}")
    assert page.status_code == 200
    assert 'id="job-type">train<' in page.text
    assert "&#34;lr&#34;: 0.2" in page.text
    assert "&#34;loss&#34;: 0.5" in page.text
    assert f"/v/{pipeline.dataset_id}" in page.text
    assert f"/v/{pipeline.model_ids[1]}" in page.text


def test_the_api_docs_load_nothing_from_elsewhere(soko_server: SokoServer) -> None:
    with httpx.Client(base_url=soko_server.url, timeout=30.0) as client:
        docs = client.get("/api/v1/docs")
        assert docs.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert sources and all(s.startswith("/") for s in sources), sources
        for source in sources:
            assert client.get(source).status_code == 200, source
        assert client.get("/api/v1/openapi.json").status_code == 200


def test_soko_ui_serves_the_embedded_store_without_sign_in(tmp_path: Path) -> None:
    soko_dir = tmp_path / "soko"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOKO_")}
    env.update(SOKO_DIR=str(soko_dir), SOKO_SILENT="true")
    logger = (
        "import soko\n"
        "with soko.init(project='mine', job_type='prep') as run:\n"
        "    a = soko.Artifact('things', 'dataset', description='local <b>stuff</b>')\n"
        "    with a.new_file('x.txt') as f: f.write('x')\n"
        "    run.log_artifact(a)\n"
    )
    subprocess.run([sys.executable, "-c", logger], env=env, cwd=tmp_path, check=True)
    command = [str(Path(sys.executable).parent / "soko"), "ui", "--port", "0"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found is not None, line + (process.stdout.read() if process.poll() else "")
        url = found.group(0)
        with httpx.Client(base_url=url, timeout=30.0) as client:
            home = _first_answer(client, "/")
            assert home.status_code == 200 and 'href="/p/local/mine"' in home.text
            page = client.get("/p/local/mine/c/things")
            assert page.status_code == 200
            version_id = re.search(r'href="/v/([^"]+)"', page.text)
            assert version_id is not None
            version = client.get(f"/v/{quote(version_id.group(1))}")
            assert "local &lt;b&gt;stuff&lt;/b&gt;" in version.text
            # A page of another site that resolves its name to 127.0.0.1 gets nothing.
            rebound = client.get("/", headers={"host": "evil.example"})
            assert rebound.status_code == 403
            assert 'href="/p/' not in rebound.text
    finally:
        process.terminate()
        process.wait(timeout=15)


def _first_answer(client: httpx.Client, path: str) -> httpx.Response:
    """The first answer of a server that printed its address after binding: it answers
    once uvicorn's loop runs, a moment later; connection errors until then."""
    import time

    deadline = time.monotonic() + 30
    while True:
        try:
            return client.get(path)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_later_pages_link_back(admin: httpx.Client, pipeline: Pipeline) -> None:
    for path in (
        f"/v/{pipeline.dataset_id}",
        f"/p/{ENTITY}/{pipeline.project}",
        f"/p/{ENTITY}/{pipeline.project}/c/model",
        f"/p/{ENTITY}/{pipeline.project}/runs",
    ):
        answer = admin.get(path, params={"page": 2})
        assert answer.status_code == 200, (path, answer.text)
        assert 'rel="prev"' in answer.text and "?page=1" in answer.text
        assert 'rel="next"' not in answer.text
    runs = admin.get(f"/p/{ENTITY}/{pipeline.project}/runs", params={"job_type": "train"})
    assert runs.text.count('href="/r/') == SWEEP


def test_registries_and_automations(
    soko_server: SokoServer, admin: httpx.Client, pipeline: Pipeline
) -> None:
    with soko_server.client() as api:
        linked = api.post(
            f"/versions/{pipeline.model_ids[0]}/links",
            json={"entity": ENTITY, "project": "wandb-registry-model", "registry": "champion"},
        )
        assert linked.status_code == 200, linked.text
        made = api.post(
            f"/projects/{ENTITY}/{pipeline.project}/automations",
            json={"event": "alias_added", "url": "http://127.0.0.1:9/<b>hook</b>"},
        )
        assert made.status_code == 201, made.text
        secret = unique_project("secret")
        restricted = api.post(
            "/registries",
            json={"name": secret, "entity": ENTITY, "visibility": "restricted"},
        )
        assert restricted.status_code in (200, 201), restricted.text
    registries = admin.get("/registries")
    assert f"wandb-registry-{secret}" in registries.text
    assert registries.status_code == 200
    # The registry lives in the organisation of the entity (the default one, local).
    assert 'href="/p/local/wandb-registry-model"' in registries.text
    registry = admin.get("/p/team/wandb-registry-model/c/champion")
    assert registry.status_code == 200 and 'href="/v/' in registry.text
    hooks = admin.get(f"/p/{ENTITY}/{pipeline.project}/automations")
    assert hooks.status_code == 200
    assert "alias_added" in hooks.text and "&lt;b&gt;hook&lt;/b&gt;" in hooks.text
    viewer_key = soko_server.new_user(
        unique_project("auto-viewer"), {(ENTITY, pipeline.project): "viewer"}
    )
    with signed_in(soko_server, viewer_key) as viewer:
        assert viewer.get(f"/p/{ENTITY}/{pipeline.project}/automations").status_code == 403
        # A member of the organisation reads its organisation-wide registries, and a
        # restricted one only with a role on it.
        seen = viewer.get("/registries").text
        assert 'href="/p/local/wandb-registry-model"' in seen
        assert f"wandb-registry-{secret}" not in seen


def test_the_diff_of_two_versions(admin: httpx.Client, pipeline: Pipeline) -> None:
    page = admin.get(f"/v/{pipeline.model_ids[1]}")
    assert f'href="/v/{pipeline.model_ids[1]}/diff?other=v0"' in page.text
    diff = admin.get(f"/v/{pipeline.model_ids[1]}/diff", params={"other": "v0"})
    assert diff.status_code == 200
    assert "0 added, 0 removed, 1 changed" in diff.text
    assert "<code>model.bin</code>" in diff.text
    same = admin.get(f"/v/{pipeline.model_ids[1]}/diff", params={"other": "v1"})
    assert "0 added, 0 removed, 0 changed" in same.text
    missing = admin.get(f"/v/{pipeline.model_ids[1]}/diff", params={"other": "v99"})
    assert missing.status_code == 404


def test_raster_images_are_previewed_and_svg_is_not(
    admin: httpx.Client, pipeline: Pipeline
) -> None:
    folder = admin.get(f"/v/{pipeline.dataset_id}", params={"dir": "images/train"})
    assert 'class="thumb"' in folder.text
    image = admin.get(f"/v/{pipeline.dataset_id}/image", params={"path": "images/train/pixel.png"})
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content == pipeline.files["images/train/pixel.png"]
    assert (
        'class="thumb"' not in admin.get(f"/v/{pipeline.dataset_id}", params={"dir": "images"}).text
    )
    svg = admin.get(f"/v/{pipeline.dataset_id}/image", params={"path": "images/icon.svg"})
    assert svg.status_code == 404
    download = admin.get(f"/v/{pipeline.dataset_id}/file", params={"path": "images/icon.svg"})
    assert download.headers["content-type"] == "application/octet-stream"
    assert download.headers["content-disposition"].startswith("attachment;")


def test_a_version_page_hides_runs_of_projects_the_viewer_may_not_read(
    soko_server: SokoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared, hidden = unique_project("shared"), unique_project("hidden")
    point_sdk_at(soko_server, soko_server.admin_key, tmp_path=tmp_path, monkeypatch=monkeypatch)
    import soko

    data = tmp_path / "data.txt"
    data.write_text("rows")
    with soko.init(entity=ENTITY, project=shared, job_type="prep") as run:
        artifact = soko.Artifact("table", "dataset")
        artifact.add_file(str(data))
        logged = run.log_artifact(artifact)
        logged.wait()
    with soko.init(entity=ENTITY, project=hidden, job_type="secret-job") as run:
        run.use_artifact(f"{ENTITY}/{shared}/table:latest")
        hidden_run = run.id
    viewer_key = soko_server.new_user(unique_project("reader"), {(ENTITY, shared): "viewer"})
    with signed_in(soko_server, soko_server.admin_key) as admin_client:
        assert f"/r/{hidden_run}" in admin_client.get(f"/v/{logged.id}").text
    with signed_in(soko_server, viewer_key) as viewer:
        page = viewer.get(f"/v/{logged.id}")
        assert page.status_code == 200
        assert f"/r/{hidden_run}" not in page.text and "secret-job" not in page.text
        assert "more (see the lineage)" not in page.text


def test_a_table_is_previewed_a_page_at_a_time(admin: httpx.Client, samples: Samples) -> None:
    version = f"/v/{samples.version_id}"
    listing = admin.get(version).text
    assert f'href="{version}/table?path=rows.table.json"' in listing
    first = admin.get(f"{version}/table", params={"path": "rows.table.json"})
    assert first.status_code == 200
    assert "script-src 'self'" in first.headers["content-security-policy"]
    assert f"Rows 1 to 50 of {TABLE_ROWS}" in first.text
    assert first.text.count('<tr><td class="num">') == 50
    # A hostile column name, cell and image caption are text: the name, one cell, and the
    # caption of three images, each shown and as the image's alt.
    assert "<script>alert" not in first.text and "<img src=x" not in first.text
    assert first.text.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 8
    # The images of the table's cells are thumbnails of the version's files.
    cells = re.findall(r'class="thumb"[^>]*src="([^"]+)"', first.text)
    assert len(cells) == 3 and all(c.startswith(f"{version}/thumb?path=media") for c in cells)
    assert admin.get(cells[0].replace("&amp;", "&")).headers["content-type"] == "image/jpeg"
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    last = admin.get(f"{version}/table", params={"path": "rows.table.json", "page": 3})
    assert f"Rows 101 to {TABLE_ROWS} of {TABLE_ROWS}" in last.text
    assert f'<td class="num">{TABLE_ROWS}</td><td>{TABLE_ROWS - 1}</td>' in last.text
    assert 'rel="prev"' in last.text and 'rel="next"' not in last.text
    for params, status in [
        ({"path": "rows.table.json", "page": "4"}, 404),
        ({"path": "rows.table.json", "page": "x"}, 400),
        ({"path": "rows.table.json", "page": "²"}, 400),
        ({"path": "rows.table.json", "page": str(10**30)}, 400),
        ({"path": "photos/photo.jpg"}, 404),
        ({"path": "no-such.table.json"}, 404),
    ]:
        answer = admin.get(f"{version}/table", params=params)
        assert answer.status_code == status, (params, answer.text)
        assert answer.headers["content-type"].startswith("text/html")


def test_thumbnails_are_made_by_the_server(admin: httpx.Client, samples: Samples) -> None:
    from PIL import Image

    version = f"/v/{samples.version_id}"
    folder = admin.get(version, params={"dir": "photos"}).text
    assert f'src="{version}/thumb?path=photos%2Fphoto.jpg"' in folder
    photo = admin.get(f"{version}/thumb", params={"path": "photos/photo.jpg"})
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/jpeg"
    assert len(photo.content) < len(samples.files["photos/photo.jpg"])
    with Image.open(io.BytesIO(photo.content)) as made:
        assert made.size == (256, 128)
    # Kept by the blob's digest: the browser may ask whether it changed.
    etag = photo.headers["etag"]
    again = admin.get(
        f"{version}/thumb", params={"path": "photos/photo.jpg"}, headers={"if-none-match": etag}
    )
    assert again.status_code == 304
    # A W&B Image (its .image-file.json) shows the image it names.
    top = admin.get(version).text
    assert f'src="{version}/thumb?path=sample.image-file.json"' in top
    wandb_image = admin.get(f"{version}/thumb", params={"path": "sample.image-file.json"})
    assert wandb_image.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(wandb_image.content)) as made:
        assert made.size == (64, 48)
    for path, reason in [("photos/bomb.png", "too-large"), ("photos/broken.png", "unreadable")]:
        refused = admin.get(f"{version}/thumb", params={"path": path})
        assert refused.status_code == 200, refused.text
        assert refused.headers["content-type"] == "image/svg+xml"
        assert refused.headers["x-soko-preview"] == reason
        assert refused.headers["content-security-policy"].startswith("default-src 'none'")
    assert admin.get(f"{version}/thumb", params={"path": "rows.table.json"}).status_code == 404
    assert admin.get(f"{version}/thumb", params={"path": "photos/none.png"}).status_code == 404
