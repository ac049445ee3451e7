"""The double-entry journal: accounts, transactions and their entries.

Sign convention: an entry's ``amount`` is signed minor units, a debit positive and a credit
negative. So a transaction balances when its amounts sum to zero in each currency; an asset or
expense account normally has a positive balance, and a liability or revenue account a negative
one (an artist's payable of -900 means the platform owes the artist 9.00).

The journal is append-only. Rows are only ever inserted; a correction is a new transaction
that reverses the old one (``reverses_id``). The ``before_flush`` listener below refuses, in
every session, an unbalanced new transaction, entries added to a posted one, and any change
or deletion of a posted row; on PostgreSQL a trigger refuses UPDATE and DELETE as well
(migration 0005_ledger).
"""

from __future__ import annotations

import enum
from collections import defaultdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    String,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, Session, WriteOnlyMapped, mapped_column, relationship

from app.extensions import db
from app.ledger.errors import AppendOnlyViolation, UnbalancedTransaction
from app.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.catalog.models import Artist

ACCOUNT_CODE_MAX_LENGTH = 200
IDEMPOTENCY_KEY_MAX_LENGTH = 255
TRANSACTION_KIND_MAX_LENGTH = 32
DESCRIPTION_MAX_LENGTH = 500
CURRENCY_CODE_LENGTH = 3

# Account codes: "<purpose>:<qualifier...>:<currency>". Clearing accounts hold what a payment
# processor collected for us and has not paid out yet.
CLEARING_PREFIX = "clearing:"
ARTIST_PAYABLE_PREFIX = "artist_payable:"
PLATFORM_COMMISSION = "platform_commission"
PROCESSING_FEES = "processing_fees"
CONTRIBUTIONS = "contributions"
# Ad revenue (app.pools): what the ad network owes the platform for a closed period (an
# asset), and the platform's part of it once the artists' pool is split off (revenue).
ADS_RECEIVABLE = "ads_receivable"
PLATFORM_AD_SHARE = "platform_ad_share"


def clearing_code(gateway: str, currency: str) -> str:
    """``clearing:stripe:USD``: money the gateway holds for the platform."""
    return f"{CLEARING_PREFIX}{gateway}:{currency}"


def artist_payable_code(artist_id: int, currency: str) -> str:
    """``artist_payable:42:USD``: what the platform owes artist 42."""
    return f"{ARTIST_PAYABLE_PREFIX}{artist_id}:{currency}"


def platform_code(purpose: str, currency: str) -> str:
    """``platform_commission:USD``, ``processing_fees:USD``, ``contributions:USD``,
    ``ads_receivable:USD``, ``platform_ad_share:USD``."""
    return f"{purpose}:{currency}"


class AccountKind(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    REVENUE = "revenue"
    EXPENSE = "expense"


class LedgerAccount(db.Model):
    """An account of the journal, in one currency. Never deleted once created."""

    __tablename__ = "ledger_accounts"
    # The target of the entries' (account_id, currency) key: an entry's currency is its
    # account's, and the database enforces it.
    __table_args__ = (UniqueConstraint("id", "currency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(ACCOUNT_CODE_MAX_LENGTH), unique=True)
    kind: Mapped[AccountKind] = mapped_column(
        Enum(
            AccountKind, name="ledger_account_kind", native_enum=False, create_constraint=True,
            length=20, values_callable=lambda members: [m.value for m in members],
        )
    )  # fmt: skip
    currency: Mapped[str] = mapped_column(String(CURRENCY_CODE_LENGTH))
    artist_id: Mapped[int | None] = mapped_column(
        ForeignKey("artists.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    artist: Mapped[Artist | None] = relationship()
    # Write-only: an account may have millions of entries; balances are SQL sums.
    entries: WriteOnlyMapped[LedgerEntry] = relationship(back_populates="account")


class LedgerTransaction(db.Model):
    """One posting: entries that sum to zero per currency, written once under a unique key."""

    __tablename__ = "ledger_transactions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The provider event id, the checkout session id, the period id...: posting twice under
    # one key posts once.
    idempotency_key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH), unique=True)
    # "sale", "refund", "chargeback", "reversal", "settlement"...
    kind: Mapped[str] = mapped_column(String(TRANSACTION_KIND_MAX_LENGTH))
    description: Mapped[str] = mapped_column(String(DESCRIPTION_MAX_LENGTH), default="")
    reverses_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # When the money moved, which balances "at" a time go by; created_at is when we wrote it.
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    details: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)

    entries: Mapped[list[LedgerEntry]] = relationship(
        back_populates="transaction", order_by="LedgerEntry.id"
    )
    reverses: Mapped[LedgerTransaction | None] = relationship(
        remote_side=[id], back_populates="reversals"
    )
    reversals: Mapped[list[LedgerTransaction]] = relationship(back_populates="reverses")


class LedgerEntry(db.Model):
    """A signed amount on one account: debit positive, credit negative (module docstring)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["account_id", "currency"], ["ledger_accounts.id", "ledger_accounts.currency"]
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[int] = mapped_column(index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(CURRENCY_CODE_LENGTH))

    transaction: Mapped[LedgerTransaction] = relationship(back_populates="entries")
    account: Mapped[LedgerAccount] = relationship(back_populates="entries")


@event.listens_for(Session, "before_flush")
def _keep_the_journal_balanced_and_append_only(
    session: Session, flush_context: Any, instances: Any
) -> None:
    """Refuse to flush anything that ``service.post`` would not write.

    Raises UnbalancedTransaction or AppendOnlyViolation; the flush writes nothing.
    """
    for row in session.deleted:
        if isinstance(row, LedgerAccount | LedgerTransaction | LedgerEntry):
            raise AppendOnlyViolation("Ledger rows are never deleted; post a reversal instead.")
    for row in session.dirty:
        if isinstance(row, LedgerTransaction | LedgerEntry) and session.is_modified(
            row, include_collections=False
        ):
            raise AppendOnlyViolation("Posted ledger rows never change; post a reversal instead.")
    new_transactions = [row for row in session.new if isinstance(row, LedgerTransaction)]
    for row in session.new:
        if isinstance(row, LedgerEntry) and row.transaction not in new_transactions:
            raise AppendOnlyViolation("Entries are written with their transaction, never after.")
    for transaction in new_transactions:
        totals: defaultdict[str, int] = defaultdict(int)
        for entry in transaction.entries:
            totals[entry.currency or entry.account.currency] += entry.amount
        if not transaction.entries or any(totals.values()):
            raise UnbalancedTransaction(
                "A ledger transaction needs entries that sum to zero in each currency.",
                {"totals": dict(totals)},
            )
