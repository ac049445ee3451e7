"""Prices typed into the studio's forms: read by one grammar, refused under the field."""

import re

import pytest
from sqlalchemy import select

from app.catalog.models import Release, Track
from tests.factories import ArtistFactory, ReleaseFactory
from tests.functional.catalog.forms import field_errors


def _release_form(**change: str) -> dict[str, str]:
    return {"title": "Typed", "pricing_mode": "fixed", "price": "5", "currency": "USD", **change}


@pytest.fixture
def artist(auth):
    artist = ArtistFactory()
    auth.login(artist.owner.email)
    return artist


@pytest.mark.parametrize(
    ("change", "price_minor", "minimum_minor"),
    [({"price": "7,00"}, 700, 700), ({"price": "1,200.00"}, 120000, 120000),
     ({"price": "1.200,00"}, 120000, 120000), ({"price": "$7.5"}, 750, 750),
     ({"pricing_mode": "name_your_price", "price": "9,5", "minimum_price": "1,2"}, 950, 120),
     ({"currency": "JPY", "price": "1,200"}, 1200, 1200),
     ({"currency": "BHD", "price": "1.250"}, 1250, 1250)],
)  # fmt: skip
def test_typed_prices_are_saved_as_people_meant_them(client, session, artist, change, price_minor, minimum_minor):
    response = client.post(f"/studio/artists/{artist.slug}/releases/new", data=_release_form(**change))
    assert response.status_code == 302
    release = session.scalar(select(Release))
    assert (release.price_minor, release.minimum_price_minor) == (price_minor, minimum_minor)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"price": "1,200"}, "price",
         "&#39;1,200&#39; is ambiguous: it could mean 1200 or 1.2. Write 1200 or 1.20 instead."),
        ({"price": "1e400000"}, "price",
         "&#39;1e400000&#39; is not an amount. Use digits and at most one decimal separator, like 7.00."),
        ({"price": "7" * 100_000}, "price", "An amount is at most 64 characters long."),
        ({"price": "NaN"}, "price",
         "&#39;NaN&#39; is not an amount. Use digits and at most one decimal separator, like 7.00."),
        ({"price": "١٢"}, "price", "Write the amount with the digits 0-9."),
        ({"price": "-5"}, "price", "A price cannot be negative."),
        ({"price": "7.001"}, "price",
         "&#39;7.001&#39; is ambiguous: it could mean 7001 or 7.001. Write 7001 or 7.00 instead."),
        ({"price": "100000.01"}, "price", "A price can be at most $100,000.00."),
        ({"pricing_mode": "name_your_price", "price": "9", "minimum_price": "100,000.01"},
         "minimum_price", "A price can be at most $100,000.00."),
        ({"currency": "JPY", "price": "7,5"}, "price", "JPY amounts are whole numbers, without decimals."),
    ],
)  # fmt: skip
def test_a_refused_price_is_explained_under_its_field_and_nothing_is_saved(client, session, artist, change, field, message):
    response = client.post(f"/studio/artists/{artist.slug}/releases/new", data=_release_form(**change))
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), field) == [message]
    assert session.scalar(select(Release)) is None


def test_the_service_limit_is_shown_under_the_field_in_the_releases_currency(make_app, auth):
    app = make_app(MAX_PRICE_MINOR=1000)
    client = app.test_client()
    with app.app_context():
        artist = ArtistFactory()
        client.post("/login", data={"email": artist.owner.email, "password": "correct-horse-battery"})
        response = client.post(
            f"/studio/artists/{artist.slug}/releases/new", data=_release_form(currency="EUR", price="10,01")
        )
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "price") == ["A price can be at most €10.00."]


def test_track_prices_are_typed_in_the_releases_currency(client, session, auth):
    release = ReleaseFactory(currency="JPY", price_minor=1500, minimum_price_minor=1500)
    auth.login(release.artist.owner.email)
    url = f"/studio/releases/{release.id}/tracks/new"
    refused = client.post(url, data={"title": "Half", "price": "1,5", "sold_separately": "on"})
    assert refused.status_code == 422
    assert field_errors(refused.get_data(as_text=True), "price") == ["JPY amounts are whole numbers, without decimals."]
    assert client.post(url, data={"title": "Whole", "price": "1,200", "sold_separately": "on"}).status_code == 302
    assert session.scalar(select(Track.price_minor)) == 1200


def test_a_bad_track_price_and_a_bad_title_are_both_shown(client, auth):
    release = ReleaseFactory()
    auth.login(release.artist.owner.email)
    response = client.post(f"/studio/releases/{release.id}/tracks/new", data={"title": "", "price": "1,200"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_errors(page, "title") and len(field_errors(page, "price")) == 1


def test_the_edit_form_shows_prices_that_read_back_unchanged(client, session, auth):
    release = ReleaseFactory(currency="BHD", price_minor=1250, minimum_price_minor=1250, title="Dinar")
    auth.login(release.artist.owner.email)
    url = f"/studio/releases/{release.id}/edit"
    shown = re.search(r'name="price" type="text" value="([^"]*)"', client.get(url).get_data(as_text=True)).group(1)
    assert shown == "1.250"
    response = client.post(url, data=_release_form(currency="BHD", price=shown, title="Dinar"))
    assert response.status_code == 302
    session.expire_all()
    assert session.get(Release, release.id).price_minor == 1250


@pytest.mark.parametrize(("bps", "shown"), [(9000, "90%"), (8750, "87.5%"), (8333, "83.33%")])
def test_pages_state_the_artist_share_from_the_setting(make_app, bps, shown):
    app = make_app(ARTIST_SHARE_BPS=bps)
    with app.app_context():
        home = app.test_client().get("/").get_data(as_text=True)
    assert f"{shown} of every sale goes to the artist" in home
