"""Orders and their items.

An order is what one buyer pays for in one checkout, in one currency. Each item is a release or
a single track with what the buyer pays for it (``amount_minor``), split at order time into the
artist's share and the platform's (``ARTIST_SHARE_BPS``, by ``app.ledger.allocation``). The
money itself lives in the ledger: each move of an order (paid, refunded, disputed, dispute
won) is a ledger transaction whose idempotency key names the order (see ``app.commerce.posting``);
the columns here are the order's state and a cache of what the ledger holds.
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import value_enum
from app.extensions import db
from app.timestamps import UTCDateTime, utcnow

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.catalog.models import Artist, Release, Track

PUBLIC_ID_BYTES = 12
GATEWAY_REFERENCE_MAX_LENGTH = 255


class OrderStatus(enum.StrEnum):
    PENDING = "pending"  # waiting for the gateway (also while an async payment clears)
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"  # a chargeback took the money back; a dispute won returns to paid
    FAILED = "failed"  # the payment was declined or an async payment failed
    EXPIRED = "expired"  # the checkout was abandoned


class DisputeState(enum.StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


# Orders in these states own what they bought.
OWNING_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)


class ItemKind(enum.StrEnum):
    RELEASE = "release"
    TRACK = "track"



def new_public_id() -> str:
    return secrets.token_urlsafe(PUBLIC_ID_BYTES)


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("total_minor >= 0", name="total_not_negative"),
        CheckConstraint("fee_minor >= 0", name="fee_not_negative"),
        CheckConstraint(
            "refunded_minor >= 0 AND refunded_minor <= total_minor", name="refund_within_total"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # What URLs, receipts and the gateway's metadata carry: not guessable, unlike ``id``.
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    currency: Mapped[str] = mapped_column(String(3))
    total_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[OrderStatus] = mapped_column(
        value_enum(OrderStatus, "order_status"), default=OrderStatus.PENDING, index=True
    )
    # "sandbox", "stripe", or "free" for a zero-price acquisition that never met a gateway.
    gateway: Mapped[str] = mapped_column(String(20))
    checkout_session_id: Mapped[str | None] = mapped_column(
        String(GATEWAY_REFERENCE_MAX_LENGTH), unique=True
    )
    payment_reference: Mapped[str | None] = mapped_column(
        String(GATEWAY_REFERENCE_MAX_LENGTH), index=True
    )
    charge_reference: Mapped[str | None] = mapped_column(
        String(GATEWAY_REFERENCE_MAX_LENGTH), index=True
    )
    failure_reason: Mapped[str] = mapped_column(String(500), default="")
    # The processor's dispute of this payment, once one is opened, and where it stands: a
    # redelivered opening must not reopen a dispute that has closed.
    dispute_reference: Mapped[str | None] = mapped_column(String(GATEWAY_REFERENCE_MAX_LENGTH))
    dispute_state: Mapped[DisputeState | None] = mapped_column(value_enum(DisputeState, "dispute_state"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    buyer: Mapped[User] = relationship()
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderItem.id"
    )

    @property
    def owns_items(self) -> bool:
        return self.status in OWNING_STATUSES


class OrderItem(db.Model):
    __tablename__ = "order_items"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="amount_not_negative"),
        CheckConstraint("extra_minor >= 0 AND extra_minor <= amount_minor", name="extra_within"),
        CheckConstraint(
            "artist_share_minor + platform_share_minor = amount_minor", name="split_is_whole"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    artist_id: Mapped[int] = mapped_column(ForeignKey("artists.id", ondelete="RESTRICT"), index=True)
    release_id: Mapped[int] = mapped_column(
        ForeignKey("releases.id", ondelete="RESTRICT"), index=True
    )
    track_id: Mapped[int | None] = mapped_column(
        ForeignKey("tracks.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[ItemKind] = mapped_column(value_enum(ItemKind, "order_item_kind"))
    title: Mapped[str] = mapped_column(String(500))
    # The price the listener saw: the fixed price, or name-your-price's suggestion.
    list_price_minor: Mapped[int] = mapped_column(BigInteger)
    # The least the buyer had to pay; what they paid above it is their extra contribution.
    minimum_minor: Mapped[int] = mapped_column(BigInteger)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    extra_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    artist_share_minor: Mapped[int] = mapped_column(BigInteger)
    platform_share_minor: Mapped[int] = mapped_column(BigInteger)
    # This item's part of the processor fee, known once the order is paid.
    fee_minor: Mapped[int] = mapped_column(BigInteger, default=0)

    order: Mapped[Order] = relationship(back_populates="items")
    artist: Mapped[Artist] = relationship()
    release: Mapped[Release] = relationship()
    track: Mapped[Track | None] = relationship()
