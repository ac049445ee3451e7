"""Impressions: billable, so recorded only for a live play of the same listener, once per play,
under the frequency cap per listener and (anonymously) per address; in the period they land in,
with the campaign's CPM; and a period's revenue from them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.ads import service
from app.ads.models import Campaign, Impression
from app.catalog.models import Track
from app.extensions import db
from app.plays.listeners import LISTENER_COOKIE, new_cookie, read_cookie
from app.plays.models import Listener, Play
from app.pools.models import Period, PeriodListener, PeriodStatus
from app.pools.periods import ensure_period, recount_landed
from app.pools.service import kept_totals
from tests.conftest import TEST_PASSWORD
from tests.factories import TrackFactory, UserFactory

CAP = 3
WINDOW = 3600
TTL = 6 * 3600
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
IMPRESSIONS = "/api/v1/ads/impressions"
ADDRESS = "198.51.100.7"


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(
        AD_FREQUENCY_CAP=CAP, AD_FREQUENCY_WINDOW_SECONDS=WINDOW, PLAY_SESSION_TTL_SECONDS=TTL
    )
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def track(app: Flask) -> Track:
    return TrackFactory()


def new_listener(session: Any, key: str = "c:listener") -> int:
    listener = Listener(key=key)
    session.add(listener)
    session.commit()
    return listener.id


def new_play(session: Any, listener_id: int, track: Track, started_at: datetime = NOW) -> str:
    play = Play(track_id=track.id, listener_id=listener_id, threshold_ms=30_000,
                started_at=started_at)  # fmt: skip
    session.add(play)
    session.commit()
    return play.token


def paid_campaign(session: Any, cpm_minor: int = 2500, currency: str = "USD") -> Campaign:
    made = Campaign(name="Paid", link_url="https://paid.example/", weight=1, cpm_minor=cpm_minor,
                    currency=currency)  # fmt: skip
    session.add(made)
    session.commit()
    return made


def record(
    app: Flask, session: Any, listener_id: int, at: datetime = NOW, **kwargs: Any
) -> Impression | None:
    ad = service.choose_ad(session, today=at.date())
    made = service.record_impression(
        session, app.config, listener_id=listener_id, ad=ad, now=at, **kwargs
    )
    session.commit()
    return made


def show(app: Flask, session: Any, listener_id: int, track: Track, at: datetime = NOW,
         **kwargs: Any) -> Impression | None:  # fmt: skip
    """An impression during a new play of the listener's, started just before ``at``."""
    token = new_play(session, listener_id, track, at - timedelta(seconds=1))
    return record(app, session, listener_id, at, play_token=token, **kwargs)


def impressions(session: Any, **where: Any) -> int:
    query = select(func.count()).select_from(Impression).filter_by(**where)
    return session.scalar(query)


# Which plays may be billed -----------------------------------------------------------------


def test_an_impression_needs_a_play(app, session):
    listener = new_listener(session)
    assert record(app, session, listener, play_token=None) is None
    assert record(app, session, listener, play_token="") is None
    assert record(app, session, listener, play_token="no-such-play") is None
    assert impressions(session) == 0


def test_only_the_listeners_own_play_is_billed(app, session, track):
    listener, other = new_listener(session, "c:me"), new_listener(session, "c:other")
    mine, theirs = new_play(session, listener, track), new_play(session, other, track)
    assert record(app, session, listener, play_token=theirs) is None
    made = record(app, session, listener, play_token=mine)
    assert (made.play_id, made.listener_id) == (session.scalar(select(Play.id).filter_by(
        token=mine)), listener)  # fmt: skip
    assert impressions(session) == 1


def test_a_play_has_one_impression(app, session, track):
    listener = new_listener(session)
    token = new_play(session, listener, track)
    assert record(app, session, listener, play_token=token) is not None
    assert record(app, session, listener, NOW + timedelta(seconds=5), play_token=token) is None
    assert impressions(session) == 1


def test_a_play_older_than_its_session_is_not_billed(app, session, track):
    listener = new_listener(session)
    expired = new_play(session, listener, track, NOW - timedelta(seconds=TTL + 1))
    last_moment = new_play(session, listener, track, NOW - timedelta(seconds=TTL))
    assert record(app, session, listener, play_token=expired) is None
    assert record(app, session, listener, play_token=last_moment) is not None
    assert impressions(session) == 1


# The frequency cap --------------------------------------------------------------------------


