"""Splitting a pool over the tracks played: ``pro_rata`` and ``user_centric``, exact in SQL.

One code path serves the period close, the admin's preview and ``megabox pool preview``. Its
input is two SQL relations (``PoolInputs``):

- ``plays(listener, track)``: one row per earning counted play;
- ``impressions(listener, impressions)``: ad impressions per listener; a listener may have
  several rows, which are added up.

For a period they are queries over ``plays`` and ``ad_impressions`` (``period_inputs``); for
the CSV preview, tables of an in-memory SQLite database. Listener and track keys are opaque:
ints in the database, strings in CSV files. Every aggregate runs in SQL with GROUP BY; Python
only ever loops over grouped rows (tracks, or tracks by listener play count).

With P the earning plays (P_t those of track t) and I the impressions of the period:

- ``pro_rata``: track t's exact share is pool · P_t / P.
- ``user_centric``: listener l's revenue is pool · imps_l / I, split over l's earning plays
  (p_l of them, p_lt of track t). So track t's exact share is

      pool / I · ( Σ_l imps_l · p_lt / p_l  +  I_o · P_t / P )

  where I_o is the impressions of listeners with no earning play: they watched ads but played
  nothing that earns, and their revenue is split pro rata over all earning plays. A listener
  with plays but no impressions brings no revenue of their own; their plays take part only in
  that pro-rata part. A bot that plays one track 10,000 times thus earns that track exactly its
  own impressions' revenue (plus the track's pro-rata part of I_o, which its plays enlarge).
  When I = 0 (nobody saw an ad) there is nothing to weight listeners by, and ``user_centric``
  falls back to ``pro_rata``.
- With no earning plays at all (P = 0) nothing is allocated: ``Allocation.pool`` is 0 and
  the caller keeps the whole revenue as the platform's.

Exactness: all shares are written over one integer denominator D. For ``user_centric``,
grouping plays by (track, n), where n is the listener's number of earning plays, gives
num_{t,n} = Σ imps_l over those plays; with L the least common multiple of the distinct n,

    share_t = pool · (P · Σ_n num_{t,n} · L/n  +  I_o · L · P_t) / (I · L · P)

so each track's floor and remainder are an integer division, and remainders compare
directly. On PostgreSQL that combine runs in SQL in ``numeric`` (exact for integers of any
size; L can be huge), so one row per track reaches Python; on SQLite (64-bit integers) it runs
in Python over the grouped rows. ``pro_rata`` is pool · P_t divided by P, in Python integers.

Largest remainder: every track gets the floor of its exact share, and the minor units still
missing (fewer than the number of tracks) go one each to the largest remainders. Tie-break:
between equal remainders, the track with the smaller exact share wins (the small track is
rounded up, the big one down), then the lower track key (ints numerically, strings
lexically). So each amount is the floor or the ceiling of its exact share, and they sum to
the pool: 62.5 / 1937.5 becomes 63 / 1937.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    FromClause,
    MetaData,
    Numeric,
    Select,
    Table,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable

from app.ads.models import Impression
from app.plays.models import Play
from app.pools.models import PoolModel

# The temporary tables of the PostgreSQL path: the listeners with plays and impressions, and
# each listener play count n with its factor L/n.
LISTENERS_TABLE = "pool_weighted_listeners"
FACTORS_TABLE = "pool_factors"
# A close groups a month of plays by listener and by track: memory for those hash tables
# (PostgreSQL's default of 4MB spills a million listeners to disk). Local to the transaction.
POSTGRES_WORK_MEM = "256MB"

TrackKey = Any  # int in the database, str in CSV files


@dataclass(frozen=True, slots=True)
class PoolInputs:
    """The two relations an allocation reads (see the module docstring)."""

    plays: FromClause  # columns: listener, track
    impressions: FromClause  # columns: listener, impressions


@dataclass(frozen=True, slots=True)
class TrackShare:
    track: TrackKey
    plays: int
    amount: int


@dataclass(frozen=True, slots=True)
class Allocation:
    """The split of a pool: ``shares`` sorted by track key, their amounts summing to ``pool``.

    ``model`` is the model used: ``user_centric`` asked for with no impressions is
    ``pro_rata``. ``pool`` is what was allocated: 0 when there were no earning plays.
    """

    model: PoolModel
    pool: int
    plays: int
    shares: list[TrackShare]

    @property
    def tracks(self) -> int:
        return len(self.shares)


def period_inputs(period_id: int | None) -> PoolInputs:
    """The earning counted plays and the ad impressions that landed in the period."""
    plays = (
        select(Play.listener_id.label("listener"), Play.track_id.label("track"))
        .where(Play.period_id == period_id, Play.earns)
        .subquery("period_plays")
    )
    impressions = (
        select(Impression.listener_id.label("listener"), literal(1).label("impressions"))
        .where(Impression.period_id == period_id)
        .subquery("period_impressions")
    )
    return PoolInputs(plays, impressions)


def equal_impressions(plays: FromClause) -> FromClause:
    """One impression for every listener who played: each listener weighs the same."""
    return (
        select(plays.c.listener, literal(1).label("impressions"))
        .group_by(plays.c.listener)
        .subquery("equal_impressions")
    )


def allocate_pool(
    db: Session | Connection, inputs: PoolInputs, pool: int, model: PoolModel
) -> Allocation:
    """Split ``pool`` minor units over the tracks of ``inputs`` by ``model``, exactly.

    Raises ValueError for a negative pool.
    """
    if pool < 0:
        raise ValueError("a pool cannot be negative")
    if _dialect(db) == "postgresql":
        db.execute(text(f"SET LOCAL work_mem = '{POSTGRES_WORK_MEM}'"))
    if PoolModel(model) is PoolModel.USER_CENTRIC:
        impressions = db.execute(
            select(func.coalesce(func.sum(inputs.impressions.c.impressions), 0))
        ).scalar()
        if impressions:
            return _user_centric(db, inputs, pool, int(impressions))
    return _pro_rata(db, inputs, pool)


# pro_rata ---------------------------------------------------------------------------------


def _pro_rata(db: Session | Connection, inputs: PoolInputs, pool: int) -> Allocation:
    plays = inputs.plays
    counts = [
        (track, int(count))
        for track, count in db.execute(
            select(plays.c.track, func.count()).group_by(plays.c.track)
        )
    ]
    total = sum(count for _, count in counts)
    if total == 0:
        return Allocation(PoolModel.PRO_RATA, 0, 0, [])
    numerators = [(track, count, pool * count) for track, count in counts]
    return Allocation(PoolModel.PRO_RATA, pool, total, largest_remainder(numerators, total, pool))


# user_centric -----------------------------------------------------------------------------


def weighted_listeners(inputs: PoolInputs) -> Select[Any]:
    """The listeners with earning plays and impressions: ``n`` plays, ``imps`` impressions."""
    plays, impressions = inputs.plays, inputs.impressions
    per_listener = (
        select(plays.c.listener, func.count().label("n"))
        .group_by(plays.c.listener)
        .subquery("plays_by_listener")
    )
    seen = (
        select(impressions.c.listener, func.sum(impressions.c.impressions).label("imps"))
        .group_by(impressions.c.listener)
        .subquery("impressions_by_listener")
    )
    return (
        select(per_listener.c.listener, per_listener.c.n, seen.c.imps)
        .join_from(per_listener, seen, seen.c.listener == per_listener.c.listener)
        .where(seen.c.imps > 0)
    )


def track_groups(plays: FromClause, weighted: FromClause) -> Select[Any]:
    """Plays grouped by (track, n): n is the listener's number of earning plays, or 0 for a
    listener without impressions; ``plays`` counts them and ``weight`` sums the listeners'
    impressions over them (num_{t,n} of the module docstring)."""
    n = func.coalesce(weighted.c.n, 0)
    return (
        select(
            plays.c.track,
            n.label("n"),
            func.count().label("plays"),
            func.coalesce(func.sum(weighted.c.imps), 0).label("weight"),
        )
        .select_from(plays.outerjoin(weighted, weighted.c.listener == plays.c.listener))
        .group_by(plays.c.track, n)
    )


def _user_centric(
    db: Session | Connection, inputs: PoolInputs, pool: int, impressions: int
) -> Allocation:
    if _dialect(db) == "postgresql":
        return _user_centric_in_numeric(db, inputs, pool, impressions)
    weighted = weighted_listeners(inputs).subquery("weighted_listeners")
    groups = [
        (track, int(n), int(plays), int(weight))
        for track, n, plays, weight in db.execute(track_groups(inputs.plays, weighted))
    ]
    total = sum(plays for _, _, plays, _ in groups)
    if total == 0:
        return Allocation(PoolModel.USER_CENTRIC, 0, 0, [])
    weight_by_n: defaultdict[int, int] = defaultdict(int)
    for _, n, _, weight in groups:
        if n:
            weight_by_n[n] += weight
    lcm = math.lcm(*weight_by_n)
    orphan_impressions = impressions - _weighted_impressions(weight_by_n.items())
    weighted_sum: defaultdict[TrackKey, int] = defaultdict(int)
    track_plays: defaultdict[TrackKey, int] = defaultdict(int)
    for track, n, plays, weight in groups:
        track_plays[track] += plays
        if n:
            weighted_sum[track] += weight * (lcm // n)
    numerators = [
        (track, plays, pool * (total * weighted_sum[track] + orphan_impressions * lcm * plays))
        for track, plays in track_plays.items()
    ]
    denominator = impressions * lcm * total
    shares = largest_remainder(numerators, denominator, pool)
    return Allocation(PoolModel.USER_CENTRIC, pool, total, shares)


def _weighted_impressions(weight_by_n: Iterable[tuple[int, int]]) -> int:
    """I - I_o: the impressions of listeners with earning plays. Each such listener's
    impressions were added once per play (n times), so each n's sum divides by n exactly."""
    total = 0
    for n, weight in weight_by_n:
        listeners_impressions, rest = divmod(weight, n)
        assert rest == 0, "a listener's impressions are counted once per play"
        total += listeners_impressions
    return total


