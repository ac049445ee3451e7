"""A period's pool: its revenue and model, the preview of its split, and the close.

The revenue of a period is the figure the admin entered (from the ad network's report) or,
when none was entered, the period's impressions times their CPM
(``app.ads.service.impression_revenue_minor``). The artists' pool is ``AD_POOL_SHARE_BPS`` of
it (``split_bps``: the two parts add up to the revenue, an exact half goes to the pool), and
the rest is the platform's. ``app.pools.allocation`` splits the pool over the period's earning
plays; with none, nothing is split and the whole revenue is the platform's.

Closing posts one ledger transaction, ``period:<key>`` (kind ``ad_pool``):

- debit ``ads_receivable:<cur>`` (asset) by the revenue: what the ad network owes;
- credit each artist's payable by the sum of their tracks' amounts;
- credit ``platform_ad_share:<cur>`` (revenue) by the rest.

It is effective at the period's last instant (or at the close, for an early one), so the
artists' balances at the end of the period include their ad share. A period without revenue
posts nothing. Functions take the session and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, String, any_, bindparam, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.accounts.models import User
from app.ads.service import CPM_IMPRESSIONS, impression_revenue_minor
from app.catalog.models import Artist, Release, Track
from app.database import insert_unless_exists, int_array, lock_row
from app.ledger import service as ledger
from app.ledger.service import AccountRef
from app.ledger.allocation import split_bps
from app.ledger.errors import AccountMismatch
from app.ledger.models import (
    ADS_RECEIVABLE,
    PLATFORM_AD_SHARE,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    artist_payable_code,
    platform_code,
)
from app.ledger.money import Money
from app.plays.models import Play
from app.pools.allocation import (
    Allocation,
    CountersDisagree,
    ListenerSums,
    allocate_pool,
    listener_sum_columns,
    period_inputs,
)
from app.pools.errors import InvalidRevenue, PeriodClosed, PeriodNotFound, PeriodNotOver
from app.pools.models import Period, PeriodAllocation, PeriodStatus, PoolModel, RevenueSource
from app.pools.periods import (
    bounds,
    ensure_period,
    parse_key,
    period_key,
    recount_landed,
)
from app.timestamps import utcnow

AD_POOL_KIND = "ad_pool"
# Ids per "IN (...)" list when reading track details or writing accounts: well under the
# bound-parameter limits of SQLite and PostgreSQL.
LOOKUP_BATCH = 1000
DELETED_TRACK_TITLE = "(deleted track)"
# The ledger transaction of an early close is effective at the close itself, of a late one at
# the period's last instant.
LAST_INSTANT = timedelta(microseconds=1)


def period_transaction_key(key: str) -> str:
    return f"period:{key}"


@dataclass(frozen=True, slots=True)
class PoolRow:
    """One track's line of a split: live for a preview, the frozen snapshot once closed."""

    track_id: int | None
    title: str
    artist_id: int | None
    artist_name: str
    plays: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class PoolPreview:
    """A period's split: computed for an open period, frozen for a closed one."""

    key: str
    status: PeriodStatus
    model: PoolModel  # the model used (user_centric without impressions falls back)
    currency: str
    revenue_minor: int
    revenue_source: RevenueSource
    pool_share_bps: int
    pool_minor: int  # what the tracks share: 0 when nobody played
    platform_minor: int
    plays: int
    rows: list[PoolRow]
    closed_at: datetime | None = None
    ledger_transaction_id: int | None = None

    @property
    def closed(self) -> bool:
        return self.status is PeriodStatus.CLOSED

    @property
    def allocated_minor(self) -> int:
        return sum(row.amount_minor for row in self.rows)

    @property
    def pool_share_percent(self) -> str:
        """The pool's share of the revenue as people read it: "90", "87.5"."""
        return format(Decimal(self.pool_share_bps) / 100, "f")

    @property
    def artists_paid(self) -> int:
        return len({row.artist_id for row in self.rows if row.amount_minor})

    def money(self, minor: int) -> Money:
        return Money(minor, self.currency)


