"""Pool splits on the in-memory path of ``megabox pool preview``: the oracles, fraud, exactness."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, create_engine, insert

from app.pools.allocation import Allocation, PoolInputs, allocate_pool, equal_impressions
from app.pools.commands import load_csv_inputs, pool_tables
from app.pools.models import PoolModel
from tests.unit.pools.oracle import exact_shares, largest_remainder

PRO_RATA = PoolModel.PRO_RATA
USER_CENTRIC = PoolModel.USER_CENTRIC
DAILY_CAP = 200  # the default PLAY_DAILY_CAP
DAYS = 30


@contextmanager
def memory() -> Iterator[Connection]:
    engine = create_engine("sqlite://")
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def from_csv(
    tmp_path: Path,
    plays: Sequence[tuple[str, str]],
    pool: int,
    model: PoolModel,
    impressions: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Write the CSV files ``megabox pool preview`` reads and split ``pool`` over them."""
    plays_csv = tmp_path / "plays.csv"
    plays_csv.write_text("listener,track\n" + "".join(f"{l},{t}\n" for l, t in plays))
    imps_csv = None
    if impressions is not None:
        imps_csv = tmp_path / "imps.csv"
        imps_csv.write_text(
            "listener,impressions\n" + "".join(f"{l},{n}\n" for l, n in impressions.items())
        )
    with memory() as connection:
        allocation = allocate_pool(
            connection, load_csv_inputs(connection, plays_csv, imps_csv), pool, model
        )
    return {share.track: share.amount for share in allocation.shares}


def split(
    plays: Sequence[tuple[str, str]],
    pool: int,
    model: PoolModel,
    impressions: Mapping[str, int] | None = None,
) -> Allocation:
    """The same split, with the rows inserted into the preview's tables directly."""
    with memory() as connection:
        play_table, imps_table = pool_tables(connection)
        if plays:
            connection.execute(
                insert(play_table), [{"listener": l, "track": t} for l, t in plays]
            )
        if impressions is None:
            inputs = PoolInputs(play_table, equal_impressions(play_table))
        else:
            if impressions:
                connection.execute(
                    insert(imps_table),
                    [{"listener": l, "impressions": n} for l, n in impressions.items()],
                )
            inputs = PoolInputs(play_table, imps_table)
        return allocate_pool(connection, inputs, pool, model)


def times(listener: str, track: str, count: int) -> list[tuple[str, str]]:
    return [(listener, track)] * count


# The oracles of the issue -------------------------------------------------------------------

ONE_AND_THIRTY_ONE = times("A", "t1", 1) + times("B", "t2", 31)
TEN_AND_THREE_THOUSAND = times("A", "x", 10) + times("B", "y", 3000)
THREE_LISTENERS = (
    times("U1", "A", 9) + times("U1", "B", 1) + times("U2", "B", 10) + times("U3", "C", 1)
)


def test_pro_rata_breaks_the_half_half_tie_towards_the_smaller_share(tmp_path):
    # 62.5 / 1937.5: equal remainders, so the smaller exact share is rounded up.
    both = {"A": 1000, "B": 1000}
    assert from_csv(tmp_path, ONE_AND_THIRTY_ONE, 2000, PRO_RATA, both) == {"t1": 63, "t2": 1937}


def test_user_centric_gives_each_listener_their_own_revenue(tmp_path):
    both = {"A": 1000, "B": 1000}
    assert from_csv(tmp_path, ONE_AND_THIRTY_ONE, 2000, USER_CENTRIC, both) == {
        "t1": 1000, "t2": 1000,
    }  # fmt: skip


def test_ten_plays_against_three_thousand(tmp_path):
    assert from_csv(tmp_path, TEN_AND_THREE_THOUSAND, 1200, PRO_RATA) == {"x": 4, "y": 1196}
    assert from_csv(tmp_path, TEN_AND_THREE_THOUSAND, 1200, USER_CENTRIC) == {"x": 600, "y": 600}


def test_three_listeners(tmp_path):
    assert from_csv(tmp_path, THREE_LISTENERS, 3000, PRO_RATA) == {"A": 1286, "B": 1571, "C": 143}
    assert from_csv(tmp_path, THREE_LISTENERS, 3000, USER_CENTRIC) == {
        "A": 900, "B": 1100, "C": 1000,
    }  # fmt: skip


# The rules around the oracles ---------------------------------------------------------------


def test_equal_shares_go_to_the_lower_track_key_as_text():
    plays = [("u", "9"), ("u", "10"), ("u", "b"), ("u", "a")]
    amounts = {s.track: s.amount for s in split(plays, 10, PRO_RATA).shares}
    # 2.5 each: equal remainders and equal shares, so "10" and "9" (first as text) round up.
    assert amounts == {"10": 3, "9": 3, "a": 2, "b": 2}


def test_impressions_of_listeners_who_played_nothing_are_split_pro_rata():
    impressions = {"U1": 1, "U2": 1, "U3": 1, "U4": 3}  # U4 saw ads and played nothing
    result = split(THREE_LISTENERS, 3000, USER_CENTRIC, impressions)
    amounts = {s.track: s.amount for s in result.shares}
    # 1500 by listener (900/1100/1000 halved) plus 1500 pro rata (642.86/785.71/71.43).
    assert amounts == {"A": 1093, "B": 1336, "C": 571}


