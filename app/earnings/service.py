"""What the artist's earnings dashboard and the admin's overview show, read from the ledger.

Every money figure is a SQL sum of ledger entries, so the pages agree with ``megabox ledger
balance`` by construction. Nothing here loads sales or plays into Python: each query groups
in the database (by day, kind, currency, track) and returns at most a few hundred rows, read
over indexed columns (``ledger_entries.account_id``, ``ledger_transactions.effective_at``,
``plays (track_id, counted_at)``, ``order_items.artist_id``).

Days and months are UTC, as periods are (``app.pools.periods``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Date, cast, func, select
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.catalog.errors import ArtistNotFound
from app.catalog.models import Artist, Release, Track
from app.commerce import posting
from app.commerce.models import Order, OrderItem
from app.commerce.service import MONEYED_STATUSES, artist_sales
from app.ledger.models import (
    ADS_RECEIVABLE,
    ARTIST_PAYABLE_PREFIX,
    CLEARING_PREFIX,
    CONTRIBUTIONS,
    PLATFORM_COMMISSION,
    PROCESSING_FEES,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from app.payouts.service import (
    PayoutView,
    RunView,
    artist_payouts,
    failed_payouts,
    recent_runs,
)
from app.plays.models import TrackPlayDay
from app.extensions import db
from app.pools.models import Period, PeriodAllocation, PeriodStatus
from app.pools.periods import bounds, period_key
from app.pools.service import AD_POOL_KIND
from app.timestamps import utcnow

# The window of the dashboard's charts and top tracks, in days up to and including today.
CHART_DAYS = 90
TOP_TRACKS = 10
RECENT_SALES = 10
RECENT_PAYOUTS = 20
RECENT_RUNS = 10
RECENT_FAILURES = 20

# Ledger kinds (app.commerce.posting, app.payouts): what counts as sales on the
# dashboard is the artist's share of sales net of what refunds and chargebacks took back.
SALES_KINDS = (posting.SALE, posting.SALE_REINSTATED, posting.REFUND, posting.CHARGEBACK)
PAYOUT_KINDS = ("payout", "payout_reversal")


# The artist's dashboard -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdShare:
    """The artist's share of a closed period's ad pool."""

    period_key: str
    currency: str
    amount_minor: int
    plays: int


@dataclass(frozen=True, slots=True)
class TrackPlays:
    track_id: int
    title: str
    plays: int


@dataclass(frozen=True, slots=True)
class ItemRevenue:
    """Sales of one track or release: the artist's share, before refunds."""

    title: str
    kind: str
    currency: str
    sold: int
    artist_share_minor: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    artist: Artist
    month: str
    # Per currency: what the platform owes the artist now (positive when it owes them).
    balances: dict[str, int]
    # Per currency, this month so far: sales net of refunds and chargebacks, and the
    # processor fees charged to the artist (only under the deduct_before_split policy).
    month_sales: dict[str, int]
    month_fees: dict[str, int]
    last_ad_share: AdShare | None
    days: list[str]
    plays_by_day: list[tuple[str, int]]
    # Per currency, the artist's share of sales net of refunds, by day.
    sales_by_day: dict[str, list[tuple[str, int]]]
    top_by_plays: list[TrackPlays]
    top_by_revenue: list[ItemRevenue]
    recent_sales: list[OrderItem]
    payouts: list[PayoutView]

    @property
    def currencies(self) -> list[str]:
        """The currencies the artist has a balance or this month's earnings in."""
        return sorted(set(self.balances) | set(self.month_sales) | set(self.month_fees))


def owned_artist(user: User, slug: str | None) -> Artist | None:
    """The user's artist profile called ``slug``, or their first one when no slug is given;
    an administrator may name any artist.

    None when the user has no profile. Raises ArtistNotFound for a slug the user may not
    see, exactly as for one that does not exist, so a guessed slug learns nothing.
    """
    artists = sorted(user.artists, key=lambda artist: artist.id)
    if slug is None:
        return artists[0] if artists else None
    for artist in artists:
        if artist.slug == slug:
            return artist
    if user.is_admin:
        found = db.session.scalar(select(Artist).where(Artist.slug == slug))
        if found is not None:
            return found
    raise ArtistNotFound(f"No artist called {slug!r}.")


