"""Buying in the browser: buy buttons, the cart, checkout, orders and the studio's sales."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.catalog.models import PricingMode
from app.commerce.models import Order, OrderStatus
from app.jobs import get_queue
from app.ledger import service as ledger
from app.ledger.models import LedgerAccount, LedgerTransaction, platform_code
from tests.factories import ArtistFactory, UserFactory

JOB_WAIT_SECONDS = 10


def add(client: FlaskClient, release: Any, track: Any = None, amount: str | None = None) -> Any:
    form = {"release_id": str(release.id)}
    if track is not None:
        form["track_id"] = str(track.id)
    if amount is not None:
        form["amount"] = amount
    return client.post("/cart/add", data=form)


def pay_in_sandbox(client: FlaskClient) -> Any:
    """Check out the cart, press "Pay" and land on the order's page, as a browser would."""
    started = client.post("/cart/checkout")
    sandbox_page = urlsplit(started.headers["Location"])
    assert sandbox_page.path.startswith("/checkout/sandbox/")
    paid = client.post(f"{sandbox_page.path}?{sandbox_page.query}", data={"action": "pay"})
    return client.get(paid.headers["Location"])


def orders(session: Any) -> list[Order]:
    session.expire_all()
    return list(session.scalars(select(Order).order_by(Order.id)))


def platform_balance(session: Any, purpose: str) -> int:
    account = session.scalar(select(LedgerAccount).where(LedgerAccount.code == platform_code(purpose, "USD")))
    return 0 if account is None else ledger.balance(session, account)["USD"]


def test_a_priced_release_and_its_tracks_have_buy_buttons(client: FlaskClient, make_release: Any) -> None:
    release = make_release(price=700, track_price=129)
    release.tracks[1].sold_separately = False
    page = client.get(f"/releases/{release.id}").get_data(as_text=True)
    assert "$7.00" in page and "Buy album" in page
    assert page.count('name="track_id"') == 1  # the album-only track has no button
    assert f'name="track_id" value="{release.tracks[0].id}"' in page and "$1.29" in page


def test_name_your_price_shows_the_suggestion_and_the_minimum(client: FlaskClient, make_release: Any) -> None:
    release = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE)
    page = client.get(f"/releases/{release.id}").get_data(as_text=True)
    assert "Suggested $8.00, at least $5.00" in page
    assert 'name="amount"' in page and 'value="8.00"' in page


def test_free_music_says_so(client: FlaskClient, make_release: Any) -> None:
    release = make_release(price=0, mode=PricingMode.FREE)
    page = client.get(f"/releases/{release.id}").get_data(as_text=True)
    assert "Free download" in page and "Get it free" in page


def test_drafts_and_releases_without_ready_tracks_have_no_buy_button(
    client: FlaskClient, auth: Any, make_release: Any
) -> None:
    empty = make_release(tracks=0)
    assert "/cart/add" not in client.get(f"/releases/{empty.id}").get_data(as_text=True)
    draft = make_release()
    draft.published = False
    auth.login(draft.artist.owner.email)
    assert "/cart/add" not in client.get(f"/releases/{draft.id}").get_data(as_text=True)


def test_a_typed_amount_below_the_minimum_or_not_an_amount_is_explained(
    client: FlaskClient, make_release: Any
) -> None:
    release = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE)
    low = add(client, release, amount="4,99")
    assert low.status_code == 422
    assert "Pay at least $5.00 for this." in low.get_data(as_text=True)
    assert 'value="4,99"' in low.get_data(as_text=True)  # what they typed is kept
    garbage = add(client, release, amount="five")
    assert garbage.status_code == 422 and "is not an amount" in garbage.get_data(as_text=True)
    assert "Your cart is empty" in client.get("/cart").get_data(as_text=True)


