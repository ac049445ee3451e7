"""Posting: balanced or refused, once per idempotency key, and never changed afterwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.ledger import service
from app.ledger.allocation import split_bps
from app.ledger.errors import (
    AccountMismatch,
    AppendOnlyViolation,
    CurrencyMismatch,
    IdempotencyConflict,
    UnbalancedTransaction,
)
from app.ledger.models import AccountKind, LedgerEntry, LedgerTransaction
from app.ledger.money import Money


def sale(usd, price: int, key: str = "checkout-1", **kwargs):
    artist, platform = split_bps(price, 9000)
    return service.post(
        db.session,
        idempotency_key=key,
        kind="journal",
        entries=[
            (usd.clearing, Money(price, "USD")),
            (usd.payable, Money(-artist, "USD")),
            (usd.commission, Money(-platform, "USD")),
        ],
        **kwargs,
    )


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_sale_credits_the_artist_their_share(usd):
    posted = sale(usd, 700, description="Release 1")
    db.session.commit()

    assert sorted(e.amount for e in posted.entries) == [-630, -70, 700]
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 630}
    assert service.balance(db.session, usd.clearing) == {"USD": 700}
    assert service.balance(db.session, usd.commission, currency="USD") == {"USD": -70}


def test_an_unbalanced_transaction_is_refused_and_writes_nothing(usd):
    with pytest.raises(UnbalancedTransaction):
        service.post(
            db.session,
            idempotency_key="bad",
            kind="journal",
            entries=[(usd.clearing, Money(700, "USD")), (usd.payable, Money(-600, "USD"))],
        )
    db.session.commit()
    assert count(LedgerTransaction) == 0 and count(LedgerEntry) == 0


def test_a_transaction_without_entries_is_refused(usd):
    with pytest.raises(UnbalancedTransaction):
        service.post(db.session, idempotency_key="empty", kind="journal", entries=[])


def test_an_entry_in_another_currency_than_its_account_is_refused(usd):
    with pytest.raises(CurrencyMismatch):
        service.post(
            db.session,
            idempotency_key="eur",
            kind="journal",
            entries=[(usd.clearing, Money(5, "EUR")), (usd.payable, Money(-5, "EUR"))],
        )


def test_a_redelivered_event_posts_once(usd):
    posted = [sale(usd, 700, key="evt_1") for _ in range(5)]
    db.session.commit()

    assert {p.id for p in posted} == {posted[0].id}
    assert count(LedgerTransaction) == 1 and count(LedgerEntry) == 3
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 630}


def test_a_redelivery_after_commit_returns_the_first_transaction(usd):
    first = sale(usd, 700, key="evt_1")
    db.session.commit()
    db.session.expire_all()
    again = sale(usd, 700, key="evt_1", description="redelivered")
    assert again.id == first.id and again.description == ""


def test_one_key_for_other_entries_is_a_conflict(usd):
    sale(usd, 700, key="evt_1")
    db.session.commit()
    with pytest.raises(IdempotencyConflict):
        sale(usd, 800, key="evt_1")


def test_balances_at_a_time_count_what_was_effective_then(usd):
    day = datetime(2025, 3, 1, tzinfo=UTC)
    sale(usd, 700, key="a", effective_at=day)
    sale(usd, 1000, key="b", effective_at=day + timedelta(days=2))
    db.session.commit()

    assert service.artist_balances(db.session, usd.artist_id, at=day - timedelta(seconds=1)) == {}
    assert service.artist_balances(db.session, usd.artist_id, at=day) == {"USD": 630}
    assert service.artist_balances(db.session, usd.artist_id, at=day + timedelta(days=1)) == {
        "USD": 630
    }
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 1530}
    assert service.balance(db.session, usd.clearing, at=day + timedelta(days=2)) == {"USD": 1700}


def test_a_naive_time_is_refused(usd):
    with pytest.raises(ValueError):
        service.artist_balances(db.session, usd.artist_id, at=datetime(2025, 1, 1))


def test_accounts_are_created_once_and_keep_their_kind(usd):
    again = service.account(db.session, usd.clearing.code, AccountKind.ASSET, "USD")
    assert again.id == usd.clearing.id
    with pytest.raises(AccountMismatch):
        service.account(db.session, usd.clearing.code, AccountKind.EXPENSE, "USD")


def test_an_unbalanced_transaction_cannot_be_flushed_around_the_service(usd):
    db.session.add(
        LedgerTransaction(
            idempotency_key="sneaky",
            kind="journal",
            entries=[LedgerEntry(account=usd.clearing, amount=700, currency="USD")],
        )
    )
    with pytest.raises(UnbalancedTransaction):
        db.session.flush()


def test_posted_entries_cannot_be_changed_deleted_or_added_to(usd):
    posted = sale(usd, 700)
    db.session.commit()

    posted.entries[0].amount = 1
    with pytest.raises(AppendOnlyViolation):
        db.session.flush()
    db.session.rollback()

    db.session.delete(posted.entries[0])
    with pytest.raises(AppendOnlyViolation):
        db.session.flush()
    db.session.rollback()

    db.session.add(LedgerEntry(transaction=posted, account=usd.clearing, amount=0, currency="USD"))
    with pytest.raises(AppendOnlyViolation):
        db.session.flush()
