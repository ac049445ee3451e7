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
    # The sums of ``listeners`` (``listener_sum_columns``), when the caller read them already.
    sums: ListenerSums | None = None


class TrackShare(NamedTuple):
    """A track's plays and amount."""

    track: TrackKey
    plays: int
    amount: int


@dataclass(frozen=True, slots=True)
class Allocation:
    """The split of a pool, track by track in key order: ``track_keys``, their earning plays
    (``track_plays``) and their ``amounts``, which sum to ``pool``.

    ``model`` is the model used: ``user_centric`` asked for with no impressions is
    ``pro_rata``. ``pool`` is what was allocated: 0 when there were no earning plays.
    The tracks are three parallel lists, not an object each: a close splits over tens of
    thousands of tracks, and their objects cost more (mostly in garbage collection) than
    the arithmetic. ``shares`` gives them as rows.
    """

    model: PoolModel
    pool: int
    plays: int
    track_keys: list[TrackKey]
    track_plays: list[int]
    amounts: list[int]

    @property
    def shares(self) -> list[TrackShare]:
        return list(map(TrackShare, self.track_keys, self.track_plays, self.amounts))

    @property
    def tracks(self) -> int:
        return len(self.track_keys)


def _nothing(model: PoolModel) -> Allocation:
    """No earning plays: nothing is allocated."""
    return Allocation(model, 0, 0, [], [], [])


def _columns(db: Session | Connection, query: Select[Any]) -> list[list[Any]]:
    """The rows of ``query`` as one list per column (in one row order). On PostgreSQL they
    come as one row of arrays (``array_agg``), which the driver reads without making an
    object per row."""
    width = len(query.selected_columns)
    if _dialect(db) == "postgresql":
        rows = query.subquery("grouped")
        arrays = db.execute(select(*(func.array_agg(column) for column in rows.c))).one()
        return [list(array or []) for array in arrays]
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in db.execute(query):
        for column, value in zip(columns, row):
            column.append(value)
    return columns


def period_inputs(period_id: int | None, *, kept: bool = False) -> PoolInputs:
    """The earning counted plays and the ad impressions that landed in the period, and, when
    ``kept``, its listeners' counters (``PeriodListener``, with their impressions' CPMs summed
    as ``cpm``; the allocation raises CountersDisagree when their plays are not the plays it
    reads)."""
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
            PeriodListener.impression_cpm_minor.label("cpm"),
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
        weights = inputs.sums or _kept_weights(db, inputs.listeners)
        impressions = weights.impressions
    if impressions:
        return _user_centric(db, inputs, pool, impressions, scale, weights)
    return _pro_rata(db, inputs, pool)


@dataclass(frozen=True, slots=True)
class ListenerSums:
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


def listener_sum_columns(listeners: FromClause) -> list[Any]:
    """The aggregates of ``PoolInputs.listeners`` that ``ListenerSums`` holds, in its order
    (a caller reading more of the same rows selects them with its own: one pass)."""
    weighted = (listeners.c.n > 0) & (listeners.c.imps > 0)
    return [
        func.coalesce(func.sum(listeners.c.n), 0),
        func.coalesce(func.sum(listeners.c.imps), 0),
        func.coalesce(func.sum(listeners.c.imps).filter(weighted), 0),
        func.coalesce(func.max(listeners.c.imps).filter(weighted), 0),
    ]


def _kept_weights(db: Session | Connection, listeners: FromClause) -> ListenerSums:
    row = db.execute(select(*listener_sum_columns(listeners))).one()
    return ListenerSums(*(int(value) for value in row))


# pro_rata ---------------------------------------------------------------------------------


