"""A statement's content, read from the ledger: one line per movement of the artist's payable.

A statement of month M covers the entries effective in ``[cut(M-1), cut(M))``. A month's cut
is its end, unless the admin closed it early (``Period.closed_at`` before its end): then it is
the instant just after the close, that is just after the effective time of its ``period:<key>``
transaction (or of the close itself, when it posted none). So nothing falls between two
statements: a sale on 5 December, after December was closed early on the 3rd, is in January's
statement, which opens where December's closes. Known limit: a posting recorded after a close
but dated before its cut (a backdated correction) falls in the closed month's range, and a
statement frozen before it was recorded does not show it.

The lines are the entries on ``artist_payable:<artist>:<currency>`` effective within that
range; every entry becomes exactly one line, or is split into several (a sale into its items)
or folded into another (a deducted processing fee into its sale's items) by largest-remainder
allocation of the entry's own amount. So the lines add up to the entries by construction, and
the closing balance, read from the ledger separately at the range's last instant, must equal
the opening balance plus the lines; ``build_content`` checks it.

Balances go by the ledger's ``effective_at`` and its ``at`` is inclusive, so the opening
balance is the balance just before the range starts (minus one microsecond, the ledger's
precision) and the closing one at its last instant: exactly what ``megabox ledger balance
ARTIST --at <last instant>`` prints.

What each kind of entry says comes from the rows its transaction's key names: ``order:<id>:...``
(its items from ``order_items``), ``period:<key>`` (the period and its ``period_allocations``),
``payout:<id>`` (the payout's transfer). Rows are read in batches, never one per entry, so a
statement of a hundred thousand sales is a handful of queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger, ColumnElement, String, Text, any_, cast, func, literal, select, type_coerce,
)  # fmt: skip
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.catalog.models import Artist
from app.commerce.models import Order, OrderItem
from app.ledger import service as ledger
from app.ledger.allocation import allocate
from app.ledger.models import LedgerEntry, LedgerTransaction
from app.ledger.money import exponent
from app.payouts.models import Payout
from app.pools.models import Period, PeriodAllocation, PeriodStatus
from app.pools.periods import bounds, period_key
from app.pools.service import AD_POOL_KIND, LAST_INSTANT
from app.statements.content import (
    AD_SHARE,
    CHARGEBACK,
    PAYOUT,
    PAYOUT_REVERSAL,
    PROCESSING_FEE,
    REFUND,
    SALE,
    SALE_REINSTATED,
    AdShare,
    AdTrack,
    Line,
    StatementContent,
)

# Ids per "IN (...)" list on SQLite: well under its bound-parameter limit.
LOOKUP_BATCH = 1000
RATE_PLACES = Decimal("0.0001")
MODEL_LABELS = {"pro_rata": "pro rata", "user_centric": "user-centric"}
ORDER_REVERSAL_KINDS = frozenset({REFUND, CHARGEBACK, SALE_REINSTATED})


class StatementOutOfBalance(RuntimeError):
    """The lines do not take the opening balance to the ledger's closing balance: a bug, or
    an entry written between the two reads. Nothing is shown or stored then."""


# Named tuples, not frozen dataclasses: a statement makes a hundred thousand of each, and a
# frozen dataclass sets each field through object.__setattr__.
class _Entry(NamedTuple):
    amount: int  # the ledger's sign: debit positive
    transaction_id: int
    kind: str
    key: str
    at: str  # ISO 8601: the transaction's effective time, as the line shows it
    description: str
    order_id: int | None  # the order an ``order:<id>:...`` key names

    def key_part(self, index: int) -> str:
        parts = self.key.split(":")
        return parts[index] if len(parts) > index else ""


class _Item(NamedTuple):
    title: str
    kind: str
    amount_minor: int
    extra_minor: int
    artist_share_minor: int
    fee_minor: int


class _OrderFacts(NamedTuple):
    id: int
    public_id: str
    items: list[_Item]  # the artist's items in the order, filled as their rows are read


def last_instant(moment: datetime) -> datetime:
    """The last instant before ``moment``, which a ledger balance ``at`` includes."""
    return moment - LAST_INSTANT


def early_cuts(session: Session) -> dict[str, datetime]:
    """The cut of every month closed before its end (module docstring): key -> the instant
    just after its close. Months closed at or after their end are not here: their cut is
    their end."""
    rows = session.execute(
        select(Period.key, Period.closed_at, LedgerTransaction.effective_at)
        .outerjoin(LedgerTransaction, LedgerTransaction.id == Period.ledger_transaction_id)
        .where(Period.status == PeriodStatus.CLOSED, Period.closed_at < Period.ends_at)
    )
    return {key: (posted or closed) + LAST_INSTANT for key, closed, posted in rows}


def month_range(key: str, cuts: Mapping[str, datetime]) -> tuple[datetime, datetime]:
    """What the statement of month ``key`` covers, ``[start, end)``: from the previous month's
    cut to its own, given ``early_cuts``. Raises InvalidInput for a bad key."""
    starts_at, ends_at = bounds(key)
    previous = period_key(last_instant(starts_at))
    return cuts.get(previous, starts_at), cuts.get(key, ends_at)


def statement_range(session: Session, key: str) -> tuple[datetime, datetime]:
    """``month_range`` of ``key`` with the closes as they are now."""
    return month_range(key, early_cuts(session))


def build_content(
    session: Session,
    artist: Artist,
    key: str,
    span: tuple[datetime, datetime],
    currency: str,
    account_id: int,
    *,
    closed: bool,
) -> StatementContent:
    """The statement of ``artist`` for month ``key`` in ``currency`` (payable ``account_id``),
    covering ``span`` (``statement_range``).

    Raises StatementOutOfBalance (see the class).
    """
    starts_at, ends_at = span
    opening = _owed(session, artist.id, currency, last_instant(starts_at))
    entries = _entries(session, account_id, starts_at, ends_at)
    lines, ads = _Lines(session, artist.id, currency, entries).build()
    closing = _owed(session, artist.id, currency, last_instant(ends_at))
    if opening + sum(line.amount_minor for line in lines) != closing:
        raise StatementOutOfBalance(
            f"statement {artist.slug} {key} {currency}: lines do not reconcile to the ledger"
        )
    return StatementContent(
        artist_slug=artist.slug,
        artist_name=artist.name,
        period=key,
        starts_at=starts_at.isoformat(),
        ends_at=ends_at.isoformat(),
        currency=currency,
        closed=closed,
        opening_minor=opening,
        closing_minor=closing,
        lines=tuple(lines),
        ads=tuple(ads),
    )


def first_activity(session: Session, account_ids: Sequence[int]) -> datetime | None:
    """When the earliest entry on these accounts took effect, or None without entries."""
    if not account_ids:
        return None
    return session.scalar(
        select(func.min(LedgerTransaction.effective_at))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .where(LedgerEntry.account_id.in_(list(account_ids)))
    )


def _owed(session: Session, artist_id: int, currency: str, at: datetime) -> int:
    return ledger.artist_balances(session, artist_id, at=at).get(currency, 0)


def _entries(
    session: Session, account_id: int, starts_at: datetime, ends_at: datetime
) -> list[_Entry]:
    # Table columns, not the models': a hundred thousand rows come back as plain rows.
    entry, transaction = LedgerEntry.__table__.c, LedgerTransaction.__table__.c
    rows = session.execute(
        select(
            entry.amount, transaction.id, transaction.kind, transaction.idempotency_key,
            transaction.effective_at, transaction.description,
        )  # fmt: skip
        .join_from(LedgerEntry.__table__, LedgerTransaction.__table__,
                   entry.transaction_id == transaction.id)  # fmt: skip
        .where(
            entry.account_id == account_id,
            transaction.effective_at >= starts_at,
            transaction.effective_at < ends_at,
        )
        .order_by(transaction.effective_at, transaction.id, entry.id)
    ).all()  # fetched at once: row by row costs more than the query
    return [
        _Entry(amount, transaction_id, kind, key, at.isoformat(), description, _order_id(key))
        for amount, transaction_id, kind, key, at, description in rows
    ]


def _among(session: Session, column: Any, ids: Iterable[int]) -> Iterable[ColumnElement[bool]]:
    """Conditions ``column IN ids`` that together cover ``ids``: on PostgreSQL one, the ids
    bound as a single array literal (a hundred thousand separate parameters cost far more to
    send and parse than the query takes to run), elsewhere one per LOOKUP_BATCH ids."""
    ordered = sorted(set(ids))
    if not ordered:
        return
    if session.get_bind().dialect.name == "postgresql":
        array = "{" + ",".join(map(str, ordered)) + "}"
        yield column == any_(cast(literal(array, Text()), ARRAY(BigInteger)))
        return
    for start in range(0, len(ordered), LOOKUP_BATCH):
        yield column.in_(ordered[start : start + LOOKUP_BATCH])


def _as_id(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _order_id(key: str) -> int | None:
    """The order an ``order:<id>:...`` key names."""
    return _as_id(key.split(":", 2)[1]) if key.startswith("order:") else None


class _Lines:
    """Turns one statement's entries into lines, with the rows they name read in batches."""

    def __init__(self, session: Session, artist_id: int, currency: str, entries: list[_Entry]):
        self.session = session
        self.artist_id = artist_id
        self.currency = currency
        self.entries = entries
        self.orders = self._orders()
        self.paid_on = self._paid_on()
        self.transfers = self._transfers()
        self.lines: list[Line] = []
        # Where each order's sale lines are in ``lines``, for its processing fee to find them.
        self.sale_lines: dict[int, range] = {}

    def build(self) -> tuple[list[Line], list[AdShare]]:
        ads: list[AdShare] = []
        for entry in self.entries:
            order = self.orders.get(entry.order_id or 0)
            if order is not None and entry.kind == SALE:
                self._sale(entry, order)
            elif order is not None and entry.kind == PROCESSING_FEE and order.id in self.sale_lines:
                self._fee(entry, order)
            elif order is not None and entry.kind in ORDER_REVERSAL_KINDS:
                self._order_reversal(entry, order)
            elif entry.kind == AD_POOL_KIND and entry.key.startswith("period:"):
                ads.append(self._ad_share(entry))
            elif entry.kind in (PAYOUT, PAYOUT_REVERSAL) and entry.key.startswith("payout:"):
                self._payout(entry)
            else:
                self.lines.append(self._line(entry, item=entry.description or entry.kind))
        return self.lines, ads

    # Reading what the keys name ----------------------------------------------------------

    def _orders(self) -> dict[int, _OrderFacts]:
        """The orders the entries' keys name, each with the artist's items in it."""
        ids = {entry.order_id for entry in self.entries if entry.order_id is not None}
        # Table columns, not the models': plain rows, one per order and item of the artist's.
        order, item = Order.__table__.c, OrderItem.__table__.c
        of_artist = (item.order_id == order.id) & (item.artist_id == self.artist_id)
        query = (
            select(
                # The kind's text as stored: no enum made and turned back into text per row.
                order.id, order.public_id, item.title, type_coerce(item.kind, String()),
                item.amount_minor, item.extra_minor, item.artist_share_minor, item.fee_minor,
            )  # fmt: skip
            .select_from(Order.__table__.outerjoin(OrderItem.__table__, of_artist))
            .order_by(order.id, item.id)
        )
        found: dict[int, _OrderFacts] = {}
        for among in _among(self.session, order.id, ids):
            for (order_id, public_id, title, kind, amount, extra, share,
                 fee) in self.session.execute(query.where(among)).all():  # fmt: skip
                facts = found.get(order_id)
                if facts is None:
                    facts = found[order_id] = _OrderFacts(order_id, public_id, [])
                if title is not None:
                    facts.items.append(_Item(title, kind, amount, extra, share, fee))
        return found

    def _paid_on(self) -> dict[int, str]:
        """The day each order refunded or charged back here was paid (its lines link to the
        sale by it); read for those orders alone, a few among many sales."""
        ids = {
            entry.order_id
            for entry in self.entries
            if entry.order_id is not None and entry.kind in ORDER_REVERSAL_KINDS
        }
        found: dict[int, str] = {}
        for among in _among(self.session, Order.id, ids):
            rows = self.session.execute(select(Order.id, Order.paid_at).where(among))
            found.update({order_id: paid.date().isoformat() for order_id, paid in rows if paid})
        return found

    def _transfers(self) -> dict[int, str]:
        ids = {
            payout_id
            for entry in self.entries
            if entry.key.startswith("payout:")
            and (payout_id := _as_id(entry.key_part(1))) is not None
        }
        found: dict[int, str] = {}
        for among in _among(self.session, Payout.id, ids):
            rows = self.session.execute(select(Payout.id, Payout.transfer_reference).where(among))
            found.update({payout_id: reference or "" for payout_id, reference in rows})
        return found

    # Lines --------------------------------------------------------------------------------

    def _line(self, entry: _Entry, **fields: Any) -> Line:
        defaults: dict[str, Any] = {
            "at": entry.at,
            "kind": entry.kind,
            "reference": "",
            "item": entry.description,
            # The artist's sign: a credit to their payable is money owed to them.
            "amount_minor": -entry.amount,
            "transaction_id": entry.transaction_id,
        }
        return Line(**(defaults | fields))

    def _sale(self, entry: _Entry, order: _OrderFacts) -> None:
        """One line per item of the artist's in the order, the entry split by their shares.

        A line's commission is what the buyer paid for the item (the extra included) less the
        artist's share of it, read from this entry: the platform's part, which the sale posted
        to ``platform_commission`` and, for a name-your-price extra, ``contributions``
        (``app.commerce.posting``): what ``ARTIST_SHARE_BPS`` leaves of the whole price paid
        (10% by default, to the minor unit the split rounds to). A fee deducted before the
        split (``_fee``) then comes off the amount, the artist's part of it only (the platform
        bears the rest, which the line does not show). So on every sale line, exactly,
        ``price_paid_minor - commission_minor - fee_minor == amount_minor``.
        """
        items = order.items
        if len(items) == 1 and items[0].artist_share_minor:
            shares = [-entry.amount]  # what allocate gives, without its cost
        elif any(item.artist_share_minor for item in items):
            shares = allocate(-entry.amount, [item.artist_share_minor for item in items])
        else:
            self.lines.append(self._line(entry, kind=SALE, reference=order.public_id))
            return
        first = len(self.lines)
        self.sale_lines[order.id] = range(first, first + len(items))
        for item, share in zip(items, shares, strict=True):
            # Made directly, not through _line: a statement may hold 100k of these.
            self.lines.append(
                Line(
                    at=entry.at, kind=SALE, reference=order.public_id, item=item.title,
                    amount_minor=share, transaction_id=entry.transaction_id,
                    item_type=item.kind, quantity=1, price_paid_minor=item.amount_minor,
                    extra_minor=item.extra_minor, fee_minor=0,
                    commission_minor=item.amount_minor - share,
                )  # fmt: skip
            )

    def _fee(self, entry: _Entry, order: _OrderFacts) -> None:
        """A fee deducted from the artist's share (``deduct_before_split``) shows on the sale
        lines of its order, split over them by each item's part of the fee."""
        indexes = self.sale_lines[order.id]
        weights = [item.fee_minor for item in order.items]
        if len(weights) != len(indexes) or not any(weights):
            weights = [self.lines[index].amount_minor or 1 for index in indexes]
        for index, part in zip(indexes, allocate(entry.amount, weights), strict=True):
            line = self.lines[index]
            self.lines[index] = replace(
                line,
                fee_minor=(line.fee_minor or 0) + part,
                amount_minor=line.amount_minor - part,
            )

    def _order_reversal(self, entry: _Entry, order: _OrderFacts) -> None:
        """A refund, chargeback or dispute won: one line, linked to its sale by the order's
        public id (the sale lines' reference) and the sale's date."""
        items = order.items
        self.lines.append(
            self._line(
                entry,
                reference=order.public_id,
                item=", ".join(item.title for item in items) or entry.description,
                item_type=items[0].kind if len(items) == 1 else "",
                linked_sale=self.paid_on.get(order.id, ""),
            )
        )

    def _ad_share(self, entry: _Entry) -> AdShare:
        key = entry.key.removeprefix("period:")
        period = self.session.scalar(select(Period).where(Period.key == key))
        rows = (
            self.session.execute(
                select(
                    PeriodAllocation.track_title, PeriodAllocation.plays,
                    PeriodAllocation.amount_minor,
                )  # fmt: skip
                .where(
                    PeriodAllocation.period_id == period.id,
                    PeriodAllocation.artist_id == self.artist_id,
                )
                .order_by(PeriodAllocation.amount_minor.desc(), PeriodAllocation.id)
            ).all()
            if period is not None
            else []
        )
        tracks = tuple(AdTrack(title, int(plays), int(amount)) for title, plays, amount in rows)
        plays = sum(track.plays for track in tracks)
        model = str(period.model) if period is not None else ""
        share = AdShare(
            period=key,
            model=model,
            period_plays=int(period.earning_plays or 0) if period is not None else 0,
            pool_minor=int(period.pool_minor or 0) if period is not None else 0,
            plays=plays,
            amount_minor=-entry.amount,
            rate_per_1000=self._rate_per_1000(-entry.amount, plays),
            tracks=tracks,
        )
        label = MODEL_LABELS.get(model, model)
        self.lines.append(
            self._line(
                entry, kind=AD_SHARE, reference=key, quantity=plays,
                item=f"Ad share of {key} ({label}, {plays:,} plays)",
            )  # fmt: skip
        )
        return share

    def _rate_per_1000(self, amount_minor: int, plays: int) -> str:
        """The amount per 1000 plays in major units, to four places (half to even)."""
        if plays == 0:
            return "0"
        rate = Decimal(amount_minor * 1000) / plays / (Decimal(10) ** exponent(self.currency))
        return str(rate.quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN))

    def _payout(self, entry: _Entry) -> None:
        payout_id = entry.key_part(1)
        reference = self.transfers.get(_as_id(payout_id) or 0, "")
        what = "Payout" if entry.kind == PAYOUT else "Payout returned"
        item = f"{what} ({reference})" if reference else what
        self.lines.append(self._line(entry, reference=f"payout {payout_id}", item=item))