@dataclass(frozen=True, slots=True)
class ComparisonRow:
    track_id: int | None
    title: str
    artist_name: str
    plays: int
    amounts: dict[PoolModel, int]


@dataclass(frozen=True, slots=True)
class Comparison:
    """Both models' previews of one open period, and their rows side by side."""

    previews: dict[PoolModel, PoolPreview]
    rows: list[ComparisonRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PeriodSummary:
    period: Period
    plays: int
    revenue_minor: int | None  # closed: the revenue closed with; open: the entered figure

    def money(self, minor: int) -> Money:
        return Money(minor, self.period.currency)


# Reading ----------------------------------------------------------------------------------


def find_period(session: Session, key: str) -> Period | None:
    """The period called ``key``, or None if nothing landed in it yet. Raises InvalidInput
    for a key that is not ``YYYY-MM``."""
    parse_key(key)
    return session.scalar(select(Period).where(Period.key == key))


def period_summaries(session: Session) -> list[PeriodSummary]:
    """Every period, newest first, with its earning plays (frozen once closed)."""
    periods = session.scalars(select(Period).order_by(Period.starts_at.desc())).all()
    open_ids = [period.id for period in periods if period.status is PeriodStatus.OPEN]
    live: dict[int, int] = {}
    if open_ids:
        counts = session.execute(
            select(Play.period_id, func.count())
            .where(Play.period_id.in_(open_ids), Play.earns)
            .group_by(Play.period_id)
        )
        live = {period_id: int(count) for period_id, count in counts}
    summaries = []
    for period in periods:
        if period.status is PeriodStatus.CLOSED:
            summaries.append(
                PeriodSummary(period, int(period.earning_plays or 0), period.closed_revenue_minor)
            )
        else:
            summaries.append(PeriodSummary(period, live.get(period.id, 0), period.revenue_minor))
    return summaries


def recent_keys(now: datetime | None = None) -> tuple[str, str]:
    """This month's key and last month's, for the admin's shortcuts."""
    year, month = parse_key(period_key(now or utcnow()))
    last = f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"
    return f"{year:04d}-{month:02d}", last


def has_ended(period: Period | None, key: str, now: datetime | None = None) -> bool:
    """Whether the period is over, so that it can be closed without ``allow_early``."""
    ends_at = period.ends_at if period is not None else bounds(key)[1]
    return (now or utcnow()) >= ends_at


def impressions_revenue(session: Session, key: str) -> int:
    """The period's impressions times their CPM, in minor units (0 before anything landed)."""
    period = find_period(session, key)
    return impression_revenue_minor(session, period.id) if period is not None else 0


def preview(
    session: Session,
    config: Mapping[str, Any],
    key: str,
    *,
    model: PoolModel | str | None = None,
    revenue_minor: int | None = None,
    pool_share_bps: int | None = None,
) -> PoolPreview:
    """The period's split: what closing it now would allocate, or, once it is closed, the
    frozen allocation (the arguments are then ignored).

    ``model``, ``revenue_minor`` and ``pool_share_bps`` override the period's model, its
    revenue (entered, else impressions times CPM) and ``AD_POOL_SHARE_BPS``. Writes nothing.
    Raises InvalidInput for a bad key, InvalidRevenue for a negative revenue.
    """
    period = find_period(session, key)
    if period is not None and period.status is PeriodStatus.CLOSED:
        return _frozen(session, period)
    chosen = PoolModel(model or (period.model if period else config["POOL_MODEL"]))
    landed = _Landed(session, period.id if period else None)
    revenue, source = _revenue(landed, period, revenue_minor)
    bps = int(config["AD_POOL_SHARE_BPS"] if pool_share_bps is None else pool_share_bps)
    currency = period.currency if period is not None else config["DEFAULT_CURRENCY"]
    split = _split(landed, revenue, bps, chosen, repair=False)
    return PoolPreview(
        key=key,
        status=PeriodStatus.OPEN,
        model=split.allocation.model,
        currency=currency,
        revenue_minor=revenue,
        revenue_source=source,
        pool_share_bps=bps,
        pool_minor=split.allocation.pool,
        platform_minor=split.platform,
        plays=split.allocation.plays,
        rows=_rows(session, split.allocation),
    )


def compare_models(
    session: Session,
    config: Mapping[str, Any],
    key: str,
    *,
    revenue_minor: int | None = None,
) -> Comparison:
    """The open period's split under each model, with one row per track for both."""
    previews = {
        model: preview(session, config, key, model=model, revenue_minor=revenue_minor)
        for model in PoolModel
    }
    merged: dict[int | None, ComparisonRow] = {}
    for model, result in previews.items():
        for row in result.rows:
            line = merged.setdefault(
                row.track_id,
                ComparisonRow(row.track_id, row.title, row.artist_name, row.plays, {}),
            )
            line.amounts[model] = row.amount_minor
    rows = sorted(merged.values(), key=lambda r: (-r.plays, r.title, r.track_id or 0))
    return Comparison(previews, rows)


@dataclass(frozen=True, slots=True)
class EntryLine:
    account_code: str
    artist_name: str | None
    amount: Money  # debit positive, credit negative


def ledger_entries(session: Session, key: str) -> tuple[LedgerTransaction, list[EntryLine]]:
    """The closed period's ledger transaction and its entries, read in one query.

    Raises PeriodNotFound if the period has no transaction (not closed, or no revenue).
    """
    period = find_period(session, key)
    if period is None or period.ledger_transaction_id is None:
        raise PeriodNotFound(f"Period {key} has no ledger transaction.")
    transaction = session.get_one(LedgerTransaction, period.ledger_transaction_id)
    rows = session.execute(
        select(LedgerAccount.code, Artist.name, LedgerEntry.amount, LedgerEntry.currency)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .outerjoin(Artist, Artist.id == LedgerAccount.artist_id)
        .where(LedgerEntry.transaction_id == transaction.id)
        .order_by(LedgerEntry.amount.desc(), LedgerAccount.code)
    )
    lines = [
        EntryLine(code, artist_name, Money(int(amount), currency))
        for code, artist_name, amount, currency in rows
    ]
    return transaction, lines


# The admin's settings ---------------------------------------------------------------------


def set_revenue(
    session: Session, config: Mapping[str, Any], key: str, revenue_minor: int | None
) -> Period:
    """Enter the period's revenue; None goes back to impressions times CPM.

    Raises InvalidRevenue for a negative amount, PeriodClosed once the period is closed.
    """
    _check_revenue(revenue_minor)
    return _update_open(session, config, key, revenue_minor=revenue_minor)


def set_model(
    session: Session, config: Mapping[str, Any], key: str, model: PoolModel | str
) -> Period:
    """Choose the period's model. Raises PeriodClosed once the period is closed."""
    return _update_open(session, config, key, model=PoolModel(model))


def _update_open(session: Session, config: Mapping[str, Any], key: str, **values: Any) -> Period:
    period = ensure_period(session, config, key)
    # Compare-and-set: the status is read and the values written in one statement, so a
    # close that committed in between is never overwritten.
    changed = session.execute(
        update(Period)
        .where(Period.id == period.id, Period.status == PeriodStatus.OPEN)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise PeriodClosed(f"Period {key} is closed; its revenue and model are frozen.")
    session.refresh(period)
    return period


# Closing ----------------------------------------------------------------------------------


def close_period(
    session: Session,
    config: Mapping[str, Any],
    key: str,
    *,
    model: PoolModel | str | None = None,
    revenue_minor: int | None = None,
    closed_by: User | None = None,
    now: datetime | None = None,
    allow_early: bool = False,
) -> Period:
    """Close the period: fix its revenue, model and pool share, write its allocation, post
    its ledger transaction and freeze it. A closed period is returned unchanged.

    ``model`` and ``revenue_minor`` override the period's own (and are kept). The period's
    row is locked for the whole close, so two closes run one after the other (the second
    finds it closed), and plays landing at the same moment either land before the close
    reads them or wait and land in the next period.

    Raises InvalidInput (a bad key), InvalidRevenue (a negative revenue) and PeriodNotOver
    (the period has not ended and ``allow_early`` is false).
    """
    _check_revenue(revenue_minor)
    found = find_period(session, key)
    if found is not None and found.status is PeriodStatus.CLOSED:
        return found  # closed is final: no lock needed to see it
    now = now or utcnow()
    starts_at, ends_at = bounds(key)
    if now < starts_at:
        raise PeriodNotOver(
            f"Period {key} has not started yet: it opens on {starts_at:%Y-%m-%d} UTC, and only "
            "a month that has begun can be closed.",
            {"period": key, "starts_at": starts_at.isoformat()},
        )
    if now < ends_at and not allow_early:
        raise PeriodNotOver(
            f"Period {key} runs until {ends_at:%Y-%m-%d %H:%M} UTC. "
            "Close it after that, or close it early on purpose."
        )
    period = ensure_period(session, config, key)
    lock_row(session, Period.__table__, period.id)
    session.refresh(period)  # what the lock holds, not what was read before it
    if period.status is PeriodStatus.CLOSED:
        return period
    if revenue_minor is not None:
        period.revenue_minor = revenue_minor
    if model is not None:
        period.model = PoolModel(model)
    landed = _Landed(session, period.id)
    revenue, source = _revenue(landed, period, None)
    bps = int(config["AD_POOL_SHARE_BPS"])
    split = _split(landed, revenue, bps, period.model, repair=True)
    by_artist = _write_allocations(session, period, split.allocation)
    effective_at = min(now, period.ends_at - LAST_INSTANT)
    transaction = _post(session, period, revenue, split, by_artist, effective_at)
    period.status = PeriodStatus.CLOSED
    period.revenue_source = source
    period.closed_revenue_minor = revenue
    period.pool_share_bps = bps
    period.pool_minor = split.allocation.pool
    period.platform_minor = split.platform
    period.earning_plays = split.allocation.plays
    period.closed_at = now
    period.closed_by_id = closed_by.id if closed_by is not None else None
    period.ledger_transaction_id = transaction.id if transaction is not None else None
    return period


@dataclass(frozen=True, slots=True)
class _Split:
    allocation: Allocation
    platform: int


@dataclass(frozen=True, slots=True)
class KeptTotals:
    """A period's listener counters summed: what the allocation reads of them, and the
    revenue of the impressions they counted (floor(sum of the CPMs / 1000), as
    ``impression_revenue_minor`` reads it from the impressions)."""

    sums: ListenerSums
    revenue_minor: int

    @property
    def impressions(self) -> int:
        return self.sums.impressions


def kept_totals(session: Session, period_id: int) -> KeptTotals:
    """The period's ``KeptTotals``, in one pass over its listeners' counters."""
    listeners = period_inputs(period_id, kept=True).listeners
    assert listeners is not None
    *sums, revenue = session.execute(
        select(
            *listener_sum_columns(listeners),
            func.coalesce(func.sum(listeners.c.cpm), 0) // CPM_IMPRESSIONS,
        )
    ).one()
    return KeptTotals(ListenerSums(*(int(value) for value in sums)), int(revenue))


class _Landed:
    """What landed in a period (None: a period not made yet, where nothing landed), with its
    listeners' counters summed once (``kept_totals``), when first asked for."""

    def __init__(self, session: Session, period_id: int | None) -> None:
        self.session, self.period_id = session, period_id
        self._totals: KeptTotals | None = None

    def totals(self) -> KeptTotals | None:
        if self.period_id is None:
            return None
        if self._totals is None:
            self._totals = kept_totals(self.session, self.period_id)
        return self._totals

    def impressions(self) -> tuple[int, int]:
        """(impressions, their revenue in minor units)."""
        totals = self.totals()
        return (0, 0) if totals is None else (totals.impressions, totals.revenue_minor)


def _split(landed: _Landed, revenue: int, bps: int, model: PoolModel, *, repair: bool) -> _Split:
    pool, _ = split_bps(revenue, bps)
    allocation = _allocate(landed, pool, model, repair=repair)
    # With no earning plays nothing is allocated, and the platform keeps the revenue.
    return _Split(allocation, revenue - allocation.pool)


def _allocate(landed: _Landed, pool: int, model: PoolModel, *, repair: bool) -> Allocation:
    """The period's allocation. ``user_centric`` reads the listeners' counters, after
    checking them: their plays must sum to the earning plays the allocation read. When they
    do not (a track was deleted with its plays), the close (``repair``) counts them afresh;
    a preview, which writes nothing, groups the rows. (Impressions go only with their
    listener, whose counters go too, so the impression counters need no such check.)"""
    session, period_id = landed.session, landed.period_id
    if period_id is None or PoolModel(model) is PoolModel.PRO_RATA:
        return allocate_pool(session, period_inputs(period_id), pool, model)
    kept = period_inputs(period_id, kept=True)
    totals = landed.totals()
    assert totals is not None  # the period exists
    try:
        return allocate_pool(session, replace(kept, sums=totals.sums), pool, model)
    except CountersDisagree:
        pass
    if not repair:
        return allocate_pool(session, period_inputs(period_id), pool, model)
    recount_landed(session, period_id)
    return allocate_pool(session, kept, pool, model)


def _revenue(
    landed: _Landed, period: Period | None, revenue_minor: int | None
) -> tuple[int, RevenueSource]:
    _check_revenue(revenue_minor)
    if revenue_minor is not None:
        return revenue_minor, RevenueSource.ENTERED
    if period is not None and period.revenue_minor is not None:
        return period.revenue_minor, RevenueSource.ENTERED
    return landed.impressions()[1], RevenueSource.IMPRESSIONS


def _check_revenue(revenue_minor: int | None) -> None:
    """Raises InvalidRevenue."""
    if revenue_minor is None:
        return
    if not isinstance(revenue_minor, int) or isinstance(revenue_minor, bool):
        raise TypeError("revenue_minor must be an int")
    if revenue_minor < 0:
        raise InvalidRevenue(
            "Revenue cannot be negative.", {"revenue": ["Revenue cannot be negative."]}
        )


@dataclass(frozen=True, slots=True)
class _TrackDetail:
    title: str
    artist_id: int
    artist_name: str


def _track_details(session: Session, track_ids: Iterable[int]) -> dict[int, _TrackDetail]:
    """Title and artist of each track, read in batches of LOOKUP_BATCH ids."""
    ids = list(track_ids)
    details: dict[int, _TrackDetail] = {}
    for start in range(0, len(ids), LOOKUP_BATCH):
        rows = session.execute(
            select(Track.id, Track.title, Release.artist_id, Artist.name)
            .join(Release, Track.release_id == Release.id)
            .join(Artist, Release.artist_id == Artist.id)
            .where(Track.id.in_(ids[start : start + LOOKUP_BATCH]))
        )
        for track_id, title, artist_id, artist_name in rows:
            details[track_id] = _TrackDetail(title, artist_id, artist_name)
    return details


def _rows(session: Session, allocation: Allocation) -> list[PoolRow]:
    details = _track_details(session, [share.track for share in allocation.shares])
    rows = []
    for share in allocation.shares:
        detail = details.get(share.track)
        rows.append(
            PoolRow(
                track_id=share.track,
                title=detail.title if detail else DELETED_TRACK_TITLE,
                artist_id=detail.artist_id if detail else None,
                artist_name=detail.artist_name if detail else "",
                plays=share.plays,
                amount_minor=share.amount,
            )
        )
    return rows


def _frozen(session: Session, period: Period) -> PoolPreview:
    allocations = session.execute(
        select(PeriodAllocation, Artist.name)
        .outerjoin(Artist, PeriodAllocation.artist_id == Artist.id)
        .where(PeriodAllocation.period_id == period.id)
        .order_by(PeriodAllocation.track_id)
    )
    rows = [
        PoolRow(
            track_id=allocation.track_id,
            title=allocation.track_title,
            artist_id=allocation.artist_id,
            artist_name=artist_name or "",
            plays=allocation.plays,
            amount_minor=allocation.amount_minor,
        )
        for allocation, artist_name in allocations
    ]
    assert period.revenue_source is not None  # set by the close with the other frozen fields
    return PoolPreview(
        key=period.key,
        status=period.status,
        model=period.model,
        currency=period.currency,
        revenue_minor=int(period.closed_revenue_minor or 0),
        revenue_source=period.revenue_source,
        pool_share_bps=int(period.pool_share_bps or 0),
        pool_minor=int(period.pool_minor or 0),
        platform_minor=int(period.platform_minor or 0),
        plays=int(period.earning_plays or 0),
        rows=rows,
        closed_at=period.closed_at,
        ledger_transaction_id=period.ledger_transaction_id,
    )


def _write_allocations(session: Session, period: Period, allocation: Allocation) -> dict[int, int]:
    """One PeriodAllocation per track that had earning plays, with its title and artist;
    returns what the allocation gives each artist (those given something).

    On PostgreSQL the shares go over as three arrays (as text, which PostgreSQL parses faster
    than the driver writes lists) and one INSERT ... SELECT joins the tracks and returns the
    rows to sum by artist (a period pays tens of thousands of tracks); elsewhere, rows in one
    executemany. Raises RuntimeError when a track was deleted while the period closed.
    """
    if not allocation.track_keys:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        shares = func.unnest(
            int_array("tracks", allocation.track_keys, Integer),
            int_array("plays", allocation.track_plays, BigInteger),
            int_array("amounts", allocation.amounts, BigInteger),
        ).table_valued("track", "plays", "amount").render_derived(name="shares")
        rows = select(
            literal(period.id), Track.id, Release.artist_id,
            func.coalesce(Track.title, DELETED_TRACK_TITLE), shares.c.plays, shares.c.amount,
        ).select_from(
            shares.outerjoin(Track, Track.id == shares.c.track)
            .outerjoin(Release, Release.id == Track.release_id)
        )  # fmt: skip
        columns = ["period_id", "track_id", "artist_id", "track_title", "plays", "amount_minor"]
        written = (
            insert(PeriodAllocation)
            .from_select(columns, rows)
            .returning(PeriodAllocation.artist_id, PeriodAllocation.amount_minor)
            .cte("written")
        )
        paid = (
            select(written.c.artist_id, func.sum(written.c.amount_minor))
            .where(written.c.amount_minor > 0)
            .group_by(written.c.artist_id)
        )
        return _by_artist((artist_id, int(total)) for artist_id, total in session.execute(paid))
    details = _track_details(session, [share.track for share in allocation.shares])
    values = []
    for share in allocation.shares:
        detail = details.get(share.track)
        values.append(
            {
                "period_id": period.id,
                "track_id": share.track if detail else None,
                "artist_id": detail.artist_id if detail else None,
                "track_title": detail.title if detail else DELETED_TRACK_TITLE,
                "plays": share.plays,
                "amount_minor": share.amount,
            }
        )
    session.execute(insert(PeriodAllocation), values)
    return _by_artist((row["artist_id"], row["amount_minor"]) for row in values)


def _by_artist(amounts: Iterable[tuple[int | None, int]]) -> dict[int, int]:
    by_artist: dict[int, int] = {}
    for artist_id, amount in amounts:
        if amount <= 0:
            continue
        if artist_id is None:
            # A track deleted while the period closed: its share has nobody to go to. Its
            # plays went with it, so closing again allocates without it.
            raise RuntimeError("a track of the allocation was deleted during the close; close again")
        by_artist[artist_id] = by_artist.get(artist_id, 0) + amount
    return dict(sorted(by_artist.items()))


def _post(
    session: Session,
    period: Period,
    revenue: int,
    split: _Split,
    by_artist: Mapping[int, int],
    effective_at: datetime,
) -> LedgerTransaction | None:
    """The period's one ledger transaction (module docstring); None without revenue.
    ``by_artist`` is what the allocation gives each artist."""
    if revenue == 0:
        return None
    currency = period.currency
    payables = _artist_payables(session, list(by_artist), currency)
    receivable = ledger.account(
        session, platform_code(ADS_RECEIVABLE, currency), AccountKind.ASSET, currency
    )
    entries = [(receivable, Money(revenue, currency))]
    for artist, amount in by_artist.items():
        entries.append((payables[artist], Money(-amount, currency)))
    platform = revenue - sum(by_artist.values())
    if platform:
        platform_share = ledger.account(
            session, platform_code(PLATFORM_AD_SHARE, currency), AccountKind.REVENUE, currency
        )
        entries.append((platform_share, Money(-platform, currency)))
    return ledger.post(
        session,
        idempotency_key=period_transaction_key(period.key),
        kind=AD_POOL_KIND,
        entries=entries,
        description=f"Ad revenue of {period.key}: {split.allocation.model} pool split",
        effective_at=effective_at,
        details={
            "period": period.key,
            "model": str(split.allocation.model),
            "pool_minor": split.allocation.pool,
            "plays": split.allocation.plays,
        },
    )


def _artist_payables(
    session: Session, artist_ids: list[int], currency: str
) -> dict[int, AccountRef]:
    """Each artist's payable account in ``currency``, made if missing (also under a race).

    ``ledger.artist_payable`` does the same for one artist; a period pays thousands, so on
    PostgreSQL the missing accounts are made by one INSERT ... SELECT over arrays and all are
    read in one query (elsewhere, in batches). Raises AccountMismatch like it.
    """
    now = utcnow()
    accounts: dict[int, AccountRef] = {}
    if session.get_bind().dialect.name == "postgresql":
        batches = [artist_ids] if artist_ids else []
    else:
        batches = [artist_ids[i : i + LOOKUP_BATCH] for i in range(0, len(artist_ids), LOOKUP_BATCH)]
    for batch in batches:
        codes = {artist_payable_code(artist_id, currency): artist_id for artist_id in batch}
        _make_payables(session, codes, currency, now)
        # Plain rows, not ORM objects: posting needs only their id, code and currency.
        found = select(
            LedgerAccount.id, LedgerAccount.code, LedgerAccount.kind, LedgerAccount.currency,
            LedgerAccount.artist_id,
        ).where(_code_in(session, codes))  # fmt: skip
        for account in session.execute(found):
            artist_id = codes[account.code]
            if (account.kind, account.currency, account.artist_id) != (
                AccountKind.LIABILITY, currency, artist_id,
            ):  # fmt: skip
                raise AccountMismatch(
                    f"Ledger account {account.code} exists with another kind, currency or artist.",
                    {"code": account.code},
                )
            accounts[artist_id] = account
    return accounts


def _make_payables(session: Session, codes: dict[str, int], currency: str, now: datetime) -> None:
    """Insert the payable accounts of ``codes`` (code: artist id) that do not exist yet."""
    insert_missing = insert_unless_exists(session, LedgerAccount, ["code"])
    if session.get_bind().dialect.name != "postgresql":
        rows = [
            {"code": code, "kind": AccountKind.LIABILITY, "currency": currency,
             "artist_id": artist_id, "created_at": now}
            for code, artist_id in codes.items()
        ]  # fmt: skip
        session.execute(insert_missing, rows)
        return
    columns = LedgerAccount.__table__.c
    given = (
        func.unnest(
            bindparam("codes", list(codes), type_=ARRAY(String)),
            int_array("artists", list(codes.values()), Integer),
        )
        .table_valued("code", "artist_id")
        .render_derived(name="given")
    )
    rows = select(
        given.c.code, literal(AccountKind.LIABILITY, columns.kind.type),
        literal(currency, columns.currency.type), given.c.artist_id,
        literal(now, columns.created_at.type),
    )  # fmt: skip
    session.execute(
        insert_missing.from_select(["code", "kind", "currency", "artist_id", "created_at"], rows)
    )


def _code_in(session: Session, codes: dict[str, int]) -> Any:
    """``LedgerAccount.code`` is one of ``codes``: one array parameter on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return LedgerAccount.code == any_(bindparam("wanted", list(codes), type_=ARRAY(String)))
    return LedgerAccount.code.in_(codes)