def test_plays_without_impressions_share_only_the_pro_rata_part():
    impressions = {"U1": 2, "U3": 0, "U9": 2}  # U2 and U3 bring no revenue; U9 never played
    result = split(THREE_LISTENERS, 3000, USER_CENTRIC, impressions)
    shares = exact_shares(THREE_LISTENERS, impressions, 3000, "user_centric")
    expected = largest_remainder(shares, 3000)
    assert {s.track: s.amount for s in result.shares} == expected
    # U1: 1500 as 1350 + 150; U9: 1500 pro rata, 642.86 + 785.71 + 71.43.
    assert expected == {"A": 1993, "B": 936, "C": 71}


def test_user_centric_without_any_impression_falls_back_to_pro_rata():
    result = split(THREE_LISTENERS, 3000, USER_CENTRIC, {"U1": 0})
    assert result.model is PRO_RATA
    assert [s.amount for s in result.shares] == [1286, 1571, 143]


@pytest.mark.parametrize("model", list(PoolModel))
def test_without_plays_nothing_is_allocated(model):
    result = split([], 5000, model, {"U1": 4})
    assert (result.pool, result.plays, result.shares) == (0, 0, [])


def test_a_pool_of_zero_gives_every_track_zero():
    result = split(THREE_LISTENERS, 0, USER_CENTRIC)
    assert [(s.track, s.plays, s.amount) for s in result.shares] == [
        ("A", 9, 0), ("B", 11, 0), ("C", 1, 0),
    ]  # fmt: skip


def test_a_negative_pool_is_refused():
    with pytest.raises(ValueError):
        split(THREE_LISTENERS, -1, PRO_RATA)


# Fraud --------------------------------------------------------------------------------------

HONEST = times("fan1", "song", 20) + times("fan2", "song", 5) + times("fan2", "hit", 15)


def test_a_bot_earns_its_track_only_its_own_impressions_revenue_under_user_centric():
    plays = HONEST + times("bot", "bot-song", 10_000)
    impressions = {"fan1": 40, "fan2": 40, "bot": 20}  # the bot's 20 of 100 impressions
    amounts = {s.track: s.amount for s in split(plays, 10_000, USER_CENTRIC, impressions).shares}
    assert amounts["bot-song"] == 2_000  # exactly 10,000 · 20/100, however much it plays
    assert amounts == {"bot-song": 2_000, "song": 5_000, "hit": 3_000}
    # The same bot under pro_rata takes almost everything.
    pro_rata = {s.track: s.amount for s in split(plays, 10_000, PRO_RATA, impressions).shares}
    assert pro_rata["bot-song"] == 9_960


def test_more_bot_plays_do_not_raise_its_user_centric_share():
    impressions = {"fan1": 40, "fan2": 40, "bot": 20}
    for bot_plays in (1, 100, 10_000):
        plays = HONEST + times("bot", "bot-song", bot_plays)
        result = split(plays, 10_000, USER_CENTRIC, impressions)
        amounts = {s.track: s.amount for s in result.shares}
        assert amounts["bot-song"] == 2_000


def test_the_daily_cap_bounds_a_bot_under_pro_rata():
    # Counting caps a listener at PLAY_DAILY_CAP counted plays a day: of 10,000 a day for a
    # month, DAYS · DAILY_CAP reach the split, and the bot's share is that fraction, exactly.
    capped = DAYS * DAILY_CAP
    honest = times("fan1", "song", 3_000) + times("fan2", "hit", 3_000)
    result = split(honest + times("bot", "bot-song", capped), 12_000, PRO_RATA)
    amounts = {s.track: s.amount for s in result.shares}
    assert result.plays == 12_000
    assert amounts == {"bot-song": 6_000, "song": 3_000, "hit": 3_000}


# The property -------------------------------------------------------------------------------

LISTENERS = [f"l{i}" for i in range(8)]
TRACKS = [f"t{i}" for i in range(6)]
play_lists = st.lists(st.tuples(st.sampled_from(LISTENERS), st.sampled_from(TRACKS)), max_size=60)
impression_maps = st.dictionaries(
    st.sampled_from(LISTENERS + ["never-played"]), st.integers(0, 30), max_size=9
)
pools = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=150, deadline=None)
@given(play_lists, impression_maps, pools, st.sampled_from(list(PoolModel)))
def test_every_split_is_exact(plays, impressions, pool, model):
    result = split(plays, pool, model, impressions)
    amounts = {s.track: s.amount for s in result.shares}
    shares = exact_shares(plays, impressions, pool, model.value)
    if not plays:
        assert amounts == {} and result.pool == 0
        return
    assert sum(amounts.values()) == pool == result.pool
    for track, share in shares.items():
        assert share - 1 < amounts[track] < share + 1  # the floor or the ceiling
    assert amounts == largest_remainder(shares, pool)
