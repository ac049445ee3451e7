"""Files in the instance folder that hold secrets are readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import text

from app import create_app
from app.extensions import db
from tests.conftest import base_config


def test_the_sqlite_database_and_its_wal_are_mode_0600(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    app = create_app(base_config(f"sqlite:///{database}", tmp_path / "instance"))
    with app.app_context():
        upgrade()
        with db.engine.begin() as connection:
            connection.execute(text("UPDATE users SET id = id"))
        db.engine.dispose()
        with db.engine.connect() as connection:  # a new connection settles what the last made
            connection.execute(text("SELECT 1"))
        modes = {
            path.name: stat.S_IMODE(path.stat().st_mode)
            for path in tmp_path.iterdir()
            if path.name.startswith("fresh.db")
        }
        db.engine.dispose()
    assert "fresh.db" in modes
    assert set(modes.values()) == {0o600}, modes
