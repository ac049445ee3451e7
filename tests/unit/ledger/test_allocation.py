"""Largest-remainder allocation: the parts add up exactly and each is within 1 of its share."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ledger.allocation import allocate, split_bps
from config import BPS_WHOLE

totals = st.integers(min_value=0, max_value=10**9)
weight_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=30).filter(
    any
)


@given(totals, weight_lists)
def test_parts_add_up_and_each_is_the_floor_or_ceiling_of_its_share(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * weight, sum(weights))) < 1


huge_weight_lists = st.lists(
    st.integers(min_value=0, max_value=10**30), min_size=1, max_size=10
).filter(any)


@given(st.integers(min_value=-(10**40), max_value=10**40), huge_weight_lists)
def test_huge_and_negative_totals_are_exact(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert parts == [-part for part in allocate(-total, weights)]
    for part, weight in zip(parts, weights, strict=True):
        assert abs(part - Fraction(total * weight, sum(weights))) < 1


@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=0, max_value=BPS_WHOLE))
def test_split_bps_gives_the_artist_their_share_and_the_platform_the_rest(price, bps):
    artist, platform = split_bps(price, bps)
    assert artist + platform == price
    assert abs(artist - Fraction(price * bps, BPS_WHOLE)) < 1
    assert artist >= 0 and platform >= 0


def test_ties_go_to_the_larger_remainder_then_the_lower_index():
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(5, [1, 2]) == [2, 3]  # remainders 2/3 and 1/3: the larger one wins
    assert allocate(1, [1, 3]) == [0, 1]


def test_a_zero_weight_gets_nothing():
    assert allocate(7, [0, 1, 0, 1]) == [0, 4, 0, 3]


def test_a_negative_total_is_split_like_its_absolute_value_and_negated():
    assert allocate(-10, [1, 1, 1]) == [-4, -3, -3]


def test_the_artist_share_of_a_sale():
    assert split_bps(700, 9000) == (630, 70)
    assert split_bps(1, 9000) == (1, 0)
    assert split_bps(5, 5000) == (3, 2)  # an exact half goes to the artist
    assert split_bps(-5, 5000) == (-3, -2)  # and a refund undoes it exactly
    assert split_bps(999, 0) == (0, 999)
    assert split_bps(999, BPS_WHOLE) == (999, 0)


@pytest.mark.parametrize("weights", [[], [0], [0, 0, 0]])
def test_no_positive_weight_is_refused(weights):
    with pytest.raises(ValueError):
        allocate(10, weights)


def test_a_negative_weight_is_refused():
    with pytest.raises(ValueError):
        allocate(10, [3, -1])


@pytest.mark.parametrize("bps", [-1, BPS_WHOLE + 1])
def test_basis_points_outside_the_whole_are_refused(bps):
    with pytest.raises(ValueError):
        split_bps(100, bps)


@pytest.mark.parametrize(("total", "weights"), [(1.5, [1]), (10, [0.5, 0.5]), (True, [1])])
def test_floats_and_bools_are_refused(total, weights):
    with pytest.raises(TypeError):
        allocate(total, weights)
