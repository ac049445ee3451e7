"""/api/v1/plays: starting plays and their heartbeats over HTTP, who the listener is (signed
cookie, address hash, signed-in user), the documented answers, and bad input never a 500."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, template_rendered
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator

from app.accounts.service import issue_token
from app.catalog.models import Track
from app.extensions import db
from app.plays.listeners import LISTENER_COOKIE, new_cookie
from app.plays.models import Listener, Play, PlayOutcome
from tests.conftest import TEST_PASSWORD
from tests.factories import ReleaseFactory, TrackFactory, UserFactory

PLAYS = "/api/v1/plays"
ADDRESS = "203.0.113.77"
BROWSER = {"REMOTE_ADDR": ADDRESS, "HTTP_USER_AGENT": "Mozilla/5.0 (Test) Player"}


def heartbeat_url(token: str) -> str:
    return f"{PLAYS}/{token}/heartbeat"


def play_row(token: str) -> Play:
    db.session.expire_all()
    return db.session.query(Play).filter_by(token=token).one()


def listener_of(token: str) -> Listener:
    return db.session.get(Listener, play_row(token).listener_id)


@pytest.fixture
def track(make_track: Callable[..., Track]) -> Track:
    return make_track(duration_ms=240_000)


def client_at(app: Flask, **environ: str) -> FlaskClient:
    """A client of its own (its own cookie jar) at BROWSER's address and user agent, or these."""
    made = app.test_client()
    made.environ_base.update({**BROWSER, **environ})
    return made


@pytest.fixture
def visitor(app: Flask) -> FlaskClient:
    """An anonymous browser: one address and user agent, and a cookie jar."""
    return client_at(app)


@pytest.fixture
def bearer(session: Any) -> Callable[[Any], dict[str, str]]:
    def headers_for(user: Any) -> dict[str, str]:
        _, secret = issue_token(session, user, "tests")
        session.commit()
        return {"Authorization": f"Bearer {secret}"}

    return headers_for


@pytest.fixture(scope="module")
def conforms() -> Callable[[FlaskClient, str, str, int, Any], None]:
    """Check a JSON answer against the response schema the OpenAPI document gives for it."""

    def check(client: FlaskClient, path: str, method: str, status: int, body: Any) -> None:
        document = client.get("/api/v1/openapi.json").json
        responses = document["paths"][path][method]["responses"]
        described = responses.get(str(status), responses["default"])
        schema = described["content"]["application/json"]["schema"]
        OAS30Validator({**schema, "components": document["components"]}).validate(body)

    return check


def test_a_play_starts_and_counts_at_the_first_heartbeat_after_30_seconds(
    visitor: FlaskClient, track: Track, age_play: Any, conforms: Any
) -> None:
    started = visitor.post(PLAYS, json={"track_id": track.id})
    assert started.status_code == 201, started.json
    token = started.json["id"]
    assert started.json == {
        "id": token,
        "track_id": track.id,
        "counts_after_seconds": 30.0,
        "counted": False,
        "outcome": None,
        "heartbeat_url": f"/api/v1/plays/{token}/heartbeat",
    }
    conforms(visitor, PLAYS, "post", 201, started.json)

    early = visitor.post(heartbeat_url(token), json={"position_seconds": 12.5})
    assert early.status_code == 200
    assert (early.json["counted"], early.json["outcome"]) == (False, None)
    assert 0 <= early.json["elapsed_seconds"] < 29
    assert play_row(token).reported_position_ms == 12_500
    conforms(visitor, "/api/v1/plays/{token}/heartbeat", "post", 200, early.json)

    age_play(token, 30)
    due = visitor.post(started.json["heartbeat_url"], json={"position_seconds": 30})
    assert due.status_code == 200
    assert (due.json["id"], due.json["counted"], due.json["outcome"]) == (token, True, "counted")
    assert due.json["elapsed_seconds"] >= 30
    conforms(visitor, "/api/v1/plays/{token}/heartbeat", "post", 200, due.json)
    counted = play_row(token)
    assert (counted.outcome, counted.earns) == (PlayOutcome.COUNTED, True)
    assert counted.period_id is not None


