"""Checks of the journal's invariants, each one SQL query; ``megabox ledger verify`` runs them.

The checks:

- ``unbalanced``: every transaction has entries, and they sum to zero in each currency.
- ``over_reversal``: on every account, the reversals of a transaction undo at most what the
  original put there, in the opposite direction, and touch no account it did not.
- ``reversal_currency``: a reversal's entries are in the currencies of its original (that
  the original exists is the foreign key's job).
- ``clearing``: only with ``clearing_settled=True``, every clearing account (money a payment
  processor holds for us) nets to zero. That holds right after a settlement transaction has
  moved the processor's balance to the bank; between settlements clearing accounts carry
  a balance, so the check is off by default.

Other areas add their own checks with ``register_check`` (for example commerce: "every paid
order has its sale transaction, and every sale transaction has its order"). A check takes
the session and the ``VerifyOptions`` and yields Violations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from app.ledger.models import CLEARING_PREFIX, LedgerAccount, LedgerEntry, LedgerTransaction


@dataclass(frozen=True, slots=True)
class Violation:
    check: str
    message: str
    transaction_id: int | None = None

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    clearing_settled: bool = False


Check = Callable[[Session, VerifyOptions], Iterable[Violation]]

CHECKS: list[Check] = []


def register_check(check: Check) -> Check:
    """Add ``check`` to those ``verify`` runs (once, however often it is registered)."""
    if check not in CHECKS:
        CHECKS.append(check)
    return check


def verify(session: Session, *, clearing_settled: bool = False) -> list[Violation]:
    """Every violation of the journal's invariants that the registered checks find."""
    options = VerifyOptions(clearing_settled=clearing_settled)
    return [violation for check in CHECKS for violation in check(session, options)]


@register_check
def unbalanced_transactions(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    sums = session.execute(
        select(LedgerEntry.transaction_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .group_by(LedgerEntry.transaction_id, LedgerEntry.currency)
        .having(func.sum(LedgerEntry.amount) != 0)
        .order_by(LedgerEntry.transaction_id, LedgerEntry.currency)
    )
    for transaction_id, currency, total in sums:
        yield Violation(
            "unbalanced",
            f"transaction {transaction_id} sums to {int(total)} in {currency} minor units",
            transaction_id,
        )
    has_entries = select(LedgerEntry.id).where(LedgerEntry.transaction_id == LedgerTransaction.id)
    empty = session.scalars(
        select(LedgerTransaction.id)
        .where(~has_entries.exists())
        .order_by(LedgerTransaction.id)
    )
    for transaction_id in empty:
        yield Violation("unbalanced", f"transaction {transaction_id} has no entries", transaction_id)


@register_check
def over_reversals(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    reversal = aliased(LedgerTransaction)
    reversed_nets = (
        select(
            reversal.reverses_id.label("original_id"),
            LedgerEntry.account_id.label("account_id"),
            func.sum(LedgerEntry.amount).label("net"),
        )
        .join(reversal, LedgerEntry.transaction_id == reversal.id)
        .where(reversal.reverses_id.is_not(None))
        .group_by(reversal.reverses_id, LedgerEntry.account_id)
        .subquery()
    )
    original_nets = (
        select(
            LedgerEntry.transaction_id.label("original_id"),
            LedgerEntry.account_id.label("account_id"),
            func.sum(LedgerEntry.amount).label("net"),
        )
        .group_by(LedgerEntry.transaction_id, LedgerEntry.account_id)
        .subquery()
    )
    original = func.coalesce(original_nets.c.net, literal(0))
    undone = reversed_nets.c.net
    rows = session.execute(
        select(reversed_nets.c.original_id, reversed_nets.c.account_id, original, undone)
        .outerjoin(
            original_nets,
            and_(
                original_nets.c.original_id == reversed_nets.c.original_id,
                original_nets.c.account_id == reversed_nets.c.account_id,
            ),
        )
        .where(
            or_(
                and_(original >= 0, or_(undone > 0, undone < -original)),
                and_(original < 0, or_(undone < 0, undone > -original)),
            )
        )
        .order_by(reversed_nets.c.original_id, reversed_nets.c.account_id)
    )
    for original_id, account_id, original_net, undone_net in rows:
        yield Violation(
            "over_reversal",
            f"reversals of transaction {original_id} put {int(undone_net)} on account "
            f"{account_id}, where the original put {int(original_net)}",
            original_id,
        )


@register_check
def reversal_currencies(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    reversal = aliased(LedgerTransaction)
    original_entry = aliased(LedgerEntry)
    in_original_currency = (
        select(original_entry.id)
        .where(
            original_entry.transaction_id == reversal.reverses_id,
            original_entry.currency == LedgerEntry.currency,
        )
        .exists()
    )
    rows = session.execute(
        select(reversal.id, reversal.reverses_id, LedgerEntry.currency)
        .join(LedgerEntry, LedgerEntry.transaction_id == reversal.id)
        .where(reversal.reverses_id.is_not(None), ~in_original_currency)
        .distinct()
        .order_by(reversal.id, LedgerEntry.currency)
    )
    for reversal_id, original_id, currency in rows:
        yield Violation(
            "reversal_currency",
            f"reversal {reversal_id} has {currency} entries, which its original "
            f"{original_id} does not",
            reversal_id,
        )


@register_check
def unsettled_clearing(session: Session, options: VerifyOptions) -> Iterator[Violation]:
    if not options.clearing_settled:
        return
    rows = session.execute(
        select(LedgerAccount.code, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.startswith(CLEARING_PREFIX, autoescape=True))
        .group_by(LedgerAccount.code, LedgerEntry.currency)
        .having(func.sum(LedgerEntry.amount) != 0)
        .order_by(LedgerAccount.code)
    )
    for code, currency, total in rows:
        yield Violation("clearing", f"{code} holds {int(total)} {currency} minor units")


def counts(session: Session) -> tuple[int, int]:
    """How many transactions and entries the journal holds."""
    transactions = session.scalar(select(func.count()).select_from(LedgerTransaction)) or 0
    entries = session.scalar(select(func.count()).select_from(LedgerEntry)) or 0
    return transactions, entries
