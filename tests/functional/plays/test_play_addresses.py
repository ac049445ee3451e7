"""Anonymous plays answer to their address too: a fresh cookie for every play (or a new user
agent) does not escape the dedupe window or a daily cap, because every anonymous listener at
one IP address shares the day's address listener. Other addresses, and signed-in listeners at
the same address, are not held by it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.accounts.service import issue_token
from app.catalog.models import Track
from app.extensions import db
from app.plays import service
from app.plays.listeners import LISTENER_COOKIE, Identity, new_cookie
from app.plays.models import Listener, Play, PlayOutcome
from tests.factories import UserFactory

PLAYS = "/api/v1/plays"
ADDRESS = "203.0.113.50"
OTHER_ADDRESS = "203.0.113.51"
START = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
WINDOW = 3600
ATTEMPTS = 60


def later(seconds: float, start: datetime = START) -> datetime:
    return start + timedelta(seconds=seconds)


def fresh_browser(app: Flask, number: int, address: str = ADDRESS) -> FlaskClient:
    """A browser at ``address`` with a new valid cookie and a user agent of its own."""
    browser = app.test_client()
    browser.environ_base.update({"REMOTE_ADDR": address, "HTTP_USER_AGENT": f"Player/{number}"})
    browser.set_cookie(LISTENER_COOKIE, new_cookie(app.config))
    return browser


def play_over_http(browser: FlaskClient, track: Track, age_play: Any, **headers: str) -> str:
    """Start a play of ``track``, let 31 s pass, send the heartbeat: the outcome it answers."""
    started = browser.post(PLAYS, json={"track_id": track.id}, headers=headers)
    assert started.status_code == 201, started.json
    age_play(started.json["id"], 31)
    beat = browser.post(
        f"{PLAYS}/{started.json['id']}/heartbeat", json={"position_seconds": 31}, headers=headers
    )
    assert beat.status_code == 200, beat.json
    return beat.json["outcome"]


def listen(
    app: Flask, track: Track, who: Identity, at: datetime = START, **settings: Any
) -> PlayOutcome | None:
    """A play started at ``at`` and heard 30 s later: what counting decided."""
    config = {**app.config, **settings}
    play = service.start_play(db.session, config, track=track, identity=who, viewer=None, now=at)
    db.session.commit()
    heard = service.heartbeat(
        db.session, config, token=play.token, position_ms=30_000, now=later(30, at)
    )
    db.session.commit()
    return heard.outcome


@pytest.fixture
def track(make_track: Callable[..., Track]) -> Track:
    return make_track()


@pytest.fixture
def new_cookie_at(listener: Callable[..., Identity]) -> Callable[..., Identity]:
    """A new anonymous listener (a fresh signed cookie) at ``address`` on ``at``'s day."""

    def identify(address: str = ADDRESS, at: datetime = START) -> Identity:
        return listener(address=address, fresh_cookie=True, now=at)

    return identify


def test_fresh_cookies_from_one_address_count_one_play_of_a_track_per_window(
    app: Flask, track: Track, age_play: Any
) -> None:
    outcomes = Counter(
        play_over_http(fresh_browser(app, n), track, age_play) for n in range(ATTEMPTS)
    )
    assert outcomes == Counter({"counted": 1, "replay": ATTEMPTS - 1})
    assert service.counted_plays(db.session, [track.id]) == {track.id: 1}
    # Every play names a listener of its own and the one address listener they share.
    plays = db.session.query(Play).all()
    assert len({play.listener_id for play in plays}) == ATTEMPTS
    (address_id,) = {play.address_listener_id for play in plays}
    assert db.session.get(Listener, address_id).key.startswith("a:")

    # Another address is another household: it counts.
    assert play_over_http(fresh_browser(app, 0, OTHER_ADDRESS), track, age_play) == "counted"


def test_fresh_cookies_from_one_address_share_the_address_daily_cap(
    make_app: Any, make_track: Callable[..., Track], age_play: Any
) -> None:
    app = make_app(PLAY_ADDRESS_DAILY_CAP=5)
    with app.app_context():
        tracks = [make_track() for _ in range(ATTEMPTS)]
        outcomes = Counter(
            play_over_http(fresh_browser(app, n), t, age_play) for n, t in enumerate(tracks)
        )
        assert outcomes == Counter({"counted": 5, "capped": ATTEMPTS - 5})
        assert sum(service.counted_plays(db.session, [t.id for t in tracks]).values()) == 5

        elsewhere = fresh_browser(app, 0, OTHER_ADDRESS)
        assert play_over_http(elsewhere, tracks[-1], age_play) == "counted"


