"""Largest remainder from bounds (``round_up``): the tracks rounded up are those an exact
ranking picks, whatever the bounds, and only the tracks the bounds leave undecided are asked
for their exact shares."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from app.pools.allocation import round_up

UNITS = 1000  # the bounds' denominator D in these examples


@st.composite
def tracks(draw):
    count = draw(st.integers(1, 12))
    rows = []
    for track in range(count):
        # Tenths make ties between remainders common.
        remainder = Fraction(draw(st.integers(0, 9)), 10)
        whole = draw(st.integers(0, 3))
        below, above = draw(st.integers(0, 400)), draw(st.integers(0, 400))
        rows.append((track, whole, remainder, below, above))
    return rows, draw(st.integers(0, count))


def ranker(exact, whole, asked):
    """A ``rank`` for round_up: exact remainders, then the smaller share, then the lower
    track, recording what it was asked."""

    def rank(indices: list[int]) -> list[int]:
        asked.extend(indices)
        return sorted(indices, key=lambda index: (-exact[index], whole[index], index))

    return rank


@given(tracks())
def test_the_tracks_rounded_up_are_the_exact_largest_remainders(example):
    rows, missing = example
    low = [int(remainder * UNITS) - below for _, _, remainder, below, _ in rows]
    high = [int(remainder * UNITS) + above for _, _, remainder, _, above in rows]
    exact = [remainder for _, _, remainder, _, _ in rows]
    whole = [row[1] for row in rows]
    asked: list[int] = []

    chosen = round_up(low, high, missing, ranker(exact, whole, asked))

    ranking = sorted(rows, key=lambda row: (-row[2], row[1], row[0]))
    assert sorted(chosen) == sorted(row[0] for row in ranking[:missing])
    assert len(chosen) == len(set(chosen)) == missing
    assert len(asked) == len(set(asked))


def test_bounds_that_decide_everything_ask_for_no_exact_share():
    low = [900, 500, 100]
    high = [value + 50 for value in low]
    asked: list[int] = []

    assert sorted(round_up(low, high, 2, ranker([0] * 3, [0] * 3, asked))) == [0, 1]
    assert asked == []


def test_overlapping_bounds_at_the_cut_are_settled_exactly():
    # Tracks 1 and 2 overlap where the second place is decided: only they are asked.
    low, high = [900, 400, 450, 100], [950, 600, 650, 150]
    exact = [Fraction(92, 100), Fraction(41, 100), Fraction(6, 10), Fraction(12, 100)]
    asked: list[int] = []

    assert sorted(round_up(low, high, 2, ranker(exact, [0] * 4, asked))) == [0, 2]
    assert sorted(asked) == [1, 2]
