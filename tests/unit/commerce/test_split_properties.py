"""The posting rules' arithmetic: every split of a sale or a fee adds up to the minor unit.

These run without a database: the rules read only an item's amounts, so transient
``OrderItem`` rows are enough.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from app import register_models
from app.commerce import posting
from app.commerce.models import OrderItem
from config import BPS_WHOLE

MAX_PRICE = 10**9
prices = st.integers(min_value=0, max_value=MAX_PRICE)
shares = st.integers(min_value=0, max_value=BPS_WHOLE)

register_models()  # an OrderItem's relationships name the other areas' models


def item(amount: int, extra: int, bps: int) -> OrderItem:
    split = posting.split_item(amount, bps)
    return OrderItem(
        amount_minor=amount,
        minimum_minor=amount - extra,
        extra_minor=extra,
        artist_share_minor=split.artist,
        platform_share_minor=split.platform,
    )


@given(prices, shares)
def test_the_artist_and_the_platform_parts_add_up_to_the_price(price, bps):
    split = posting.split_item(price, bps)
    assert split.artist + split.platform == price
    assert split.artist >= 0 and split.platform >= 0
    assert abs(split.artist - Fraction(price * bps, BPS_WHOLE)) < 1


@given(prices, shares)
def test_the_artist_part_is_the_exact_share_rounded_half_up(price, bps):
    # split_bps documents that an exact half minor unit goes to the artist.
    assert posting.split_item(price, bps).artist == (price * bps + BPS_WHOLE // 2) // BPS_WHOLE


@given(prices, prices, shares)
def test_a_higher_price_never_pays_the_artist_less(first, second, bps):
    low, high = sorted((first, second))
    assert posting.split_item(low, bps).artist <= posting.split_item(high, bps).artist


@given(st.data(), shares)
def test_commission_and_contribution_add_up_to_the_platform_part(data, bps):
    amount = data.draw(prices, label="amount")
    extra = data.draw(st.integers(min_value=0, max_value=amount), label="extra")
    sold = item(amount, extra, bps)
    # The rule under test has no public name yet; it is what sale_entries credits per item.
    commission, contribution = posting._platform_parts(sold)
    assert commission + contribution == sold.platform_share_minor
    assert sold.artist_share_minor + commission + contribution == amount
    assert commission >= 0 and contribution >= 0
    if amount:
        exact = Fraction(sold.platform_share_minor * extra, amount)
        assert abs(contribution - exact) < 1
    else:
        assert contribution == 0


amount_lists = st.lists(prices, min_size=1, max_size=50)


@given(amount_lists, prices)
def test_a_fee_is_spread_over_the_items_in_proportion_to_their_amounts(amounts, fee):
    items = [item(amount, 0, 9000) for amount in amounts]
    parts = posting.allocate_fee(items, fee)
    assert len(parts) == len(items)
    assert all(part >= 0 for part in parts)
    total = sum(amounts)
    if total == 0:
        assert parts == [0] * len(items)  # nothing was paid, so nothing was charged for it
        return
    assert sum(parts) == fee
    for part, amount in zip(parts, amounts, strict=True):
        assert abs(part - Fraction(fee * amount, total)) < 1
        if amount == 0:
            assert part == 0


@given(amount_lists, prices, shares)
def test_a_shared_fee_splits_exactly_between_each_artist_and_the_platform(amounts, fee, bps):
    items = [item(amount, 0, bps) for amount in amounts]
    parts = posting.allocate_fee(items, fee)
    artist_parts = [posting.split_item(part, bps) for part in parts]
    assert sum(p.artist + p.platform for p in artist_parts) == sum(parts)
    if sum(amounts):
        # Each artist part is within half a minor unit of its exact share (rounded half up).
        exact = Fraction(fee * bps, BPS_WHOLE)
        assert abs(sum(p.artist for p in artist_parts) - exact) <= Fraction(len(items), 2)
