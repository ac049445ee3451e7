"""No ``megabox`` command shows a traceback: each failure is one line on stderr and status 1."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.cli import CLI_LOG_NAME
from tests.conftest import TEST_DATABASE_URL
from tests.functional.commands.conftest import MEGABOX, Megabox

UPGRADE_FIRST = 'run "megabox db upgrade" first'
SERVE_START_SECONDS = 60


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's one line, after checking it is all the command printed."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("megabox: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ["vault", "verify", "--all"],
        ["artists", "create", "x", "--name", "X"],
        ["users", "token", "a@b.c"],
    ],
)
def test_commands_on_a_database_never_upgraded_ask_for_the_upgrade(megabox: Megabox, args: list[str]):
    line = assert_one_line_error(megabox(*args))
    assert line.endswith(UPGRADE_FIRST)


def test_commands_on_a_database_behind_the_migrations_ask_for_the_upgrade(megabox: Megabox):
    assert megabox("db", "upgrade").returncode == 0
    assert megabox("db", "downgrade").returncode == 0
    line = assert_one_line_error(megabox("users", "token", "a@b.c"))
    assert "not at the latest revision" in line and line.endswith(UPGRADE_FIRST)
    assert megabox("db", "upgrade").returncode == 0
    upgraded = megabox("users", "token", "a@b.c")
    assert assert_one_line_error(upgraded) == "megabox: no user has the e-mail address a@b.c"


def test_help_needs_no_upgraded_database(megabox: Megabox):
    top = megabox("--help")
    assert top.returncode == 0 and "users" in top.stdout and top.stderr == ""
    group = megabox("users")
    assert "token" in group.stdout + group.stderr and "Traceback" not in group.stderr
    leaf = megabox("users", "token", "--help")
    assert leaf.returncode == 0 and "EMAIL" in leaf.stdout


def test_a_database_path_that_is_a_folder_is_one_line_and_logged(
    megabox: Megabox, tmp_path: Path, instance: Path
):
    folder = tmp_path / "not-a-database"
    folder.mkdir()
    result = megabox("users", "token", "a@b.c", MEGABOX_DATABASE_URL=f"sqlite:///{folder}")
    line = assert_one_line_error(result)
    assert line.startswith("megabox: database error: unable to open database file")
    assert "Traceback" in (instance / CLI_LOG_NAME).read_text()


@pytest.mark.parametrize("args", [["users", "token", "a@b.c"], ["serve"]])
def test_a_corrupt_database_file_is_one_line_and_logged(megabox: Megabox, instance: Path, args: list[str]):
    instance.mkdir()
    (instance / "megabox.db").write_bytes(b"this is not a SQLite database, only some text" * 100)
    line = assert_one_line_error(megabox(*args))
    assert line.startswith("megabox: database error: file is not a database")
    assert "Traceback" in (instance / CLI_LOG_NAME).read_text()


def test_a_bad_setting_is_one_line_even_for_help(megabox: Megabox):
    expected = "megabox: MEGABOX_ARTIST_SHARE_BPS: use 0 to 10000 (basis points)"
    command = megabox("users", "token", "a@b.c", MEGABOX_ARTIST_SHARE_BPS="12000")
    assert assert_one_line_error(command) == expected
    help_page = megabox("--help", MEGABOX_ARTIST_SHARE_BPS="12000")
    assert help_page.returncode == 0 and help_page.stderr.splitlines() == [expected]
    assert "Usage: megabox" in help_page.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_ok(url: str, server: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + SERVE_START_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {SERVE_START_SECONDS} s")


def test_serve_upgrades_an_embedded_database_first(megabox: Megabox, command_env: dict[str, str]):
    port = _free_port()
    server = subprocess.Popen(
        [str(MEGABOX), "serve", "--port", str(port)],
        env=command_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert _wait_for_ok(f"http://127.0.0.1:{port}/", server) == 200
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "Traceback" not in stderr
    after = megabox("users", "token", "a@b.c")
    assert assert_one_line_error(after) == "megabox: no user has the e-mail address a@b.c"


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database named after the suite's, dropped afterwards."""
    server = make_url(TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{server.database}_cli_empty"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_serve_leaves_a_postgresql_database_to_the_operator(megabox: Megabox, empty_postgres_url: str):
    result = megabox("serve", "--port", str(_free_port()), MEGABOX_DATABASE_URL=empty_postgres_url)
    assert assert_one_line_error(result).endswith(UPGRADE_FIRST)