def _user_centric_in_numeric(
    db: Session | Connection, inputs: PoolInputs, pool: int, impressions: int
) -> Allocation:
    """The PostgreSQL path.

    The weighted listeners go to a temporary table first, analysed, so that the planner
    knows how many there are (its estimate for a join of two aggregates is far off, and led
    it to read a month of plays by index in listener order) and so that L is known before
    the plays are grouped. Each n's factor L/n goes to a second one. Then one statement
    groups the plays by (track, n), combines the groups per track in ``numeric`` and ranks
    the remainders: only the amounts reach Python.
    """
    for name in (LISTENERS_TABLE, FACTORS_TABLE):
        db.execute(text(f"DROP TABLE IF EXISTS pg_temp.{name}"))
    created = weighted_listeners(inputs).into(LISTENERS_TABLE, temporary=True)
    db.execute(created)
    db.execute(text(f"ANALYZE {LISTENERS_TABLE}"))
    listeners = created.table
    weight_by_n = [
        (int(n), int(weight))
        for n, weight in db.execute(
            select(listeners.c.n, func.sum(listeners.c.imps)).group_by(listeners.c.n)
        )
    ]
    lcm = math.lcm(*(n for n, _ in weight_by_n))
    factors = Table(
        FACTORS_TABLE, MetaData(), Column("n", BigInteger, primary_key=True),
        Column("factor", Numeric, nullable=False), prefixes=["TEMPORARY"],
    )  # fmt: skip
    db.execute(CreateTable(factors))
    if weight_by_n:
        db.execute(insert(factors), [{"n": n, "factor": Decimal(lcm // n)} for n, _ in weight_by_n])
    orphans = impressions - sum(weight for _, weight in weight_by_n)
    rows = db.execute(
        _combine(inputs.plays, listeners, factors, pool, orphans * lcm, impressions * lcm)
    ).all()
    for name in (LISTENERS_TABLE, FACTORS_TABLE):
        # On an error the rollback drops them: creating a table is transactional here.
        db.execute(text(f"DROP TABLE {name}"))
    if not rows:
        return Allocation(PoolModel.USER_CENTRIC, 0, 0, [])
    shares = [TrackShare(row.track, int(row.plays), int(row.amount)) for row in rows]
    return Allocation(PoolModel.USER_CENTRIC, pool, int(rows[0].total), shares)


def _combine(
    plays: FromClause,
    listeners: FromClause,
    factors: FromClause,
    pool: int,
    orphans_lcm: int,
    impressions_lcm: int,
) -> Select[Any]:
    """Per track, in numeric: num_t = pool · (P · Σ_n num_{t,n} · L/n + I_o · L · P_t) over
    D = I · L · P, its floor and remainder, and the floors plus one for the first
    ``pool - Σ floors`` tracks by (remainder desc, floor, track)."""
    groups = track_groups(plays, listeners).cte("groups")
    per_track = (
        select(
            groups.c.track,
            func.sum(groups.c.plays).label("plays"),
            func.coalesce(func.sum(groups.c.weight * factors.c.factor), 0).label("weighted"),
        )
        .select_from(groups.outerjoin(factors, factors.c.n == groups.c.n))
        .group_by(groups.c.track)
        .subquery("per_track")
    )
    total = func.sum(per_track.c.plays).over()
    exact = select(
        per_track.c.track,
        per_track.c.plays,
        total.label("total"),
        (
            _numeric(pool)
            * (total * per_track.c.weighted + _numeric(orphans_lcm) * per_track.c.plays)
        ).label("num"),
        (_numeric(impressions_lcm) * total).label("den"),
    ).subquery("exact")
    whole = func.div(exact.c.num, exact.c.den)
    parts = select(
        exact.c.track,
        exact.c.plays,
        exact.c.total,
        whole.label("whole"),
        func.mod(exact.c.num, exact.c.den).label("remainder"),
    ).subquery("parts")
    ranked = select(
        parts.c.track,
        parts.c.plays,
        parts.c.total,
        parts.c.whole,
        func.row_number()
        .over(order_by=(parts.c.remainder.desc(), parts.c.whole, parts.c.track))
        .label("place"),
        func.sum(parts.c.whole).over().label("wholes"),
    ).subquery("ranked")
    rounded_up = case((ranked.c.place <= _numeric(pool) - ranked.c.wholes, 1), else_=0)
    return select(
        ranked.c.track,
        ranked.c.plays,
        ranked.c.total,
        cast(ranked.c.whole + rounded_up, BigInteger).label("amount"),
    ).order_by(ranked.c.track)


def _numeric(value: int) -> Any:
    return literal(Decimal(value), Numeric())


# Largest remainder ------------------------------------------------------------------------


def largest_remainder(
    numerators: Iterable[tuple[TrackKey, int, int]], denominator: int, pool: int
) -> list[TrackShare]:
    """(track, plays, numerator) with exact shares numerator / denominator summing to
    ``pool``: each track's amount, by largest remainder and the module's tie-break, sorted
    by track key."""
    parts = []
    for track, plays, numerator in numerators:
        whole, remainder = divmod(numerator, denominator)
        parts.append((track, plays, whole, remainder))
    missing = pool - sum(whole for _, _, whole, _ in parts)
    if not 0 <= missing <= len(parts):
        raise ValueError("the exact shares do not add up to the pool")
    ranked = sorted(parts, key=lambda part: (-part[3], part[2], part[0]))
    rounded_up = {part[0] for part in ranked[:missing]}
    shares = [
        TrackShare(track, plays, whole + (track in rounded_up)) for track, plays, whole, _ in parts
    ]
    return sorted(shares, key=lambda share: share.track)


def _bind(db: Session | Connection) -> Any:
    return db if isinstance(db, Connection) else db.get_bind()


def _dialect(db: Session | Connection) -> str:
    return _bind(db).dialect.name
