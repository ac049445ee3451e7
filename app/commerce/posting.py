"""The posting rules: which ledger entries each move of an order makes.

Accounts (``app.ledger.models`` names them), per currency:

- ``clearing:<gateway>``  (asset): what the gateway collected and has not paid out yet
- ``artist_payable:<id>`` (liability): what the platform owes each artist
- ``platform_commission`` (revenue): the platform's share of list prices
- ``contributions``       (revenue): the platform's share of what buyers paid above the minimum
- ``processing_fees``     (expense): processor and dispute fees the platform bears

A sale of an item for P credits the artist's payable ``ARTIST_SHARE_BPS`` of P (``split_bps``,
so the artist is within one minor unit of the exact share and the two parts add up to P). The
platform's part is split between commission and contributions in proportion to the minimum and
the extra the buyer chose to add. A name-your-price buyer's extra is thus shared like the rest of
the price: the artist's 90% applies to the whole amount paid.

Each move is one ledger transaction, under an idempotency key naming the order, so a
redelivered event posts nothing new:

================================  =====================  ===================================
key                               kind                   entries
================================  =====================  ===================================
``order:<id>:sale``               ``sale``               Dr clearing P; Cr payables, commission,
                                                         contributions
``order:<id>:fee``                ``processing_fee``     Dr processing_fees F (or, under
                                                         ``deduct_before_split``, Dr payables
                                                         and commission by the split); Cr
                                                         clearing F
``order:<id>:refund:<total>``     ``refund``             reversal of the sale, in proportion
``order:<id>:dispute:<dispute>``  ``chargeback``         reversal of what is left of the sale
``order:<id>:dispute_fee:<d>``    ``dispute_fee``        Dr processing_fees; Cr clearing
``order:<id>:reinstated:<d>``     ``sale_reinstated``    the chargeback's entries, negated
================================  =====================  ===================================

Fees: ``FEE_POLICY=platform_absorbs`` (the default) makes the processor's fee the platform's
expense. ``deduct_before_split`` shares it like the sale: the fee is allocated over the items in
proportion to their amounts, and each item's part is split by ``ARTIST_SHARE_BPS``, so the
artist bears their share of it (within one minor unit of 90% of P minus the fee). A refund
reverses the sale only: processors keep their fee on a refund, and so does the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.commerce.models import Order, OrderItem
from app.ledger import service as ledger
from app.ledger.allocation import allocate, split_bps
from app.ledger.models import (
    CONTRIBUTIONS,
    PLATFORM_COMMISSION,
    PROCESSING_FEES,
    AccountKind,
    LedgerAccount,
    clearing_code,
    platform_code,
)
from app.ledger.money import Money

SALE = "sale"
PROCESSING_FEE = "processing_fee"
REFUND = "refund"
CHARGEBACK = "chargeback"
DISPUTE_FEE = "dispute_fee"
SALE_REINSTATED = "sale_reinstated"
# Kinds whose transactions carry an order's sale proceeds (what refunds and chargebacks reverse).
SALE_KINDS = (SALE, SALE_REINSTATED)

PLATFORM_ABSORBS = "platform_absorbs"
DEDUCT_BEFORE_SPLIT = "deduct_before_split"


def sale_key(order: Order) -> str:
    return f"order:{order.id}:sale"


def fee_key(order: Order) -> str:
    return f"order:{order.id}:fee"


def refund_key(order: Order, refunded_total_minor: int) -> str:
    # Keyed by the cumulative total, so each refund event posts its own increment once, in
    # whatever order the events arrive.
    return f"order:{order.id}:refund:{refunded_total_minor}"


def dispute_key(order: Order, dispute_id: str) -> str:
    return f"order:{order.id}:dispute:{dispute_id}"


def dispute_fee_key(order: Order, dispute_id: str) -> str:
    return f"order:{order.id}:dispute_fee:{dispute_id}"


def reinstated_key(order: Order, dispute_id: str) -> str:
    return f"order:{order.id}:reinstated:{dispute_id}"


@dataclass(frozen=True, slots=True)
class ItemSplit:
    artist: int
    platform: int


def split_item(amount_minor: int, artist_share_bps: int) -> ItemSplit:
    """The artist's and the platform's parts of one item's amount (they add up to it)."""
    artist, platform = split_bps(amount_minor, artist_share_bps)
    return ItemSplit(artist, platform)