def test_the_cap_records_exactly_n_impressions_then_none(app, session, track):
    listener = new_listener(session)
    results = [
        show(app, session, listener, track, NOW + timedelta(seconds=i)) for i in range(CAP + 2)
    ]
    assert [made is not None for made in results] == [True] * CAP + [False, False]
    assert impressions(session, listener_id=listener) == CAP


def test_the_window_slides(app, session, track):
    listener = new_listener(session)
    for i in range(CAP):
        assert show(app, session, listener, track, NOW + timedelta(seconds=i)) is not None
    # Exactly one window after the first impression, it no longer counts: one more fits.
    assert show(app, session, listener, track, NOW + timedelta(seconds=WINDOW - 1)) is None
    assert show(app, session, listener, track, NOW + timedelta(seconds=WINDOW)) is not None
    assert show(app, session, listener, track, NOW + timedelta(seconds=WINDOW)) is None
    assert impressions(session, listener_id=listener) == CAP + 1


def test_the_cap_is_per_listener(app, session, track):
    first, second = new_listener(session, "c:first"), new_listener(session, "c:second")
    for _ in range(CAP):
        show(app, session, first, track)
    assert show(app, session, first, track) is None
    assert show(app, session, second, track) is not None


def test_anonymous_listeners_share_their_addresss_cap(app, session, track):
    address = new_listener(session, "a:2026-11-20:address")
    elsewhere = new_listener(session, "a:2026-11-20:elsewhere")
    cookies = [new_listener(session, f"c:cookie-{i}") for i in range(CAP + 3)]
    results = [show(app, session, cookie, track, address_listener_id=address) for cookie in cookies]
    assert [made is not None for made in results] == [True] * CAP + [False] * 3
    assert impressions(session, address_listener_id=address) == CAP
    # Another address has a cap of its own, as has a signed-in listener (no address).
    assert show(app, session, cookies[-1], track, address_listener_id=elsewhere) is not None
    assert show(app, session, new_listener(session, "u:1"), track) is not None


# What an impression holds -------------------------------------------------------------------


def test_an_impression_snapshots_the_campaign_and_its_period(app, session, track):
    campaign = paid_campaign(session, cpm_minor=2500)
    listener = new_listener(session)
    made = show(app, session, listener, track)
    campaign.cpm_minor = 9999  # a later change leaves recorded impressions alone
    session.commit()
    session.refresh(made)
    period = session.get(Period, made.period_id)
    assert (made.campaign_id, made.cpm_minor, made.currency) == (campaign.id, 2500, "USD")
    assert (period.key, made.shown_at) == ("2026-11", NOW)
    assert made.address_listener_id is None


def test_an_impression_after_the_close_lands_in_the_next_open_period(app, session, track):
    november = ensure_period(session, app.config, "2026-11")
    november.status = PeriodStatus.CLOSED
    session.commit()
    made = show(app, session, new_listener(session), track)
    assert session.get(Period, made.period_id).key == "2026-12"


def test_the_built_in_ad_is_recorded_without_a_campaign_and_earns_nothing(app, session, track):
    made = show(app, session, new_listener(session), track)
    assert (made.campaign_id, made.cpm_minor, made.currency) == (None, 0, "USD")


def test_a_campaign_in_another_currency_earns_nothing_in_this_period(app, session, track):
    paid_campaign(session, cpm_minor=2500, currency="EUR")
    made = show(app, session, new_listener(session), track)
    assert (made.cpm_minor, made.currency) == (0, "USD")


# Revenue ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpms", "revenue"),
    [([2500, 2500, 2500], 7), ([999], 0), ([1000], 1), ([1999, 1], 2), ([], 0), ([0, 0], 0)],
)
def test_impression_revenue_is_the_floor_of_the_cpms_over_a_thousand(app, session, cpms, revenue):
    period = ensure_period(session, app.config, "2026-11")
    elsewhere = ensure_period(session, app.config, "2026-10")
    listener = new_listener(session)
    for period_id, cpm in [(period.id, cpm) for cpm in cpms] + [(elsewhere.id, 5000)]:
        session.add(
            Impression(listener_id=listener, period_id=period_id, cpm_minor=cpm, currency="USD")
        )
    session.commit()
    assert service.impression_revenue_minor(session, period.id) == revenue


def test_revenue_adds_up_over_many_impressions_exactly(app, session):
    period = ensure_period(session, app.config, "2026-11")
    listener = new_listener(session)
    session.add_all(
        Impression(listener_id=listener, period_id=period.id, cpm_minor=1234, currency="USD")
        for _ in range(1001)
    )
    session.commit()
    assert service.impression_revenue_minor(session, period.id) == 1234 * 1001 // 1000


