"""Orders through the service layer: pricing, the sale's split, refunds, disputes, verify."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from app.catalog.models import PricingMode
from app.commerce import service
from app.commerce.errors import (
    DuplicateItem,
    InvalidAmount,
    MixedCurrencies,
    NotForSale,
    OrderStateConflict,
    PaymentMismatch,
)
from app.commerce.models import OrderStatus
from app.ledger import service as ledger
from app.ledger.models import LedgerAccount, LedgerTransaction, platform_code
from app.ledger.verify import verify
from app.timestamps import utcnow

Line = service.CartLine


def order(session: Any, app: Flask, buyer: Any, *lines: Line, gateway: str = "sandbox") -> Any:
    made = service.create_order(session, buyer, list(lines), gateway=gateway, config=app.config)
    session.commit()
    return made


def platform_balance(session: Any, purpose: str, currency: str = "USD") -> int:
    code = platform_code(purpose, currency)
    account = session.query(LedgerAccount).filter_by(code=code).one_or_none()
    return 0 if account is None else ledger.balance(session, account)[currency]


def test_a_sale_credits_the_artist_ninety_percent_and_the_platform_the_rest(
    app: Flask, session: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=999)
    placed = order(session, app, buyer, Line(release.id))
    assert placed.status is OrderStatus.PENDING and placed.total_minor == 999

    pay(session, placed, fee=59)

    assert placed.status is OrderStatus.PAID
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 899}
    assert platform_balance(session, "platform_commission") == -100
    assert platform_balance(session, "processing_fees") == 59
    assert verify(session) == []


def test_a_redelivered_payment_records_one_sale(
    app: Flask, session: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=500)
    placed = order(session, app, buyer, Line(release.id))
    for _ in range(5):
        pay(session, placed, fee=30)
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 450}
    sales = session.query(LedgerTransaction).filter_by(kind="sale").count()
    assert sales == 1
    assert platform_balance(session, "processing_fees") == 30


def test_name_your_price_extra_is_a_contribution_and_the_artist_gets_ninety_percent_of_all(
    app: Flask, session: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE)
    placed = order(session, app, buyer, Line(release.id, amount_minor=1500))
    item = placed.items[0]
    assert (item.list_price_minor, item.minimum_minor, item.extra_minor) == (800, 500, 1000)
    pay(session, placed)
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 1350}
    assert platform_balance(session, "platform_commission") == -50
    assert platform_balance(session, "contributions") == -100


def test_an_amount_below_the_minimum_or_above_the_limit_is_refused(
    app: Flask, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE)
    with pytest.raises(InvalidAmount, match="at least"):
        order(session, app, buyer, Line(release.id, amount_minor=499))
    with pytest.raises(InvalidAmount, match="at most"):
        order(session, app, buyer, Line(release.id, amount_minor=app.config["MAX_PRICE_MINOR"] + 1))


def test_a_cart_splits_each_item_for_its_own_artist(
    app: Flask, session: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    first = make_release(price=700)
    second = make_release(price=1000, track_price=150)
    track = second.tracks[0]
    placed = order(session, app, buyer, Line(first.id), Line(second.id, track.id))
    assert placed.total_minor == 850
    pay(session, placed)
    assert ledger.artist_balances(session, first.artist_id) == {"USD": 630}
    assert ledger.artist_balances(session, second.artist_id) == {"USD": 135}
    assert verify(session) == []


def test_one_cart_holds_one_currency(
    app: Flask, session: Any, make_release: Any, buyer: Any
) -> None:
    dollars = make_release(currency="USD")
    euros = make_release(currency="EUR")
    with pytest.raises(MixedCurrencies):
        order(session, app, buyer, Line(dollars.id), Line(euros.id))


def test_unpublished_releases_are_not_for_sale(
    app: Flask, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release()
    release.published = False
    session.commit()
    with pytest.raises(NotForSale):
        order(session, app, buyer, Line(release.id))


def test_free_music_is_a_zero_price_acquisition_without_the_gateway(
    app: Flask, session: Any, make_release: Any, buyer: Any
) -> None:
    free = make_release(price=0, mode=PricingMode.FREE)
    nyp = make_release(price=500, minimum=0, mode=PricingMode.NAME_YOUR_PRICE)
    placed = order(session, app, buyer, Line(free.id), Line(nyp.id, amount_minor=0))
    assert placed.status is OrderStatus.PAID and placed.gateway == "free"
    assert session.query(LedgerTransaction).count() == 0
    assert verify(session) == []


def test_refunds_reverse_the_sale_in_proportion_and_in_any_order(
    app: Flask, session: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=1000)
    placed = order(session, app, buyer, Line(release.id))
    pay(session, placed, fee=59)
    now = utcnow()
    service.record_refund(session, placed, refunded_total_minor=1000, at=now)
    service.record_refund(session, placed, refunded_total_minor=300, at=now)  # late, older
    session.commit()
    assert placed.status is OrderStatus.REFUNDED
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 0}
    assert platform_balance(session, "platform_commission") == 0
    assert platform_balance(session, "processing_fees") == 59  # the processor keeps its fee
    assert verify(session) == []


def test_a_partial_refund_is_split_like_the_sale(
    app: Flask, session: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=1000)
    placed = order(session, app, buyer, Line(release.id))
    pay(session, placed)
    service.record_refund(session, placed, refunded_total_minor=300, at=utcnow())
    session.commit()
    assert placed.status is OrderStatus.PARTIALLY_REFUNDED
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 630}
    assert platform_balance(session, "platform_commission") == -70
    with pytest.raises(PaymentMismatch):
        service.record_refund(session, placed, refunded_total_minor=1001, at=utcnow())


def test_a_refund_of_an_unpaid_order_is_refused(
    app: Flask, session: Any, make_release: Any, buyer: Any
) -> None:
    placed = order(session, app, buyer, Line(make_release().id))
    with pytest.raises(OrderStateConflict):
        service.record_refund(session, placed, refunded_total_minor=100, at=utcnow())


def test_a_chargeback_reverses_the_sale_and_a_won_dispute_posts_it_again(
    app: Flask, session: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    release = make_release(price=1000)
    placed = order(session, app, buyer, Line(release.id))
    pay(session, placed)
    service.record_dispute(session, placed, dispute_id="dp_1", fee_minor=1500, at=utcnow())
    service.record_dispute(session, placed, dispute_id="dp_1", fee_minor=1500, at=utcnow())
    session.commit()
    assert placed.status is OrderStatus.DISPUTED
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 0}
    assert platform_balance(session, "processing_fees") == 1500

    for _ in range(2):
        service.record_dispute_closed(
            session, placed, dispute_id="dp_1", won=True, fee_minor=1500, at=utcnow()
        )
    session.commit()
    assert placed.status is OrderStatus.PAID
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 900}
    assert verify(session) == []


def test_deduct_before_split_shares_the_fee(
    make_app: Any, make_release: Any, pay: Any
) -> None:
    app = make_app(FEE_POLICY="deduct_before_split")
    with app.app_context():
        from app.extensions import db
        from tests.factories import UserFactory

        release = make_release(price=1000)
        placed = order(db.session, app, UserFactory(), Line(release.id))
        pay(db.session, placed, fee=60)
        assert ledger.artist_balances(db.session, release.artist_id) == {"USD": 846}
        assert platform_balance(db.session, "platform_commission") == -94
        assert platform_balance(db.session, "processing_fees") == 0
        assert verify(db.session) == []


def test_a_release_and_one_of_its_tracks_cannot_be_bought_together(
    app: Flask, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release()
    with pytest.raises(DuplicateItem, match="includes the track"):
        order(session, app, buyer, Line(release.id), Line(release.id, release.tracks[0].id))
    with pytest.raises(DuplicateItem, match="twice"):
        order(session, app, buyer, Line(release.id), Line(release.id))


def test_an_artist_cannot_buy_their_own_music(
    app: Flask, session: Any, make_release: Any
) -> None:
    release = make_release()
    with pytest.raises(NotForSale, match="your own music"):
        order(session, app, release.artist.owner, Line(release.id))


def test_a_line_priced_in_a_currency_the_release_left_is_refused(
    app: Flask, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(currency="JPY", price=600)
    release.currency = "USD"
    session.commit()
    with pytest.raises(InvalidAmount, match="now in USD, not JPY"):
        order(session, app, buyer, Line(release.id, amount_minor=600, currency="JPY"))


def test_a_new_checkout_ends_the_buyers_unpaid_ones_but_not_a_payment_on_its_way(
    app: Flask, session: Any, make_release: Any, buyer: Any
) -> None:
    from app.commerce.sandbox import SandboxGateway

    class Gateway(SandboxGateway):
        def start_checkout(self, order: Any, *, success_url: str, cancel_url: str) -> Any:
            return service.CheckoutRedirect(f"sbx_test_{order.id}", "http://localhost/pay")

    def checkout() -> Any:
        placed, _ = service.start_checkout(
            session, Gateway(app.config), buyer, [Line(make_release().id)], config=app.config,
            success_url=lambda o: "http://localhost/ok", cancel_url=lambda o: "http://localhost/cart",
        )  # fmt: skip
        session.commit()
        return placed

    first = checkout()
    second = checkout()
    service.record_payment_pending(session, second, payment_reference="pi_on_its_way")
    session.commit()
    third = checkout()
    statuses = [session.get(type(o), o.id).status for o in (first, second, third)]
    assert statuses == [OrderStatus.EXPIRED, OrderStatus.PENDING, OrderStatus.PENDING]


def test_bought_music_cannot_be_deleted_only_unpublished(
    app: Flask, session: Any, make_release: Any, buyer: Any, pay: Any
) -> None:
    from app.catalog import service as catalog
    from app.catalog.errors import HasBuyers

    release = make_release(price=500)
    pay(session, order(session, app, buyer, Line(release.id)))
    owner = release.artist.owner
    for delete in (
        lambda: catalog.delete_track(session, owner, release.tracks[0]),
        lambda: catalog.delete_release(session, owner, release, config=app.config),
        lambda: catalog.delete_artist(session, owner, release.artist, config=app.config),
    ):
        with pytest.raises(HasBuyers, match="Unpublish it"):
            delete()
    session.rollback()
    assert session.get(type(release), release.id) is not None
