"""Stripe deliveries at once, on PostgreSQL: 200 signed requests from threads, through a real
threaded WSGI server, spread over 20 orders with duplicates and several events per order."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import WSGIRequestHandler, make_server

from app.commerce import service
from app.commerce.gateways import get_gateway
from app.commerce.models import Order, OrderStatus
from app.commerce.posting import SALE
from app.extensions import db
from app.ledger import service as ledger
from app.ledger.models import LedgerTransaction
from app.ledger.verify import verify
from tests.factories import UserFactory
from tests.support.fake_stripe import FakeStripe

pytestmark = pytest.mark.postgres

ORDERS = 20
DELIVERIES = 200
REFUND_MINOR = 100
PRICE_MINOR = 1000
# Every delivery waits at the barrier, so all 200 are in flight together.
START_TIMEOUT_SECONDS = 30
REQUEST_TIMEOUT_SECONDS = 60


class QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """200 lines of access log would hide a failure's own output."""


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


def deliver_all(app: Any, requests_to_send: list[tuple[bytes, dict[str, str]]]) -> list[int]:
    """POST every signed delivery at once to a threaded server running ``app``: the statuses."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietRequestHandler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}/webhooks/stripe"
    start = threading.Barrier(len(requests_to_send))

    def post(delivery: tuple[bytes, dict[str, str]]) -> int:
        body, headers = delivery
        with requests.Session() as http:
            http.trust_env = False  # straight to 127.0.0.1, whatever proxy the machine sets
            start.wait(timeout=START_TIMEOUT_SECONDS)
            answer = http.post(url, data=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
            return answer.status_code

    try:
        with ThreadPoolExecutor(max_workers=len(requests_to_send)) as pool:
            return list(pool.map(post, requests_to_send))
    finally:
        server.shutdown()
        server.server_close()
        serving.join()


def test_two_hundred_deliveries_at_once_record_exactly_one_sale_per_order(
    make_app: Any, fake: FakeStripe, make_release: Any
) -> None:
    app = make_app(**fake.app_settings())
    with app.app_context():
        releases = [make_release(price=PRICE_MINOR) for _ in range(4)]
        buyer = UserFactory()
        orders: list[Order] = []
        for index in range(ORDERS):
            order, _ = service.start_checkout(
                db.session,
                get_gateway(app),
                buyer,
                [service.CartLine(releases[index % len(releases)].id)],
                config=app.config,
                success_url=lambda order: "http://megabox.test/ok",
                cancel_url=lambda order: "http://megabox.test/no",
            )
            db.session.commit()
            orders.append(order)
        fees = {order.id: 30 + index for index, order in enumerate(orders)}
        artist_of = {order.id: order.items[0].artist_id for order in orders}
        refunded = {order.id for index, order in enumerate(orders) if index % 4 == 0}
        events: list[dict[str, Any]] = []
        for index, order in enumerate(orders):
            session_id = order.checkout_session_id
            assert session_id is not None
            if index % 2:  # a bank debit: completed unpaid, then cleared
                events.append(fake.complete_session(session_id, paid=False))
                events.append(fake.async_payment_succeeded(session_id, fee=fees[order.id]))
            else:
                events.append(fake.complete_session(session_id, fee=fees[order.id]))
            if order.id in refunded:
                events.append(fake.refund(fake.charge_id(session_id), REFUND_MINOR))
        deliveries = [events[i % len(events)] for i in range(DELIVERIES)]
        random.Random(8).shuffle(deliveries)
        signed = [fake.webhook_request(event) for event in deliveries]

    statuses = deliver_all(app, signed)

    assert Counter(statuses) == {200: DELIVERIES}
    with app.app_context():
        sales = dict(
            db.session.execute(
                select(LedgerTransaction.idempotency_key, func.count())
                .where(LedgerTransaction.kind == SALE)
                .group_by(LedgerTransaction.idempotency_key)
            ).all()
        )
        assert sales == {f"order:{order.id}:sale": 1 for order in orders}
        for order in db.session.scalars(select(Order)):
            was_refunded = order.id in refunded
            assert order.status is (
                OrderStatus.PARTIALLY_REFUNDED if was_refunded else OrderStatus.PAID
            )
            assert order.refunded_minor == (REFUND_MINOR if was_refunded else 0)
            assert order.fee_minor == fees[order.id]
        for artist_id in set(artist_of.values()):
            sold = [order_id for order_id, artist in artist_of.items() if artist == artist_id]
            refunds = sum(order_id in refunded for order_id in sold)
            assert ledger.artist_balances(db.session, artist_id) == {
                "USD": 900 * len(sold) - 90 * refunds
            }
        assert verify(db.session) == []
