import pytest
from sqlalchemy import select

from app.accounts.service import issue_token
from app.catalog.models import Release, Track, TrackStatus
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory


@pytest.fixture
def bearer(session):
    def headers_for(user):
        _, secret = issue_token(session, user, "tests")
        session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return headers_for


def test_artist_crud_through_the_api(client, bearer, session):
    headers = bearer(UserFactory())
    created = client.post("/api/v1/artists", json={"slug": "the-band", "name": "The Band"}, headers=headers)
    assert created.status_code == 201 and created.json["slug"] == "the-band"
    assert client.get("/api/v1/artists/the-band").json["name"] == "The Band"
    patched = client.patch("/api/v1/artists/the-band", json={"bio": "Loud."}, headers=headers)
    assert patched.json["bio"] == "Loud."
    taken = client.post("/api/v1/artists", json={"slug": "the-band", "name": "Again"}, headers=headers)
    assert taken.status_code == 409 and taken.json["error"] == "slug_taken"
    assert client.delete("/api/v1/artists/the-band", headers=headers).status_code == 204
    assert client.get("/api/v1/artists/the-band").status_code == 404


def test_release_and_track_crud_through_the_api(client, bearer, session):
    artist = ArtistFactory()
    headers = bearer(artist.owner)
    body = {"artist": artist.slug, "title": "Northern Static", "release_type": "album",
            "pricing_mode": "fixed", "price_minor": 900, "currency": "usd"}  # fmt: skip
    created = client.post("/api/v1/releases", json=body, headers=headers)
    assert created.status_code == 201
    release_id = created.json["id"]
    assert created.json["currency"] == "USD" and created.json["published"] is False

    track = client.post(f"/api/v1/releases/{release_id}/tracks", json={"title": "Cold Open"}, headers=headers)
    assert track.status_code == 201 and track.json["position"] == 1 and track.json["status"] == "draft"
    second = client.post(f"/api/v1/releases/{release_id}/tracks", json={"title": "Bloom"}, headers=headers)
    assert second.json["position"] == 2

    session.get(Track, track.json["id"]).status = TrackStatus.READY  # as when its audio is processed
    session.commit()
    published = client.patch(f"/api/v1/releases/{release_id}", json={"published": True}, headers=headers)
    assert published.status_code == 200 and published.json["published_at"]
    listed = client.get(f"/api/v1/releases/{release_id}").json
    assert [t["title"] for t in listed["tracks"]] == ["Cold Open", "Bloom"]

    assert client.patch(f"/api/v1/tracks/{track.json['id']}", json={"explicit": True}, headers=headers).json["explicit"]
    assert client.delete(f"/api/v1/tracks/{second.json['id']}", headers=headers).status_code == 204
    assert client.delete(f"/api/v1/releases/{release_id}", headers=headers).status_code == 204
    assert session.scalar(select(Release)) is None


def test_another_user_gets_403_through_the_api(client, bearer, session):
    track = TrackFactory()
    release = track.release
    headers = bearer(UserFactory())
    attempts = [
        client.patch(f"/api/v1/releases/{release.id}", json={"title": "Stolen"}, headers=headers),
        client.delete(f"/api/v1/releases/{release.id}", headers=headers),
        client.post(f"/api/v1/releases/{release.id}/tracks", json={"title": "x"}, headers=headers),
        client.patch(f"/api/v1/tracks/{track.id}", json={"title": "x"}, headers=headers),
        client.patch(f"/api/v1/artists/{release.artist.slug}", json={"name": "x"}, headers=headers),
        client.post("/api/v1/releases", json={"artist": release.artist.slug, "title": "x", "price_minor": 1}, headers=headers),
    ]
    for response in attempts:
        assert response.status_code == 403
        assert response.json["error"] == "not_owner"
        assert set(response.json) == {"error", "message", "details"}
    session.expire_all()
    assert session.get(Release, release.id).title == release.title


def test_writes_without_credentials_are_401(client):
    release = ReleaseFactory()
    response = client.patch(f"/api/v1/releases/{release.id}", json={"title": "x"})
    assert response.status_code == 401 and response.json["error"] == "unauthorized"