def dashboard(session: Session, artist: Artist, now: datetime | None = None) -> Dashboard:
    """Everything the earnings dashboard shows for ``artist`` as of ``now``."""
    now = now or utcnow()
    days = _days_ending(now.astimezone(UTC).date(), CHART_DAYS)
    since = datetime.combine(date.fromisoformat(days[0]), datetime.min.time(), UTC)
    month = period_key(now)
    month_start = bounds(month)[0].date().isoformat()
    by_day_kind = _payable_by_day_and_kind(session, artist.id, since)
    month_sales: defaultdict[str, int] = defaultdict(int)
    month_fees: defaultdict[str, int] = defaultdict(int)
    sales_days: defaultdict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (day, kind, currency), owed in by_day_kind.items():
        if kind in SALES_KINDS:
            sales_days[currency][day] += owed
            if day >= month_start:
                month_sales[currency] += owed
        elif kind == posting.PROCESSING_FEE and day >= month_start:
            month_fees[currency] += -owed
    plays = _plays_by_track_and_day(session, artist.id, since)
    plays_by_day: defaultdict[str, int] = defaultdict(int)
    plays_by_track: defaultdict[int, int] = defaultdict(int)
    for (track_id, day), count in plays.items():
        plays_by_day[day] += count
        plays_by_track[track_id] += count
    return Dashboard(
        artist=artist,
        month=month,
        balances=_artist_balances(session, artist.id),
        month_sales=dict(month_sales),
        month_fees={currency: fee for currency, fee in month_fees.items() if fee},
        last_ad_share=last_ad_share(session, artist.id),
        days=days,
        plays_by_day=[(day, plays_by_day.get(day, 0)) for day in days],
        sales_by_day={
            currency: [(day, owed.get(day, 0)) for day in days]
            for currency, owed in sorted(sales_days.items())
        },
        top_by_plays=_top_by_plays(session, plays_by_track),
        top_by_revenue=_top_by_revenue(session, artist.id, since),
        recent_sales=artist_sales(session, artist.id, RECENT_SALES),
        payouts=artist_payouts(session, artist.id, limit=RECENT_PAYOUTS),
    )


