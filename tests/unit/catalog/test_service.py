"""Catalogue rules called directly, without HTTP: pricing, ownership, drafts, slugs."""

import pytest
from sqlalchemy import select

from app.catalog import service
from app.catalog.errors import InvalidPricing, NotOwner, ReleaseNotFound, SlugTaken, TrackNotFound
from app.catalog.models import Artist, PricingMode, Release
from app.errors import Conflict
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory

LIMIT = 10_000_00


# Pricing, as a pure rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "price", "minimum", "currency"),
    [(PricingMode.FIXED, 700, 0, "USD"), (PricingMode.FIXED, LIMIT, 0, "USD"),
     (PricingMode.NAME_YOUR_PRICE, 500, 500, "EUR"), (PricingMode.NAME_YOUR_PRICE, 0, 0, "USD"),
     (PricingMode.FREE, 0, 0, "JPY")],
)  # fmt: skip
def test_sellable_pricing_passes(mode, price, minimum, currency):
    service.check_pricing(mode, price, minimum, currency, LIMIT)


@pytest.mark.parametrize(
    ("mode", "price", "minimum", "currency", "field", "message"),
    [
        (PricingMode.FIXED, 0, 0, "USD", "price_minor",
         "A fixed price must be above zero; choose 'free' instead."),
        (PricingMode.NAME_YOUR_PRICE, 500, 501, "USD", "minimum_price_minor",
         "The minimum cannot be above the suggested price."),
        (PricingMode.FIXED, -1, 0, "USD", "price_minor", "A price cannot be negative."),
        (PricingMode.NAME_YOUR_PRICE, 500, -1, "USD", "minimum_price_minor",
         "A minimum price cannot be negative."),
        (PricingMode.FIXED, LIMIT + 1, 0, "USD", "price_minor", "A price can be at most $10,000.00."),
        (PricingMode.FIXED, LIMIT + 1, 0, "JPY", "price_minor", "A price can be at most ¥1,000,000."),
        (PricingMode.FIXED, LIMIT + 1, 0, "BHD", "price_minor", "A price can be at most 1,000.000 BHD."),
        (PricingMode.NAME_YOUR_PRICE, LIMIT, LIMIT + 1, "USD", "minimum_price_minor",
         "A minimum price can be at most $10,000.00."),
        (PricingMode.FIXED, 7.5, 0, "USD", "price_minor",
         "A price must be a whole number of cents."),
        (PricingMode.FIXED, True, 0, "USD", "price_minor",
         "A price must be a whole number of cents."),
        (PricingMode.FIXED, 700, 0, "XYZ", "currency", "Unknown currency 'XYZ'."),
    ],
)  # fmt: skip
def test_unsellable_pricing_names_the_field_in_words_people_read(mode, price, minimum, currency, field, message):
    with pytest.raises(InvalidPricing) as refused:
        service.check_pricing(mode, price, minimum, currency, LIMIT)
    assert refused.value.details[field] == [message]


# Pricing through the services, with the schema bypassed ---------------------------------


def test_create_release_refuses_a_price_above_the_limit_even_without_a_schema(session):
    artist = ArtistFactory()
    data = {"title": "Too Dear", "currency": "USD", "price_minor": 1001}
    with pytest.raises(InvalidPricing) as refused:
        service.create_release(session, artist.owner, artist, data, config={"MAX_PRICE_MINOR": 1000})
    assert refused.value.details == {"price_minor": ["A price can be at most $10.00."]}
    assert session.scalar(select(Release)) is None


def test_create_release_without_config_is_guarded_by_the_apps_limit(app, session):
    artist = ArtistFactory()
    data = {"title": "Too Dear", "currency": "USD", "price_minor": app.config["MAX_PRICE_MINOR"] + 1}
    with pytest.raises(InvalidPricing):
        service.create_release(session, artist.owner, artist, data)
    data["price_minor"] = app.config["MAX_PRICE_MINOR"]
    assert service.create_release(session, artist.owner, artist, data).price_minor == data["price_minor"]


def test_update_release_above_the_limit_changes_nothing(session):
    release = ReleaseFactory(price_minor=700, minimum_price_minor=700, title="Kept")
    with pytest.raises(InvalidPricing):
        service.update_release(
            release.artist.owner, release, {"title": "Changed", "price_minor": 1001}, config={"MAX_PRICE_MINOR": 1000}
        )
    assert (release.title, release.price_minor) == ("Kept", 700)


