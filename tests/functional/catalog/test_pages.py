from sqlalchemy import select

from app.catalog.models import PricingMode, Release, Track
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory


def test_home_lists_published_releases_only(client):
    shown = ReleaseFactory(title="Out Now")
    ReleaseFactory(title="Secret Draft", published=False, published_at=None)
    page = client.get("/").get_data(as_text=True)
    assert "Out Now" in page and shown.artist.name in page
    assert "Secret Draft" not in page


def test_unpublished_release_is_404_to_everyone_but_its_artist(client, auth):
    draft = ReleaseFactory(published=False, published_at=None)
    assert client.get(f"/releases/{draft.id}").status_code == 404
    auth.login(UserFactory().email)
    assert client.get(f"/releases/{draft.id}").status_code == 404
    auth.logout()
    auth.login(draft.artist.owner.email)
    page = client.get(f"/releases/{draft.id}")
    assert page.status_code == 200 and "only you can see it" in page.get_data(as_text=True)


def test_search_finds_by_title_and_by_artist(client):
    release = ReleaseFactory(title="Harbour Lights", artist__name="Aurora Lines")
    ReleaseFactory(title="Unrelated")
    by_title = client.get("/search?q=harbour").get_data(as_text=True)
    by_artist = client.get("/search?q=AURORA").get_data(as_text=True)
    assert release.title in by_title and "Unrelated" not in by_title
    assert release.title in by_artist and "Aurora Lines" in by_artist
    assert "Nothing matches" in client.get("/search?q=zzz%25").get_data(as_text=True)


def test_artist_creates_a_release_and_a_track_in_the_browser(client, auth, session):
    artist = ArtistFactory()
    auth.login(artist.owner.email)
    created = client.post(
        f"/studio/artists/{artist.slug}/releases/new",
        data={"title": "Night Ferry", "release_type": "ep", "pricing_mode": "name_your_price",
              "price": "5", "minimum_price": "2.50", "currency": "eur", "published": "on"},
    )  # fmt: skip
    assert created.status_code == 302
    release = session.scalar(select(Release).where(Release.title == "Night Ferry"))
    assert (release.price_minor, release.minimum_price_minor, release.currency) == (500, 250, "EUR")
    assert release.pricing_mode is PricingMode.NAME_YOUR_PRICE and release.published_at

    added = client.post(
        f"/studio/releases/{release.id}/tracks/new",
        data={"title": "Deck", "position": "1", "price": "1.20", "sold_separately": "on", "isrc": "us-rc1-76-07839"},
    )
    assert added.status_code == 302
    track = session.scalar(select(Track).where(Track.release_id == release.id))
    assert (track.title, track.price_minor, track.isrc, track.sold_separately) == ("Deck", 120, "USRC17607839", True)
    assert "Deck" in client.get(f"/releases/{release.id}").get_data(as_text=True)


def test_bad_pricing_in_the_form_is_shown_inline_and_nothing_is_saved(client, auth, session):
    artist = ArtistFactory()
    auth.login(artist.owner.email)
    url = f"/studio/artists/{artist.slug}/releases/new"
    cases = [
        ({"price": "-3"}, "A price cannot be negative."),
        ({"pricing_mode": "name_your_price", "price": "2", "minimum_price": "5"},
         "The minimum cannot be above the suggested price."),
        ({"currency": "ABC"}, "Unknown currency &#39;ABC&#39;."),
        ({"price": "0.001"}, "USD amounts have at most 2 decimals."),
        ({"price": "100000.01"}, "A price can be at most $100,000.00."),
    ]  # fmt: skip
    for change, message in cases:
        form = {"title": "Bad", "pricing_mode": "fixed", "price": "5", "currency": "USD", **change}
        response = client.post(url, data=form)
        assert response.status_code == 422, change
        assert message in response.get_data(as_text=True), change
    assert session.scalar(select(Release)) is None


def test_another_user_cannot_edit_an_artists_release_in_the_browser(client, auth, session):
    release = ReleaseFactory(title="Mine")
    auth.login(UserFactory().email)
    assert client.get(f"/studio/releases/{release.id}/edit").status_code == 403
    response = client.post(f"/studio/releases/{release.id}/edit", data={"title": "Stolen", "currency": "USD"})
    assert response.status_code == 403
    assert client.post(f"/studio/releases/{release.id}/delete").status_code == 403
    session.expire_all()
    assert session.get(Release, release.id).title == "Mine"


def test_owner_edits_and_deletes_a_track(client, auth, session):
    track = TrackFactory(title="Old")
    auth.login(track.release.artist.owner.email)
    response = client.post(
        f"/studio/tracks/{track.id}/edit", data={"title": "New", "position": "2", "price": "0.99"}
    )
    assert response.status_code == 302
    session.expire_all()
    assert (track.title, track.position, track.price_minor, track.sold_separately) == ("New", 2, 99, False)
    assert client.post(f"/studio/tracks/{track.id}/delete").status_code == 302
    assert session.get(Track, track.id) is None


def test_studio_needs_a_signed_in_user(client):
    response = client.get("/studio")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_unknown_pages_get_a_finished_404_page(client):
    response = client.get("/artists/nobody")
    assert response.status_code == 404
    assert "No artist called" in response.get_data(as_text=True)
    assert "<footer" in response.get_data(as_text=True)
