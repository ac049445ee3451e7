"""The allocation on the test database (PostgreSQL's fixed-point path when the suite runs
there), against the same Fraction oracle as the in-memory path: with the listeners grouped
from the rows or read from their counters, and with fixed points so coarse that most shares
need the exact path."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert

from app.ads.models import Impression
from app.extensions import db
from app.plays.models import Listener, Play, PlayOutcome
from app.pools.allocation import WEIGHT_SCALE, allocate_pool, period_inputs
from app.pools.models import PeriodListener, PoolModel
from app.pools.periods import ensure_period, recount_landed
from tests.factories import TrackFactory
from tests.functional.pools.conftest import IN_NOVEMBER, NOVEMBER
from tests.unit.pools.oracle import exact_shares, largest_remainder

LISTENERS = 9
TRACKS = 6
PRIMES_BELOW_100 = [p for p in range(2, 100) if all(p % d for d in range(2, p))]


class Month:
    """One period whose plays and impressions each example writes, reads and removes."""

    def __init__(self, app: Any) -> None:
        self.period_id = ensure_period(db.session, app.config, NOVEMBER).id
        self.tracks = [TrackFactory().id for _ in range(TRACKS)]
        listeners = [Listener(key=f"c:l{i}") for i in range(LISTENERS)]
        db.session.add_all(listeners)
        db.session.commit()
        self.listeners = [listener.id for listener in listeners]

    def fill(self, plays: list[tuple[int, int]], impressions: dict[int, int]) -> None:
        if plays:
            rows = [self._play(self.listeners[l], self.tracks[t]) for l, t in plays]
            db.session.execute(insert(Play), rows)
        rows = [
            {"listener_id": self.listeners[l], "period_id": self.period_id, "shown_at": IN_NOVEMBER,
             "cpm_minor": 0, "currency": "USD"}
            for l, n in impressions.items() for _ in range(n)
        ]  # fmt: skip
        if rows:
            db.session.execute(insert(Impression), rows)

    def empty(self) -> None:
        db.session.execute(delete(PeriodListener))
        db.session.execute(delete(Impression))
        db.session.execute(delete(Play))

    def _play(self, listener_id: int, track_id: int) -> dict[str, Any]:
        return {
            "track_id": track_id, "listener_id": listener_id, "started_at": IN_NOVEMBER,
            "threshold_ms": 30_000, "outcome": PlayOutcome.COUNTED, "counted_at": IN_NOVEMBER,
            "earns": True, "period_id": self.period_id,
        }  # fmt: skip


@pytest.fixture
def month(app: Any) -> Month:
    return Month(app)


def check(
    month: Month,
    plays,
    impressions,
    pool: int,
    model: PoolModel,
    *,
    kept: bool = False,
    scale: int = WEIGHT_SCALE,
) -> None:
    month.fill(plays, impressions)
    try:
        if kept:
            recount_landed(db.session, month.period_id)
        inputs = period_inputs(month.period_id, kept=kept)
        result = allocate_pool(db.session, inputs, pool, model, scale=scale)
    finally:
        month.empty()
    keyed_plays = [(month.listeners[l], month.tracks[t]) for l, t in plays]
    keyed_imps = {month.listeners[l]: n for l, n in impressions.items()}
    shares = exact_shares(keyed_plays, keyed_imps, pool, model.value)
    amounts = {share.track: share.amount for share in result.shares}
    if not plays:
        assert amounts == {} and result.pool == 0
        return
    assert sum(amounts.values()) == pool
    for track, share in shares.items():
        assert share - 1 < amounts[track] < share + 1
    assert amounts == largest_remainder(shares, pool)
    assert [share.track for share in result.shares] == sorted(amounts)


play_lists = st.lists(
    st.tuples(st.integers(0, LISTENERS - 2), st.integers(0, TRACKS - 1)), max_size=40
)
# The last listener never plays: their impressions are split pro rata.
impression_maps = st.dictionaries(
    st.integers(0, LISTENERS - 1), st.integers(0, 6), max_size=LISTENERS
)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    play_lists,
    impression_maps,
    st.one_of(st.integers(0, 5000), st.integers(0, 10**12)),
    st.sampled_from(list(PoolModel)),
    st.booleans(),
    st.sampled_from([WEIGHT_SCALE, 1, 3, 100, 1000, 10**5]),
)
def test_every_split_on_the_database_is_exact(month, plays, impressions, pool, model, kept, scale):
    check(month, plays, impressions, pool, model, kept=kept, scale=scale)


def test_a_common_denominator_far_beyond_64_bits_stays_exact(app):
    # Listeners playing 2, 3, 5, ..., 97 times make L the product of those primes (about
    # 2.3e36), so the combine needs numbers no 64-bit integer holds.
    month = Month(app)
    month_plays, month_imps = _one_listener_per_prime(month)
    for model in PoolModel:
        for scale in (WEIGHT_SCALE, 1):
            check(month, month_plays, month_imps, 10**15 + 7, model, scale=scale)


def _one_listener_per_prime(month: Month) -> tuple[list[tuple[int, int]], dict[int, int]]:
    extra = [Listener(key=f"c:prime{p}") for p in PRIMES_BELOW_100]
    db.session.add_all(extra)
    db.session.flush()  # the ids name the plays
    first = len(month.listeners)
    month.listeners += [listener.id for listener in extra]
    plays = [
        (first + index, (index + k) % TRACKS)
        for index, prime in enumerate(PRIMES_BELOW_100)
        for k in range(prime)
    ]
    impressions = {first + index: 1 + index % 3 for index in range(len(PRIMES_BELOW_100))}
    impressions[LISTENERS - 1] = 5  # one who never played
    return plays, impressions
