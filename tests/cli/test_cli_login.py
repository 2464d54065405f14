"""``soko login``, ``logout`` and ``whoami``, and the config file they use, run as the real
executable against a live soko server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import RunSoko, assert_user_error
from server_fixtures import SokoServer, free_port, unique_project

import soko
from soko import settings as settings_module


def _config(soko_env) -> Path:
    return Path(soko_env.config) / "config.json"


def test_login_without_a_server_is_the_embedded_store(soko_cli: RunSoko, soko_env):
    result = soko_cli("login")
    assert result.returncode == 0, result.stderr
    assert f"embedded store at {soko_env.store}" in result.stdout
    assert not _config(soko_env).exists()

    # A key with nothing to check it against is refused, not stored.
    assert_user_error(soko_cli("login", "some-key"), 2, "--host")
    assert_user_error(soko_cli("login", "k", "--host", "ftp://x"), 2, "'ftp://x'")
    assert not _config(soko_env).exists()
    assert not soko_env.store.exists()


def test_login_to_an_unreachable_host_fails_and_stores_nothing(soko_cli: RunSoko, soko_env):
    for host in (f"http://127.0.0.1:{free_port()}", "http://127.0.0.1:0"):
        result = soko_cli("login", "soko_abc_def", "--host", host)
        assert_user_error(result, 1, "Cannot reach a soko server at", host)
    assert not _config(soko_env).exists()
    assert not (soko_env.store / "config.json").exists()


def test_login_with_a_bad_key_fails_and_stores_nothing(
    soko_cli: RunSoko, soko_env, soko_server: SokoServer
):
    result = soko_cli("login", "soko_0000_not-a-key", "--host", soko_server.url)
    assert_user_error(result, 5, f"The server at {soko_server.url} refused the API key")
    assert not _config(soko_env).exists()

    # Something that answers HTTP but is not a soko server's API.
    result = soko_cli("login", "soko_0000_not-a-key", "--host", soko_server.url + "/elsewhere")
    assert_user_error(result, 1, "did not answer as a soko server")
    assert not _config(soko_env).exists()


def test_login_whoami_logout_round_trip(soko_cli: RunSoko, soko_env, soko_server: SokoServer):
    project = unique_project("login")
    key = soko_server.new_user(f"alice-{project}", {("local", project): "writer"})
    result = soko_cli("login", key, "--host", soko_server.url + "/")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"Logged in to {soko_server.url} as alice-{project}; stored in {_config(soko_env)}."
    )
    # In the user's config folder, owner-only; nothing inside the store.
    stored = json.loads(_config(soko_env).read_text())
    assert stored == {"base_url": soko_server.url, "api_key": key}
    assert _config(soko_env).stat().st_mode & 0o077 == 0
    assert not (soko_env.store / "config.json").exists()

    whoami = soko_cli("whoami")
    assert whoami.returncode == 0, whoami.stderr
    lines = whoami.stdout.splitlines()
    assert f"Server:  {soko_server.url} (from {_config(soko_env)})" in lines
    assert f"User:    alice-{project}" in lines
    assert f"Roles:   local/{project} writer" in lines
    assert "Entity:  local" in lines

    status = soko_cli("status", "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["backend"] == "server"
    assert data["user"] == f"alice-{project}"
    assert data["admin"] is False
    assert data["roles"] == [{"entity": "local", "project": project, "role": "writer"}]

    # The commands that follow use the server: a log lands there, as alice.
    tree = soko_env.workdir / "data"
    tree.mkdir()
    (tree / "a.txt").write_text("hello")
    put = soko_cli("artifact", "put", str(tree), "--name", f"{project}/ds", "--type", "d")
    assert put.returncode == 0, put.stderr
    with soko_server.client() as admin:
        found = admin.get(f"/projects/local/{project}/collections/ds/versions")
        assert found.status_code == 200, found.text
        assert [v["version_index"] for v in found.json()["versions"]] == [0]

    again = soko_cli("login")
    assert again.returncode == 0, again.stderr
    assert f"as alice-{project} (--relogin" in again.stdout
    checked = json.loads(soko_cli("login", "--json").stdout)
    assert checked == {
        "backend": "server",
        "url": soko_server.url,
        "user": f"alice-{project}",
        "admin": False,
        "config_file": str(_config(soko_env)),
        "stored": False,
    }

    out = soko_cli("logout")
    assert out.returncode == 0, out.stderr
    assert f"removed the server and key from {_config(soko_env)}" in out.stdout
    assert f"embedded store at {soko_env.store}" in out.stderr
    assert not _config(soko_env).exists()
    assert json.loads(soko_cli("whoami", "--json").stdout)["backend"] == "embedded"

    nothing = soko_cli("logout")
    assert nothing.returncode == 0
    assert nothing.stdout.startswith("Not logged in")
    assert json.loads(soko_cli("logout", "--json").stdout) == {
        "removed_from": [],
        "backend": "embedded",
        "store": str(soko_env.store),
    }


def test_relogin_needs_a_key_and_a_revoked_key_is_caught(
    soko_cli: RunSoko, soko_env, soko_server: SokoServer
):
    project = unique_project("relogin")
    key = soko_server.new_user(f"bob-{project}")
    assert soko_cli("login", key, "--host", soko_server.url).returncode == 0
    # Not on a terminal: no prompt, a one-line error.
    assert_user_error(soko_cli("login", "--relogin"), 2, "No API key given")

    with soko_server.client() as admin:
        keys = admin.get(f"/users/bob-{project}/keys").json()["keys"]
        for entry in keys:
            assert admin.delete(f"/keys/{entry['key_id']}").status_code == 204
    assert_user_error(soko_cli("whoami"), 5, "refused the API key")
    assert_user_error(soko_cli("login"), 5, "refused the API key")


def test_whoami_on_the_embedded_store_creates_nothing(soko_cli: RunSoko, soko_env):
    result = soko_cli("whoami")
    assert result.returncode == 0, result.stderr
    assert f"Store:   embedded store at {soko_env.store} (no store there yet)" in result.stdout
    assert "User:    none needed" in result.stdout
    data = json.loads(soko_cli("whoami", "--json").stdout)
    assert data["backend"] == "embedded"
    assert data["store"] == str(soko_env.store)
    assert data["store_exists"] is False
    assert data["user"] is None
    assert not soko_env.store.exists()


def test_a_server_without_a_key_says_how_to_log_in(soko_cli: RunSoko, soko_env):
    result = soko_cli("whoami", env={"SOKO_BASE_URL": "http://127.0.0.1:9"})
    assert_user_error(result, 5, "No API key for the server at http://127.0.0.1:9", "soko login")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "is not valid JSON"),
        ('["a list"]', "must hold a JSON object"),
        ('{"base_url": 8080}', "gives 'base_url' a int"),
        (b"\xff\xfe\x00garbage", "Cannot read the config file"),
    ],
)
def test_a_malformed_config_file_is_an_error_naming_it(
    soko_cli: RunSoko, soko_env, content: str | bytes, fragment: str
):
    path = _config(soko_env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for command in (("artifact", "ls", "proj"), ("whoami",), ("login",)):
        assert_user_error(soko_cli(*command), 2, str(path), fragment)
    with pytest.raises(soko.errors.ValidationError, match="config file"):
        settings_module.load()


def test_the_old_config_file_in_soko_dir_is_still_read(
    soko_cli: RunSoko, soko_env, soko_server: SokoServer
):
    key = soko_server.new_user(f"carol-{unique_project('old')}")
    soko_env.store.mkdir()
    old = soko_env.store / "config.json"
    old.write_text(json.dumps({"base_url": soko_server.url, "api_key": key}))
    data = json.loads(soko_cli("whoami", "--json").stdout)
    assert data["backend"] == "server"
    assert data["user"].startswith("carol-")
    assert data["config_file"] == str(old)

    # The new file, once written, is the one read; logout clears both.
    _config(soko_env).parent.mkdir(parents=True, exist_ok=True)
    _config(soko_env).write_text("{}")
    assert json.loads(soko_cli("whoami", "--json").stdout)["backend"] == "embedded"
    _config(soko_env).unlink()
    out = soko_cli("logout")
    assert out.returncode == 0, out.stderr
    assert not old.exists()
    assert json.loads(soko_cli("whoami", "--json").stdout)["backend"] == "embedded"


def test_environment_variables_win_and_login_says_so(
    soko_cli: RunSoko, soko_env, soko_server: SokoServer
):
    key = soko_server.new_user(f"dave-{unique_project('env')}")
    result = soko_cli(
        "login", key, "--host", soko_server.url, env={"SOKO_API_KEY": "soko_other_key"}
    )
    assert result.returncode == 0, result.stderr
    assert "SOKO_API_KEY is set and wins over the stored key" in result.stderr


def test_sdk_login_writes_the_user_config_file(soko_env):
    assert soko.login(key="k-123", host="https://soko.example/")
    path = _config(soko_env)
    assert json.loads(path.read_text()) == {"base_url": "https://soko.example", "api_key": "k-123"}
    assert path.stat().st_mode & 0o777 == 0o600
    config = settings_module.load()
    assert (config.base_url, config.api_key) == ("https://soko.example", "k-123")
    assert not (soko_env.store / "config.json").exists()
