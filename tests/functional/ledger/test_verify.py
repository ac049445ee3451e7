"""``verify`` and ``megabox ledger``: broken rows written around the service are found."""

from __future__ import annotations

from datetime import UTC, datetime

from app.extensions import db
from app.ledger import service
from app.ledger.models import CLEARING_PREFIX, LedgerEntry, LedgerTransaction
from app.ledger.money import Money
from app.ledger.verify import verify
from tests.functional.ledger.test_posting import sale

WHEN = datetime(2025, 3, 1, 12, tzinfo=UTC)


def insert_raw_transaction(entries, *, key="raw", reverses_id=None) -> int:
    """Write a transaction with plain INSERTs, as a buggy script would, past every guard."""
    transactions = LedgerTransaction.__table__
    transaction_id = db.session.execute(
        transactions.insert()
        .values(
            idempotency_key=key, kind="journal", description="", reverses_id=reverses_id,
            created_at=WHEN, effective_at=WHEN, metadata={},
        )
        .returning(transactions.c.id)
    ).scalar_one()  # fmt: skip
    rows = [
        {"transaction_id": transaction_id, "account_id": a.id, "amount": amount, "currency": a.currency}
        for a, amount in entries
    ]
    if rows:
        db.session.execute(LedgerEntry.__table__.insert(), rows)
    db.session.commit()
    return transaction_id


def test_a_sound_ledger_has_no_violations(usd):
    original = sale(usd, 700)
    service.reverse(db.session, original, idempotency_key="r", amount=Money(100, "USD"))
    db.session.commit()
    assert verify(db.session) == []


def test_an_unbalanced_transaction_written_with_raw_sql_is_found(usd):
    broken = insert_raw_transaction([(usd.clearing, 700), (usd.payable, -630)])
    violations = verify(db.session)
    assert [(v.check, v.transaction_id) for v in violations] == [("unbalanced", broken)]
    assert "70" in violations[0].message


def test_a_transaction_without_entries_is_found(usd):
    broken = insert_raw_transaction([])
    assert [(v.check, v.transaction_id) for v in verify(db.session)] == [("unbalanced", broken)]


def test_a_reversal_of_more_than_the_original_is_found(usd):
    original = sale(usd, 700)
    db.session.commit()
    insert_raw_transaction(
        [(usd.clearing, -800), (usd.payable, 720), (usd.commission, 80)], reverses_id=original.id
    )
    found = {(v.check, v.transaction_id) for v in verify(db.session)}
    assert found == {("over_reversal", original.id)}


def test_a_reversal_touching_another_account_is_found(usd):
    original = sale(usd, 700)
    db.session.commit()
    insert_raw_transaction([(usd.clearing, -700), (usd.clearing, 0), (usd.payable, 700)], reverses_id=original.id)
    checks = [v.check for v in verify(db.session)]
    assert checks == ["over_reversal"]  # the payable was credited 630 and is now debited 700


def test_clearing_balances_are_reported_only_when_they_must_be_settled(usd):
    sale(usd, 700)
    db.session.commit()
    assert verify(db.session) == []
    violations = verify(db.session, clearing_settled=True)
    assert [v.check for v in violations] == ["clearing"]
    assert usd.clearing.code in violations[0].message
    assert usd.clearing.code.startswith(CLEARING_PREFIX)


def test_cli_verify_says_ok_with_the_counts(usd, runner):
    sale(usd, 700)
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output == "ledger ok: 1 transactions, 3 entries\n"


def test_cli_verify_prints_each_violation_and_exits_1(usd, runner):
    first = insert_raw_transaction([(usd.clearing, 700)], key="one")
    second = insert_raw_transaction([(usd.clearing, 5), (usd.payable, -4)], key="two")
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"unbalanced: transaction {first} sums to 700 in USD minor units",
        f"unbalanced: transaction {second} sums to 1 in USD minor units",
    ]


def test_cli_balance_prints_each_currency(usd, runner):
    sale(usd, 1234 * 10 // 9 + 1, effective_at=WHEN)  # 1372: the artist gets 1234.8 -> 1235
    db.session.commit()
    result = runner.invoke(args=["ledger", "balance", usd.artist_slug])
    assert result.exit_code == 0, result.output
    assert result.output == "USD 12.35\n"


def test_cli_balance_at_a_time(usd, runner):
    sale(usd, 700, effective_at=WHEN)
    db.session.commit()
    before = runner.invoke(args=["ledger", "balance", usd.artist_slug, "--at", "2025-03-01T11:59:59"])
    assert before.output == "no ledger entries\n"
    at = runner.invoke(args=["ledger", "balance", usd.artist_slug, "--at", "2025-03-01T13:00:00+01:00"])
    assert at.output == "USD 6.30\n"


def test_cli_balance_of_an_unknown_artist_is_one_line_and_status_1(app, runner):
    result = runner.invoke(args=["ledger", "balance", "nobody"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["megabox: No artist called 'nobody'."]


def test_cli_balance_refuses_a_time_that_is_not_one(usd, runner):
    result = runner.invoke(args=["ledger", "balance", usd.artist_slug, "--at", "yesterday"])
    assert result.exit_code == 2
    assert "ISO 8601" in result.output