def test_a_signed_in_listener_at_the_address_keeps_their_account_limits_only(
    make_app: Any, make_track: Callable[..., Track], age_play: Any
) -> None:
    app = make_app(PLAY_ADDRESS_DAILY_CAP=1)
    with app.app_context():
        played, other = make_track(), make_track()
        assert play_over_http(fresh_browser(app, 1), played, age_play) == "counted"
        assert play_over_http(fresh_browser(app, 2), other, age_play) == "capped"

        fan = UserFactory()
        browser = fresh_browser(app, 3)
        _, secret = issue_token(db.session, fan, "tests")
        db.session.commit()
        bearer = {"Authorization": f"Bearer {secret}"}
        # The track the address counted, and more than the address cap: all the account's.
        assert play_over_http(browser, played, age_play, **bearer) == "counted"
        assert play_over_http(browser, other, age_play, **bearer) == "counted"
        signed_in = db.session.query(Play).filter_by(user_id=fan.id).all()
        assert [play.address_listener_id for play in signed_in] == [None, None]
        # Nor do the account's plays count against the address.
        assert play_over_http(fresh_browser(app, 4), other, age_play) == "capped"


def test_the_address_window_is_per_track_and_ends(
    app: Flask, track: Track, make_track: Callable[..., Track], new_cookie_at: Any
) -> None:
    assert listen(app, track, new_cookie_at()) is PlayOutcome.COUNTED
    # Counted at START + 30 s: due 1 s inside the window, then exactly at its end.
    assert listen(app, track, new_cookie_at(), later(WINDOW - 31)) is PlayOutcome.REPLAY
    assert listen(app, make_track(), new_cookie_at(), later(60)) is PlayOutcome.COUNTED
    assert listen(app, track, new_cookie_at(), later(WINDOW)) is PlayOutcome.COUNTED


def test_the_address_cap_is_per_utc_day(
    app: Flask, make_track: Callable[..., Track], new_cookie_at: Any
) -> None:
    evening = datetime(2026, 11, 10, 23, 0, tzinfo=UTC)
    outcomes = [
        listen(app, make_track(), new_cookie_at(at=later(60 * n, evening)),
               later(60 * n, evening), PLAY_ADDRESS_DAILY_CAP=2)
        for n in range(3)
    ]  # fmt: skip
    assert outcomes == [PlayOutcome.COUNTED] * 2 + [PlayOutcome.CAPPED]
    morning = datetime(2026, 11, 11, 0, 0, 1, tzinfo=UTC)
    tomorrow = new_cookie_at(at=morning)
    assert listen(app, make_track(), tomorrow, morning, PLAY_ADDRESS_DAILY_CAP=2) is (
        PlayOutcome.COUNTED
    )


def test_the_listeners_own_limits_still_hold_under_a_larger_address_cap(
    app: Flask, make_track: Callable[..., Track], new_cookie_at: Any
) -> None:
    who = new_cookie_at()
    outcomes = [
        listen(app, make_track(), who, later(60 * n), PLAY_DAILY_CAP=2) for n in range(3)
    ]
    assert outcomes == [PlayOutcome.COUNTED] * 2 + [PlayOutcome.CAPPED]
    # The address is not capped by that: another cookie there counts.
    assert listen(app, make_track(), new_cookie_at(), later(600), PLAY_DAILY_CAP=2) is (
        PlayOutcome.COUNTED
    )


def test_a_signed_in_play_records_no_address(
    app: Flask, track: Track, listener: Callable[..., Identity], new_cookie_at: Any
) -> None:
    fan = UserFactory()
    play = service.start_play(
        db.session, app.config, track=track, identity=listener(fan, ADDRESS), viewer=fan
    )
    anonymous = service.start_play(
        db.session, app.config, track=track, identity=new_cookie_at(), viewer=None
    )
    db.session.commit()
    assert play.address_listener_id is None
    assert db.session.get(Listener, anonymous.address_listener_id).key.startswith("a:")
