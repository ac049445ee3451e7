"""The sandbox gateway through the browser's requests: pay, decline, pay later, signed events."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.commerce import sandbox
from app.commerce.models import Order, OrderStatus
from app.extensions import db
from app.jobs import get_queue
from app.ledger import service as ledger
from app.ledger.models import LedgerTransaction
from app.ledger.verify import verify
from tests.conftest import TEST_PASSWORD
from tests.factories import UserFactory

JOB_WAIT_SECONDS = 10


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(SANDBOX_PAYMENT_DELAY_SECONDS=1.0)
    with built.app_context():
        yield built
        db.session.rollback()


def start_checkout(client: FlaskClient, release: Any, **form: str) -> str:
    """Put the release in the cart and check out; the sandbox page's URL (path and query)."""
    added = client.post("/cart/add", data={"release_id": str(release.id), **form})
    assert added.status_code == 302, added.get_data(as_text=True)
    started = client.post("/cart/checkout")
    assert started.status_code == 302
    url = urlsplit(started.headers["Location"])
    assert url.path.startswith("/checkout/sandbox/sbx_")
    return f"{url.path}?{url.query}"


def the_order(session: Any) -> Order:
    session.expire_all()
    return session.scalars(select(Order)).one()


def sales(session: Any) -> int:
    return session.scalar(select(func.count()).select_from(LedgerTransaction).where(LedgerTransaction.kind == "sale"))


def wait_for_jobs(app: Flask) -> None:
    assert get_queue(app).wait_idle(JOB_WAIT_SECONDS)


def outbox(app: Flask) -> Path:
    return Path(app.instance_path) / "outbox"


def test_pay_records_the_sale_with_the_sandbox_fee_and_writes_the_receipt(
    app: Flask, client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=999)
    auth.login(buyer.email)
    page_url = start_checkout(client, release)

    page = client.get(page_url).get_data(as_text=True)
    assert "Pay $9.99" in page and "Decline" in page and "Pay later" in page
    assert release.title in page

    paid = client.post(page_url, data={"action": "pay"})
    order = the_order(session)
    assert paid.status_code == 302
    assert urlsplit(paid.headers["Location"]).path == f"/orders/{order.public_id}"
    assert order.status is OrderStatus.PAID and order.gateway == "sandbox"
    # 2.9% of 9.99 is 28.971, rounded by largest remainder to 29, plus the fixed 30.
    assert order.fee_minor == 59
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 899}
    assert verify(session) == []
    confirmation = client.get(paid.headers["Location"]).get_data(as_text=True)
    assert "Thank you for your purchase" in confirmation and buyer.email in confirmation

    wait_for_jobs(app)
    assert [p.name for p in outbox(app).glob("*.eml")] == [f"{order.public_id}.eml"]

    again = client.get(page_url).get_data(as_text=True)
    assert "This order is paid" in again and 'value="pay"' not in again


def test_decline_fails_the_order_and_moves_no_money(
    client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=700)
    auth.login(buyer.email)
    page_url = start_checkout(client, release)

    declined = client.post(page_url, data={"action": "decline"})
    assert declined.status_code == 302
    order = the_order(session)
    assert order.status is OrderStatus.FAILED and order.failure_reason == sandbox.DECLINE_REASON
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0

    page = client.get(declined.headers["Location"]).get_data(as_text=True)
    assert "declined" in page and 'value="pay"' not in page
    assert client.post(page_url, data={"action": "pay"}).status_code == 302
    assert the_order(session).status is OrderStatus.FAILED
    assert "Put the items back in your cart" in client.get(f"/orders/{order.public_id}").get_data(
        as_text=True
    )


def test_pay_later_stays_processing_then_pays_once(
    app: Flask, client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=1000)
    auth.login(buyer.email)
    page_url = start_checkout(client, release)

    later = client.post(page_url, data={"action": "later"})
    # The job waits SANDBOX_PAYMENT_DELAY_SECONDS (a second here) before it pays.
    order = the_order(session)
    assert order.status is OrderStatus.PENDING and sandbox.is_processing(order)
    confirmation = client.get(later.headers["Location"]).get_data(as_text=True)
    assert "Your payment is processing" in confirmation and 'http-equiv="refresh"' in confirmation
    sandbox_page = client.get(page_url).get_data(as_text=True)
    assert "payment is processing" in sandbox_page and 'value="pay"' not in sandbox_page
    client.post(page_url, data={"action": "decline"})  # too late: the payment is on its way
    assert the_order(session).status is OrderStatus.PENDING

    wait_for_jobs(app)
    order = the_order(session)
    assert order.status is OrderStatus.PAID
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 900}
    receipt = (outbox(app) / f"{order.public_id}.eml").read_text()
    assert "$10.00" in receipt
    assert "Thank you" in client.get(later.headers["Location"]).get_data(as_text=True)

    sandbox.settle_delayed_payment(session, app.config, order.id)  # a second run of the job
    session.commit()
    assert sales(session) == 1
    assert verify(session) == []


