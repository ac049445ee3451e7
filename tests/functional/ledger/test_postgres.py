"""PostgreSQL: the append-only trigger, and races decided by the database."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.extensions import db
from app.ledger import service
from app.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from app.ledger.money import Money
from tests.functional.ledger.test_posting import sale

pytestmark = pytest.mark.postgres

THREADS = 6
ACCOUNTS = ("clearing", "payable", "commission")


def run_together(app: Flask, work: Callable[[], Any]) -> list[Any]:
    """Run ``work`` on THREADS threads at once, each in its own app context and session."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = []

    def one() -> None:
        with app.app_context():
            barrier.wait()
            try:
                results.append(work())
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported to the test as a result
                db.session.rollback()
                results.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount = amount + 1",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transactions SET description = 'edited'",
        "DELETE FROM ledger_transactions",
    ],
)
def test_posted_rows_cannot_be_updated_or_deleted(usd, statement):
    sale(usd, 700)
    db.session.commit()
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text(statement))
    db.session.rollback()
    assert db.session.scalar(select(func.sum(LedgerEntry.amount)).where(LedgerEntry.amount > 0)) == 700


def test_accounts_cannot_be_deleted(usd):
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("DELETE FROM ledger_accounts"))


def test_concurrent_posts_with_one_key_make_one_transaction(app, usd):
    ids = {name: getattr(usd, name).id for name in ACCOUNTS}

    def post_the_sale() -> int:
        # Each thread loads the accounts with its own session.
        mine = {name: db.session.get_one(LedgerAccount, id_) for name, id_ in ids.items()}
        return sale(dataclasses.replace(usd, **mine), 700, key="evt_race").id

    results = run_together(app, post_the_sale)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len(set(results)) == 1
    assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 630}


def test_concurrent_account_creation_makes_one_account(app):
    results = run_together(
        app, lambda: service.account(db.session, "contributions:EUR", AccountKind.REVENUE, "EUR").id
    )
    assert len(set(results)) == 1
    assert db.session.scalar(select(func.count()).select_from(LedgerAccount)) == 1


def test_concurrent_partial_refunds_never_exceed_the_sale(app, usd):
    original_id = sale(usd, 700).id
    db.session.commit()
    counter = iter(range(THREADS))

    def refund() -> int:
        original = db.session.get_one(LedgerTransaction, original_id)
        key = f"refund-{next(counter)}"
        return service.reverse(db.session, original, idempotency_key=key, amount=Money(300, "USD")).id

    results = run_together(app, refund)
    refunded = [r for r in results if isinstance(r, int)]
    assert len(refunded) == 2  # 300 + 300 of 700; every later one is an over-reversal
    assert service.balance(db.session, usd.clearing) == {"USD": 100}
