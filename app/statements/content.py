"""A statement's content: what every format renders, and its canonical JSON.

The content is plain data (strings and integers, money as signed minor units; never a float),
so it has one canonical serialisation: JSON with sorted keys and no spaces, UTF-8. That text
is what a frozen statement stores and what its SHA-256 covers; ``from_json`` reads it back to
the same content, so a frozen statement renders from it alone.

In version 2 each line is an array of its values in the order of ``line_fields`` (stored
beside them: ``Line``'s fields), which made a statement of a hundred thousand lines half the
size and three times quicker to write than version 1, where each line is an object. Version 1
texts stay readable, and a content read from one writes the same text again.

``Line`` only ever gains fields at the end, with a default. A text written before a field
existed reads with its default, except ``commission_minor``: a sale line frozen before lines
carried it gets it from its own figures (``_old_line`` says why that is exact), so
an old statement shows the column too. Its stored text and hash stay as they were; writing
such a content again gives a text with the field.

Signs are the artist's: a line's ``amount_minor`` is what it adds to what the platform owes
them (a sale is positive, a refund or a payout negative), and the balances are what the
platform owes them. ``closing_minor == opening_minor + sum(line amounts)``, always.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from functools import cache
from operator import attrgetter
from typing import Any

from app.commerce.posting import CHARGEBACK, PROCESSING_FEE, REFUND, SALE, SALE_REINSTATED
from app.ledger.money import Money
from app.pools.periods import bounds
from app.pools.service import LAST_INSTANT

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
    # The platform's share of a sale line's price paid, as the sale posted it (extra included):
    # price_paid_minor - commission_minor - fee_minor == amount_minor (``app.statements.lines``).
    commission_minor: int | None = None

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

    def rate_per_1000_minor(self) -> int:
        """The amount per 1000 plays in minor units, rounded half to even: what statements
        show (``rate_per_1000`` keeps four places, for the API)."""
        if self.plays == 0:
            return 0
        quotient, remainder = divmod(self.amount_minor * 1000, self.plays)
        if 2 * remainder > self.plays or (2 * remainder == self.plays and quotient % 2):
            quotient += 1
        return quotient


@dataclass(frozen=True, slots=True)
class ItemTotal:
    """The sale lines of one item added up (a track's sales in the period)."""

    item: str
    item_type: str
    lines: int
    quantity: int
    price_paid_minor: int
    extra_minor: int
    fee_minor: int
    commission_minor: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class StatementContent:
    artist_slug: str
    artist_name: str
    period: str
    # What the statement covers: the calendar month, unless a close early in it or in the
    # month before moved a bound (``app.statements.lines``).
    starts_at: str
    ends_at: str  # exclusive: the first instant of the next statement
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
        """The statement's last day, ``YYYY-MM-DD``: the day of the instant before ``ends_at``."""
        return (datetime.fromisoformat(self.ends_at) - LAST_INSTANT).date().isoformat()

    @property
    def starts_late(self) -> bool:
        """Whether the statement starts after its month does (the month before closed early)."""
        return datetime.fromisoformat(self.starts_at) != bounds(self.period)[0]

    @property
    def ends_early(self) -> bool:
        """Whether the statement ends before its month does (the month was closed early)."""
        return datetime.fromisoformat(self.ends_at) != bounds(self.period)[1]

    def span(self) -> tuple[str, str, str]:
        """What the statement covers, for people: its first and last moments, and a note when
        that is not the calendar month. Days alone at a month's bound, the time too at a
        close: ("1 Dec", "3 Dec 2026, 10:04", "the month was closed early")."""
        starts_at = datetime.fromisoformat(self.starts_at)
        ends_at = datetime.fromisoformat(self.ends_at)
        at_midnight = ends_at.time() == time()
        # At midnight, the last day is the one before; at a close, the close itself.
        last = ends_at - (timedelta(days=1) if at_midnight else LAST_INSTANT)
        first = _moment(starts_at, year=starts_at.year != last.year)
        notes: list[str] = []
        if self.starts_late:
            notes.append(f"{starts_at:%B %Y} was closed early")
        if self.ends_early:
            notes.append("the month was closed early")
        return first, _moment(last, year=True, day_only=at_midnight), "; ".join(notes)

    def span_label(self) -> str:
        """``span`` in one line: "1 Dec – 3 Dec 2026, 10:04 UTC (the month was closed early)"."""
        first, last, note = self.span()
        return f"{first} – {last} UTC" + (f" ({note})" if note else "")

    def earnings_by_day(self) -> list[tuple[str, int]]:
        """Every day of the statement with what the artist earned on it (sales, ads...)."""
        by_day: defaultdict[str, int] = defaultdict(int)
        for line in self.lines:
            if line.kind in EARNING_KINDS:
                by_day[line.day] += line.amount_minor
        first = date.fromisoformat(self.starts_at[:10])
        days = (date.fromisoformat(self.last_day) - first).days + 1
        keys = [(first + timedelta(days=offset)).isoformat() for offset in range(days)]
        return [(key, by_day[key]) for key in keys]

    def sales_by_item(self) -> list[ItemTotal]:
        """The sale lines grouped by item (every sale of one track is one row), by amount,
        largest first."""
        groups: dict[tuple[str, str], list[Line]] = defaultdict(list)
        for line in self.lines:
            if line.kind == SALE:
                groups[(line.item, line.item_type)].append(line)
        totals = [
            ItemTotal(
                item=item,
                item_type=item_type,
                lines=len(lines),
                quantity=sum(line.quantity or 0 for line in lines),
                price_paid_minor=sum(line.price_paid_minor or 0 for line in lines),
                extra_minor=sum(line.extra_minor or 0 for line in lines),
                fee_minor=sum(line.fee_minor or 0 for line in lines),
                commission_minor=sum(line.commission_minor or 0 for line in lines),
                amount_minor=sum(line.amount_minor for line in lines),
            )
            for (item, item_type), lines in groups.items()
        ]
        return sorted(totals, key=lambda t: (-t.amount_minor, t.item, t.item_type))

    def rate_per_1000(self, share: AdShare) -> Money:
        """The share's amount per 1000 plays, rounded to the minor unit, to show."""
        return self.money(share.rate_per_1000_minor())

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


def _moment(at: datetime, *, year: bool, day_only: bool = False) -> str:
    """"3 Dec" (``year``: "3 Dec 2026"), or with the time unless at midnight or ``day_only``:
    "3 Dec 2026, 10:04" (and the seconds, when there are any)."""
    text = f"{at.day} {at:%b}"
    if day_only or at.time() == time():
        return f"{text} {at.year}" if year else text
    clock = f"{at:%H:%M:%S}" if at.second else f"{at:%H:%M}"
    return f"{text} {at.year}, {clock}"


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
            lines = tuple(_old_line(dict(zip(names, row, strict=True))) for row in rows)
    else:
        lines = tuple(_old_line(line) for line in rows)
    ads = tuple(
        AdShare(**{**ad, "tracks": tuple(AdTrack(**track) for track in ad["tracks"])})
        for ad in data.pop("ads")
    )
    return StatementContent(**data, lines=lines, ads=ads)


def _old_line(values: dict[str, Any]) -> Line:
    """A line as an earlier version stored it: a sale line without its commission gets it from
    its own figures, what the buyer paid less the artist's share of it (the line's amount and
    the fee deducted from it), which is what the sale posted to the platform."""
    line = Line(**values)
    if "commission_minor" in values or line.kind != SALE or line.price_paid_minor is None:
        return line
    commission = line.price_paid_minor - (line.fee_minor or 0) - line.amount_minor
    return replace(line, commission_minor=commission)


@dataclass(frozen=True, slots=True)
class StatementView:
    """A statement as it is shown: its content and, once frozen, the hash of that content."""

    content: StatementContent
    content_hash: str | None = None  # None while the period is open (provisional)

    @property
    def provisional(self) -> bool:
        return self.content_hash is None