def test_unpublished_release_is_404_through_the_api(client, bearer):
    draft = ReleaseFactory(published=False, published_at=None)
    TrackFactory(release=draft)
    assert client.get(f"/api/v1/releases/{draft.id}").status_code == 404
    assert client.get(f"/api/v1/tracks/{draft.tracks[0].id}").status_code == 404
    assert client.get(f"/api/v1/releases/{draft.id}", headers=bearer(UserFactory())).status_code == 404
    assert client.get(f"/api/v1/releases/{draft.id}", headers=bearer(draft.artist.owner)).status_code == 200
    assert draft.id not in [r["id"] for r in client.get(f"/api/v1/artists/{draft.artist.slug}/releases").json]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"price_minor": -1}, "price_minor", "A price cannot be negative."),
        ({"pricing_mode": "name_your_price", "price_minor": 500, "minimum_price_minor": 800},
         "minimum_price_minor", "The minimum cannot be above the suggested price."),
        ({"currency": "XYZ"}, "currency", "Unknown currency 'XYZ'. Use an ISO-4217 code such as USD, EUR or GBP."),
        ({"pricing_mode": "fixed", "price_minor": 0}, "price_minor",
         "A fixed price must be above zero; choose 'free' instead."),
        ({"price_minor": 1.5}, "price_minor", "Enter a whole number."),
        ({"price_minor": 10_000_001}, "price_minor", "A price can be at most $100,000.00."),
    ],
)  # fmt: skip
def test_bad_pricing_is_rejected_with_a_clear_error(client, bearer, session, body, field, message):
    artist = ArtistFactory()
    payload = {"artist": artist.slug, "title": "Priced", "price_minor": 700, **body}
    response = client.post("/api/v1/releases", json=payload, headers=bearer(artist.owner))
    assert response.status_code == 422
    assert response.json["error"] in {"invalid_input", "invalid_pricing"}
    assert response.json["details"][field] == [message]
    assert session.scalar(select(Release)) is None


def test_bad_pricing_on_update_keeps_the_old_price(client, bearer, session):
    release = ReleaseFactory(pricing_mode="name_your_price", price_minor=500, minimum_price_minor=100)
    response = client.patch(
        f"/api/v1/releases/{release.id}", json={"minimum_price_minor": 900}, headers=bearer(release.artist.owner)
    )
    assert response.status_code == 422 and response.json["error"] == "invalid_pricing"
    session.expire_all()
    assert session.get(Release, release.id).minimum_price_minor == 100


def test_malformed_json_gets_the_error_shape(client, bearer):
    response = client.post("/api/v1/artists", data="{nope", headers={**bearer(UserFactory()), "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_body"


def test_cookie_session_writes_need_the_csrf_header(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    with app.app_context():
        email = ArtistFactory(slug="csrf-band").owner.email
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    client.post("/login", data={"email": email, "password": "correct-horse-battery", "csrf_token": token})
    refused = client.patch("/api/v1/artists/csrf-band", json={"bio": "x"})
    assert refused.status_code == 400 and refused.json["error"] == "csrf_failed"
    accepted = client.patch("/api/v1/artists/csrf-band", json={"bio": "x"}, headers={"X-CSRFToken": token})
    assert accepted.status_code == 200


@pytest.mark.parametrize(
    ("statuses", "message"),
    [((), "Add a track with audio before publishing."),
     ((TrackStatus.DRAFT, TrackStatus.FAILED), "Add a track with audio before publishing."),
     ((TrackStatus.PROCESSING,), "Wait until a track's audio is ready before publishing.")],
)  # fmt: skip
def test_publishing_without_a_ready_track_is_a_422_on_the_published_field(client, bearer, session, statuses, message):
    release = ReleaseFactory(published=False, published_at=None, title="Low Tide")
    for status in statuses:
        TrackFactory(release=release, status=status)
    response = client.patch(
        f"/api/v1/releases/{release.id}", json={"published": True, "title": "Renamed"}, headers=bearer(release.artist.owner)
    )
    assert response.status_code == 422
    assert response.json == {"error": "nothing_to_play", "message": message, "details": {"published": [message]}}
    session.expire_all()
    assert session.scalar(select(Release.title).where(Release.published.is_(True))) is None
    assert session.get(Release, release.id).title == "Low Tide"


def test_publishing_with_a_ready_track_and_unpublishing_through_the_api(client, bearer, session):
    release = ReleaseFactory(published=False, published_at=None)
    TrackFactory(release=release, status=TrackStatus.DRAFT)
    ready = TrackFactory(release=release, status=TrackStatus.READY)
    headers = bearer(release.artist.owner)
    published = client.patch(f"/api/v1/releases/{release.id}", json={"published": True}, headers=headers)
    assert published.status_code == 200 and published.json["published"] is True and published.json["published_at"]
    assert client.get(f"/api/v1/releases/{release.id}").status_code == 200
    session.get(Track, ready.id).status = TrackStatus.FAILED  # no longer playable
    session.commit()
    retitled = client.patch(f"/api/v1/releases/{release.id}", json={"title": "Retitled", "published": True}, headers=headers)
    assert retitled.status_code == 200 and retitled.json["title"] == "Retitled"
    unpublished = client.patch(f"/api/v1/releases/{release.id}", json={"published": False}, headers=headers)
    assert unpublished.status_code == 200 and unpublished.json["published"] is False
    assert client.get(f"/api/v1/releases/{release.id}").status_code == 404


def test_the_openapi_document_describes_the_refused_publish(client):
    spec = client.get("/api/v1/openapi.json").json
    patch = spec["paths"]["/api/v1/releases/{release_id}"]["patch"]
    assert patch["responses"]["default"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    body = spec["components"]["schemas"][patch["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]]
    assert "nothing_to_play" in body["properties"]["published"]["description"]