def _pro_rata(db: Session | Connection, inputs: PoolInputs, pool: int) -> Allocation:
    plays = inputs.plays
    tracks, counts = _columns(db, select(plays.c.track, func.count()).group_by(plays.c.track))
    total = sum(counts)
    if total == 0:
        return _nothing(PoolModel.PRO_RATA)
    numerators = [pool * count for count in counts]
    return largest_remainder(PoolModel.PRO_RATA, pool, tracks, counts, numerators, total)


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
    weights: ListenerSums | None,
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
            weights = ListenerSums(None, impressions, int(sums[0]), int(sums[1]))
        return _user_centric_fixed_point(db, inputs, weighted, pool, impressions, scale, weights)
    groups = [
        (track, int(n), int(plays), int(weight))
        for track, n, plays, weight in db.execute(track_groups(inputs.plays, weighted))
    ]
    total = sum(plays for _, _, plays, _ in groups)
    if weights is not None:
        weights.check(total)
    if total == 0:
        return _nothing(PoolModel.USER_CENTRIC)
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
    tracks = list(track_plays)
    counts = [track_plays[track] for track in tracks]
    numerators = [
        pool * (total * weighted_sum[track] + orphan_impressions * lcm * count)
        for track, count in zip(tracks, counts)
    ]
    denominator = impressions * lcm * total
    return largest_remainder(PoolModel.USER_CENTRIC, pool, tracks, counts, numerators, denominator)


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
    weights: ListenerSums,
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
        tracks, track_plays, weight_sums = _columns(db, per_track)
    total = sum(track_plays)
    weights.check(total)
    if total == 0:
        return _nothing(PoolModel.USER_CENTRIC)
    orphans = impressions - weights.weighted_impressions
    denominator = impressions * total * scale
    spread = pool * total  # per play: the width of a track's interval, in units of 1/D
    offset = scale * orphans
    whole: list[int] = []
    low: list[int] = []
    high: list[int] = []
    for count, weight_sum in zip(track_plays, weight_sums):
        floor, remainder = divmod(pool * (total * weight_sum + offset * count), denominator)
        whole.append(floor)
        low.append(remainder)
        high.append(remainder + spread * count)
    exact = _Exact(
        db, inputs, weighted, _Totals(pool, total, impressions, orphans), tracks, whole, low, high,
        denominator,
    )  # fmt: skip
    # Where the interval reaches the next minor unit, the floor itself is undecided.
    exact.settle([index for index, top in enumerate(high) if top >= denominator])
    missing = pool - sum(whole)
    if not 0 <= missing <= len(whole):
        raise ValueError("the exact shares do not add up to the pool")
    for index in round_up(low, high, missing, exact.rank):
        whole[index] += 1
    return _in_key_order(PoolModel.USER_CENTRIC, pool, total, tracks, track_plays, whole)


class _Totals(NamedTuple):
    """What every exact share of a pool is computed with (``_exact_shares``)."""

    pool: int
    plays: int  # P
    impressions: int  # I
    orphans: int  # I_o


class _Exact:
    """Exact shares for chosen tracks (by index into ``tracks``), from their plays grouped by
    (track, n). Settling a track replaces its floor in ``whole`` and its remainder's bounds
    in ``low`` and ``high`` (units of 1/``denominator``) with exact ones."""

    def __init__(
        self,
        db: Session | Connection,
        inputs: PoolInputs,
        weighted: FromClause,
        totals: _Totals,
        tracks: list[TrackKey],
        whole: list[int],
        low: list[int],
        high: list[int],
        denominator: int,
    ) -> None:
        self.db, self.inputs, self.weighted, self.totals = db, inputs, weighted, totals
        self.tracks, self.whole, self.low, self.high = tracks, whole, low, high
        self.denominator = denominator
        self.remainders: dict[int, Fraction] = {}  # index: exact remainder, in minor units

    def settle(self, indices: list[int]) -> None:
        """Give each of ``indices`` its exact floor and remainder, in one query."""
        wanted = [index for index in indices if index not in self.remainders]
        if not wanted:
            return
        shares = _exact_shares(
            self.db, self.inputs, self.weighted, [self.tracks[index] for index in wanted],
            self.totals,
        )  # fmt: skip
        for index in wanted:
            share = shares[self.tracks[index]]
            self.whole[index] = math.floor(share)
            remainder = share - self.whole[index]
            self.remainders[index] = remainder
            scaled = remainder * self.denominator
            self.low[index], self.high[index] = math.floor(scaled), math.ceil(scaled)

    def rank(self, indices: list[int]) -> list[int]:
        """``indices``, settled, in largest-remainder order (the module's tie-break)."""
        self.settle(indices)
        remainders, whole, tracks = self.remainders, self.whole, self.tracks
        return sorted(indices, key=lambda index: (-remainders[index], whole[index], tracks[index]))


