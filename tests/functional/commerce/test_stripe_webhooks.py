"""POST /webhooks/stripe: signed events, as Stripe sends them, in any order, any number of times.

Every event comes from the Stripe-compatible server in tests/support/fake_stripe.py, which
changes its state the way Stripe would; the webhook reads fees and sessions back from it.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import stripe
from flask import Flask
from sqlalchemy import func, select

from app.commerce import service
from app.commerce.gateways import get_gateway
from app.commerce.models import Order, OrderStatus
from app.extensions import db
from app.ledger import service as ledger
from app.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, platform_code
from app.ledger.verify import verify
from tests.support.fake_stripe import DISPUTE_FEE_MINOR, FakeStripe, card_fee, sign

WEBHOOK = "/webhooks/stripe"


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


@pytest.fixture
def place(app: Flask, session: Any, buyer: Any) -> Any:
    """Check out a release (or one of its tracks) through the Stripe gateway, and commit."""

    def checkout(release: Any, track_id: int | None = None) -> Order:
        order, _ = service.start_checkout(
            session,
            get_gateway(app),
            buyer,
            [service.CartLine(release.id, track_id)],
            config=app.config,
            success_url=lambda order: f"http://megabox.test/orders/{order.public_id}",
            cancel_url=lambda order: "http://megabox.test/cart",
        )
        session.commit()
        return order

    return checkout


def deliver(client: Any, fake: FakeStripe, event: dict[str, Any], **signing: Any) -> Any:
    body, headers = fake.webhook_request(event, **signing)
    return client.post(WEBHOOK, data=body, headers=headers)


def order_entries(session: Any, order: Order) -> list[tuple[str, str, int]]:
    """(kind, account, amount) of every ledger entry the order's transactions made, sorted."""
    rows = session.execute(
        select(LedgerTransaction.kind, LedgerAccount.code, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerTransaction.idempotency_key.startswith(f"order:{order.id}:"))
    )
    return sorted((kind, code, amount) for kind, code, amount in rows)


def order_balances(session: Any, order: Order) -> dict[str, int]:
    """What the order's transactions did to each account."""
    totals: Counter[str] = Counter()
    for _, code, amount in order_entries(session, order):
        totals[code] += amount
    return dict(totals)


def transaction_count(session: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(LedgerTransaction)))


def platform_balance(session: Any, purpose: str, currency: str = "USD") -> int:
    found = session.scalar(
        select(LedgerAccount).where(LedgerAccount.code == platform_code(purpose, currency))
    )
    return 0 if found is None else ledger.balance(session, found)[currency]


def fresh(session: Any, order: Order) -> Order:
    session.expire_all()
    return session.get(Order, order.id)


# Signatures -----------------------------------------------------------------------------------


def test_a_correctly_signed_completion_records_the_sale_with_stripes_fee(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    release = make_release(price=1000)
    order = place(release)

    # Not the card fee formula's 59: the fee recorded is the one Stripe reports.
    response = deliver(client, fake, fake.complete_session(order.checkout_session_id, fee=61))

    assert response.status_code == 200 and response.json == {"received": True}
    paid = fresh(session, order)
    charge = fake.get(fake.charge_id(order.checkout_session_id))
    transaction = fake.get(charge["balance_transaction"])
    assert paid.status is OrderStatus.PAID
    assert paid.fee_minor == transaction["fee"] == 61 != card_fee(1000)
    assert platform_balance(session, "processing_fees") == 61
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 900}
    assert verify(session) == []


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda body, secret: sign(body, "whsec_someone_else"), id="another-secret"),
        pytest.param(lambda body, secret: sign(body + b" ", secret), id="body-changed-after-signing"),
        pytest.param(lambda body, secret: None, id="no-signature"),
        pytest.param(lambda body, secret: "t=now,v1=beef", id="garbled-header"),
        pytest.param(lambda body, secret: sign(body, secret, int(time.time()) - 301), id="stale-by-5-minutes"),
        pytest.param(lambda body, secret: sign(body, secret, int(time.time()) - 3600), id="replayed-an-hour-later"),
    ],
)  # fmt: skip
def test_a_delivery_not_signed_by_stripe_within_five_minutes_is_refused_and_records_nothing(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any, forge: Any
) -> None:
    order = place(make_release(price=1000))
    body, headers = fake.webhook_request(fake.complete_session(order.checkout_session_id))
    signature = forge(body, fake.webhook_secret)
    headers = {k: v for k, v in headers.items() if k != "Stripe-Signature"}
    if signature is not None:
        headers["Stripe-Signature"] = signature

    refused = client.post(WEBHOOK, data=body, headers=headers)

    assert refused.status_code == 400
    assert refused.json["error"] == "invalid_signature"
    assert fresh(session, order).status is OrderStatus.PENDING
    assert transaction_count(session) == 0
    # The same body, signed by Stripe now, is taken: the signature alone made the difference.
    headers["Stripe-Signature"] = sign(body, fake.webhook_secret)
    assert client.post(WEBHOOK, data=body, headers=headers).status_code == 200
    assert fresh(session, order).status is OrderStatus.PAID