def test_name_your_price_minimum_may_not_exceed_the_suggested_price(session):
    release = ReleaseFactory(pricing_mode=PricingMode.NAME_YOUR_PRICE, price_minor=500, minimum_price_minor=100)
    with pytest.raises(InvalidPricing):
        service.update_release(release.artist.owner, release, {"minimum_price_minor": 501}, config={"MAX_PRICE_MINOR": LIMIT})
    assert release.minimum_price_minor == 100


def test_track_prices_are_guarded_on_add_and_on_update(session):
    release = ReleaseFactory(currency="EUR")
    owner = release.artist.owner
    config = {"MAX_PRICE_MINOR": 1000}
    with pytest.raises(InvalidPricing) as refused:
        service.add_track(session, owner, release, {"title": "Dear", "price_minor": 1001}, config=config)
    assert refused.value.message == "A price can be at most €10.00."
    with pytest.raises(InvalidPricing):
        service.add_track(session, owner, release, {"title": "Owed", "price_minor": -1}, config=config)
    track = service.add_track(session, owner, release, {"title": "Fair", "price_minor": 1000}, config=config)
    with pytest.raises(InvalidPricing):
        service.update_track(owner, track, {"title": "Renamed", "price_minor": 1001}, config=config)
    assert (track.title, track.price_minor) == ("Fair", 1000)


# Ownership and drafts -------------------------------------------------------------------


def test_only_the_owner_or_an_admin_may_change_an_artist(session):
    artist = ArtistFactory()
    service.require_owner(artist.owner, artist)
    service.require_owner(UserFactory(is_admin=True), artist)
    for stranger in (UserFactory(), None):
        with pytest.raises(NotOwner):
            service.require_owner(stranger, artist)


def test_a_stranger_cannot_edit_a_release_or_its_tracks(session):
    track = TrackFactory()
    stranger = UserFactory()
    with pytest.raises(NotOwner):
        service.update_release(stranger, track.release, {"title": "Stolen"})
    with pytest.raises(NotOwner):
        service.update_track(stranger, track, {"title": "Stolen"})
    with pytest.raises(NotOwner):
        service.add_track(session, stranger, track.release, {"title": "Extra"})
    assert track.release.title != "Stolen" and track.title != "Stolen"


def test_drafts_are_visible_to_their_artist_and_admins_only(session):
    draft = ReleaseFactory(published=False, published_at=None)
    track = TrackFactory(release=draft)
    for viewer in (None, UserFactory()):
        with pytest.raises(ReleaseNotFound):
            service.visible_release(session, draft.id, viewer)
        with pytest.raises(TrackNotFound):
            service.visible_track(session, track.id, viewer)
        assert service.artist_releases(draft.artist, viewer) == []
    for viewer in (draft.artist.owner, UserFactory(is_admin=True)):
        assert service.visible_release(session, draft.id, viewer) is draft
        assert service.artist_releases(draft.artist, viewer) == [draft]
    assert draft not in service.new_releases(session, 10)


def test_a_stranger_sees_a_draft_as_not_found_rather_than_forbidden(session):
    draft = ReleaseFactory(published=False, published_at=None)
    with pytest.raises(ReleaseNotFound):
        service.editable_release(session, draft.id, UserFactory())


# Slugs ----------------------------------------------------------------------------------


def test_a_taken_slug_is_a_conflict(session):
    ArtistFactory(slug="the-band")
    with pytest.raises(SlugTaken) as refused:
        service.create_artist(session, UserFactory(), {"slug": "the-band", "name": "Again"})
    assert isinstance(refused.value, Conflict) and refused.value.status == 409
    assert refused.value.details == {"slug": ["That address is taken."]}


def test_create_artist_flushes_so_the_database_has_judged_the_slug(session):
    artist = service.create_artist(session, UserFactory(), {"slug": "fresh", "name": "Fresh"})
    assert artist.id is not None
    assert session.scalar(select(Artist.slug).where(Artist.id == artist.id)) == "fresh"


def test_a_release_holds_at_most_the_last_track_number(session):
    from app.catalog.errors import ReleaseFull
    from app.catalog.models import MAX_TRACK_POSITION

    release = ReleaseFactory()
    owner = release.artist.owner
    service.add_track(session, owner, release, {"title": "last", "position": MAX_TRACK_POSITION, "price_minor": 100})
    with pytest.raises(ReleaseFull):
        service.add_track(session, owner, release, {"title": "one more", "price_minor": 100})