# Accounts -------------------------------------------------------------------------------


def clearing_account(session: Session, gateway: str, currency: str) -> LedgerAccount:
    return ledger.account(session, clearing_code(gateway, currency), AccountKind.ASSET, currency)


def platform_account(session: Session, purpose: str, currency: str) -> LedgerAccount:
    kind = AccountKind.EXPENSE if purpose == PROCESSING_FEES else AccountKind.REVENUE
    return ledger.account(session, platform_code(purpose, currency), kind, currency)


# Entries --------------------------------------------------------------------------------


Entries = list[tuple[LedgerAccount, Money]]


def sale_entries(session: Session, order: Order) -> Entries:
    """Dr clearing the order's total; Cr each artist's payable, commission and contributions."""
    currency = order.currency
    credits: defaultdict[tuple[str, int | None], int] = defaultdict(int)
    for item in order.items:
        credits[("artist", item.artist_id)] += item.artist_share_minor
        base, extra = _platform_parts(item)
        credits[(PLATFORM_COMMISSION, None)] += base
        credits[(CONTRIBUTIONS, None)] += extra
    entries: Entries = [
        (clearing_account(session, order.gateway, currency), Money(order.total_minor, currency))
    ]
    # Accounts in one order (code-like: purpose, then artist), so that two first sales racing
    # to create the same new accounts on PostgreSQL wait for each other rather than deadlock.
    for (purpose, artist_id), amount in sorted(credits.items(), key=_account_order):
        if amount == 0:
            continue
        if artist_id is not None:
            target = ledger.artist_payable(session, artist_id, currency)
        else:
            target = platform_account(session, purpose, currency)
        entries.append((target, Money(-amount, currency)))
    return entries


def _account_order(entry: tuple[tuple[str, int | None], int]) -> tuple[str, int]:
    (purpose, artist_id), _ = entry
    return purpose, artist_id or 0


def _platform_parts(item: OrderItem) -> tuple[int, int]:
    """The platform's share of an item, split into (commission, contribution)."""
    if item.platform_share_minor == 0 or item.extra_minor == 0:
        return item.platform_share_minor, 0
    base, extra = allocate(
        item.platform_share_minor, [item.amount_minor - item.extra_minor, item.extra_minor]
    )
    return base, extra


def allocate_fee(items: Sequence[OrderItem], fee_minor: int) -> list[int]:
    """The fee spread over the items in proportion to their amounts (largest remainder)."""
    amounts = [item.amount_minor for item in items]
    if fee_minor == 0 or not any(amounts):
        return [0] * len(amounts)
    return allocate(fee_minor, amounts)


def fee_entries(
    session: Session, order: Order, fee_policy: str, artist_share_bps: int
) -> Entries:
    """The processor fee of a paid order (each item's ``fee_minor`` already set), by policy."""
    currency = order.currency
    debits: defaultdict[tuple[str, int | None], int] = defaultdict(int)
    if fee_policy == DEDUCT_BEFORE_SPLIT:
        for item in order.items:
            artist, platform = split_bps(item.fee_minor, artist_share_bps)
            debits[("artist", item.artist_id)] += artist
            debits[(PLATFORM_COMMISSION, None)] += platform
    else:
        debits[(PROCESSING_FEES, None)] = order.fee_minor
    entries: Entries = []
    for (purpose, artist_id), amount in sorted(debits.items(), key=_account_order):
        if amount == 0:
            continue
        if artist_id is not None:
            target = ledger.artist_payable(session, artist_id, currency)
        else:
            target = platform_account(session, purpose, currency)
        entries.append((target, Money(amount, currency)))
    entries.append(
        (clearing_account(session, order.gateway, currency), Money(-order.fee_minor, currency))
    )
    return entries


def platform_fee_entries(session: Session, order: Order, fee_minor: int) -> Entries:
    """A fee the platform bears whatever the policy (a dispute fee): Dr expense, Cr clearing."""
    currency = order.currency
    return [
        (platform_account(session, PROCESSING_FEES, currency), Money(fee_minor, currency)),
        (clearing_account(session, order.gateway, currency), Money(-fee_minor, currency)),
    ]


def order_details(order: Order, **extra: Any) -> Mapping[str, Any]:
    """What a transaction records about its order, for statements and people reading it."""
    return {"order_id": order.id, "order": order.public_id, **extra}
