"""A statement's content: what every format renders, and its canonical JSON.

The content is plain data (strings and integers, money as signed minor units; never a float),
so it has one canonical serialisation: JSON with sorted keys and no spaces, UTF-8. That text
is what a frozen statement stores and what its SHA-256 covers; ``from_json`` reads it back to
the same content, so a frozen statement renders from it alone.

In version 2 each line is an array of its values in the order of ``line_fields`` (stored
beside them: ``Line``'s fields), which made a statement of a hundred thousand lines half the
size and three times quicker to write than version 1, where each line is an object. Version 1
texts stay readable, and a content read from one writes the same text again.

Signs are the artist's: a line's ``amount_minor`` is what it adds to what the platform owes
them (a sale is positive, a refund or a payout negative), and the balances are what the
platform owes them. ``closing_minor == opening_minor + sum(line amounts)``, always.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from functools import cache
from operator import attrgetter
from typing import Any

from app.commerce.posting import CHARGEBACK, PROCESSING_FEE, REFUND, SALE, SALE_REINSTATED
from app.ledger.money import Money

CONTENT_VERSION = 2

# Line kinds: the ledger transaction kinds a statement knows, and what it calls them. A kind
# it does not know (a manual correction, say) still gets a line, under its own name.
# The pools' ``ad_pool`` transaction is an "ad_share" line; the payout kinds are the payouts'
# ledger contract (``payout:<id>``, ``payout:<id>:reversed``).
AD_SHARE = "ad_share"
PAYOUT = "payout"
PAYOUT_REVERSAL = "payout_reversal"
KIND_LABELS = {
    SALE: "Sale",
    REFUND: "Refund",
    CHARGEBACK: "Chargeback",
    SALE_REINSTATED: "Dispute won",
    PROCESSING_FEE: "Processing fee",
    AD_SHARE: "Ad share",
    PAYOUT: "Payout",
    PAYOUT_REVERSAL: "Payout returned",
}
# Totals, in the order statements list them; kinds outside these add up under "other".
TOTAL_GROUPS: dict[str, tuple[str, ...]] = {
    "sales": (SALE,),
    "refunds": (REFUND,),
    "chargebacks": (CHARGEBACK, SALE_REINSTATED),
    "fees": (PROCESSING_FEE,),
    "ads": (AD_SHARE,),
    "payouts": (PAYOUT, PAYOUT_REVERSAL),
}
TOTAL_LABELS = {
    "sales": "Sales",
    "refunds": "Refunds",
    "chargebacks": "Chargebacks and disputes won",
    "fees": "Processing fees",
    "ads": "Ad share",
    "payouts": "Payouts",
    "other": "Other",
}
# Lines the "earnings by day" chart adds up: what the artist earned, not what they were paid.
EARNING_KINDS = frozenset({SALE, REFUND, CHARGEBACK, SALE_REINSTATED, PROCESSING_FEE, AD_SHARE})


@dataclass(frozen=True, slots=True)
class Line:
    """One movement of the artist's balance (a sale line is one item of an order)."""

    at: str  # ISO 8601, UTC: when the money moved (the ledger's effective time)
    kind: str
    reference: str  # the order's public id, the ad period's key, "payout <id>"...
    item: str
    amount_minor: int
    transaction_id: int
    item_type: str = ""  # "track" or "release" for sales
    quantity: int | None = None
    price_paid_minor: int | None = None
    extra_minor: int | None = None  # what a name-your-price buyer paid above the minimum
    fee_minor: int | None = None  # the processor fee deducted from the artist's share
    linked_sale: str = ""  # a refund's or chargeback's sale: its date (the order is `reference`)

    @property
    def day(self) -> str:
        return self.at[:10]

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.replace("_", " ").capitalize())


@dataclass(frozen=True, slots=True)
class AdTrack:
    title: str
    plays: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class AdShare:
    """The artist's share of one closed period's ad pool, track by track."""

    period: str
    model: str
    period_plays: int  # every earning play of the period, all artists
    pool_minor: int
    plays: int  # the artist's counted plays
    amount_minor: int
    rate_per_1000: str  # the artist's amount per 1000 of their plays, in major units
    tracks: tuple[AdTrack, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemTotal:
    """The lines of one kind and item added up (a track's sales in the period)."""

    kind: str
    item: str
    item_type: str
    lines: int
    quantity: int
    price_paid_minor: int
    extra_minor: int
    fee_minor: int
    amount_minor: int

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind.replace("_", " ").capitalize())