def test_a_signature_made_four_minutes_ago_is_accepted(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    order = place(make_release(price=1000))
    event = fake.complete_session(order.checkout_session_id)

    response = deliver(client, fake, event, timestamp=int(time.time()) - 4 * 60)

    assert response.status_code == 200
    assert fresh(session, order).status is OrderStatus.PAID


# Redelivery and late payments -----------------------------------------------------------------


def test_the_same_event_delivered_five_times_records_one_sale(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    release = make_release(price=500)
    order = place(release)
    event = fake.complete_session(order.checkout_session_id, fee=45)

    responses = [deliver(client, fake, event) for _ in range(5)]

    assert [r.status_code for r in responses] == [200] * 5
    kinds = session.scalars(select(LedgerTransaction.kind).order_by(LedgerTransaction.id)).all()
    assert kinds == ["sale", "processing_fee"]
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 450}
    assert platform_balance(session, "processing_fees") == 45
    assert verify(session) == []


def test_a_bank_debit_is_pending_until_it_clears_and_then_paid_once(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    release = make_release(price=2000)
    order = place(release)
    completed = fake.complete_session(order.checkout_session_id, paid=False)

    assert deliver(client, fake, completed).status_code == 200
    pending = fresh(session, order)
    assert pending.status is OrderStatus.PENDING
    assert pending.payment_reference == completed["data"]["object"]["payment_intent"]
    assert transaction_count(session) == 0

    cleared = fake.async_payment_succeeded(order.checkout_session_id, fee=80)
    for event in (cleared, completed, cleared):
        assert deliver(client, fake, event).status_code == 200

    paid = fresh(session, order)
    assert (paid.status, paid.fee_minor) == (OrderStatus.PAID, 80)
    assert paid.charge_reference == fake.charge_id(order.checkout_session_id)
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 1800}
    assert transaction_count(session) == 2
    assert verify(session) == []


def test_a_failed_bank_debit_fails_the_order_and_an_abandoned_checkout_expires(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    release = make_release(price=800)
    declined = place(release)
    deliver(client, fake, fake.complete_session(declined.checkout_session_id, paid=False))
    # A new checkout ends the buyer's unpaid ones, but not one whose payment is on its way.
    abandoned = place(release)

    failed = deliver(client, fake, fake.async_payment_failed(declined.checkout_session_id))
    expired = deliver(client, fake, fake.expire_session(abandoned.checkout_session_id))

    assert failed.status_code == expired.status_code == 200
    assert fresh(session, declined).status is OrderStatus.FAILED
    assert fresh(session, abandoned).status is OrderStatus.EXPIRED
    assert transaction_count(session) == 0
    assert verify(session) == []


# Refunds and disputes, in and out of order ----------------------------------------------------


def test_refunds_arriving_before_their_completion_end_with_the_same_ledger_as_in_order(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    release = make_release(price=1000)
    in_order, refunds_first, all_reversed = (place(release) for _ in range(3))
    events: dict[int, list[dict[str, Any]]] = {}
    for order in (in_order, refunds_first, all_reversed):
        completed = fake.complete_session(order.checkout_session_id, fee=59)
        charge = fake.charge_id(order.checkout_session_id)
        events[order.id] = [completed, fake.refund(charge, 300), fake.refund(charge, 700)]
    completed, partial, rest = events[refunds_first.id]
    arrivals = {
        in_order.id: events[in_order.id],
        refunds_first.id: [partial, rest, completed],
        all_reversed.id: list(reversed(events[all_reversed.id])),
    }

    for order_id, arriving in arrivals.items():
        for event in arriving:
            assert deliver(client, fake, event).status_code == 200

    expected = order_entries(session, in_order)
    assert Counter(kind for kind, _, _ in expected) == Counter(
        {"sale": 3, "processing_fee": 2, "refund": 6}
    )
    assert order_entries(session, refunds_first) == expected
    # The full refund came first: one refund of 1000 instead of 300 then 700, same balances.
    assert order_balances(session, all_reversed) == order_balances(session, in_order)
    for order in (in_order, refunds_first, all_reversed):
        settled = fresh(session, order)
        assert (settled.status, settled.refunded_minor, settled.fee_minor) == (
            OrderStatus.REFUNDED, 1000, 59
        )
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 0}
    assert platform_balance(session, "processing_fees") == 3 * 59
    assert verify(session) == []


@pytest.mark.parametrize("won", [True, False], ids=["won", "lost"])
def test_a_dispute_takes_the_sale_back_with_its_fee_and_a_win_returns_the_sale(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any, won: bool
) -> None:
    release = make_release(price=1000)
    order = place(release)
    deliver(client, fake, fake.complete_session(order.checkout_session_id, fee=59))
    opened = fake.create_dispute(fake.charge_id(order.checkout_session_id))
    dispute_id = opened["data"]["object"]["id"]

    assert deliver(client, fake, opened).status_code == 200
    disputed = fresh(session, order)
    assert disputed.status is OrderStatus.DISPUTED
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 0}
    assert platform_balance(session, "processing_fees") == 59 + DISPUTE_FEE_MINOR

    assert deliver(client, fake, fake.close_dispute(dispute_id, won=won)).status_code == 200

    closed = fresh(session, order)
    assert closed.status is (OrderStatus.PAID if won else OrderStatus.DISPUTED)
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 900 if won else 0}
    assert platform_balance(session, "processing_fees") == 59 + DISPUTE_FEE_MINOR
    assert verify(session) == []


