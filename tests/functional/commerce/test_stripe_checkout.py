"""Stripe Checkout: what the gateway asks Stripe for, through the app and a Stripe-compatible
server (tests/support/fake_stripe.py), and what it does when Stripe fails."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app.accounts.service import issue_token
from app.commerce import service
from app.commerce.gateways import get_gateway
from app.commerce.models import Order, OrderStatus
from app.commerce.stripe_gateway import GatewayUnavailable, StripeGateway
from app.extensions import db
from app.ledger import service as ledger
from app.ledger.verify import verify
from tests.factories import UserFactory
from tests.support.fake_stripe import FakeStripe


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def app(make_app: Any, fake: FakeStripe) -> Iterator[Flask]:
    built = make_app(**fake.app_settings())
    with built.app_context():
        yield built
        db.session.rollback()


def bearer(session: Any, user: Any) -> dict[str, str]:
    _, secret = issue_token(session, user, "tests")
    session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_buying_through_the_api_opens_a_checkout_session_that_names_the_order(
    client: Any, session: Any, fake: FakeStripe, make_release: Any, buyer: Any
) -> None:
    album = make_release(price=900)
    single = make_release(price=700, track_price=150)
    items = [{"release_id": album.id}, {"release_id": single.id, "track_id": single.tracks[0].id}]

    created = client.post("/api/v1/orders", json={"items": items}, headers=bearer(session, buyer))

    assert created.status_code == 201, created.json
    order = session.query(Order).filter_by(public_id=created.json["id"]).one()
    (session_id,) = fake.ids("checkout.session")
    assert order.checkout_session_id == session_id and order.gateway == "stripe"
    checkout = fake.get(session_id)
    assert created.json["checkout_url"] == checkout["url"]
    assert checkout["client_reference_id"] == order.public_id
    assert checkout["metadata"] == {"order_id": order.public_id}
    assert checkout["mode"] == "payment" and checkout["customer_email"] == buyer.email
    assert (checkout["amount_total"], checkout["currency"]) == (1050, "usd")
    (create,) = [r for r in fake.requests if r.method == "POST"]
    assert create.params["payment_intent_data"] == {"metadata": {"order_id": order.public_id}}
    sent = [
        (line["price_data"]["product_data"]["name"], line["price_data"]["unit_amount"], line["quantity"])
        for line in create.params["line_items"]
    ]  # fmt: skip
    assert sent == [(item.title, str(item.amount_minor), "1") for item in order.items]
    assert create.idempotency_key and order.public_id in create.idempotency_key

    # The order id travels on to the payment: Stripe copies it to the PaymentIntent and charge.
    fake.complete_session(session_id)
    charge = fake.get(fake.charge_id(session_id))
    assert fake.get(charge["payment_intent"])["metadata"] == {"order_id": order.public_id}
    assert charge["metadata"] == {"order_id": order.public_id}


def test_a_retried_checkout_for_an_order_returns_its_first_session(
    app: Flask, session: Any, fake: FakeStripe, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=500)
    order = service.create_order(
        session, buyer, [service.CartLine(release.id)], gateway="stripe", config=app.config
    )
    gateway = get_gateway(app)

    urls = {"success_url": "http://megabox.test/ok", "cancel_url": "http://megabox.test/no"}
    first = gateway.start_checkout(order, **urls)
    again = gateway.start_checkout(order, **urls)

    assert again == first
    assert fake.ids("checkout.session") == [first.session_id]


def test_a_paid_checkout_is_recorded_with_stripes_fee_through_the_webhook(
    client: Any, session: Any, fake: FakeStripe, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=1299)
    body = {"items": [{"release_id": release.id}]}
    created = client.post("/api/v1/orders", json=body, headers=bearer(session, buyer))
    order = session.query(Order).filter_by(public_id=created.json["id"]).one()

    event = fake.complete_session(order.checkout_session_id, fee=68)
    body, headers = fake.webhook_request(event)
    response = client.post("/webhooks/stripe", data=body, headers=headers)

    assert response.status_code == 200 and response.json == {"received": True}
    session.refresh(order)
    charge = fake.get(fake.charge_id(order.checkout_session_id))
    assert order.status is OrderStatus.PAID
    assert order.fee_minor == fake.get(charge["balance_transaction"])["fee"] == 68
    assert order.payment_reference == charge["payment_intent"]
    assert order.charge_reference == charge["id"]
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 1169}
    assert verify(session) == []


def test_stripe_refusing_the_call_is_a_gateway_error_that_names_no_key(
    make_app: Any, fake: FakeStripe, make_release: Any
) -> None:
    wrong_key = "sk_test_not_the_one_stripe_knows"
    app = make_app(**{**fake.app_settings(), "STRIPE_SECRET_KEY": wrong_key})
    with app.app_context():
        release = make_release(price=500)
        with pytest.raises(GatewayUnavailable) as raised:
            service.start_checkout(
                db.session,
                get_gateway(app),
                UserFactory(),
                [service.CartLine(release.id)],
                config=app.config,
                success_url=lambda order: "http://megabox.test/ok",
                cancel_url=lambda order: "http://megabox.test/no",
            )
        db.session.rollback()
        assert raised.value.status == 503
        assert "sk_" not in f"{raised.value.message} {raised.value.details}"
        assert fake.ids("checkout.session") == []
        assert db.session.query(Order).count() == 0


def test_without_a_secret_key_the_gateway_refuses_before_calling_stripe(
    fake: FakeStripe,
) -> None:
    gateway = StripeGateway({**fake.app_settings(), "STRIPE_SECRET_KEY": ""})
    with pytest.raises(GatewayUnavailable):
        gateway.checkout_session("cs_test_anything")
    assert fake.requests == []