@dataclass(frozen=True, slots=True)
class StatementContent:
    artist_slug: str
    artist_name: str
    period: str
    starts_at: str
    ends_at: str  # exclusive: the first instant of the next period
    currency: str
    closed: bool
    opening_minor: int
    closing_minor: int
    lines: tuple[Line, ...] = ()
    ads: tuple[AdShare, ...] = ()
    version: int = CONTENT_VERSION

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)

    @property
    def lines_total_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)

    def totals(self) -> dict[str, int]:
        """Each group's sum (``TOTAL_GROUPS``, then "other"), only the groups with lines."""
        group_of = {kind: group for group, kinds in TOTAL_GROUPS.items() for kind in kinds}
        sums: defaultdict[str, int] = defaultdict(int)
        for line in self.lines:
            sums[group_of.get(line.kind, "other")] += line.amount_minor
        return {group: sums[group] for group in TOTAL_LABELS if group in sums}

    def labelled_totals(self) -> list[tuple[str, int]]:
        """``totals`` under the names statements show them by."""
        return [(TOTAL_LABELS[group], total) for group, total in self.totals().items()]

    @property
    def last_day(self) -> str:
        """The period's last day, ``YYYY-MM-DD``: the one before ``ends_at``."""
        return (datetime.fromisoformat(self.ends_at) - timedelta(days=1)).date().isoformat()

    def earnings_by_day(self) -> list[tuple[str, int]]:
        """Every day of the period with what the artist earned on it (sales, refunds, ads...)."""
        by_day: defaultdict[str, int] = defaultdict(int)
        for line in self.lines:
            if line.kind in EARNING_KINDS:
                by_day[line.day] += line.amount_minor
        first = date.fromisoformat(self.starts_at[:10])
        days = (datetime.fromisoformat(self.ends_at) - datetime.fromisoformat(self.starts_at)).days
        keys = [(first + timedelta(days=offset)).isoformat() for offset in range(days)]
        return [(key, by_day[key]) for key in keys]

    def by_item(self) -> list[ItemTotal]:
        """The lines grouped by kind and item (every sale of one track is one row), kinds in
        the order of ``TOTAL_GROUPS``, then by amount, largest first."""
        kinds = [kind for group in TOTAL_GROUPS.values() for kind in group]
        order = {kind: rank for rank, kind in enumerate(kinds)}
        groups: dict[tuple[str, str, str], list[Line]] = defaultdict(list)
        for line in self.lines:
            groups[(line.kind, line.item, line.item_type)].append(line)
        totals = [
            ItemTotal(
                kind=kind,
                item=item,
                item_type=item_type,
                lines=len(lines),
                quantity=sum(line.quantity or 0 for line in lines),
                price_paid_minor=sum(line.price_paid_minor or 0 for line in lines),
                extra_minor=sum(line.extra_minor or 0 for line in lines),
                fee_minor=sum(line.fee_minor or 0 for line in lines),
                amount_minor=sum(line.amount_minor for line in lines),
            )
            for (kind, item, item_type), lines in groups.items()
        ]
        return sorted(
            totals, key=lambda t: (order.get(t.kind, len(order)), t.kind, -t.amount_minor, t.item)
        )

    def canonical_json(self) -> bytes:
        names, get = _fields_of(StatementContent)
        plain = {
            name: _plain(value)
            for name, value in zip(names, get(self), strict=True)
            if name != "lines"
        }
        if self.version >= LINES_AS_ARRAYS:
            line_names, line_values = _fields_of(Line)
            plain["line_fields"] = list(line_names)
            plain["lines"] = [line_values(line) for line in self.lines]
        else:
            plain["lines"] = [_plain(line) for line in self.lines]
        return json.dumps(
            plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    def content_hash(self) -> str:
        """The SHA-256 (hex) of the canonical JSON."""
        return hash_of(self.canonical_json())


# The first content version that writes each line as an array (module docstring).
LINES_AS_ARRAYS = 2


def hash_of(canonical: bytes) -> str:
    """The content hash of a canonical JSON text: its SHA-256, in hex."""
    return hashlib.sha256(canonical).hexdigest()


_SCALARS = frozenset({str, int, bool, type(None)})


@cache
def _fields_of(cls: type) -> tuple[tuple[str, ...], Callable[[Any], tuple[Any, ...]]]:
    """A dataclass's field names, and a getter of all their values at once."""
    names = tuple(field.name for field in fields(cls))
    get = attrgetter(*names)
    return names, (get if len(names) > 1 else lambda value: (get(value),))


def _plain(value: Any) -> Any:
    """The content as JSON-ready dicts and lists, what ``dataclasses.asdict`` gives, without
    its deep copy of every value: the content holds only scalars, tuples and its own frozen
    dataclasses, and copying a hundred thousand lines' fields took seconds."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    names, get = _fields_of(type(value))
    values = get(value)
    if _SCALARS.issuperset(map(type, values)):  # a line: only scalars
        return dict(zip(names, values, strict=True))
    return {name: _plain(item) for name, item in zip(names, values, strict=True)}


def from_json(text: str | bytes) -> StatementContent:
    """The content that ``canonical_json`` wrote, in any version."""
    data: dict[str, Any] = json.loads(text)
    rows = data.pop("lines")
    if "line_fields" in data:
        names = tuple(data.pop("line_fields"))
        if names == _fields_of(Line)[0]:
            lines = tuple(Line(*row) for row in rows)
        else:  # written before Line gained a field (they only ever come at the end)
            lines = tuple(Line(**dict(zip(names, row, strict=True))) for row in rows)
    else:
        lines = tuple(Line(**line) for line in rows)
    ads = tuple(
        AdShare(**{**ad, "tracks": tuple(AdTrack(**track) for track in ad["tracks"])})
        for ad in data.pop("ads")
    )
    return StatementContent(**data, lines=lines, ads=ads)


@dataclass(frozen=True, slots=True)
class StatementView:
    """A statement as it is shown: its content and, once frozen, the hash of that content."""

    content: StatementContent
    content_hash: str | None = None  # None while the period is open (provisional)

    @property
    def provisional(self) -> bool:
        return self.content_hash is None