def test_the_listeners_counters_hold_the_revenue_of_what_landed(app, session, track):
    """The close reads the revenue from the counters: each recorded impression adds its CPM
    (nothing for a campaign in another currency), and counting afresh gives the same."""
    someone, other = new_listener(session, "c:someone"), new_listener(session, "c:other")
    paid_campaign(session, cpm_minor=1999)
    for listener, minutes in [(someone, 0), (someone, 1), (other, 2)]:
        assert show(app, session, listener, track, NOW + timedelta(minutes=minutes)) is not None
    session.execute(Campaign.__table__.delete())
    paid_campaign(session, cpm_minor=5000, currency="EUR")
    assert show(app, session, other, track, NOW + timedelta(minutes=3)) is not None
    period_id = session.scalar(select(Period.id))

    kept = select(PeriodListener.listener_id, PeriodListener.impressions,
                  PeriodListener.impression_cpm_minor).order_by(PeriodListener.listener_id)  # fmt: skip
    assert session.execute(kept).all() == [(someone, 2, 3998), (other, 2, 1999)]
    totals = kept_totals(session, period_id)
    assert (totals.impressions, totals.revenue_minor) == (4, 5) == (
        service.impression_totals(session, period_id)
    )
    recount_landed(session, period_id)
    assert session.execute(kept).all() == [(someone, 2, 3998), (other, 2, 1999)]


# The API --------------------------------------------------------------------------------------


def browser(app: Flask, address: str = ADDRESS, cookie: bool = True) -> FlaskClient:
    """An anonymous browser with a cookie jar at ``address``: with a fresh listener cookie, as
    the release page gives it, unless ``cookie`` is False."""
    made = app.test_client()
    made.environ_base.update({"REMOTE_ADDR": address, "HTTP_USER_AGENT": "Test Browser/1.0"})
    if cookie:
        made.set_cookie(LISTENER_COOKIE, new_cookie(app.config))
    return made


def start_play(client: FlaskClient, track: Track) -> str:
    response = client.post("/api/v1/plays", json={"track_id": track.id})
    assert response.status_code == 201, response.json
    return response.json["id"]


def test_a_signed_in_listener_gets_an_ad_and_an_impression_for_their_play(
    client, auth, session, playable_track
):
    campaign = paid_campaign(session)
    user = UserFactory()
    auth.login(user.email)
    token = start_play(client, playable_track)
    response = client.post(IMPRESSIONS, json={"play_id": token})
    assert response.status_code == 201
    assert response.json == {
        "ad": {"id": campaign.id, "name": "Paid", "image_url": None,
               "link_url": "https://paid.example/", "house": False},
        "recorded": True,
    }  # fmt: skip
    listener = session.scalar(select(Listener).where(Listener.key == f"u:{user.id}"))
    play = session.scalar(select(Play).filter_by(token=token))
    made = session.scalars(select(Impression)).one()
    assert (made.listener_id, made.play_id, made.campaign_id) == (listener.id, play.id, campaign.id)
    assert made.address_listener_id is None
    # The same play again: the ad shows, nothing more is billed.
    again = client.post(IMPRESSIONS, json={"play_id": token})
    assert (again.status_code, again.json["recorded"]) == (201, False)
    assert impressions(session) == 1


def test_without_a_play_the_ad_shows_and_nothing_is_recorded(client, auth, session):
    campaign = paid_campaign(session)
    auth.login(UserFactory().email)
    for body in ({"play_id": None}, {}, {"play_id": "AAAAAAAAAAAAAAAAAAAAAAAA"}):
        response = client.post(IMPRESSIONS, json=body)
        assert response.status_code == 201
        assert response.json["recorded"] is False
        assert response.json["ad"]["id"] == campaign.id
    assert impressions(session) == 0


def test_fresh_cookies_and_made_up_plays_bill_nothing(app, session):
    paid_campaign(session)
    for i in range(60):
        reply = browser(app).post(IMPRESSIONS, json={"play_id": f"made-up-play-{i}"})
        assert (reply.status_code, reply.json["recorded"]) == (201, False)
    assert impressions(session) == 0


def test_another_browsers_play_bills_nothing(app, session, playable_track):
    theirs = start_play(browser(app, "192.0.2.1"), playable_track)
    reply = browser(app).post(IMPRESSIONS, json={"play_id": theirs})
    assert reply.json["recorded"] is False
    assert impressions(session) == 0


