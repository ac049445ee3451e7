"""Alembic migrations build exactly the models' schema, and go down to base and up again.

Each test gets a database of its own (SQLite always; PostgreSQL too when
``MEGABOX_TEST_DATABASE_URL`` names one), so the shared test schema is untouched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import Table, create_engine, inspect, text
from sqlalchemy.engine import Inspector, make_url

from app import create_app
from app.extensions import db
from config import ENV_PREFIX
from tests.conftest import TEST_DATABASE_URL, base_config

MEGABOX = Path(sys.executable).with_name("megabox")

DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    server = make_url(TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    # Named after the suite's database, so suites run by different people do not collide.
    name = f"{server.database}_migrations"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def migrated_app(empty_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app whose database was built by ``upgrade head``, with its app context pushed."""
    app = create_app(base_config(empty_database_url, tmp_path / "instance"))
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_upgrade_builds_exactly_the_models_schema(migrated_app):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []


def test_upgrade_builds_the_models_keys_and_nullability(migrated_app):
    # Alembic's comparison leaves out primary keys; check them, and the rest, column by column.
    inspector = inspect(db.engine)
    model_tables = {t.name for t in db.metadata.sorted_tables}
    assert set(inspector.get_table_names()) == model_tables | {"alembic_version"}
    for table in db.metadata.sorted_tables:
        assert _reflected_shape(inspector, table.name) == _model_shape(table), table.name


def _model_shape(table: Table) -> dict[str, object]:
    return {
        "columns": {c.name: c.nullable for c in table.columns},
        "primary_key": [c.name for c in table.primary_key.columns],
        "foreign_keys": sorted(
            (tuple(fk.column_keys), fk.referred_table.name, tuple(e.column.name for e in fk.elements))
            for fk in table.foreign_key_constraints
        ),
    }


def _reflected_shape(inspector: Inspector, name: str) -> dict[str, object]:
    return {
        "columns": {c["name"]: c["nullable"] for c in inspector.get_columns(name)},
        "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
        "foreign_keys": sorted(
            (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
            for fk in inspector.get_foreign_keys(name)
        ),
    }


def test_db_check_finds_nothing_to_migrate(migrated_app, tmp_path):
    env = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    env[ENV_PREFIX + "INSTANCE_PATH"] = str(tmp_path / "cli-instance")
    env[ENV_PREFIX + "DATABASE_URL"] = migrated_app.config["DATABASE_URL"]
    db.engine.dispose()  # PostgreSQL: no idle connection of ours while the command runs
    result = subprocess.run(
        [str(MEGABOX), "db", "check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout


def test_downgrade_to_base_drops_everything_and_upgrade_rebuilds_it(migrated_app):
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
    upgrade()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
