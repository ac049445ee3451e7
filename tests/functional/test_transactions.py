"""after_commit and on_rollback follow the transaction, and its savepoints."""

from __future__ import annotations

from sqlalchemy import update

from app import transactions
from app.accounts.models import User
from app.extensions import db


def _write() -> None:
    # A write first: on SQLite a savepoint opened before any write would commit on release.
    db.session.execute(update(User).values(display_name=User.display_name))


def test_after_commit_runs_once_on_commit_and_never_on_rollback(app):
    ran: list[str] = []
    _write()
    transactions.after_commit(db.session, lambda: ran.append("committed"))
    transactions.on_rollback(db.session, lambda: ran.append("undone"))
    db.session.commit()
    db.session.commit()
    assert ran == ["committed"]

    _write()
    transactions.after_commit(db.session, lambda: ran.append("committed again"))
    transactions.on_rollback(db.session, lambda: ran.append("undone"))
    db.session.rollback()
    assert ran == ["committed", "undone"]


def test_a_rolled_back_savepoint_settles_only_its_own_callbacks(app):
    ran: list[str] = []
    _write()
    transactions.after_commit(db.session, lambda: ran.append("outer"))
    savepoint = db.session.begin_nested()
    transactions.after_commit(db.session, lambda: ran.append("inner"))
    transactions.on_rollback(db.session, lambda: ran.append("inner undone"))
    savepoint.rollback()
    assert ran == ["inner undone"]
    db.session.commit()
    assert ran == ["inner undone", "outer"]


def test_a_released_savepoint_waits_for_the_outer_transaction(app):
    ran: list[str] = []
    _write()
    with db.session.begin_nested():
        transactions.after_commit(db.session, lambda: ran.append("inner committed"))
        transactions.on_rollback(db.session, lambda: ran.append("inner undone"))
    assert ran == []
    db.session.rollback()
    assert ran == ["inner undone"]


def test_a_failing_callback_does_not_stop_the_others_or_the_commit(app, caplog):
    ran: list[str] = []

    def fail() -> None:
        raise OSError("disk gone")

    _write()
    transactions.after_commit(db.session, fail)
    transactions.after_commit(db.session, lambda: ran.append("second"))
    db.session.commit()
    assert ran == ["second"]
    assert "disk gone" in caplog.text


def test_a_session_closed_without_commit_runs_the_rollback_callbacks(app):
    ran: list[str] = []
    _write()
    transactions.on_rollback(db.session, lambda: ran.append("undone"))
    db.session.close()
    assert ran == ["undone"]