def test_29_seconds_on_the_server_clock_do_not_count_whatever_the_position(
    visitor: FlaskClient, track: Track, age_play: Any
) -> None:
    token = visitor.post(PLAYS, json={"track_id": track.id}).json["id"]
    age_play(token, 29)
    forged = visitor.post(heartbeat_url(token), json={"position_seconds": 600})
    assert (forged.json["counted"], forged.json["outcome"]) == (False, None)
    row = play_row(token)
    assert (row.outcome, row.reported_position_ms) == (None, 240_000)


def test_a_short_count_setting_counts_after_that_many_seconds(
    make_app: Any, make_track: Callable[..., Track], age_play: Any
) -> None:
    app = make_app(PLAY_COUNT_SECONDS=2.5)
    with app.app_context():
        short = make_track(duration_ms=240_000)
        client = client_at(app)
        started = client.post(PLAYS, json={"track_id": short.id}).json
        assert started["counts_after_seconds"] == 2.5
        url = heartbeat_url(started["id"])
        age_play(started["id"], 2.4)
        assert client.post(url, json={"position_seconds": 2}).json["outcome"] is None
        age_play(started["id"], 0.1)
        assert client.post(url, json={"position_seconds": 2}).json["counted"] is True


def test_a_replay_inside_the_window_does_not_count(
    app: Flask, visitor: FlaskClient, track: Track, age_play: Any
) -> None:
    visitor.set_cookie(LISTENER_COOKIE, new_cookie(app.config))
    outcomes = []
    for _ in range(2):
        token = visitor.post(PLAYS, json={"track_id": track.id}).json["id"]
        age_play(token, 31)
        beat = visitor.post(heartbeat_url(token), json={"position_seconds": 31})
        outcomes.append(beat.json["outcome"])
    assert outcomes == ["counted", "replay"]


def test_an_anonymous_browser_gets_a_signed_cookie_that_keeps_it_one_listener(
    visitor: FlaskClient, track: Track
) -> None:
    first = visitor.post(PLAYS, json={"track_id": track.id})
    set_cookie = first.headers["Set-Cookie"]
    assert set_cookie.startswith(f"{LISTENER_COOKIE}=")
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    # The first request had no cookie: it is the address listener of the day.
    assert listener_of(first.json["id"]).key.startswith("h:")

    second = visitor.post(PLAYS, json={"track_id": track.id})
    third = visitor.post(PLAYS, json={"track_id": track.id})
    assert "Set-Cookie" not in second.headers
    cookie_listener = listener_of(second.json["id"])
    assert cookie_listener.key.startswith("c:") and cookie_listener.user_id is None
    assert listener_of(third.json["id"]).id == cookie_listener.id


def test_a_forged_cookie_is_ignored(app: Flask, track: Track) -> None:
    honest = client_at(app)
    honest.post(PLAYS, json={"track_id": track.id})
    cookie = honest.get_cookie(LISTENER_COOKIE)
    assert cookie is not None
    honest_id = listener_of(honest.post(PLAYS, json={"track_id": track.id}).json["id"]).id

    forger = client_at(app, REMOTE_ADDR="203.0.113.99")
    payload, _, signature = cookie.value.rpartition(".")
    forger.set_cookie(LISTENER_COOKIE, payload + "." + signature[::-1])
    forged = forger.post(PLAYS, json={"track_id": track.id})
    assert forged.status_code == 201
    forged_listener = listener_of(forged.json["id"])
    assert forged_listener.id != honest_id
    assert forged_listener.key.startswith("h:")
    assert forged.headers["Set-Cookie"].startswith(f"{LISTENER_COOKIE}=")  # a fresh, valid one