def test_fresh_cookies_with_real_plays_share_the_addresss_cap(app, session, playable_track):
    paid_campaign(session)
    recorded = []
    for _ in range(CAP + 5):
        visitor = browser(app)
        token = start_play(visitor, playable_track)
        recorded.append(visitor.post(IMPRESSIONS, json={"play_id": token}).json["recorded"])
    assert recorded == [True] * CAP + [False] * 5
    assert impressions(session) == CAP
    address_ids = session.scalars(select(Impression.address_listener_id).distinct()).all()
    assert len(address_ids) == 1
    assert session.get(Listener, address_ids[0]).key.startswith("a:")
    # Another address, or a signed-in listener at this one, is not held back by it.
    elsewhere = browser(app, "192.0.2.50")
    token = start_play(elsewhere, playable_track)
    assert elsewhere.post(IMPRESSIONS, json={"play_id": token}).json["recorded"] is True
    member = browser(app, cookie=False)
    user = UserFactory()
    member.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    token = start_play(member, playable_track)
    assert member.post(IMPRESSIONS, json={"play_id": token}).json["recorded"] is True
    assert impressions(session) == CAP + 2


def test_an_anonymous_listener_gets_an_ad_and_a_cookie(app, session, playable_track):
    visitor = browser(app, cookie=False)
    response = visitor.post(IMPRESSIONS, json={"play_id": None})
    assert response.status_code == 201
    assert response.json["recorded"] is False
    cookie = visitor.get_cookie(LISTENER_COOKIE)
    assert cookie is not None and read_cookie(app.config, cookie.value)
    # With that cookie, its plays are its own and are billed.
    token = start_play(visitor, playable_track)
    assert visitor.post(IMPRESSIONS, json={"play_id": token}).json["recorded"] is True
    assert impressions(session) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [({"play_id": 5}, 422), ({"play_id": "x" * 65}, 422), ({"other": 1}, 422), ([], 400),
     ("text", 400)],
)  # fmt: skip
def test_a_bad_body_is_refused(client, auth, session, body, status):
    auth.login(UserFactory().email)
    assert client.post(IMPRESSIONS, json=body).status_code == status
    assert impressions(session) == 0


# Parallel requests --------------------------------------------------------------------------


def _in_parallel(app: Flask, jobs: list[Any]) -> list[Any]:
    """Run each job (a callable) in a thread of its own, all released at once."""
    start = threading.Barrier(len(jobs))
    results: list[Any] = []
    failures: list[BaseException] = []

    def run(job: Any) -> None:
        with app.app_context():
            try:
                start.wait(timeout=30)
                results.append(job())
            except BaseException as exc:  # reported below, with the test's failure
                failures.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    return results


@pytest.mark.postgres
def test_parallel_impressions_of_one_listener_never_pass_the_cap(app, session, track):
    listener = new_listener(session)
    paid_campaign(session)
    tokens = [new_play(session, listener, track) for _ in range(16)]
    outcomes = _in_parallel(app, [
        lambda token=token: record(app, db.session, listener, play_token=token) is not None
        for token in tokens
    ])  # fmt: skip
    assert sorted(outcomes) == [False] * (16 - CAP) + [True] * CAP
    assert impressions(session, listener_id=listener) == CAP
    kept = session.scalars(select(PeriodListener.impressions).filter_by(listener_id=listener))
    assert kept.all() == [CAP]


@pytest.mark.postgres
def test_parallel_requests_naming_one_play_record_one_impression(app, session, track):
    listener = new_listener(session)
    token = new_play(session, listener, track)
    outcomes = _in_parallel(app, [
        lambda: record(app, db.session, listener, play_token=token) is not None
        for _ in range(12)
    ])  # fmt: skip
    assert sorted(outcomes) == [False] * 11 + [True]
    assert impressions(session) == 1


@pytest.mark.postgres
def test_parallel_fresh_cookies_from_one_address_never_pass_the_cap(app, session, playable_track):
    paid_campaign(session)
    visitors = [browser(app) for _ in range(40)]
    plays = [(visitor, start_play(visitor, playable_track)) for visitor in visitors]
    replies = _in_parallel(app, [
        lambda visitor=visitor, token=token: visitor.post(IMPRESSIONS, json={"play_id": token})
        for visitor, token in plays
    ])  # fmt: skip
    assert [reply.status_code for reply in replies] == [201] * 40
    assert sum(reply.json["recorded"] for reply in replies) == CAP
    assert impressions(session) == CAP
