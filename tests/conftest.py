"""Shared fixtures: an app per test on one schema built by Alembic, a client, factories.

The schema is built once per run with ``upgrade head`` (SQLite by default, or the PostgreSQL
database named by ``MEGABOX_TEST_DATABASE_URL``, which the suite owns and wipes). Each test
gets its own app and instance folder, and every table is emptied after it, so tests are
isolated even when the code under test commits or runs work on other threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import text
from werkzeug.routing.rules import Rule

from app import create_app
from app.extensions import db

TEST_DATABASE_URL = os.environ.get("MEGABOX_TEST_DATABASE_URL", "")
TEST_REDIS_URL = os.environ.get("MEGABOX_TEST_REDIS_URL", "")
TEST_PASSWORD = "correct-horse-battery"
CHROMIUM = os.environ.get("MEGABOX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


# The suite builds an app for every test, some two thousand. Werkzeug compiles each URL
# rule's two builders (Python source, then ``compile``) as the rule is added: 0.2 of the 0.25 s
# an app took to build. Here each builder is compiled the first time it builds a URL instead;
# what it compiles, and so every URL, is the same.
_compile_builder = Rule._compile_builder


def _builder_compiled_on_first_use(rule: Rule, append_unknown: bool = True) -> Any:
    compiled: Any = None

    def build(bound: Rule, *args: Any, **kwargs: Any) -> Any:
        nonlocal compiled
        if compiled is None:
            compiled = _compile_builder(bound, append_unknown)
        return compiled(bound, *args, **kwargs)

    return build


Rule._compile_builder = _builder_compiled_on_first_use  # type: ignore[method-assign]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "postgres" in item.keywords and not TEST_DATABASE_URL.startswith("postgres"):
            item.add_marker(pytest.mark.skip(reason="needs MEGABOX_TEST_DATABASE_URL (PostgreSQL)"))
        if "redis" in item.keywords and not TEST_REDIS_URL:
            item.add_marker(pytest.mark.skip(reason="needs MEGABOX_TEST_REDIS_URL"))


def base_config(database_url: str, instance: Path, **overrides: Any) -> dict[str, Any]:
    config = {
        "ENV": "testing",
        "TESTING": True,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": "test-secret-key",
        "REDIS_URL": "",
        "STORAGE_URL": "",
        "WTF_CSRF_ENABLED": False,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Build the schema once with Alembic ``upgrade head`` and return its URL."""
    instance = tmp_path_factory.mktemp("schema-instance")
    url = TEST_DATABASE_URL or f"sqlite:///{tmp_path_factory.mktemp('db') / 'megabox.db'}"
    schema_app = create_app(base_config(url, instance))
    with schema_app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        upgrade()
        db.engine.dispose()
    return url


def _forget_cached_user() -> None:
    g.pop("_login_user", None)


def _empty_tables() -> None:
    """Every table emptied and every sequence back at 1.

    On PostgreSQL a TRUNCATE of all the tables took about 0.2 s a test (a new file for each
    table and index), a third of the suite's time there; deleting the few rows a test leaves
    takes milliseconds. The deletes run with triggers off (``session_replication_role``, a
    superuser's setting, as the test database's owner has), which also lets them remove the
    ledger's append-only rows and ignore the order of foreign keys. Without that right, the
    tables are truncated.
    """
    db.session.remove()
    tables = [t for t in db.metadata.sorted_tables]
    with db.engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            for table in reversed(tables):
                conn.execute(table.delete())
        elif conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar():
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in tables:
                conn.execute(table.delete())
            conn.execute(text(
                "SELECT setval(c.oid, 1, false) FROM pg_class AS c "
                "WHERE c.relkind = 'S' AND c.relnamespace = current_schema()::regnamespace"
            ))  # fmt: skip
        else:
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def make_app(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """Build apps on the shared test database; their tables are emptied afterwards."""
    made: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        instance = tmp_path / f"instance{len(made)}"
        built = create_app(base_config(database_url, instance, **overrides))
        # Tests keep one app context pushed, which requests then share; drop the signed-in
        # user Flask-Login caches on ``g`` so each request loads it afresh, as in production.
        built.before_request(_forget_cached_user)
        made.append(built)
        return built

    yield factory
    for built in made:
        queue = built.extensions.get("jobs")
        if queue is not None:  # no job thread may write while the tables are emptied
            queue.shutdown()
        with built.app_context():
            _empty_tables()
            db.engine.dispose()


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app()
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Any:
    """The database session the app uses in this test."""
    return db.session


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, email: str, password: str = TEST_PASSWORD) -> Any:
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self) -> Any:
        return self._client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the run: Playwright's sync API allows one instance at a time."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()
