"""Commerce's checks for ``megabox ledger verify``.

- ``order_without_sale``: every order that was paid for (paid, refunded in part or whole, or
  disputed) with a total above zero has its sale transaction (``order:<id>:sale``).
- ``sale_without_order``: every sale transaction names such an order, and collected exactly
  the order's total.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import String, and_, cast, func, literal, select
from sqlalchemy.orm import Session

from app.commerce import posting
from app.commerce.models import Order
from app.commerce.service import MONEYED_STATUSES
from app.ledger.models import LedgerEntry, LedgerTransaction
from app.ledger.verify import VerifyOptions, Violation, register_check


def _sale_key_of_order():  # type: ignore[no-untyped-def]
    return literal("order:") + cast(Order.id, String) + literal(":sale")


@register_check
def orders_have_sales(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    sales = select(LedgerTransaction.idempotency_key).where(LedgerTransaction.kind == posting.SALE)
    missing = session.execute(
        select(Order.id, Order.public_id, Order.status)
        .where(
            Order.status.in_(MONEYED_STATUSES),
            Order.total_minor > 0,
            _sale_key_of_order().not_in(sales),
        )
        .order_by(Order.id)
    )
    for order_id, public_id, status in missing:
        yield Violation(
            "order_without_sale",
            f"order {order_id} ({public_id}) is {status} but has no sale transaction",
        )


@register_check
def sales_have_orders(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    collected = (
        select(func.sum(LedgerEntry.amount))
        .where(LedgerEntry.transaction_id == LedgerTransaction.id, LedgerEntry.amount > 0)
        .scalar_subquery()
    )
    rows = session.execute(
        select(LedgerTransaction.id, LedgerTransaction.idempotency_key, Order.id, Order.total_minor, collected)
        .outerjoin(
            Order,
            and_(
                LedgerTransaction.idempotency_key == _sale_key_of_order(),
                Order.status.in_(MONEYED_STATUSES),
            ),
        )
        .where(LedgerTransaction.kind == posting.SALE)
        .order_by(LedgerTransaction.id)
    )
    for transaction_id, key, order_id, total, amount in rows:
        if order_id is None:
            yield Violation(
                "sale_without_order",
                f"sale transaction {transaction_id} ({key}) has no paid order",
                transaction_id,
            )
        elif int(amount or 0) != total:
            yield Violation(
                "sale_without_order",
                f"sale transaction {transaction_id} collected {int(amount or 0)} but order "
                f"{order_id} totals {total}",
                transaction_id,
            )
