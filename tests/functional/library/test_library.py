"""The library: what a listener owns (free acquisitions too), newest first, searchable, paged."""

from __future__ import annotations

import pytest

from app.catalog.models import PricingMode
from app.commerce import service as commerce
from app.extensions import db
from app.library import service
from app.timestamps import utcnow
from tests.conftest import TEST_PASSWORD
from tests.factories import ArtistFactory, UserFactory
# A catalogue without media: the library's lists need no audio.
from tests.functional.commerce.conftest import make_release  # noqa: F401


@pytest.fixture
def collection(shop, buyer, make_release):
    """The buyer's purchases, oldest first: a release, a free release, a single track, one
    refunded release and one unpaid; plus another listener's purchase."""
    tide = ArtistFactory(name="Tidal Lock")
    bought = make_release(artist=tide)
    bought.title = "Harbour Lights"
    free = make_release(mode=PricingMode.FREE, price=0)
    free.title = "Gift Tape"
    single = make_release(tracks=3)
    single.tracks[1].title = "Harbour Song"
    refunded = make_release()
    unpaid = make_release()
    db.session.commit()
    shop.order(buyer, bought)
    shop.order(buyer, free)
    shop.order(buyer, single, single.tracks[1])
    gone = shop.order(buyer, refunded)
    commerce.record_refund(db.session, gone, refunded_total_minor=gone.total_minor, at=utcnow())
    db.session.commit()
    shop.order(buyer, unpaid, paid=False)
    shop.order(UserFactory(), make_release())
    return {"bought": bought, "free": free, "single": single}


def test_the_library_lists_what_the_listener_owns_newest_first(shop, buyer, client, collection):
    headers = shop.token_headers(buyer)
    response = client.get("/api/v1/library", headers=headers)
    assert response.status_code == 200
    entries = response.json
    assert [(e["kind"], e["release"]["id"]) for e in entries] == [
        ("track", collection["single"].id),
        ("release", collection["free"].id),
        ("release", collection["bought"].id),
    ]
    assert entries[0]["track"]["title"] == "Harbour Song"
    assert [e["free"] for e in entries] == [False, True, False]
    assert entries[2]["release"]["artist"] == "Tidal Lock"
    assert entries[1]["url"].endswith(f"/library/items/{entries[1]['item_id']}")

    shop.login(buyer)
    page = client.get("/library")
    assert page.status_code == 200
    text = page.text
    assert text.index("Harbour Song") < text.index("Gift Tape") < text.index("Harbour Lights")
    assert "Free" in text


def test_the_library_searches_titles_and_artists(shop, buyer, client, collection):
    headers = shop.token_headers(buyer)

    def found(query: str) -> list[int]:
        response = client.get("/api/v1/library", query_string={"q": query}, headers=headers)
        return [entry["release"]["id"] for entry in response.json]

    assert found("harbour") == [collection["single"].id, collection["bought"].id]  # track, release
    assert found("TIDAL") == [collection["bought"].id]  # the artist's name
    assert found("gift") == [collection["free"].id]
    assert found("100%") == []  # a wildcard is a character to find
    shop.login(buyer)
    page = client.get("/library?q=gift")
    assert "Gift Tape" in page.text and "Harbour" not in page.text
    assert "Nothing in your library matches" in client.get("/library?q=zzz").text


def test_the_library_is_paged(make_app, make_release):
    app = make_app(PAGE_SIZE=2, DOWNLOAD_LINK_TTL_SECONDS=60)
    with app.app_context():
        buyer = UserFactory()
        releases = [make_release(mode=PricingMode.FREE, price=0) for _ in range(3)]
        for release in releases:
            line = commerce.CartLine(release.id)
            commerce.create_order(db.session, buyer, [line], gateway="sandbox", config=app.config)
            db.session.commit()
        newest_first = [release.id for release in reversed(releases)]
        entries = service.library_entries(db.session, buyer, limit=2, offset=0)
        assert [e.release.id for e in entries] == newest_first[:2]
        rest = service.library_entries(db.session, buyer, limit=2, offset=2)
        assert [e.release.id for e in rest] == newest_first[2:]

        web = app.test_client()
        web.post("/login", data={"email": buyer.email, "password": TEST_PASSWORD})
        first, second = web.get("/library"), web.get("/library?page=2")
        assert "Older →" in first.text and "Older →" not in second.text
        assert "/library/items/" in second.text and second.text.count('class="card"') == 1


def test_buying_twice_lists_once(shop, buyer, client, make_release):
    release = make_release(mode=PricingMode.FREE, price=0)
    first = shop.order(buyer, release)
    second = shop.order(buyer, release)
    (entry,) = service.library_entries(db.session, buyer, limit=10)
    assert entry.item.id == second.items[0].id != first.items[0].id


def test_an_empty_library_says_where_music_comes_from(shop, buyer, client):
    shop.login(buyer)
    page = client.get("/library")
    assert "Your library is empty" in page.text
    assert client.get("/library?page=0").status_code == 422


def test_a_refunded_item_page_says_its_downloads_stopped(shop, buyer, client, make_release):
    release = make_release()
    made = shop.order(buyer, release)
    commerce.record_refund(db.session, made, refunded_total_minor=made.total_minor, at=utcnow())
    db.session.commit()
    shop.login(buyer)
    page = client.get(f"/library/items/{made.items[0].id}")
    assert page.status_code == 200 and "downloads have stopped" in page.text
    api = client.get(f"/api/v1/library/items/{made.items[0].id}/downloads")
    assert api.status_code == 403 and api.json["error"] == "not_owned"
