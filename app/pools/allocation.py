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
directly. On SQLite (64-bit integers, small inputs) that runs in Python over the grouped rows.
On PostgreSQL, where a month holds ten million plays and L has hundreds of digits, one pass
over the plays computes each share in fixed point, with a bound on its error, and only the
tracks whose floor or rank that bound leaves open get the exact sum above
(``_user_centric_fixed_point``, ``round_up``): the result is the same, exactly. The listeners'
n and impressions come from counters kept as plays and impressions land
(``PoolInputs.listeners``), when the caller has them. ``pro_rata`` is pool · P_t divided by P,
in Python integers.

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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Connection,
    FromClause,
    Select,
    any_,
    bindparam,
    cast,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.ads.models import Impression
from app.plays.models import Play
from app.pools.models import PeriodListener, PoolModel

# A close groups a month of plays by track: memory for that hash table and for the merge's
# sorts (PostgreSQL's default of 4MB spills to disk). Local to the transaction.
POSTGRES_WORK_MEM = "256MB"
# S of the fixed-point weights (``_user_centric_fixed_point``): a share is then known to within
# pool · P_t / (I · S) minor units before any exact work, about 1e-6 for a month's data.
WEIGHT_SCALE = 2**40
INT64_MAX = 2**63 - 1

TrackKey = Any  # int in the database, str in CSV files


@dataclass(frozen=True, slots=True)
class PoolInputs:
    """The relations an allocation reads (see the module docstring).

    ``listeners``, when given, is what grouping the other two by listener gives, kept ahead
    (``PeriodListener``): the caller vouches that it agrees with them.
    """

    plays: FromClause  # columns: listener, track
    impressions: FromClause  # columns: listener, impressions
    listeners: FromClause | None = None  # columns: listener, n, imps


class TrackShare(NamedTuple):
    """A track's plays and amount. (A tuple: a close makes tens of thousands, and a frozen
    dataclass took a tenth of a second to build them.)"""

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


def period_inputs(period_id: int | None, *, kept: bool = False) -> PoolInputs:
    """The earning counted plays and the ad impressions that landed in the period, and, when
    ``kept``, its listeners' counters (``PeriodListener``; the allocation raises
    CountersDisagree when their plays are not the plays it reads)."""
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
    if not kept:
        return PoolInputs(plays, impressions)
    listeners = (
        select(
            PeriodListener.listener_id.label("listener"),
            PeriodListener.earning_plays.label("n"),
            PeriodListener.impressions.label("imps"),
        )
        .where(PeriodListener.period_id == period_id)
        .subquery("period_listeners_kept")
    )
    return PoolInputs(plays, impressions, listeners)


def equal_impressions(plays: FromClause) -> FromClause:
    """One impression for every listener who played: each listener weighs the same."""
    return (
        select(plays.c.listener, literal(1).label("impressions"))
        .group_by(plays.c.listener)
        .subquery("equal_impressions")
    )


def allocate_pool(
    db: Session | Connection,
    inputs: PoolInputs,
    pool: int,
    model: PoolModel,
    *,
    scale: int = WEIGHT_SCALE,
) -> Allocation:
    """Split ``pool`` minor units over the tracks of ``inputs`` by ``model``, exactly.

    ``scale`` is S of the PostgreSQL path's fixed point (any S gives the same, exact result;
    a small one only makes more tracks need exact work). Raises ValueError for a negative
    pool.
    """
    if pool < 0:
        raise ValueError("a pool cannot be negative")
    if _dialect(db) == "postgresql":
        db.execute(text(f"SET LOCAL work_mem = '{POSTGRES_WORK_MEM}'"))
    if PoolModel(model) is not PoolModel.USER_CENTRIC:
        return _pro_rata(db, inputs, pool)
    if inputs.listeners is None:
        source = inputs.impressions.c.impressions
        impressions = int(db.execute(select(func.coalesce(func.sum(source), 0))).scalar() or 0)
        weights = None
    else:
        weights = _kept_weights(db, inputs.listeners)
        impressions = weights.impressions
    if impressions:
        return _user_centric(db, inputs, pool, impressions, scale, weights)
    return _pro_rata(db, inputs, pool)


