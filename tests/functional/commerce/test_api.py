"""/api/v1/orders: buy through the API, pay on the checkout page, read your orders."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from app.accounts.service import issue_token
from app.catalog.models import PricingMode
from app.ledger import service as ledger
from tests.factories import UserFactory


@pytest.fixture
def bearer(session: Any) -> Any:
    def headers_for(user: Any) -> dict[str, str]:
        _, secret = issue_token(session, user, "tests")
        session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return headers_for


def test_the_api_creates_an_order_that_the_buyer_pays_on_its_checkout_page(
    client: FlaskClient, auth: Any, session: Any, bearer: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE, track_price=150)
    single = make_release(track_price=150, artist=release.artist)
    headers = bearer(buyer)
    body = {"items": [{"release_id": release.id, "amount_minor": 1000},
                      {"release_id": single.id, "track_id": single.tracks[0].id}]}  # fmt: skip
    created = client.post("/api/v1/orders", json=body, headers=headers)
    assert created.status_code == 201, created.json
    order = created.json
    assert order["status"] == "pending" and order["gateway"] == "sandbox"
    assert (order["total_minor"], order["currency"], order["refunded_minor"]) == (1150, "USD", 0)
    assert [(i["kind"], i["amount_minor"], i["extra_minor"]) for i in order["items"]] == [
        ("release", 1000, 500),
        ("track", 150, 0),
    ]
    assert order["url"] == f"http://localhost/orders/{order['id']}"
    checkout = urlsplit(order["checkout_url"])
    assert checkout.path.startswith("/checkout/sandbox/sbx_")

    auth.login(buyer.email)  # paying happens in the buyer's browser
    paid = client.post(f"{checkout.path}?{checkout.query}", data={"action": "pay"})
    assert urlsplit(paid.headers["Location"]).path == f"/orders/{order['id']}"

    fetched = client.get(f"/api/v1/orders/{order['id']}", headers=headers)
    assert fetched.status_code == 200 and fetched.json["status"] == "paid" and fetched.json["paid_at"]
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 1035}


def test_a_free_order_through_the_api_is_paid_at_once_without_a_checkout(
    client: FlaskClient, bearer: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=0, mode=PricingMode.FREE)
    created = client.post("/api/v1/orders", json={"items": [{"release_id": release.id}]}, headers=bearer(buyer))
    assert created.status_code == 201
    assert created.json["status"] == "paid" and created.json["gateway"] == "free"
    assert created.json["checkout_url"] is None


def test_orders_are_listed_newest_first_and_paged(
    client: FlaskClient, bearer: Any, make_release: Any, buyer: Any
) -> None:
    headers = bearer(buyer)
    made = []
    for price in (100, 200, 300):
        release = make_release(price=price)
        made.append(client.post("/api/v1/orders", json={"items": [{"release_id": release.id}]}, headers=headers).json["id"])
    listed = client.get("/api/v1/orders", headers=headers).json
    assert [o["id"] for o in listed] == made[::-1]
    page = client.get("/api/v1/orders?limit=1&offset=1", headers=headers).json
    assert [o["id"] for o in page] == [made[1]]
    assert client.get("/api/v1/orders?limit=x", headers=headers).status_code == 400


def test_another_user_cannot_see_an_order_through_the_api(
    client: FlaskClient, bearer: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release()
    order_id = client.post("/api/v1/orders", json={"items": [{"release_id": release.id}]}, headers=bearer(buyer)).json["id"]
    other = bearer(UserFactory())
    missing = client.get(f"/api/v1/orders/{order_id}", headers=other)
    assert missing.status_code == 404 and missing.json["error"] == "order_not_found"
    assert client.get("/api/v1/orders", headers=other).json == []
    assert client.get(f"/api/v1/orders/{order_id}").status_code == 401


@pytest.mark.parametrize(
    ("items", "status", "error"),
    [
        pytest.param([], 422, "invalid_input", id="empty"),
        pytest.param([{"release_id": 2_000_000}], 422, "not_for_sale", id="unknown-release"),
        pytest.param([{"release_id": "1"}], 422, "invalid_input", id="id-as-text"),
        pytest.param("cheap", 422, "invalid_input", id="not-a-list"),
        pytest.param([{"release_id": 1, "amount_minor": -5}], 422, "invalid_input", id="negative"),
    ],
)
def test_bad_orders_get_the_standard_error_shape(
    client: FlaskClient, bearer: Any, make_release: Any, buyer: Any, items: Any, status: int, error: str
) -> None:
    make_release()
    refused = client.post("/api/v1/orders", json={"items": items}, headers=bearer(buyer))
    assert refused.status_code == status
    assert refused.json["error"] == error and set(refused.json) == {"error", "message", "details"}


def test_pricing_rules_are_enforced_through_the_api(
    client: FlaskClient, bearer: Any, make_release: Any, buyer: Any
) -> None:
    headers = bearer(buyer)
    nyp = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE)
    euros = make_release(currency="EUR")
    low = client.post("/api/v1/orders", json={"items": [{"release_id": nyp.id, "amount_minor": 499}]}, headers=headers)
    assert low.status_code == 422 and low.json["error"] == "invalid_amount"
    mixed = client.post("/api/v1/orders", json={"items": [{"release_id": nyp.id}, {"release_id": euros.id}]}, headers=headers)
    assert mixed.status_code == 422 and mixed.json["error"] == "mixed_currencies"
    assert client.get("/api/v1/orders", headers=headers).json == []


def test_the_orders_api_is_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert {"post", "get"} <= paths["/api/v1/orders"].keys()
    assert "get" in paths["/api/v1/orders/{public_id}"]
    assert paths["/api/v1/orders"]["post"]["responses"]["201"]