def round_up(
    low: list[int], high: list[int], missing: int, rank: Callable[[list[int]], list[int]]
) -> list[int]:
    """The indices of the ``missing`` tracks with the largest remainders (ties as the module
    says), given each remainder's bounds ``low[i] <= remainder <= high[i]``.

    ``rank`` puts some indices in largest-remainder order, from their exact shares. By lower
    bound, descending: the first j tracks are surely among them when every one of their
    lower bounds exceeds every upper bound after them, and j <= missing; likewise the first
    j' >= missing hold them all. Only the tracks between j and j' need exact shares.
    """
    if missing == 0:
        return []
    count = len(low)
    ranked = sorted(range(count), key=low.__getitem__, reverse=True)
    highest_after = [0] * (count + 1)  # highest_after[i]: the largest upper bound from i on
    highest_after[count] = -1
    for position in range(count - 1, -1, -1):
        highest_after[position] = max(high[ranked[position]], highest_after[position + 1])

    def separated(position: int) -> bool:  # the first ``position`` are all above the rest
        return position in (0, count) or low[ranked[position - 1]] > highest_after[position]

    first = next(i for i in range(missing, -1, -1) if separated(i))
    last = next(i for i in range(missing, count + 1) if separated(i))
    return ranked[:first] + rank(ranked[first:last])[: missing - first]


def _exact_shares(
    db: Session | Connection,
    inputs: PoolInputs,
    weighted: FromClause,
    tracks: list[TrackKey],
    totals: _Totals,
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
    pool, total, impressions, orphans = totals
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
    model: PoolModel,
    pool: int,
    tracks: list[TrackKey],
    plays: list[int],
    numerators: list[int],
    denominator: int,
) -> Allocation:
    """The allocation of tracks with their ``plays`` and exact shares numerator / denominator
    summing to ``pool``: each amount by largest remainder, with the module's tie-break."""
    amounts: list[int] = []
    remainders: list[int] = []
    for numerator in numerators:
        whole, remainder = divmod(numerator, denominator)
        amounts.append(whole)
        remainders.append(remainder)
    missing = pool - sum(amounts)
    if not 0 <= missing <= len(amounts):
        raise ValueError("the exact shares do not add up to the pool")
    # Largest remainder first, then the smaller share, then the lower key: stable sorts,
    # the last key first.
    ranked = sorted(range(len(tracks)), key=tracks.__getitem__)
    ranked.sort(key=amounts.__getitem__)
    ranked.sort(key=remainders.__getitem__, reverse=True)
    for index in ranked[:missing]:
        amounts[index] += 1
    return _in_key_order(model, pool, sum(plays), tracks, plays, amounts)


def _in_key_order(
    model: PoolModel,
    pool: int,
    total: int,
    tracks: list[TrackKey],
    plays: list[int],
    amounts: list[int],
) -> Allocation:
    order = sorted(range(len(tracks)), key=tracks.__getitem__)
    return Allocation(
        model, pool, total, [tracks[i] for i in order], [plays[i] for i in order],
        [amounts[i] for i in order],
    )  # fmt: skip


def _bind(db: Session | Connection) -> Any:
    return db if isinstance(db, Connection) else db.get_bind()


def _dialect(db: Session | Connection) -> str:
    return _bind(db).dialect.name