@dataclass(frozen=True, slots=True)
class _Weights:
    """Sums over the listeners: all their plays and impressions (kept counters only), and the
    impressions and the largest imps of the weighted ones (n > 0 and imps > 0)."""

    plays: int | None  # None: grouped from the rows, not kept
    impressions: int
    weighted_impressions: int
    largest: int

    def check(self, plays: int) -> None:
        """Raises CountersDisagree when kept counters do not sum to the ``plays`` read."""
        if self.plays is not None and self.plays != plays:
            raise CountersDisagree(f"the listeners' counters hold {self.plays} earning plays, "
                                   f"the period {plays}")  # fmt: skip


class CountersDisagree(Exception):
    """``PoolInputs.listeners`` does not agree with the plays (the caller counts again)."""


def _kept_weights(db: Session | Connection, listeners: FromClause) -> _Weights:
    weighted = (listeners.c.n > 0) & (listeners.c.imps > 0)
    row = db.execute(
        select(
            func.coalesce(func.sum(listeners.c.n), 0),
            func.coalesce(func.sum(listeners.c.imps), 0),
            func.coalesce(func.sum(listeners.c.imps).filter(weighted), 0),
            func.coalesce(func.max(listeners.c.imps).filter(weighted), 0),
        )
    ).one()
    return _Weights(*(int(value) for value in row))


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


def _weighted(inputs: PoolInputs) -> FromClause:
    """The listeners with earning plays and impressions: ``listener``, ``n``, ``imps``."""
    if inputs.listeners is None:
        return weighted_listeners(inputs).subquery("weighted_listeners")
    kept = inputs.listeners
    return (
        select(kept.c.listener, kept.c.n, kept.c.imps)
        .where(kept.c.n > 0, kept.c.imps > 0)
        .subquery("weighted_listeners")
    )


def _user_centric(
    db: Session | Connection,
    inputs: PoolInputs,
    pool: int,
    impressions: int,
    scale: int,
    weights: _Weights | None,
) -> Allocation:
    weighted = _weighted(inputs)
    if _dialect(db) == "postgresql":
        if weights is None:
            sums = db.execute(
                select(
                    func.coalesce(func.sum(weighted.c.imps), 0),
                    func.coalesce(func.max(weighted.c.imps), 0),
                )
            ).one()
            weights = _Weights(None, impressions, int(sums[0]), int(sums[1]))
        return _user_centric_fixed_point(db, inputs, weighted, pool, impressions, scale, weights)
    groups = [
        (track, int(n), int(plays), int(weight))
        for track, n, plays, weight in db.execute(track_groups(inputs.plays, weighted))
    ]
    total = sum(plays for _, _, plays, _ in groups)
    if weights is not None:
        weights.check(total)
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