@pytest.mark.parametrize("won", [True, False], ids=["won", "lost"])
def test_a_dispute_closed_before_it_opened_or_before_the_payment_ends_as_in_order(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any, won: bool
) -> None:
    release = make_release(price=1000)
    orders = [place(release) for _ in range(3)]
    events: dict[int, list[dict[str, Any]]] = {}
    for order in orders:
        completed = fake.complete_session(order.checkout_session_id, fee=59)
        opened = fake.create_dispute(fake.charge_id(order.checkout_session_id))
        closed = fake.close_dispute(opened["data"]["object"]["id"], won=won)
        events[order.id] = [completed, opened, closed]
    in_order, closed_first, no_payment_yet = orders
    completed, opened, closed = events[closed_first.id]
    arrivals = {
        in_order.id: events[in_order.id],
        closed_first.id: [completed, closed, opened],
        no_payment_yet.id: list(reversed(events[no_payment_yet.id])),
    }

    for order in orders:
        for event in arrivals[order.id]:
            assert deliver(client, fake, event).status_code == 200

    expected = order_entries(session, in_order)
    kinds = {"sale", "processing_fee", "chargeback", "dispute_fee"}
    assert {kind for kind, _, _ in expected} == (kinds | {"sale_reinstated"} if won else kinds)
    for order in (closed_first, no_payment_yet):
        assert order_entries(session, order) == expected
        assert fresh(session, order).status is fresh(session, in_order).status
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 2700 if won else 0}
    assert verify(session) == []


def test_an_inquiry_is_ignored_until_it_escalates_and_moves_money(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    release = make_release(price=1000)
    escalating, dropped = place(release), place(release)
    inquiries = {}
    for order in (escalating, dropped):
        deliver(client, fake, fake.complete_session(order.checkout_session_id, fee=59))
        inquiries[order.id] = fake.create_dispute(
            fake.charge_id(order.checkout_session_id), inquiry=True
        )
    dropped_closed = fake.close_dispute(inquiries[dropped.id]["data"]["object"]["id"], won=False)

    answers = [
        deliver(client, fake, event).json
        for event in (inquiries[escalating.id], inquiries[dropped.id], dropped_closed)
    ]

    assert answers == [{"received": True, "ignored": "dispute_moved_no_funds"}] * 3
    assert fresh(session, escalating).status is fresh(session, dropped).status is OrderStatus.PAID
    assert transaction_count(session) == 4

    dispute_id = inquiries[escalating.id]["data"]["object"]["id"]
    assert deliver(client, fake, fake.escalate(dispute_id)).json == {"received": True}
    assert fresh(session, escalating).status is OrderStatus.DISPUTED
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 900}
    assert platform_balance(session, "processing_fees") == 2 * 59 + DISPUTE_FEE_MINOR
    assert verify(session) == []


