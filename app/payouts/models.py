"""Payout accounts, payout runs and payouts.

- ``PayoutAccount``: where an artist is paid, one per artist: a Stripe Connect Express account
  or a sandbox account, ``onboarding`` until the artist has finished connecting it.
- ``PayoutRun``: one ``megabox payouts run``, with what it paid and what failed.
- ``Payout``: one transfer of an artist's balance in one currency. It is written ``pending``
  together with its ledger posting (``payout:<id>``), before the transfer is asked for, and
  becomes ``paid`` (with the gateway's transfer id), ``failed`` (the gateway refused; the
  posting is reversed) or, after the fact, ``reversed`` (the transfer was reversed; so is the
  posting). The partial unique index ``uq_payouts_one_pending`` lets an artist have at most one
  pending payout per currency, so two runs at once cannot both pay one balance.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import value_enum
from app.extensions import db
from app.timestamps import UTCDateTime, utcnow

EXTERNAL_ID_MAX_LENGTH = 255
TRANSFER_REFERENCE_MAX_LENGTH = 255
FAILURE_MESSAGE_MAX_LENGTH = 500
GATEWAY_NAME_MAX_LENGTH = 20


class AccountStatus(enum.StrEnum):
    ONBOARDING = "onboarding"
    ACTIVE = "active"


class PayoutStatus(enum.StrEnum):
    PENDING = "pending"
    PAID = "paid"
    FAILED = "failed"
    REVERSED = "reversed"


class PayoutAccount(db.Model):
    __tablename__ = "payout_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    artist_id: Mapped[int] = mapped_column(
        ForeignKey("artists.id", ondelete="CASCADE"), unique=True
    )
    # "stripe" or "sandbox": the gateway the account was connected with, which pays it.
    gateway: Mapped[str] = mapped_column(String(GATEWAY_NAME_MAX_LENGTH))
    # Stripe's ``acct_...``, or the sandbox's ``sbxacct_...``.
    external_id: Mapped[str] = mapped_column(String(EXTERNAL_ID_MAX_LENGTH), unique=True)
    status: Mapped[AccountStatus] = mapped_column(
        value_enum(AccountStatus, "payout_account_status"), default=AccountStatus.ONBOARDING
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PayoutRun(db.Model):
    """A run that paid (or tried to pay) artists. A dry run writes nothing, so it has no row."""

    __tablename__ = "payout_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paid_count: Mapped[int] = mapped_column(default=0)
    failed_count: Mapped[int] = mapped_column(default=0)

    payouts: Mapped[list[Payout]] = relationship(back_populates="run", order_by="Payout.id")


class Payout(db.Model):
    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        Index(
            "uq_payouts_one_pending", "artist_id", "currency", unique=True,
            postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'"),
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("payout_runs.id"), index=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="RESTRICT"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("payout_accounts.id"))
    gateway: Mapped[str] = mapped_column(String(GATEWAY_NAME_MAX_LENGTH))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger())
    status: Mapped[PayoutStatus] = mapped_column(
        value_enum(PayoutStatus, "payout_status"), default=PayoutStatus.PENDING
    )
    transfer_reference: Mapped[str | None] = mapped_column(String(TRANSFER_REFERENCE_MAX_LENGTH))
    failure_message: Mapped[str | None] = mapped_column(String(FAILURE_MESSAGE_MAX_LENGTH))
    ledger_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("ledger_transactions.id")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    run: Mapped[PayoutRun | None] = relationship(back_populates="payouts")

    @property
    def idempotency_key(self) -> str:
        """``payout:<id>``: the transfer's idempotency key at the gateway, and the key of the
        payout's ledger posting."""
        return payout_key(self.id)


def payout_key(payout_id: int) -> str:
    return f"payout:{payout_id}"


def reversal_key(payout_id: int) -> str:
    return f"payout:{payout_id}:reversed"