def _user_centric_fixed_point(
    db: Session | Connection,
    inputs: PoolInputs,
    weighted: FromClause,
    pool: int,
    impressions: int,
    scale: int,
    weights: _Weights,
) -> Allocation:
    """The PostgreSQL path: one pass over the plays in fixed point, made exact where needed.

    Each weighted listener's weight per play, imps_l / n_l, is taken as the 64-bit integer
    w_l = floor(imps_l · S / n_l) (S = ``scale``, lowered if the largest imps_l · S would not
    fit). One statement merges the plays, in listener order, with the weighted listeners,
    and groups them by track: P_t and W_t = Σ w_l over its plays. Since S · A_t lies in
    [W_t, W_t + P_t) (each play's w_l is short by less than 1), track t's exact share lies
    in a known interval of width pool · P · P_t / D, D = I · P · S (far below a minor unit:
    counting the weighted listeners' plays apart, for a tighter bound, measured slower than
    the rare exact work it would spare). Where that leaves a
    floor or the largest-remainder order undecided, the tracks concerned get their exact
    shares from their (track, n) groups (``_exact_shares``), so the result is exact always.
    """
    # imps_l · S must fit 64 bits, and so must each track's W_t: all of them together come to
    # at most S · (the weighted listeners' impressions).
    ceiling = INT64_MAX // max(weights.largest, weights.weighted_impressions, 1)
    scale = max(1, min(scale, ceiling))
    plays = inputs.plays
    weight = (weighted.c.imps * literal(scale, BigInteger())) // weighted.c.n
    per_track = (
        select(
            plays.c.track,
            func.count().label("plays"),
            cast(func.coalesce(func.sum(weight), 0), BigInteger).label("weight"),
        )
        .select_from(plays.outerjoin(weighted, weighted.c.listener == plays.c.listener))
        .group_by(plays.c.track)
    )
    with _merge_join(db):
        rows = db.execute(per_track).all()
    total = sum(p for _, p, _ in rows)
    weights.check(total)
    if total == 0:
        return Allocation(PoolModel.USER_CENTRIC, 0, 0, [])
    orphans = impressions - weights.weighted_impressions
    denominator = impressions * total * scale
    exact = _Exact(db, inputs, weighted, pool, total, impressions, orphans)
    candidates: list[Candidate] = []
    undecided: list[Candidate] = []  # the floor itself is undecided
    for track, track_plays, weight_sum in rows:
        low = pool * (total * weight_sum + scale * orphans * track_plays)
        high = low + pool * total * track_plays
        whole = low // denominator
        candidate = Candidate(track, track_plays, whole, low - whole * denominator)
        candidate.high = high - whole * denominator
        if high // denominator != whole:
            undecided.append(candidate)
        candidates.append(candidate)
    exact.settle(undecided, denominator)
    missing = pool - sum(candidate.whole for candidate in candidates)
    if not 0 <= missing <= len(candidates):
        raise ValueError("the exact shares do not add up to the pool")
    rounded_up = round_up(candidates, missing, lambda some: exact.settle(some, denominator))
    shares = [
        TrackShare(c.track, c.plays, c.whole + (c.track in rounded_up)) for c in candidates
    ]
    return Allocation(PoolModel.USER_CENTRIC, pool, total, sorted(shares, key=lambda s: s.track))


class Candidate:
    """A track's share: ``whole`` (its floor, known) and its remainder, known to lie in
    [``low``, ``high``] in units of 1/D, or known exactly (``exact``, in minor units)."""

    __slots__ = ("track", "plays", "whole", "low", "high", "exact")

    def __init__(self, track: TrackKey, plays: int, whole: int, low: int) -> None:
        self.track, self.plays, self.whole, self.low = track, plays, whole, low
        self.high = low
        self.exact: Fraction | None = None

    def order(self) -> tuple[Fraction, int, TrackKey]:
        """The largest-remainder order of the module docstring (exact shares only)."""
        assert self.exact is not None
        return (-self.exact, self.whole, self.track)


class _Exact:
    """Exact shares for chosen tracks, from their plays grouped by (track, n)."""

    def __init__(
        self,
        db: Session | Connection,
        inputs: PoolInputs,
        weighted: FromClause,
        pool: int,
        total: int,
        impressions: int,
        orphans: int,
    ) -> None:
        self.db, self.inputs, self.weighted = db, inputs, weighted
        self.pool, self.total, self.impressions, self.orphans = pool, total, impressions, orphans

    def settle(self, candidates: list[Candidate], denominator: int) -> None:
        """Give each candidate its exact floor and remainder, in one query."""
        wanted = [candidate for candidate in candidates if candidate.exact is None]
        if not wanted:
            return
        shares = _exact_shares(
            self.db, self.inputs, self.weighted, [c.track for c in wanted],
            self.pool, self.total, self.impressions, self.orphans,
        )  # fmt: skip
        for candidate in wanted:
            share = shares[candidate.track]
            candidate.whole = math.floor(share)
            candidate.exact = share - candidate.whole
            scaled = candidate.exact * denominator
            candidate.low, candidate.high = math.floor(scaled), math.ceil(scaled)