def test_without_cookies_a_client_is_one_hashed_listener_and_no_address_is_stored(
    app: Flask, track: Track
) -> None:
    tokens = [
        client_at(app).post(PLAYS, json={"track_id": track.id}).json["id"]
        for _ in range(2)
    ]
    same = {listener_of(token).id for token in tokens}
    assert len(same) == 1
    other_agent = client_at(app, HTTP_USER_AGENT="Other/2")
    other_play = other_agent.post(PLAYS, json={"track_id": track.id}).json["id"]
    assert listener_of(other_play).id not in same

    stored = db.session.query(Listener).all()
    # Listeners by address and user agent, and the one address listener their limits share.
    assert sorted(listener.key[:2] for listener in stored) == ["a:", "h:", "h:"]
    every_value = json.dumps(
        [[str(getattr(row, column.key)) for column in Listener.__table__.columns] for row in stored]
        + [[str(getattr(row, column.key)) for column in Play.__table__.columns]
           for row in db.session.query(Play)]
    )  # fmt: skip
    assert ADDRESS not in every_value and ADDRESS.replace(".", "") not in every_value


def test_a_signed_in_listener_is_their_account(
    app: Flask, track: Track, bearer: Any
) -> None:
    fan = UserFactory()
    started = client_at(app).post(
        PLAYS, json={"track_id": track.id}, headers=bearer(fan)
    )
    assert started.status_code == 201 and "Set-Cookie" not in started.headers
    row = play_row(started.json["id"])
    assert row.user_id == fan.id
    assert listener_of(started.json["id"]).key == f"u:{fan.id}"


def test_the_artist_playing_their_own_track_is_marked_and_never_counted(
    client: FlaskClient, track: Track, bearer: Any, age_play: Any
) -> None:
    headers = bearer(track.release.artist.owner)
    started = client.post(PLAYS, json={"track_id": track.id}, headers=headers)
    assert (started.json["outcome"], started.json["counted"]) == ("artist", False)
    age_play(started.json["id"], 60)
    beat = client.post(heartbeat_url(started.json["id"]), json={"position_seconds": 60})
    assert (beat.json["outcome"], beat.json["counted"]) == ("artist", False)


def test_an_owned_track_counts_without_earning(
    client: FlaskClient, track: Track, bearer: Any, buy: Any, age_play: Any
) -> None:
    fan = UserFactory()
    buy(fan, track.release)
    token = client.post(PLAYS, json={"track_id": track.id}, headers=bearer(fan)).json["id"]
    age_play(token, 30)
    assert client.post(heartbeat_url(token), json={"position_seconds": 30}).json["counted"] is True
    row = play_row(token)
    assert (row.outcome, row.earns) == (PlayOutcome.COUNTED, False)


def test_an_expired_play_is_gone_and_an_unknown_one_not_found(
    visitor: FlaskClient, app: Flask, track: Track, age_play: Any
) -> None:
    token = visitor.post(PLAYS, json={"track_id": track.id}).json["id"]
    age_play(token, app.config["PLAY_SESSION_TTL_SECONDS"] + 1)
    expired = visitor.post(heartbeat_url(token), json={"position_seconds": 40})
    assert expired.status_code == 410
    assert expired.json["error"] == "play_expired"
    assert set(expired.json) == {"error", "message", "details"}
    assert play_row(token).outcome is None

    unknown = visitor.post(heartbeat_url("A" * 24), json={"position_seconds": 1})
    assert (unknown.status_code, unknown.json["error"]) == (404, "play_not_found")


def test_tracks_that_cannot_be_streamed_cannot_be_played(
    visitor: FlaskClient, make_track: Callable[..., Track]
) -> None:
    draft = make_track(release=ReleaseFactory(published=False))
    silent = TrackFactory()
    assert visitor.post(PLAYS, json={"track_id": draft.id}).json["error"] == "track_not_found"
    assert visitor.post(PLAYS, json={"track_id": 2**31 - 1}).status_code == 404
    no_audio = visitor.post(PLAYS, json={"track_id": silent.id})
    assert (no_audio.status_code, no_audio.json["error"]) == (404, "track_has_no_audio")
    assert db.session.query(Play).count() == 0


