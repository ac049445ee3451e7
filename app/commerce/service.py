"""The commerce rules: orders from cart lines, checkout, and each payment event's effect.

Functions take the session (and the settings they need) and never commit; the request or job
commits. Every event from a gateway may arrive any number of times, in any order, and at once
from several web workers. So each function that applies one:

- locks the order row first (``lock_order``), which serialises the events of one order;
- decides from the order's state and the ledger, never from the event alone;
- posts through ``app.ledger.service.post``/``reverse`` under keys that name the order and the
  move (``app.commerce.posting``), so a repeated event writes nothing new.

What a buyer pays per item: at least the item's minimum (a fixed price, a name-your-price
minimum, or 0 for free music) and at most ``MAX_PRICE_MINOR``. An order whose total is 0 is a
zero-price acquisition: it is paid at once, with the gateway "free", and moves no money.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from app.accounts.models import User
from app.catalog.models import PricingMode, Release, Track, TrackStatus
from app.catalog.service import price_problem
from app.commerce import posting
from app.database import lock_row
from app.commerce.errors import (
    CartFull,
    DuplicateItem,
    EmptyCart,
    InvalidAmount,
    MixedCurrencies,
    NotForSale,
    OrderNotFound,
    OrderStateConflict,
    PaymentMismatch,
)
from app.commerce.models import DisputeState, ItemKind, Order, OrderItem, OrderStatus
from app.jobs import enqueue_after_commit
from app.ledger import service as ledger
from app.ledger.models import LedgerEntry, LedgerTransaction
from app.ledger.money import Money
from app.timestamps import utcnow

logger = logging.getLogger(__name__)

FREE_GATEWAY = "free"
RECEIPT_JOB = "app.commerce.tasks.send_receipt"
# States an order is in once money has moved (the ones ``ledger verify`` expects a sale for).
MONEYED_STATUSES = (
    OrderStatus.PAID,
    OrderStatus.PARTIALLY_REFUNDED,
    OrderStatus.REFUNDED,
    OrderStatus.DISPUTED,
)
# A payment may still arrive for an order in these states (an async payment that clears late).
PAYABLE_STATUSES = (OrderStatus.PENDING, OrderStatus.FAILED, OrderStatus.EXPIRED)


# Cart lines and pricing -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CartLine:
    """One thing to buy: a release, or one of its tracks, and what the buyer offers for it.

    ``amount_minor`` None means the listed price (the fixed price, or the suggestion).
    ``currency``, when given, must still be the release's.
    """

    release_id: int
    track_id: int | None = None
    amount_minor: int | None = None
    # The currency the buyer saw the amount in; if the release's currency has changed since,
    # the line is refused rather than charged in the new one.
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """What an item costs: the price shown, and the least a buyer may pay."""

    release: Release
    track: Track | None
    list_price_minor: int
    minimum_minor: int

    @property
    def currency(self) -> str:
        return self.release.currency

    @property
    def title(self) -> str:
        if self.track is None:
            return f"{self.release.artist.name} – {self.release.title}"
        return f"{self.release.artist.name} – {self.track.title}"


def offer_for(session: Session, line: CartLine) -> Offer:
    """What ``line`` costs. Raises NotForSale for a missing, unpublished or unsold item."""
    release = session.get(Release, line.release_id)
    if release is None or not release.published:
        raise NotForSale("This release is not for sale.", {"release_id": line.release_id})
    if line.track_id is None:
        if not any(t.status is TrackStatus.READY for t in release.tracks):
            raise NotForSale("This release has no tracks to buy yet.", {"release_id": release.id})
        if release.pricing_mode is PricingMode.FREE:
            return Offer(release, None, 0, 0)
        if release.pricing_mode is PricingMode.NAME_YOUR_PRICE:
            return Offer(release, None, release.price_minor, release.minimum_price_minor)
        return Offer(release, None, release.price_minor, release.price_minor)
    track = session.get(Track, line.track_id)
    if track is None or track.release_id != release.id:
        raise NotForSale("No such track on this release.", {"track_id": line.track_id})
    if not track.sold_separately:
        raise NotForSale("This track is sold only with its release.", {"track_id": track.id})
    if track.status is not TrackStatus.READY:
        raise NotForSale("This track is not ready to sell yet.", {"track_id": track.id})
    if release.pricing_mode is PricingMode.FREE:
        return Offer(release, track, 0, 0)
    return Offer(release, track, track.price_minor, track.price_minor)


def _amount_for(offer: Offer, line: CartLine, limit: int) -> int:
    """What the buyer pays for the line. Raises InvalidAmount."""
    if line.currency is not None and line.currency != offer.currency:
        problem = (
            f"The price of {offer.title} is now in {offer.currency}, not {line.currency}: "
            "add it to your cart again."
        )
        raise InvalidAmount(problem, {"amount_minor": [problem]})
    amount = offer.list_price_minor if line.amount_minor is None else line.amount_minor
    problem = price_problem(amount, offer.currency, limit, f"The amount for {offer.title}")
    if problem is None and amount < offer.minimum_minor:
        minimum = Money(offer.minimum_minor, offer.currency).format()
        problem = f"Pay at least {minimum} for {offer.title}."
    if problem is not None:
        raise InvalidAmount(problem, {"amount_minor": [problem]})
    return amount


# Orders ---------------------------------------------------------------------------------


def create_order(
    session: Session,
    buyer: User,
    lines: Sequence[CartLine],
    *,
    gateway: str,
    config: Mapping[str, Any],
) -> Order:
    """A new order for ``lines``, pending on ``gateway``, or paid at once if it costs nothing.

    Each item's split is fixed now, from ``ARTIST_SHARE_BPS``. A zero-price order is recorded
    as an acquisition (gateway "free", status paid, no ledger transaction) and its receipt is
    sent after commit.

    Raises EmptyCart, CartFull (more than ``MAX_CART_ITEMS``), NotForSale (also for the
    buyer's own music), InvalidAmount, MixedCurrencies, and DuplicateItem for the same item
    twice or a release with one of its own tracks.
    """
    if not lines:
        raise EmptyCart("The cart is empty.")
    if len(lines) > int(config["MAX_CART_ITEMS"]):
        raise CartFull(f"A cart holds at most {config['MAX_CART_ITEMS']} items.")
    keys = [(line.release_id, line.track_id) for line in lines]
    if len(set(keys)) != len(keys):
        raise DuplicateItem("The same item is in the cart twice.")
    whole = {release_id for release_id, track_id in keys if track_id is None}
    if any(track_id is not None and release_id in whole for release_id, track_id in keys):
        raise DuplicateItem(
            "The cart holds a release and one of its tracks; the release includes the track."
        )
    limit = int(config["MAX_PRICE_MINOR"])
    bps = int(config["ARTIST_SHARE_BPS"])
    offers = [offer_for(session, line) for line in lines]
    for offer in offers:
        if offer.release.artist.owner_id == buyer.id:
            raise NotForSale(
                f"{offer.title} is your own music; it is in your Studio already.",
                {"release_id": offer.release.id},
            )
    currencies = {offer.currency for offer in offers}
    if len(currencies) > 1:
        raise MixedCurrencies(
            "A cart holds items in one currency; buy the others in a separate order.",
            {"currencies": sorted(currencies)},
        )
    items = []
    for offer, line in zip(offers, lines, strict=True):
        amount = _amount_for(offer, line, limit)
        split = posting.split_item(amount, bps)
        items.append(
            OrderItem(
                artist_id=offer.release.artist_id,
                release_id=offer.release.id,
                track_id=offer.track.id if offer.track else None,
                kind=ItemKind.TRACK if offer.track else ItemKind.RELEASE,
                title=offer.title,
                list_price_minor=offer.list_price_minor,
                minimum_minor=offer.minimum_minor,
                amount_minor=amount,
                extra_minor=amount - offer.minimum_minor,
                artist_share_minor=split.artist,
                platform_share_minor=split.platform,
                fee_minor=0,
            )
        )
    total = sum(item.amount_minor for item in items)
    order = Order(
        buyer_id=buyer.id,
        email=buyer.email,
        currency=currencies.pop(),
        total_minor=total,
        fee_minor=0,
        refunded_minor=0,
        gateway=gateway if total else FREE_GATEWAY,
        status=OrderStatus.PENDING,
        items=items,
    )
    session.add(order)
    if total == 0:
        order.status = OrderStatus.PAID
        order.paid_at = utcnow()
    session.flush()  # the order's id names its ledger transactions and its receipt job
    if total == 0:
        enqueue_after_commit(session, RECEIPT_JOB, order.id)
    return order


@dataclass(frozen=True, slots=True)
class CheckoutRedirect:
    """Where the gateway wants the buyer to go, and its id for this checkout."""

    session_id: str
    url: str


class PaymentGateway(Protocol):
    """A payment processor's checkout (see ``app.commerce.gateways``)."""

    name: str

    def start_checkout(
        self, order: Order, *, success_url: str, cancel_url: str
    ) -> CheckoutRedirect: ...


def start_checkout(
    session: Session,
    gateway: PaymentGateway,
    buyer: User,
    lines: Sequence[CartLine],
    *,
    config: Mapping[str, Any],
    success_url: Callable[[Order], str],
    cancel_url: Callable[[Order], str],
) -> tuple[Order, str]:
    """Create the order and open the gateway's checkout: (order, where to send the buyer).

    A zero-price order skips the gateway and goes to ``success_url``. A buyer has one unpaid
    checkout at a time: starting one ends (expires) the buyer's earlier checkouts that no
    payment has reached, so paying an old one cannot buy the same cart twice. Raises what
    ``create_order`` raises, and the gateway's errors.
    """
    _end_unpaid_checkouts(session, buyer)
    order = create_order(session, buyer, lines, gateway=gateway.name, config=config)
    if order.status is OrderStatus.PAID:
        return order, success_url(order)
    redirect = gateway.start_checkout(
        order, success_url=success_url(order), cancel_url=cancel_url(order)
    )
    order.checkout_session_id = redirect.session_id
    return order, redirect.url


def _end_unpaid_checkouts(session: Session, buyer: User) -> None:
    """Expire the buyer's pending orders that no payment has reached, under a lock on the
    buyer's row so that two checkouts started at once end up with one open."""
    lock_row(session, User.__table__, buyer.id)
    session.execute(
        update(Order)
        .where(
            Order.buyer_id == buyer.id,
            Order.status == OrderStatus.PENDING,
            Order.payment_reference.is_(None),
        )
        .values(status=OrderStatus.EXPIRED, updated_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )


def order_by_public_id(session: Session, public_id: str) -> Order | None:
    return session.scalar(select(Order).where(Order.public_id == public_id))


def order_for_checkout_session(session: Session, checkout_session_id: str) -> Order | None:
    return session.scalar(select(Order).where(Order.checkout_session_id == checkout_session_id))


def order_for_payment(session: Session, reference: str) -> Order | None:
    """The order a payment (intent) or charge reference belongs to, if we know it yet."""
    return session.scalar(
        select(Order).where(
            (Order.payment_reference == reference) | (Order.charge_reference == reference)
        )
    )


def buyer_order(session: Session, public_id: str, viewer: User | None) -> Order:
    """The viewer's own order (an admin may see any). Raises OrderNotFound otherwise."""
    order = order_by_public_id(session, public_id)
    if order is None or viewer is None or not (order.buyer_id == viewer.id or viewer.is_admin):
        raise OrderNotFound("No such order.")
    return order


def buyer_orders(session: Session, buyer: User, limit: int, offset: int = 0) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .where(Order.buyer_id == buyer.id)
            .options(selectinload(Order.items))
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )


def artist_sales(session: Session, artist_id: int, limit: int) -> list[OrderItem]:
    """The artist's sold items, newest first, from orders that were paid at some point."""
    return list(
        session.scalars(
            select(OrderItem)
            .join(Order)
            .where(OrderItem.artist_id == artist_id, Order.status.in_(MONEYED_STATUSES))
            .options(selectinload(OrderItem.order))
            .order_by(Order.paid_at.desc(), OrderItem.id.desc())
            .limit(limit)
        )
    )


def lock_order(session: Session, order_id: int) -> Order:
    """The order, locked until the transaction ends (``app.database.lock_row``) and read
    fresh. Raises OrderNotFound."""
    lock_row(session, Order.__table__, order_id)
    order = session.get(Order, order_id, populate_existing=True)
    if order is None:
        raise OrderNotFound("No such order.")
    return order


# Payment events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payment:
    """A gateway's word that an order was paid: what it collected, and its fee."""

    order_public_id: str
    gateway: str
    amount_minor: int
    currency: str
    fee_minor: int
    paid_at: datetime
    checkout_session_id: str | None = None
    payment_reference: str | None = None
    charge_reference: str | None = None


def record_payment(session: Session, payment: Payment, *, config: Mapping[str, Any]) -> Order:
    """Mark the order paid and post its sale and fee, once however often it is reported.

    A payment for an order that failed or expired is still recorded (the money was taken).
    Raises OrderNotFound, and PaymentMismatch when the gateway, amount or currency is not the
    order's (nothing is recorded then).
    """
    found = order_by_public_id(session, payment.order_public_id)
    if found is None:
        raise OrderNotFound("No such order.", {"order": payment.order_public_id})
    order = lock_order(session, found.id)
    if order.status not in PAYABLE_STATUSES:
        _remember_references(order, payment.payment_reference, payment.charge_reference)
        return order  # recorded already: a redelivery, or a second event for the same payment
    _check_payment(order, payment)
    if payment.fee_minor < 0:
        raise PaymentMismatch("A processor fee cannot be negative.", {"order": order.public_id})
    order.status = OrderStatus.PAID
    order.paid_at = payment.paid_at
    order.fee_minor = payment.fee_minor
    order.failure_reason = ""
    _remember_references(order, payment.payment_reference, payment.charge_reference)
    for item, fee in zip(order.items, posting.allocate_fee(order.items, order.fee_minor), strict=True):
        item.fee_minor = fee
    ledger.post(
        session,
        idempotency_key=posting.sale_key(order),
        kind=posting.SALE,
        entries=posting.sale_entries(session, order),
        description=f"Order {order.public_id}",
        effective_at=payment.paid_at,
        details=posting.order_details(order, gateway=order.gateway),
    )
    if order.fee_minor:
        ledger.post(
            session,
            idempotency_key=posting.fee_key(order),
            kind=posting.PROCESSING_FEE,
            entries=posting.fee_entries(
                session, order, config["FEE_POLICY"], int(config["ARTIST_SHARE_BPS"])
            ),
            description=f"Processing fee, order {order.public_id}",
            effective_at=payment.paid_at,
            details=posting.order_details(order, policy=config["FEE_POLICY"]),
        )
    enqueue_after_commit(session, RECEIPT_JOB, order.id)
    return order


def _check_payment(order: Order, payment: Payment) -> None:
    if (
        payment.gateway != order.gateway
        or payment.currency.upper() != order.currency
        or payment.amount_minor != order.total_minor
    ):
        raise PaymentMismatch(
            "The payment does not match the order.",
            {
                "order": order.public_id,
                "expected": [order.gateway, order.total_minor, order.currency],
                "reported": [payment.gateway, payment.amount_minor, payment.currency],
            },
        )


def _remember_references(order: Order, payment_ref: str | None, charge_ref: str | None) -> None:
    if payment_ref and not order.payment_reference:
        order.payment_reference = payment_ref
    if charge_ref and not order.charge_reference:
        order.charge_reference = charge_ref


def record_payment_pending(
    session: Session,
    order: Order,
    *,
    payment_reference: str | None = None,
    charge_reference: str | None = None,
) -> Order:
    """The buyer finished checkout but the payment has not cleared (a bank debit, say).

    The order stays pending; its references let later charge events find it.
    """
    order = lock_order(session, order.id)
    _remember_references(order, payment_reference, charge_reference)
    return order


def record_payment_failed(session: Session, order: Order, reason: str) -> Order:
    """A declined or failed payment: pending becomes failed. Any other state is kept."""
    order = lock_order(session, order.id)
    if order.status is OrderStatus.PENDING:
        order.status = OrderStatus.FAILED
        order.failure_reason = reason[:500]
    return order


def record_checkout_expired(session: Session, order: Order) -> Order:
    """An abandoned checkout: pending becomes expired. Any other state is kept."""
    order = lock_order(session, order.id)
    if order.status is OrderStatus.PENDING:
        order.status = OrderStatus.EXPIRED
    return order


def record_checkout_abandoned(session: Session, order: Order) -> Order:
    """The buyer left the checkout (cancelled it, or went back to the cart): a pending order
    that no payment has reached expires. Any other state is kept."""
    order = lock_order(session, order.id)
    if order.status is OrderStatus.PENDING and order.payment_reference is None:
        order.status = OrderStatus.EXPIRED
    return order


def record_refund(
    session: Session, order: Order, *, refunded_total_minor: int, at: datetime
) -> Order:
    """The gateway has refunded ``refunded_total_minor`` of the order in all, so far.

    Refund events carry the cumulative amount refunded, so an event older than one already
    applied changes nothing, and events may come in any order. What the ledger has not
    reversed yet is reversed from the sale in proportion to each account's part of it
    (``app.ledger.service.reverse``). While a chargeback holds the sale there is nothing to
    reverse; the refund is then caught up if the dispute is won.

    Raises OrderStateConflict for an order not paid yet (the caller records the payment
    first), and PaymentMismatch for a total above what was paid.
    """
    order = lock_order(session, order.id)
    if order.status not in MONEYED_STATUSES:
        raise OrderStateConflict(
            "This order has not been paid, so it cannot be refunded.", {"order": order.public_id}
        )
    if not 0 <= refunded_total_minor <= order.total_minor:
        raise PaymentMismatch(
            "A refund cannot exceed what was paid.",
            {"order": order.public_id, "refunded": refunded_total_minor},
        )
    order.refunded_minor = max(order.refunded_minor, refunded_total_minor)
    _catch_up_refunds(session, order, at)
    _settle_status(order)
    return order


def record_dispute(
    session: Session, order: Order, *, dispute_id: str, fee_minor: int, at: datetime
) -> Order:
    """A chargeback: reverse what is left of the sale, and post the dispute fee, once each.

    A dispute already opened (or closed) under ``dispute_id`` is left as it is. Raises
    OrderStateConflict for an order not paid yet.
    """
    order = lock_order(session, order.id)
    if order.status not in MONEYED_STATUSES:
        raise OrderStateConflict(
            "This order has not been paid, so it cannot be disputed.", {"order": order.public_id}
        )
    if order.dispute_reference == dispute_id and order.dispute_state is not None:
        return order
    sale = _live_sale(session, order)
    if sale is not None and _left_of(session, sale, order.currency) > 0:
        ledger.reverse(
            session,
            sale,
            idempotency_key=posting.dispute_key(order, dispute_id),
            kind=posting.CHARGEBACK,
            description=f"Chargeback {dispute_id}, order {order.public_id}",
            effective_at=at,
        )
    if fee_minor > 0:
        ledger.post(
            session,
            idempotency_key=posting.dispute_fee_key(order, dispute_id),
            kind=posting.DISPUTE_FEE,
            entries=posting.platform_fee_entries(session, order, fee_minor),
            description=f"Dispute fee {dispute_id}, order {order.public_id}",
            effective_at=at,
            details=posting.order_details(order, dispute=dispute_id),
        )
    order.dispute_reference = dispute_id
    order.dispute_state = DisputeState.OPEN
    order.status = OrderStatus.DISPUTED
    return order


def record_dispute_closed(
    session: Session,
    order: Order,
    *,
    dispute_id: str,
    won: bool,
    fee_minor: int,
    at: datetime,
) -> Order:
    """A dispute's end. Won: the sale is posted again (the chargeback's entries, negated),
    less any refund made meanwhile. Lost: the chargeback stands.

    A close that arrives before its opening applies the opening first; a repeated close
    changes nothing. Raises OrderStateConflict for an order not paid yet.
    """
    order = record_dispute(session, order, dispute_id=dispute_id, fee_minor=fee_minor, at=at)
    if order.dispute_state is not DisputeState.OPEN:
        return order
    if not won:
        order.dispute_state = DisputeState.LOST
        return order
    chargeback = _transaction(session, posting.dispute_key(order, dispute_id))
    if chargeback is not None:
        ledger.post(
            session,
            idempotency_key=posting.reinstated_key(order, dispute_id),
            kind=posting.SALE_REINSTATED,
            entries=[(e.account, Money(-e.amount, e.currency)) for e in chargeback.entries],
            description=f"Dispute {dispute_id} won, order {order.public_id}",
            effective_at=at,
            details=posting.order_details(order, dispute=dispute_id),
        )
    order.dispute_state = DisputeState.WON
    _catch_up_refunds(session, order, at)
    _settle_status(order)
    return order


def _settle_status(order: Order) -> None:
    """Paid, partially refunded or refunded, by the refunds; a dispute open or lost rules."""
    if order.dispute_state in (DisputeState.OPEN, DisputeState.LOST):
        order.status = OrderStatus.DISPUTED
    elif order.refunded_minor == 0:
        order.status = OrderStatus.PAID
    elif order.refunded_minor == order.total_minor:
        order.status = OrderStatus.REFUNDED
    else:
        order.status = OrderStatus.PARTIALLY_REFUNDED


def _catch_up_refunds(session: Session, order: Order, at: datetime) -> None:
    """Reverse from the live sale what has been refunded but not reversed in the ledger yet.

    The reversal's key is the ledger's cumulative refunded amount after it, which only ever
    grows, so each step posts once however often it is attempted.
    """
    reversed_so_far = _ledger_refunded(session, order)
    missing = order.refunded_minor - reversed_so_far
    if missing <= 0:
        return
    sale = _live_sale(session, order)
    if sale is None:
        return
    now_reversed = min(missing, _left_of(session, sale, order.currency))
    if now_reversed <= 0:
        return
    ledger.reverse(
        session,
        sale,
        idempotency_key=posting.refund_key(order, reversed_so_far + now_reversed),
        amount=Money(now_reversed, order.currency),
        kind=posting.REFUND,
        description=f"Refund, order {order.public_id}",
        effective_at=at,
    )


# The ledger side of an order ----------------------------------------------------------------


def _transaction(session: Session, key: str) -> LedgerTransaction | None:
    return session.scalar(select(LedgerTransaction).where(LedgerTransaction.idempotency_key == key))


def _live_sale(session: Session, order: Order) -> LedgerTransaction | None:
    """The order's latest sale-carrying transaction (the sale, or a reinstatement of it)."""
    prefix = f"order:{order.id}:"
    candidates = session.scalars(
        select(LedgerTransaction)
        .where(
            LedgerTransaction.kind.in_(posting.SALE_KINDS),
            LedgerTransaction.idempotency_key.startswith(prefix, autoescape=True),
        )
        .order_by(LedgerTransaction.id.desc())
    )
    return next(iter(candidates), None)


def _ledger_refunded(session: Session, order: Order) -> int:
    """How much the order's refund transactions have taken back from the clearing account."""
    clearing = posting.clearing_account(session, order.gateway, order.currency)
    taken = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerTransaction, LedgerEntry.transaction)
        .where(
            LedgerTransaction.kind == posting.REFUND,
            LedgerTransaction.idempotency_key.startswith(f"order:{order.id}:", autoescape=True),
            LedgerEntry.account_id == clearing.id,
        )
    )
    return -int(taken or 0)


def _left_of(session: Session, sale: LedgerTransaction, currency: str) -> int:
    """How much of the sale's debit (the amount collected) its reversals have not undone."""
    owner = (LedgerEntry.transaction_id == sale.id) | LedgerEntry.transaction_id.in_(
        select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == sale.id)
    )
    debit_accounts = select(LedgerEntry.account_id).where(
        LedgerEntry.transaction_id == sale.id, LedgerEntry.amount > 0
    )
    left = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
            owner, LedgerEntry.currency == currency, LedgerEntry.account_id.in_(debit_accounts)
        )
    )
    return int(left or 0)