def round_up(
    candidates: list[Candidate], missing: int, settle: Callable[[list[Candidate]], None]
) -> set[TrackKey]:
    """The ``missing`` tracks with the largest remainders (ties as the module says).

    ``settle`` gives candidates their exact shares. By lower bound, descending: the first j
    tracks are surely among them when every one of their lower bounds exceeds every upper
    bound after them, and j <= missing; likewise the first j' >= missing hold them all. Only
    the tracks between j and j' need exact shares.
    """
    if missing == 0:
        return set()
    ranked = sorted(candidates, key=lambda candidate: candidate.low, reverse=True)
    count = len(ranked)
    highest_after = [0] * (count + 1)  # highest_after[i]: the largest upper bound from i on
    highest_after[count] = -1
    for i in range(count - 1, -1, -1):
        highest_after[i] = max(ranked[i].high, highest_after[i + 1])

    def separated(i: int) -> bool:  # the first i are all above the rest
        return i in (0, count) or ranked[i - 1].low > highest_after[i]

    first = next(i for i in range(missing, -1, -1) if separated(i))
    last = next(i for i in range(missing, count + 1) if separated(i))
    middle = ranked[first:last]
    settle(middle)
    chosen = sorted(middle, key=Candidate.order)[: missing - first]
    return {c.track for c in ranked[:first]} | {c.track for c in chosen}


def _exact_shares(
    db: Session | Connection,
    inputs: PoolInputs,
    weighted: FromClause,
    tracks: list[TrackKey],
    pool: int,
    total: int,
    impressions: int,
    orphans: int,
) -> dict[TrackKey, Fraction]:
    """The exact share of each of ``tracks``: pool · (P · Σ_n num_{t,n} / n + I_o · P_t) /
    (I · P), from its plays grouped by (track, n)."""
    plays = inputs.plays
    chosen = bindparam("tracks", list(tracks), ARRAY(BigInteger()))
    groups = track_groups(plays, weighted).where(plays.c.track == any_(chosen))
    weighted_sum: defaultdict[TrackKey, Fraction] = defaultdict(Fraction)
    track_plays: defaultdict[TrackKey, int] = defaultdict(int)
    for track, n, count, weight in db.execute(groups):
        track_plays[track] += int(count)
        if n:
            weighted_sum[track] += Fraction(int(weight), int(n))
    return {
        track: Fraction(pool) * (total * weighted_sum[track] + orphans * track_plays[track])
        / (impressions * total)
        for track in tracks
    }


@contextmanager
def _merge_join(db: Session | Connection) -> Iterator[None]:
    """Plan the statements inside as merges of ordered scans.

    The period's earning plays come in listener order from ``ix_plays_period_listener``
    alone, and are merged with the period's listeners sorted the same way: each is read
    once. The planner's costs favour hashing a million listeners and probing it ten million
    times, which measured twice as slow (bench/pools.py). JIT is off too: its compiling,
    started by the costs of ten million rows, took up to a second more than it saved. And
    the leader only gathers: each participant sorts the listeners for its side of the merge,
    and on two cores a third sort cost more (0.27 s) than the leader's share of the scan
    saved.
    """
    settings = ("enable_hashjoin", "enable_nestloop", "jit", "parallel_leader_participation")
    before = {name: db.execute(text(f"SHOW {name}")).scalar() for name in settings}
    for name in settings:
        db.execute(select(func.set_config(name, "off", True)))
    yield
    # (After an error the transaction is over, and with it these local settings.)
    for name, value in before.items():
        db.execute(select(func.set_config(name, value, True)))


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
