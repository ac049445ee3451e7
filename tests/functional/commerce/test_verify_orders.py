"""``megabox ledger verify`` checks orders against their sales: every paid order has its sale
transaction, and every sale transaction has its paid order, for the same amount."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func, select, update

from app.catalog.models import PricingMode
from app.commerce import posting, service
from app.commerce.models import Order, OrderStatus
from app.ledger import service as ledger
from app.ledger.models import LedgerEntry, LedgerTransaction, PLATFORM_COMMISSION
from app.ledger.money import Money
from app.timestamps import utcnow

Line = service.CartLine


def place(session: Any, app: Flask, buyer: Any, *lines: Line) -> Order:
    made = service.create_order(session, buyer, list(lines), gateway="sandbox", config=app.config)
    session.commit()
    return made


def mark_paid_behind_the_service(session: Any, order: Order) -> None:
    """What a buggy script or a hand-edit would do: the status changes, the ledger does not."""
    session.execute(update(Order).where(Order.id == order.id).values(status=OrderStatus.PAID))
    session.commit()
    session.refresh(order)


def post_sale(session: Any, key: str, total: int, artist_id: int) -> LedgerTransaction:
    """A balanced sale transaction posted straight to the journal, with no order behind it."""
    split = posting.split_item(total, 9000)
    entries = [
        (posting.clearing_account(session, "sandbox", "USD"), Money(total, "USD")),
        (ledger.artist_payable(session, artist_id, "USD"), Money(-split.artist, "USD")),
        (
            posting.platform_account(session, PLATFORM_COMMISSION, "USD"),
            Money(-split.platform, "USD"),
        ),
    ]
    posted = ledger.post(session, idempotency_key=key, kind=posting.SALE, entries=entries)
    session.commit()
    return posted


def test_verify_passes_on_a_ledger_of_paid_refunded_disputed_and_free_orders(
    app: Flask, session: Any, runner: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=1000)
    other = make_release(price=500, minimum=300, mode=PricingMode.NAME_YOUR_PRICE)
    free = make_release(price=0, mode=PricingMode.FREE)
    paid = place(session, app, buyer, Line(release.id), Line(other.id, amount_minor=777))
    pay(session, paid, fee=52)
    refunded = place(session, app, buyer, Line(release.id))
    pay(session, refunded, fee=59)
    service.record_refund(session, refunded, refunded_total_minor=333, at=utcnow())
    disputed = place(session, app, buyer, Line(other.id))
    pay(session, disputed, fee=45)
    service.record_dispute(session, disputed, dispute_id="dp_1", fee_minor=1500, at=utcnow())
    won = place(session, app, buyer, Line(release.id, release.tracks[0].id))
    pay(session, won)
    service.record_dispute_closed(
        session, won, dispute_id="dp_2", won=True, fee_minor=1500, at=utcnow()
    )
    place(session, app, buyer, Line(free.id))
    place(session, app, buyer, Line(release.id))  # still pending: owes the ledger nothing
    session.commit()

    result = runner.invoke(args=["ledger", "verify"])

    transactions = session.scalar(select(func.count()).select_from(LedgerTransaction))
    entries = session.scalar(select(func.count()).select_from(LedgerEntry))
    assert result.exit_code == 0, result.output
    assert result.output == f"ledger ok: {transactions} transactions, {entries} entries\n"
    # 4 sales, 3 fees, a refund, 2 chargebacks, 2 dispute fees and a reinstated sale
    assert transactions == 13


def test_a_paid_order_without_its_sale_transaction_is_reported(
    app: Flask, session: Any, runner: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=800)
    pay(session, place(session, app, buyer, Line(release.id)), fee=30)
    unpaid = place(session, app, buyer, Line(release.id))
    mark_paid_behind_the_service(session, unpaid)

    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"order_without_sale: order {unpaid.id} ({unpaid.public_id}) is paid "
        "but has no sale transaction"
    ]


def test_a_sale_transaction_without_its_order_is_reported(
    app: Flask, session: Any, runner: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=800)
    pay(session, place(session, app, buyer, Line(release.id)))
    pending = place(session, app, buyer, Line(release.id))
    no_such_order = post_sale(session, "order:987654:sale", 800, release.artist_id)
    unpaid_order = post_sale(session, posting.sale_key(pending), 800, release.artist_id)

    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"sale_without_order: sale transaction {no_such_order.id} (order:987654:sale) "
        "has no paid order",
        f"sale_without_order: sale transaction {unpaid_order.id} ({posting.sale_key(pending)}) "
        "has no paid order",
    ]


def test_a_sale_that_collected_another_amount_than_its_order_is_reported(
    app: Flask, session: Any, runner: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=800)
    order = place(session, app, buyer, Line(release.id))
    mark_paid_behind_the_service(session, order)
    short = post_sale(session, posting.sale_key(order), 799, release.artist_id)

    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"sale_without_order: sale transaction {short.id} collected 799 but order {order.id} "
        "totals 800"
    ]


def test_each_violation_is_printed_when_both_kinds_are_present(
    app: Flask, session: Any, runner: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=800)
    unpaid = place(session, app, buyer, Line(release.id))
    mark_paid_behind_the_service(session, unpaid)
    stray = post_sale(session, "order:987654:sale", 800, release.artist_id)

    result = runner.invoke(args=["ledger", "verify"])

    assert result.exit_code == 1
    assert sorted(line.split(":")[0] for line in result.output.splitlines()) == [
        "order_without_sale",
        "sale_without_order",
    ]
    assert f"order {unpaid.id} ({unpaid.public_id}) is paid" in result.output
    assert f"sale transaction {stray.id} (order:987654:sale)" in result.output
