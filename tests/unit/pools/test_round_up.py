"""Largest remainder from bounds (``round_up``): the tracks rounded up are those an exact
ranking picks, whatever the bounds, and only the tracks the bounds leave undecided are asked
for their exact shares."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from app.pools.allocation import Candidate, round_up

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


@given(tracks())
def test_the_tracks_rounded_up_are_the_exact_largest_remainders(example):
    rows, missing = example
    candidates, exact = [], {}
    for track, whole, remainder, below, above in rows:
        candidate = Candidate(track, 1, whole, int(remainder * UNITS) - below)
        candidate.high = int(remainder * UNITS) + above
        candidates.append(candidate)
        exact[track] = remainder
    settled: list[int] = []

    def settle(some: list[Candidate]) -> None:
        for candidate in some:
            settled.append(candidate.track)
            candidate.exact = exact[candidate.track]

    chosen = round_up(candidates, missing, settle)

    ranking = sorted(rows, key=lambda row: (-row[2], row[1], row[0]))
    assert chosen == {row[0] for row in ranking[:missing]}
    assert len(settled) == len(set(settled))


def test_bounds_that_decide_everything_ask_for_no_exact_share():
    candidates = []
    for track, low in enumerate([900, 500, 100]):
        candidate = Candidate(track, 1, 0, low)
        candidate.high = low + 50
        candidates.append(candidate)
    asked: list[Candidate] = []

    assert round_up(candidates, 2, asked.extend) == {0, 1}
    assert asked == []


def test_overlapping_bounds_at_the_cut_are_settled_exactly():
    # Tracks 1 and 2 overlap where the second place is decided: only they are asked.
    bounds = {0: (900, 950, Fraction(92, 100)), 1: (400, 600, Fraction(41, 100)),
              2: (450, 650, Fraction(6, 10)), 3: (100, 150, Fraction(12, 100))}  # fmt: skip
    candidates = []
    for track, (low, high, _) in bounds.items():
        candidate = Candidate(track, 1, 0, low)
        candidate.high = high
        candidates.append(candidate)
    asked: list[int] = []

    def settle(some: list[Candidate]) -> None:
        for candidate in some:
            asked.append(candidate.track)
            candidate.exact = bounds[candidate.track][2]

    assert round_up(candidates, 2, settle) == {0, 2}
    assert sorted(asked) == [1, 2]