def test_a_refund_of_an_order_stripe_does_not_show_paid_is_refused_for_a_later_delivery(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    order = place(make_release(price=1000))
    deliver(client, fake, fake.complete_session(order.checkout_session_id, paid=False))
    # Stripe would not refund a bank debit still clearing; a refund event naming the order
    # before its session shows paid must not record a refund of nothing.
    charge = dict(fake.get(fake.charge_id(order.checkout_session_id)), amount_refunded=1000)
    early = fake.event("charge.refunded", charge)

    refused = deliver(client, fake, early)

    assert refused.status_code == 409
    assert refused.json["error"] == "order_state_conflict"
    assert fresh(session, order).status is OrderStatus.PENDING
    assert transaction_count(session) == 0


# What is not ours, or not right ---------------------------------------------------------------


def test_unknown_event_types_and_payments_of_orders_not_ours_are_acknowledged_and_ignored(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any, caplog: Any
) -> None:
    order = place(make_release(price=1000))
    # Another integration on the same Stripe account: a session without our metadata.
    shop = stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url})
    mug = {"currency": "usd", "unit_amount": 1000, "product_data": {"name": "Mug"}}
    elsewhere = shop.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [{"price_data": mug, "quantity": 1}],
            "success_url": "http://shop.test/ok",
            "cancel_url": "http://shop.test/no",
        }
    )
    foreign_completion = fake.complete_session(elsewhere.id)
    foreign_refund = fake.refund(fake.charge_id(elsewhere.id))
    unknown = dict(foreign_completion, type="customer.created")
    unknown["data"] = {"object": {"id": "cus_Q1w2e3", "object": "customer", "metadata": {}}}

    with caplog.at_level(logging.INFO, logger="app.commerce.webhooks"):
        events = (unknown, foreign_completion, foreign_refund)
        answers = [deliver(client, fake, event).json for event in events]

    assert answers == [
        {"received": True, "ignored": "unhandled_event_type"},
        {"received": True, "ignored": "not_our_order"},
        {"received": True, "ignored": "not_our_order"},
    ]
    assert sum("ignored" in record.getMessage() for record in caplog.records) == 3
    assert fresh(session, order).status is OrderStatus.PENDING
    assert transaction_count(session) == 0


def test_a_payment_that_does_not_match_its_order_is_logged_acknowledged_and_not_recorded(
    client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any, caplog: Any
) -> None:
    order = place(make_release(price=1000))
    event = fake.complete_session(order.checkout_session_id)
    event["data"]["object"]["amount_total"] = 10

    with caplog.at_level(logging.ERROR, logger="app.commerce.webhooks"):
        response = deliver(client, fake, event)

    assert response.status_code == 200
    assert response.json == {"received": True, "ignored": "payment_mismatch"}
    assert any(order.public_id in record.getMessage() for record in caplog.records)
    assert fresh(session, order).status is OrderStatus.PENDING
    assert transaction_count(session) == 0


def test_when_stripe_cannot_be_asked_for_the_fee_the_event_is_refused_until_a_later_delivery(
    make_app: Any, client: Any, session: Any, fake: FakeStripe, place: Any, make_release: Any
) -> None:
    order = place(make_release(price=1000))
    event = fake.complete_session(order.checkout_session_id, fee=61)
    revoked = make_app(**{**fake.app_settings(), "STRIPE_SECRET_KEY": "sk_test_revoked"})

    refused = deliver(revoked.test_client(), fake, event)

    assert refused.status_code == 503
    assert refused.json["error"] == "gateway_unavailable"
    assert "sk_test" not in refused.get_data(as_text=True)
    assert fresh(session, order).status is OrderStatus.PENDING
    assert transaction_count(session) == 0

    assert deliver(client, fake, event).status_code == 200
    assert fresh(session, order).fee_minor == 61
