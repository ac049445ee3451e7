"""Payouts' checks for ``megabox ledger verify``.

- ``payout_posting``: every payout has its posting ``payout:<id>`` (kind ``payout``) of its
  amount, and every ``payout`` transaction names a payout: they agree one to one.
- ``payout_reversal``: a failed or reversed payout's posting is reversed in full
  (``payout:<id>:reversed``), and a pending or paid one's is not reversed at all.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import String, and_, cast, func, literal, select
from sqlalchemy.orm import Session

from app.ledger.models import LedgerEntry, LedgerTransaction
from app.ledger.verify import VerifyOptions, Violation, register_check
from app.payouts.models import Payout, PayoutStatus
from app.payouts.service import PAYOUT, PAYOUT_REVERSAL

UNDONE_STATUSES = (PayoutStatus.FAILED, PayoutStatus.REVERSED)


def _debits(transaction_id):  # type: ignore[no-untyped-def]
    return (
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .where(LedgerEntry.transaction_id == transaction_id, LedgerEntry.amount > 0)
        .scalar_subquery()
    )


@register_check
def payouts_have_postings(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    key = literal("payout:") + cast(Payout.id, String)
    rows = session.execute(
        select(Payout.id, Payout.amount_minor, LedgerTransaction.id, _debits(LedgerTransaction.id))
        .outerjoin(
            LedgerTransaction,
            and_(LedgerTransaction.idempotency_key == key, LedgerTransaction.kind == PAYOUT),
        )
        .order_by(Payout.id)
    )
    for payout_id, amount, transaction_id, debited in rows:
        if transaction_id is None:
            yield Violation("payout_posting", f"payout {payout_id} has no payout transaction")
        elif int(debited) != amount:
            yield Violation(
                "payout_posting",
                f"payout {payout_id} of {amount} was posted as {int(debited)}",
                transaction_id,
            )
    orphans = session.execute(
        select(LedgerTransaction.id, LedgerTransaction.idempotency_key)
        .where(
            LedgerTransaction.kind == PAYOUT,
            LedgerTransaction.idempotency_key.not_in(
                select(literal("payout:") + cast(Payout.id, String))
            ),
        )
        .order_by(LedgerTransaction.id)
    )
    for transaction_id, key_value in orphans:
        yield Violation(
            "payout_posting", f"payout transaction {transaction_id} ({key_value}) has no payout",
            transaction_id,
        )  # fmt: skip


@register_check
def undone_payouts_are_reversed(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    reversed_debits = (
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(
            LedgerTransaction.reverses_id == Payout.ledger_transaction_id,
            LedgerTransaction.kind == PAYOUT_REVERSAL,
            LedgerEntry.amount > 0,
        )
        .scalar_subquery()
    )
    rows = session.execute(
        select(Payout.id, Payout.status, Payout.amount_minor, reversed_debits).order_by(Payout.id)
    )
    for payout_id, status, amount, undone in rows:
        expected = amount if status in UNDONE_STATUSES else 0
        if int(undone) != expected:
            yield Violation(
                "payout_reversal",
                f"payout {payout_id} is {status.value} but {int(undone)} of its {amount} "
                "was reversed in the ledger",
            )
