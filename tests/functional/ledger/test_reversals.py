"""Reversals: linked to the original, proportional when partial, never more than the original."""

from __future__ import annotations

from fractions import Fraction

import pytest

from app.extensions import db
from app.ledger import service
from app.ledger.errors import IdempotencyConflict, InvalidReversal, OverReversal
from app.ledger.money import Money
from app.ledger.verify import verify
from tests.functional.ledger.test_posting import sale


def amounts(transaction) -> dict[str, int]:
    return {e.account.code.split(":")[0]: e.amount for e in transaction.entries}


def test_a_full_reversal_undoes_the_sale_and_links_back(usd):
    original = sale(usd, 700)
    refund = service.reverse(db.session, original, idempotency_key="refund-1", kind="refund")
    db.session.commit()

    assert refund.reverses_id == original.id and refund.kind == "refund"
    assert original.reversals == [refund]
    assert amounts(refund) == {"clearing": -700, "artist_payable": 630, "platform_commission": 70}
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 0}
    assert service.balance(db.session, usd.clearing) == {"USD": 0}


def test_reversing_twice_is_an_over_reversal(usd):
    original = sale(usd, 700)
    service.reverse(db.session, original, idempotency_key="refund-1")
    with pytest.raises(OverReversal):
        service.reverse(db.session, original, idempotency_key="refund-2")
    with pytest.raises(OverReversal):
        service.reverse(db.session, original, idempotency_key="refund-3", amount=Money(1, "USD"))


def test_a_partial_refund_reverses_each_account_in_proportion(usd):
    original = sale(usd, 700)
    refund = service.reverse(
        db.session, original, idempotency_key="refund-1", amount=Money(300, "USD")
    )
    assert amounts(refund) == {"clearing": -300, "artist_payable": 270, "platform_commission": 30}
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 360}

    with pytest.raises(OverReversal):
        service.reverse(db.session, original, idempotency_key="refund-2", amount=Money(401, "USD"))
    rest = service.reverse(db.session, original, idempotency_key="refund-3")
    assert amounts(rest) == {"clearing": -400, "artist_payable": 360, "platform_commission": 40}
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 0}


def test_a_fraction_of_the_original_rounds_half_up(usd):
    original = sale(usd, 701)  # artist 631, platform 70
    half = service.reverse(db.session, original, idempotency_key="half", fraction=Fraction(1, 2))
    assert amounts(half)["clearing"] == -351
    assert sum(e.amount for e in half.entries) == 0


def test_small_partial_refunds_never_take_an_account_past_its_original(usd):
    original = sale(usd, 3)  # artist 3, platform 0: refunds must stay on the artist's side
    for n in range(3):
        service.reverse(db.session, original, idempotency_key=f"r{n}", amount=Money(1, "USD"))
    db.session.commit()
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 0}
    assert service.balance(db.session, usd.commission) == {"USD": 0}
    assert verify(db.session) == []


def test_uneven_partial_refunds_add_up_to_the_original_exactly(usd):
    original = sale(usd, 999)  # artist 899, platform 100
    for n, part in enumerate((333, 333, 333)):
        service.reverse(db.session, original, idempotency_key=f"r{n}", amount=Money(part, "USD"))
    db.session.commit()
    assert service.artist_balances(db.session, usd.artist_id) == {"USD": 0}
    assert service.balance(db.session, usd.commission) == {"USD": 0}
    assert verify(db.session) == []


def test_a_redelivered_refund_posts_once(usd):
    original = sale(usd, 700)
    first = service.reverse(db.session, original, idempotency_key="re_1", amount=Money(100, "USD"))
    again = service.reverse(db.session, original, idempotency_key="re_1", amount=Money(100, "USD"))
    assert again.id == first.id
    assert service.balance(db.session, usd.clearing) == {"USD": 600}
    with pytest.raises(IdempotencyConflict):
        service.reverse(db.session, original, idempotency_key="re_1", amount=Money(200, "USD"))


@pytest.mark.parametrize(
    "how",
    [
        {"fraction": Fraction(0)},
        {"fraction": Fraction(3, 2)},
        {"amount": Money(0, "USD")},
        {"amount": Money(5, "EUR")},
        {"amount": Money(5, "USD"), "fraction": Fraction(1, 2)},
    ],
)
def test_a_reversal_that_cannot_be_posted_is_refused(usd, how):
    original = sale(usd, 700)
    with pytest.raises(InvalidReversal):
        service.reverse(db.session, original, idempotency_key="r", **how)


def test_a_reversal_is_not_reversed(usd):
    refund = service.reverse(db.session, sale(usd, 700), idempotency_key="r1")
    with pytest.raises(InvalidReversal):
        service.reverse(db.session, refund, idempotency_key="r2")