def test_the_artist_may_play_an_unpublished_track(
    client: FlaskClient, make_track: Callable[..., Track], bearer: Any
) -> None:
    draft = make_track(release=ReleaseFactory(published=False))
    headers = bearer(draft.release.artist.owner)
    started = client.post(PLAYS, json={"track_id": draft.id}, headers=headers)
    assert started.status_code == 201 and started.json["outcome"] == "artist"


@pytest.mark.parametrize(
    "body",
    [{}, {"track_id": "1"}, {"track_id": 0}, {"track_id": -3}, {"track_id": 2**31},
     {"track_id": 1.5}, {"track_id": True}, {"track_id": None}, {"track_id": 1, "extra": 1},
     [1], "1", None],
)  # fmt: skip
def test_a_bad_start_body_is_refused(visitor: FlaskClient, track: Track, body: Any) -> None:
    response = visitor.post(PLAYS, data=json.dumps(body), content_type="application/json")
    assert response.status_code in (400, 422), response.json
    assert set(response.json) == {"error", "message", "details"}


@pytest.mark.parametrize(
    "raw",
    ["{}", '{"position_seconds": -1}', '{"position_seconds": NaN}',
     '{"position_seconds": Infinity}', '{"position_seconds": 1e400}',
     '{"position_seconds": 1' + "0" * 400 + "}",
     '{"position_seconds": 10000000}', '{"position_seconds": "soon"}', '{"position_seconds": true}',
     '{"position_seconds": null}', "[]", "not json"],
)  # fmt: skip
def test_a_bad_heartbeat_body_is_refused(visitor: FlaskClient, track: Track, raw: str) -> None:
    token = visitor.post(PLAYS, json={"track_id": track.id}).json["id"]
    response = visitor.post(heartbeat_url(token), data=raw, content_type="application/json")
    assert response.status_code in (400, 422), response.json
    assert set(response.json) == {"error", "message", "details"}
    assert play_row(token).last_heartbeat_at is None


def test_a_form_post_is_not_a_play(visitor: FlaskClient, track: Track) -> None:
    response = visitor.post(PLAYS, data={"track_id": str(track.id)})
    assert (response.status_code, response.json["error"]) == (400, "invalid_body")


@pytest.mark.parametrize("token", ["x" * 25, "a%20b", "%00", "..", "ü"])
def test_a_malformed_token_is_not_found(visitor: FlaskClient, token: str) -> None:
    response = visitor.post(heartbeat_url(token), json={"position_seconds": 1})
    assert response.status_code == 404


@pytest.mark.parametrize("token", ["Q" * 5000, "Q" * 24, "Q" * 23])
def test_an_unknown_token_is_not_echoed_back(visitor: FlaskClient, token: str) -> None:
    response = visitor.post(heartbeat_url(token), json={"position_seconds": 1})
    assert (response.status_code, response.json["error"]) == (404, "play_not_found")
    assert response.json["details"] == {}
    assert "QQQ" not in response.get_data(as_text=True)


# Browsers: CSRF for signed-in sessions, none needed anonymously ------------------------------


@pytest.fixture
def csrf_app(make_app: Any) -> Any:
    app = make_app(WTF_CSRF_ENABLED=True)
    with app.app_context():
        yield app