def _days_ending(last: date, count: int) -> list[str]:
    """``count`` ISO dates up to and including ``last``, oldest first."""
    return [(last - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


def _payable_accounts(artist_id: int) -> Any:
    """The ids of the artist's payable accounts (one per currency), as a subquery."""
    return select(LedgerAccount.id).where(
        LedgerAccount.artist_id == artist_id,
        LedgerAccount.code.startswith(ARTIST_PAYABLE_PREFIX),
    )


def _artist_balances(session: Session, artist_id: int) -> dict[str, int]:
    """``ledger.artist_balances`` in one query: positive when the platform owes the artist."""
    rows = session.execute(
        select(LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .where(LedgerEntry.account_id.in_(_payable_accounts(artist_id)))
        .group_by(LedgerEntry.currency)
    )
    return {currency: -int(total) for currency, total in rows}


def _payable_by_day_and_kind(
    session: Session, artist_id: int, since: datetime
) -> dict[tuple[str, str, str], int]:
    """(day, kind, currency) -> what those transactions added to what the artist is owed."""
    day = _day(session, LedgerTransaction.effective_at)
    rows = session.execute(
        select(day, LedgerTransaction.kind, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerEntry.account_id.in_(_payable_accounts(artist_id)),
            LedgerTransaction.effective_at >= since,
        )
        .group_by(day, LedgerTransaction.kind, LedgerEntry.currency)
    )
    return {(str(d), kind, currency): -int(total) for d, kind, currency, total in rows}


def _plays_by_track_and_day(
    session: Session, artist_id: int, since: datetime
) -> dict[tuple[int, str], int]:
    """(track id, day) -> counted plays, from the daily counts kept as plays count."""
    tracks = select(Track.id).join(Release).where(Release.artist_id == artist_id)
    rows = session.execute(
        select(TrackPlayDay.track_id, TrackPlayDay.day, TrackPlayDay.plays).where(
            TrackPlayDay.track_id.in_(tracks), TrackPlayDay.day >= since.date()
        )
    )
    return {(track_id, day.isoformat()): int(count) for track_id, day, count in rows}


def _top_by_plays(session: Session, plays_by_track: Mapping[int, int]) -> list[TrackPlays]:
    """The most played tracks, most plays first (ties by title, then id, for a stable order)."""
    if not plays_by_track:
        return []
    rows = session.execute(select(Track.id, Track.title).where(Track.id.in_(list(plays_by_track))))
    titles = {track_id: title for track_id, title in rows}
    ranked = sorted(
        (TrackPlays(track_id, titles.get(track_id, ""), plays)
         for track_id, plays in plays_by_track.items() if plays),
        key=lambda row: (-row.plays, row.title, row.track_id),
    )  # fmt: skip
    return ranked[:TOP_TRACKS]


def _top_by_revenue(session: Session, artist_id: int, since: datetime) -> list[ItemRevenue]:
    """The tracks and releases that earned the artist most, from paid orders since ``since``."""
    share = func.sum(OrderItem.artist_share_minor)
    rows = session.execute(
        select(
            OrderItem.release_id, OrderItem.track_id, OrderItem.kind, Order.currency,
            func.min(OrderItem.title), func.count(), share,
        )
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            OrderItem.artist_id == artist_id,
            Order.status.in_(MONEYED_STATUSES),
            Order.paid_at >= since,
        )
        .group_by(OrderItem.release_id, OrderItem.track_id, OrderItem.kind, Order.currency)
        .order_by(share.desc(), func.min(OrderItem.title))
        .limit(TOP_TRACKS)
    )  # fmt: skip
    return [
        ItemRevenue(title, str(kind), currency, int(sold), int(total))
        for _, _, kind, currency, title, sold, total in rows
    ]


def last_ad_share(session: Session, artist_id: int) -> AdShare | None:
    """The artist's share of the latest closed period's pool, as its close posted it.

    This month's share is only known once the month closes (the split needs all its plays
    and its revenue), so the dashboard shows the last one that is.
    """
    period = session.scalar(
        select(Period)
        .where(Period.status == PeriodStatus.CLOSED)
        .order_by(Period.starts_at.desc())
        .limit(1)
    )
    if period is None:
        return None
    owed = 0
    if period.ledger_transaction_id is not None:
        owed = -int(
            session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                    LedgerEntry.transaction_id == period.ledger_transaction_id,
                    LedgerEntry.account_id.in_(_payable_accounts(artist_id)),
                )
            )
        )
    plays = session.scalar(
        select(func.coalesce(func.sum(PeriodAllocation.plays), 0)).where(
            PeriodAllocation.period_id == period.id, PeriodAllocation.artist_id == artist_id
        )
    )
    return AdShare(period.key, period.currency, owed, int(plays))


# The admin's overview ---------------------------------------------------------------------


@dataclass
class MonthTotals:
    """One month's platform figures in one currency, from the ledger (signs made positive).

    - gross_sales: what buyers paid (sales debit the gateway's clearing account)
    - refunds: what refunds and chargebacks gave back, net of chargebacks won
    - commission: the platform's revenue from sales (commission and contributions)
    - fees: processor and dispute fees the platform bore
    - ad_revenue: the ad revenue of the period closed in this month
    - paid_out: payouts to artists, net of failed or reversed ones
    """

    month: str
    currency: str
    period: Period | None = None
    gross_sales: int = 0
    refunds: int = 0
    commission: int = 0
    fees: int = 0
    ad_revenue: int = 0
    paid_out: int = 0


@dataclass(frozen=True, slots=True)
class Owed:
    """What the platform owes artists per currency, worked out two ways that must agree.

    ``by_artist`` sums each artist's balance (accounts linked to an artist);
    ``payable_accounts`` sums the ledger's ``artist_payable:`` accounts by their code.
    """

    by_artist: dict[str, int]
    payable_accounts: dict[str, int]
    artists: int

    @property
    def agrees(self) -> bool:
        return _nonzero(self.by_artist) == _nonzero(self.payable_accounts)

    @property
    def currencies(self) -> list[str]:
        return sorted(set(self.by_artist) | set(self.payable_accounts))


@dataclass(frozen=True, slots=True)
class Overview:
    months: list[MonthTotals]
    owed: Owed
    runs: list[RunView]
    # Payouts that failed or were reversed, with their artist's name, newest first.
    failures: list[tuple[PayoutView, str]]
    this_month: str