def signed_event(app: Flask, for_order: Order, **changes: Any) -> tuple[bytes, str]:
    event = sandbox.payment_event(for_order, sandbox.PAYMENT_SUCCEEDED, config=app.config)
    event.update(changes)
    return sandbox.signed_event(event, app.config)


def deliver(client: FlaskClient, payload: bytes, signature: str) -> Any:
    return client.post(
        "/checkout/sandbox/events",
        data=payload,
        headers={sandbox.SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
    )


@pytest.fixture
def pending_order(app: Flask, client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any) -> Order:
    auth.login(buyer.email)
    start_checkout(client, make_release(price=800))
    auth.logout()
    return the_order(session)


def test_a_signed_event_over_http_pays_once_however_often_it_arrives(
    app: Flask, client: FlaskClient, session: Any, pending_order: Order
) -> None:
    payload, signature = signed_event(app, pending_order)
    for _ in range(3):
        delivered = deliver(client, payload, signature)
        assert delivered.status_code == 200 and delivered.json["status"] == "paid"
    assert the_order(session).status is OrderStatus.PAID
    assert sales(session) == 1


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda app, payload, signature: (payload, signature.replace("v1=", "v1=0")), id="bad-digest"),
        pytest.param(lambda app, payload, signature: (payload.replace(b'"amount_minor":800', b'"amount_minor":8'), signature), id="tampered-body"),
        pytest.param(lambda app, payload, signature: (payload, sandbox.sign(payload, {"SECRET_KEY": "guessed"})), id="other-key"),
        pytest.param(lambda app, payload, signature: (payload, sandbox.sign(payload, app.config, timestamp=1)), id="stale"),
        pytest.param(lambda app, payload, signature: (payload, ""), id="unsigned"),
        pytest.param(lambda app, payload, signature: (payload, "t=abc,v1=00"), id="garbage"),
    ],
)
def test_a_forged_or_tampered_event_is_refused_and_records_nothing(
    app: Flask, client: FlaskClient, session: Any, pending_order: Order, forge: Any
) -> None:
    payload, signature = forge(app, *signed_event(app, pending_order))
    refused = deliver(client, payload, signature)
    assert refused.status_code == 400 and refused.json["error"] == "invalid_signature"
    assert the_order(session).status is OrderStatus.PENDING
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0


def test_a_signed_event_for_another_checkout_or_amount_is_refused(
    app: Flask, client: FlaskClient, session: Any, pending_order: Order
) -> None:
    assert deliver(client, *signed_event(app, pending_order, session_id="sbx_other")).status_code == 409
    assert deliver(client, *signed_event(app, pending_order, amount_minor=1)).status_code == 409
    assert deliver(client, *signed_event(app, pending_order, order="nope")).status_code == 404
    not_an_event = json.dumps({"type": "payment.succeeded"}).encode()
    assert deliver(client, not_an_event, sandbox.sign(not_an_event, app.config)).status_code == 400
    assert the_order(session).status is OrderStatus.PENDING
    assert sales(session) == 0


def test_only_the_buyer_may_use_the_sandbox_page(
    client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    auth.login(buyer.email)
    page_url = start_checkout(client, make_release())
    auth.logout()
    assert client.get(page_url).status_code == 302  # to the sign-in page

    auth.login(UserFactory().email)
    assert client.get(page_url).status_code == 404
    assert client.post(page_url, data={"action": "pay"}).status_code == 404
    assert the_order(session).status is OrderStatus.PENDING


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def test_the_buttons_need_the_csrf_token_but_signed_events_do_not(
    make_app: Any, make_release: Any
) -> None:
    guarded = make_app(WTF_CSRF_ENABLED=True)
    with guarded.app_context():
        buyer = UserFactory()
        release = make_release(price=800)
        client = guarded.test_client()
        token = csrf_token(client.get("/login").get_data(as_text=True))
        client.post("/login", data={"email": buyer.email, "password": TEST_PASSWORD, "csrf_token": token})
        client.post("/cart/add", data={"release_id": str(release.id), "csrf_token": token})
        location = client.post("/cart/checkout", data={"csrf_token": token}).headers["Location"]
        page_url = urlsplit(location).path + "?" + urlsplit(location).query
        assert 'value="pay"' in client.get(page_url).get_data(as_text=True)

        assert client.post(page_url, data={"action": "pay"}).status_code == 400
        order = the_order(db.session)
        assert order.status is OrderStatus.PENDING

        assert deliver(client, *signed_event(guarded, order)).status_code == 200
        assert the_order(db.session).status is OrderStatus.PAID


def test_the_fee_is_the_share_plus_the_fixed_part_and_never_above_the_total(app: Flask) -> None:
    assert sandbox.processor_fee(999, app.config) == 59
    assert sandbox.processor_fee(10, app.config) == 10
    assert sandbox.processor_fee(0, app.config) == 0