def _csrf_token(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def test_an_anonymous_browser_plays_without_signing_in(
    csrf_app: Flask, make_track: Callable[..., Track], age_play: Any
) -> None:
    track = make_track()
    anonymous = client_at(csrf_app)
    headers = {"X-CSRFToken": _csrf_token(anonymous)}
    started = anonymous.post(PLAYS, json={"track_id": track.id}, headers=headers)
    assert started.status_code == 201, started.json
    age_play(started.json["id"], 30)
    url = heartbeat_url(started.json["id"])
    beat = anonymous.post(url, json={"position_seconds": 30}, headers=headers)
    assert beat.json["counted"] is True


def test_a_signed_in_browser_needs_the_csrf_token(
    csrf_app: Flask, make_track: Callable[..., Track]
) -> None:
    track = make_track()
    fan = UserFactory()
    visitor = client_at(csrf_app)
    token = _csrf_token(visitor)
    signed_in = {"email": fan.email, "password": TEST_PASSWORD, "csrf_token": token}
    assert visitor.post("/login", data=signed_in).status_code == 302

    refused = visitor.post(PLAYS, json={"track_id": track.id})
    assert (refused.status_code, refused.json["error"]) == (400, "csrf_failed")
    assert db.session.query(Play).count() == 0
    accepted = visitor.post(PLAYS, json={"track_id": track.id}, headers={"X-CSRFToken": token})
    assert accepted.status_code == 201
    assert play_row(accepted.json["id"]).user_id == fan.id


# Pages: the release page and the Studio show counted plays -----------------------------------


def _count(app: Flask, track: Track, age_play: Any, address: str) -> None:
    """One counted play of ``track`` by a new anonymous listener at ``address``."""
    listener = client_at(app, REMOTE_ADDR=address)
    token = listener.post(PLAYS, json={"track_id": track.id}).json["id"]
    age_play(token, 30)
    assert listener.post(heartbeat_url(token), json={"position_seconds": 30}).json["counted"]


def test_the_release_page_gets_each_tracks_counted_plays(
    app: Flask, make_track: Callable[..., Track], age_play: Any
) -> None:
    first = make_track()
    second = make_track(release=first.release)
    for n in range(2):
        _count(app, first, age_play, f"198.51.100.{n}")
    client_at(app).post(PLAYS, json={"track_id": second.id})  # started, never counted

    rendered: list[dict[str, Any]] = []

    def remember(sender: Flask, template: Any, context: dict[str, Any], **extra: Any) -> None:
        rendered.append(context)

    with template_rendered.connected_to(remember, app):
        assert app.test_client().get(f"/releases/{first.release.id}").status_code == 200
    assert rendered[0]["play_counts"] == {first.id: 2, second.id: 0}


def test_the_studio_shows_each_tracks_counted_plays(
    app: Flask, auth: Any, client: FlaskClient, make_track: Callable[..., Track], age_play: Any
) -> None:
    popular = make_track()
    once = make_track(release=popular.release)
    quiet = make_track(release=popular.release)
    for n in range(3):
        _count(app, popular, age_play, f"198.51.100.{n}")
    _count(app, once, age_play, "198.51.100.9")

    auth.login(popular.release.artist.owner.email)
    page = client.get("/studio").get_data(as_text=True)
    counts = dict(re.findall(r'data-track-id="(\d+)">.*?class="play-count">([^<]+)<', page))
    assert counts == {str(popular.id): "3 plays", str(once.id): "1 play", str(quiet.id): "0 plays"}


def test_a_fresh_browser_is_one_listener_from_its_first_play(
    visitor: FlaskClient, track: Track, age_play: Any
) -> None:
    page = visitor.get(f"/releases/{track.release_id}")
    assert page.status_code == 200
    cookies = page.headers.getlist("Set-Cookie")
    assert [c for c in cookies if c.startswith(f"{LISTENER_COOKIE}=")]

    outcomes, keys = [], set()
    for _ in range(2):
        token = visitor.post(PLAYS, json={"track_id": track.id}).json["id"]
        keys.add(listener_of(token).key)
        age_play(token, 31)
        beat = visitor.post(heartbeat_url(token), json={"position_seconds": 31})
        outcomes.append(beat.json["outcome"])
    assert len(keys) == 1 and keys.pop().startswith("c:")
    assert outcomes == ["counted", "replay"]


def test_a_browser_with_a_valid_cookie_or_an_account_gets_none(
    app: Flask, visitor: FlaskClient, track: Track
) -> None:
    visitor.set_cookie(LISTENER_COOKIE, new_cookie(app.config))
    cookies = visitor.get(f"/releases/{track.release_id}").headers.getlist("Set-Cookie")
    assert not [c for c in cookies if c.startswith(f"{LISTENER_COOKIE}=")]