def test_name_your_price_above_the_minimum_records_the_extra(
    client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE)
    assert add(client, release, amount="12,50").status_code == 302  # a decimal comma: 12.50
    cart = client.get("/cart").get_data(as_text=True)
    assert "$12.50" in cart and "Suggested $8.00, at least $5.00" in cart
    auth.login(buyer.email)
    pay_in_sandbox(client)

    (order,) = orders(session)
    item = order.items[0]
    assert order.status is OrderStatus.PAID and order.total_minor == 1250
    assert (item.minimum_minor, item.extra_minor) == (500, 750)
    assert ledger.artist_balances(session, release.artist_id) == {"USD": 1125}
    # The platform's 1.25 is split 5:7.5 between commission and the buyer's contribution.
    assert platform_balance(session, "contributions") == -75
    assert platform_balance(session, "platform_commission") == -50
    assert "you chose to add" in client.get(f"/orders/{order.public_id}").get_data(as_text=True)


def test_a_free_item_is_acquired_without_the_gateway(
    app: Flask, client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=0, mode=PricingMode.FREE)
    auth.login(buyer.email)
    add(client, release)
    assert "Get it free" in client.get("/cart").get_data(as_text=True)

    done = client.post("/cart/checkout")
    (order,) = orders(session)
    assert urlsplit(done.headers["Location"]).path == f"/orders/{order.public_id}"
    assert order.status is OrderStatus.PAID and order.gateway == "free"
    assert order.checkout_session_id is None
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Thank you" in page and "Free" in page
    assert "Your cart is empty" in client.get("/cart").get_data(as_text=True)
    assert get_queue(app).wait_idle(JOB_WAIT_SECONDS)


def test_the_cart_holds_one_currency_and_items_can_be_removed(
    client: FlaskClient, make_release: Any
) -> None:
    dollars = make_release(price=700)
    more_dollars = make_release(price=300, track_price=150)
    euros = make_release(price=500, currency="EUR")
    add(client, dollars)
    add(client, more_dollars, track=more_dollars.tracks[0])
    refused = add(client, euros)
    assert refused.status_code == 422
    assert "priced in USD and this one is priced in EUR" in refused.get_data(as_text=True)

    cart = client.get("/cart").get_data(as_text=True)
    assert "$8.50" in cart and euros.title not in cart
    assert 'class="badge badge-live cart-count">2<' in cart

    client.post("/cart/remove", data={"release_id": str(dollars.id)})
    cart = client.get("/cart").get_data(as_text=True)
    assert dollars.title not in cart and "$1.50" in cart
    assert add(client, euros).status_code == 422


def test_adding_an_item_again_updates_its_amount(client: FlaskClient, make_release: Any) -> None:
    release = make_release(price=800, minimum=500, mode=PricingMode.NAME_YOUR_PRICE)
    add(client, release, amount="6")
    add(client, release, amount="9")
    cart = client.get("/cart").get_data(as_text=True)
    assert "$9.00" in cart and "$6.00" not in cart and "1 item)" in cart


def test_checkout_asks_a_visitor_to_sign_in_and_keeps_the_cart(
    client: FlaskClient, auth: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=700)
    add(client, release)
    asked = client.post("/cart/checkout")
    assert asked.status_code == 302
    login = urlsplit(asked.headers["Location"])
    assert login.path == "/login" and parse_qs(login.query) == {"next": ["/cart"]}
    signed_in = client.post(f"/login?{login.query}", data={"email": buyer.email, "password": "correct-horse-battery"})
    assert urlsplit(signed_in.headers["Location"]).path == "/cart"
    assert release.title in client.get("/cart").get_data(as_text=True)


def test_checkout_empties_the_cart_and_cancelling_refills_it(
    client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=700)
    auth.login(buyer.email)
    add(client, release)
    started = client.post("/cart/checkout")
    (first,) = orders(session)
    # A second checkout (a double click, the Back button) finds nothing to buy twice.
    assert "Your cart is empty" in client.get("/cart").get_data(as_text=True)
    again = client.post("/cart/checkout")
    assert urlsplit(again.headers["Location"]).path == "/cart" and len(orders(session)) == 1

    page = client.get(started.headers["Location"]).get_data(as_text=True)
    assert "Cancel and return to your cart" in page
    cancel = f"http://localhost/cart?restore={first.public_id}"
    assert f'href="{cancel}"' in page
    assert client.get(cancel).status_code == 302
    assert release.title in client.get("/cart").get_data(as_text=True)
    session.refresh(first)
    assert first.status is OrderStatus.EXPIRED  # paying the left checkout is no longer possible

    started = client.post("/cart/checkout")
    sandbox_page = urlsplit(started.headers["Location"])
    paid = client.post(f"{sandbox_page.path}?{sandbox_page.query}", data={"action": "pay"})
    client.get(paid.headers["Location"])
    assert "Your cart is empty" in client.get("/cart").get_data(as_text=True)
    assert [o.status for o in orders(session)].count(OrderStatus.PAID) == 1


