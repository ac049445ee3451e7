"""Pools' checks for ``megabox ledger verify``.

- ``period_without_transaction``: every closed period with revenue has its ledger transaction
  (``period:<key>``), and the period names it.
- ``period_allocation``: a closed period's allocations sum to its pool, and its pool and
  platform share to its revenue.
- ``period_artist_credits``: the transaction credits each artist's payable exactly the sum of
  that artist's allocations, and debits the revenue.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sqlalchemy import String, and_, cast, func, literal, select
from sqlalchemy.orm import Session

from app.ledger.models import AccountKind, LedgerAccount, LedgerEntry, LedgerTransaction
from app.ledger.verify import VerifyOptions, Violation, register_check
from app.pools.models import Period, PeriodAllocation, PeriodStatus


def _key_of_period():  # type: ignore[no-untyped-def]
    return literal("period:") + cast(Period.key, String)


@register_check
def closed_periods_have_transactions(
    session: Session, options: VerifyOptions
) -> Iterator[Violation]:
    rows = session.execute(
        select(Period.key, Period.ledger_transaction_id, LedgerTransaction.id)
        .outerjoin(LedgerTransaction, LedgerTransaction.idempotency_key == _key_of_period())
        .where(Period.status == PeriodStatus.CLOSED, Period.closed_revenue_minor > 0)
        .order_by(Period.key)
    )
    for key, named_id, posted_id in rows:
        if posted_id is None:
            yield Violation(
                "period_without_transaction", f"closed period {key} has no ledger transaction"
            )
        elif named_id != posted_id:
            yield Violation(
                "period_without_transaction",
                f"closed period {key} names transaction {named_id}, not period:{key} "
                f"({posted_id})",
                posted_id,
            )


@register_check
def allocations_sum_to_the_pool(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    allocated = (
        select(func.coalesce(func.sum(PeriodAllocation.amount_minor), 0))
        .where(PeriodAllocation.period_id == Period.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(
            Period.key, Period.pool_minor, Period.platform_minor, Period.closed_revenue_minor,
            allocated,
        )
        .where(Period.status == PeriodStatus.CLOSED)
        .order_by(Period.key)
    )  # fmt: skip
    for key, pool, platform, revenue, total in rows:
        if int(total) != (pool or 0):
            yield Violation(
                "period_allocation",
                f"closed period {key} allocated {int(total)} of a pool of {pool}",
            )
        if (pool or 0) + (platform or 0) != (revenue or 0):
            yield Violation(
                "period_allocation",
                f"closed period {key}: pool {pool} and platform {platform} are not its "
                f"revenue {revenue}",
            )


@register_check
def transactions_credit_the_allocations(
    session: Session, options: VerifyOptions
) -> Iterator[Violation]:
    allocated: defaultdict[tuple[str, int | None], int] = defaultdict(int)
    for key, artist_id, total in session.execute(
        select(Period.key, PeriodAllocation.artist_id, func.sum(PeriodAllocation.amount_minor))
        .join(PeriodAllocation, PeriodAllocation.period_id == Period.id)
        .where(Period.status == PeriodStatus.CLOSED)
        .group_by(Period.key, PeriodAllocation.artist_id)
    ):
        if total:
            allocated[(key, artist_id)] = int(total)
    credited: defaultdict[tuple[str, int | None], int] = defaultdict(int)
    transactions: dict[str, int] = {}
    for key, transaction_id, artist_id, total in session.execute(
        select(
            Period.key, LedgerTransaction.id, LedgerAccount.artist_id, func.sum(LedgerEntry.amount)
        )
        .join(LedgerTransaction, LedgerTransaction.idempotency_key == _key_of_period())
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(
            LedgerAccount,
            and_(
                LedgerAccount.id == LedgerEntry.account_id,
                LedgerAccount.kind == AccountKind.LIABILITY,
                LedgerAccount.artist_id.is_not(None),
            ),
        )
        .group_by(Period.key, LedgerTransaction.id, LedgerAccount.artist_id)
    ):
        transactions[key] = transaction_id
        if total:
            credited[(key, artist_id)] = -int(total)
    for key, artist_id in sorted(set(allocated) | set(credited), key=str):
        if allocated.get((key, artist_id), 0) != credited.get((key, artist_id), 0):
            yield Violation(
                "period_artist_credits",
                f"period {key}: artist {artist_id} was allocated "
                f"{allocated.get((key, artist_id), 0)} but credited "
                f"{credited.get((key, artist_id), 0)}",
                transactions.get(key),
            )
    yield from _revenue_debits(session)


def _revenue_debits(session: Session) -> Iterator[Violation]:
    debited = (
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .where(LedgerEntry.transaction_id == LedgerTransaction.id, LedgerEntry.amount > 0)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Period.key, Period.closed_revenue_minor, LedgerTransaction.id, debited)
        .join(LedgerTransaction, LedgerTransaction.idempotency_key == _key_of_period())
        .order_by(Period.key)
    )
    for key, revenue, transaction_id, total in rows:
        if int(total) != (revenue or 0):
            yield Violation(
                "period_artist_credits",
                f"period {key}: the transaction collected {int(total)} of a revenue of {revenue}",
                transaction_id,
            )
