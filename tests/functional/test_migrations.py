"""Alembic migrations go all the way up and all the way down, on each database."""

from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from app import create_app
from app.extensions import db
from tests.conftest import TEST_DATABASE_URL, base_config


def test_migrations_upgrade_an_empty_database_to_head_and_back_to_base(tmp_path):
    if TEST_DATABASE_URL.startswith("postgres"):
        # A database of its own, so the shared test schema is untouched.
        admin = create_engine(TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                              isolation_level="AUTOCOMMIT")  # fmt: skip
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS megabox_migrations_test"))
            conn.execute(text("CREATE DATABASE megabox_migrations_test"))
        url = admin.url.set(database="megabox_migrations_test").render_as_string(hide_password=False)
    else:
        admin = None
        url = f"sqlite:///{tmp_path / 'migrations.db'}"

    app = create_app(base_config(url, tmp_path / "instance"))
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "api_tokens", "artists", "releases", "tracks", "alembic_version"} <= tables
        assert tables - {"alembic_version"} == {t.name for t in db.metadata.sorted_tables}
        downgrade(revision="base")
        assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}
        upgrade()
        db.engine.dispose()

    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE megabox_migrations_test"))
        admin.dispose()