def test_a_buyer_sees_only_their_own_orders(
    client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=700)
    auth.login(buyer.email)
    add(client, release)
    pay_in_sandbox(client)
    (order,) = orders(session)
    listed = client.get("/orders").get_data(as_text=True)
    assert order.public_id in listed and "Paid" in listed
    auth.logout()

    auth.login(UserFactory().email)
    assert client.get(f"/orders/{order.public_id}").status_code == 404
    assert order.public_id not in client.get("/orders").get_data(as_text=True)
    auth.logout()
    assert client.get(f"/orders/{order.public_id}").status_code == 302  # to the sign-in page


def test_an_unpaid_order_page_offers_paying_or_the_cart_and_does_not_refresh(
    client: FlaskClient, auth: Any, session: Any, make_release: Any, buyer: Any
) -> None:
    auth.login(buyer.email)
    add(client, make_release(price=700))
    client.post("/cart/checkout")
    (order,) = orders(session)
    page = client.get(f"/orders/{order.public_id}").get_data(as_text=True)
    assert "Waiting for your payment" in page and 'http-equiv="refresh"' not in page
    assert f'href="/checkout/sandbox/{order.checkout_session_id}"' in page  # back to paying
    assert f'href="/cart?restore={order.public_id}"' in page


def test_the_studio_shows_each_new_sale(
    client: FlaskClient, auth: Any, session: Any, make_release: Any
) -> None:
    artist = ArtistFactory()
    first = make_release(price=999, artist=artist)
    second = make_release(price=500, artist=artist)
    owner_email = artist.owner.email
    auth.login(owner_email)
    assert "No sales yet" in client.get("/studio").get_data(as_text=True)
    assert client.get("/studio/sales.json").json == {"artists": {artist.slug: []}}
    auth.logout()

    auth.login(UserFactory().email)
    add(client, first)
    pay_in_sandbox(client)
    add(client, second)
    pay_in_sandbox(client)
    auth.logout()

    auth.login(owner_email)
    studio = client.get("/studio").get_data(as_text=True)
    assert "No sales yet" not in studio
    assert first.title in studio and "$9.99" in studio and "$8.99" in studio
    feed = client.get("/studio/sales.json").json["artists"][artist.slug]
    assert [(sale["amount"], sale["artist_share"], sale["status"]) for sale in feed] == [
        ("$5.00", "$4.50", "paid"),  # newest first
        ("$9.99", "$8.99", "paid"),
    ]
    assert client.get("/studio/sales.json").json["artists"].keys() == {artist.slug}


def test_signing_out_empties_the_cart(
    client: FlaskClient, auth: Any, make_release: Any, buyer: Any
) -> None:
    release = make_release(price=700)
    auth.login(buyer.email)
    add(client, release)
    assert release.title in client.get("/cart").get_data(as_text=True)
    auth.logout()
    assert "Your cart is empty" in client.get("/cart").get_data(as_text=True)


def test_a_release_replaces_its_tracks_in_the_cart_and_a_track_of_a_carted_release_is_refused(
    client: FlaskClient, make_release: Any
) -> None:
    release = make_release(price=700, tracks=2)
    client.get(add(client, release, release.tracks[0]).headers["Location"])
    added = client.get(add(client, release).headers["Location"]).get_data(as_text=True)
    assert "in place of its tracks" in added
    cart = client.get("/cart").get_data(as_text=True)
    assert f"– {release.tracks[0].title}<" not in cart and f"– {release.title}<" in cart
    refused = add(client, release, release.tracks[1])
    assert refused.status_code == 422 and "which includes this track" in refused.get_data(as_text=True)