def overview(session: Session, now: datetime | None = None) -> Overview:
    """The admin's overview: per month totals with each period, what is owed, payout runs."""
    now = now or utcnow()
    return Overview(
        months=month_totals(session),
        owed=owed_to_artists(session),
        runs=recent_runs(session, limit=RECENT_RUNS),
        failures=failed_payouts(session, limit=RECENT_FAILURES),
        this_month=period_key(now),
    )


def month_totals(session: Session) -> list[MonthTotals]:
    """Per month and currency, newest first: the platform's figures, with the month's period.

    A month with a period but no ledger activity yet is listed too (in the period's currency).
    """
    month = _month(session, LedgerTransaction.effective_at)
    rows = session.execute(
        select(month, LedgerAccount.code, LedgerTransaction.kind, LedgerEntry.currency,
               func.sum(LedgerEntry.amount))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.artist_id.is_(None))
        .group_by(month, LedgerAccount.code, LedgerTransaction.kind, LedgerEntry.currency)
    )  # fmt: skip
    totals: dict[tuple[str, str], MonthTotals] = {}
    for key, code, kind, currency, amount in rows:
        row = totals.setdefault((str(key), currency), MonthTotals(str(key), currency))
        _add(row, _purpose(code), kind, int(amount))
    periods = {period.key: period for period in session.scalars(select(Period))}
    for period in periods.values():
        totals.setdefault((period.key, period.currency), MonthTotals(period.key, period.currency))
    for row in totals.values():
        # A month's period is one, whatever currency its sales were in.
        row.period = periods.get(row.month)
    return sorted(totals.values(), key=lambda row: (row.month, row.currency), reverse=True)


def _purpose(code: str) -> str:
    """``clearing`` for ``clearing:stripe:USD``, ``platform_commission`` for its account..."""
    return "clearing" if code.startswith(CLEARING_PREFIX) else code.split(":", 1)[0]


def _add(row: MonthTotals, purpose: str, kind: str, amount: int) -> None:
    """Add one (account purpose, kind) sum of entries to the month's figures."""
    if purpose == "clearing":
        if kind == posting.SALE:
            row.gross_sales += amount
        elif kind in (posting.REFUND, posting.CHARGEBACK, posting.SALE_REINSTATED):
            row.refunds -= amount
        elif kind in PAYOUT_KINDS:
            row.paid_out -= amount
    elif purpose in (PLATFORM_COMMISSION, CONTRIBUTIONS):
        row.commission -= amount  # revenue: a credit (negative) is income
    elif purpose == PROCESSING_FEES:
        row.fees += amount  # expense: a debit (positive) is a cost
    elif purpose == ADS_RECEIVABLE and kind == AD_POOL_KIND:
        row.ad_revenue += amount


def owed_to_artists(session: Session) -> Owed:
    """What the platform owes artists, summed per artist and per payable account code."""
    per_artist = session.execute(
        select(LedgerAccount.artist_id, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.artist_id.is_not(None))
        .group_by(LedgerAccount.artist_id, LedgerEntry.currency)
    )
    by_artist: defaultdict[str, int] = defaultdict(int)
    artists: set[int] = set()
    for artist_id, currency, total in per_artist:
        by_artist[currency] += -int(total)
        if total:
            artists.add(artist_id)
    payable = session.execute(
        select(LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code.startswith(ARTIST_PAYABLE_PREFIX))
        .group_by(LedgerEntry.currency)
    )
    return Owed(
        by_artist=dict(by_artist),
        payable_accounts={currency: -int(total) for currency, total in payable},
        artists=len(artists),
    )


def _nonzero(totals: Mapping[str, int]) -> dict[str, int]:
    return {currency: total for currency, total in totals.items() if total}


# Days and months in SQL -------------------------------------------------------------------


def _day(session: Session, column: Any) -> ColumnElement[Any]:
    """The UTC day of a timestamp column, as ``YYYY-MM-DD`` once made a string."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d", column)
    # A date cast is the cheapest day bucket on PostgreSQL (cheaper than to_char or
    # date_trunc), and timezone() makes it the UTC day whatever the connection's time zone.
    return cast(func.timezone("UTC", column), Date)


def _month(session: Session, column: Any) -> ColumnElement[Any]:
    """The UTC month of a timestamp column as ``YYYY-MM`` text (a period key)."""
    # SQLite stores UTC as naive text (app.timestamps.UTCDateTime).
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m", column)
    return func.to_char(func.timezone("UTC", column), "YYYY-MM")
