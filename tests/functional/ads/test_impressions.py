"""Impressions: recorded per listener under the frequency cap, in the period they land in, with
the campaign's CPM; and a period's revenue from them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.ads import service
from app.ads.models import Campaign, Impression
from app.extensions import db
from app.plays.listeners import LISTENER_COOKIE
from app.plays.models import Listener, Play
from app.pools.models import Period, PeriodStatus
from app.pools.periods import ensure_period
from tests.factories import TrackFactory, UserFactory

CAP = 3
WINDOW = 3600
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(AD_FREQUENCY_CAP=CAP, AD_FREQUENCY_WINDOW_SECONDS=WINDOW)
    with built.app_context():
        yield built
        db.session.rollback()


def new_listener(session: Any, key: str = "c:listener") -> int:
    listener = Listener(key=key)
    session.add(listener)
    session.commit()
    return listener.id


def paid_campaign(session: Any, cpm_minor: int = 2500, currency: str = "USD") -> Campaign:
    made = Campaign(name="Paid", link_url="https://paid.example/", weight=1, cpm_minor=cpm_minor,
                    currency=currency)  # fmt: skip
    session.add(made)
    session.commit()
    return made


def record(app: Flask, session: Any, listener_id: int, at: datetime = NOW, **kwargs: Any) -> Any:
    ad = service.choose_ad(session, today=at.date())
    made = service.record_impression(
        session, app.config, listener_id=listener_id, ad=ad, now=at, **kwargs
    )
    session.commit()
    return made


def impressions(session: Any, **where: Any) -> int:
    query = select(func.count()).select_from(Impression).filter_by(**where)
    return session.scalar(query)


# The frequency cap --------------------------------------------------------------------------


def test_the_cap_records_exactly_n_impressions_then_none(app, session):
    listener = new_listener(session)
    results = [record(app, session, listener, NOW + timedelta(seconds=i)) for i in range(CAP + 2)]
    assert [made is not None for made in results] == [True] * CAP + [False, False]
    assert impressions(session, listener_id=listener) == CAP


def test_the_window_slides(app, session):
    listener = new_listener(session)
    for i in range(CAP):
        assert record(app, session, listener, NOW + timedelta(seconds=i)) is not None
    # Exactly one window after the first impression, it no longer counts: one more fits.
    assert record(app, session, listener, NOW + timedelta(seconds=WINDOW - 1)) is None
    assert record(app, session, listener, NOW + timedelta(seconds=WINDOW)) is not None
    assert record(app, session, listener, NOW + timedelta(seconds=WINDOW)) is None
    assert impressions(session, listener_id=listener) == CAP + 1


def test_the_cap_is_per_listener(app, session):
    first, second = new_listener(session, "c:first"), new_listener(session, "c:second")
    for _ in range(CAP):
        record(app, session, first)
    assert record(app, session, first) is None
    assert record(app, session, second) is not None


# What an impression holds -------------------------------------------------------------------


def test_an_impression_snapshots_the_campaign_and_its_period(app, session):
    campaign = paid_campaign(session, cpm_minor=2500)
    listener = new_listener(session)
    made = record(app, session, listener)
    campaign.cpm_minor = 9999  # a later change leaves recorded impressions alone
    session.commit()
    session.refresh(made)
    period = session.get(Period, made.period_id)
    assert (made.campaign_id, made.cpm_minor, made.currency) == (campaign.id, 2500, "USD")
    assert (period.key, made.shown_at) == ("2026-11", NOW)


def test_an_impression_after_the_close_lands_in_the_next_open_period(app, session):
    november = ensure_period(session, app.config, "2026-11")
    november.status = PeriodStatus.CLOSED
    session.commit()
    made = record(app, session, new_listener(session))
    assert session.get(Period, made.period_id).key == "2026-12"


def test_the_built_in_ad_is_recorded_without_a_campaign_and_earns_nothing(app, session):
    made = record(app, session, new_listener(session))
    assert (made.campaign_id, made.cpm_minor, made.currency) == (None, 0, "USD")


def test_a_campaign_in_another_currency_earns_nothing_in_this_period(app, session):
    paid_campaign(session, cpm_minor=2500, currency="EUR")
    made = record(app, session, new_listener(session))
    assert (made.cpm_minor, made.currency) == (0, "USD")


def test_the_play_is_linked_only_when_it_is_the_listeners(app, session):
    listener, other = new_listener(session, "c:me"), new_listener(session, "c:other")
    track = TrackFactory()
    mine = Play(track_id=track.id, listener_id=listener, threshold_ms=30_000)
    theirs = Play(track_id=track.id, listener_id=other, threshold_ms=30_000)
    session.add_all([mine, theirs])
    session.commit()
    assert record(app, session, listener, play_token=mine.token).play_id == mine.id
    assert record(app, session, listener, play_token=theirs.token).play_id is None
    assert record(app, session, listener, play_token="no-such-play").play_id is None


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


# The API --------------------------------------------------------------------------------------


def test_a_signed_in_listener_gets_an_ad_and_an_impression(client, auth, session):
    campaign = paid_campaign(session)
    user = UserFactory()
    auth.login(user.email)
    response = client.post("/api/v1/ads/impressions", json={"play_id": None})
    assert response.status_code == 201
    assert response.json == {
        "ad": {"id": campaign.id, "name": "Paid", "image_url": None,
               "link_url": "https://paid.example/", "house": False},
        "recorded": True,
    }  # fmt: skip
    listener = session.scalar(select(Listener).where(Listener.key == f"u:{user.id}"))
    assert impressions(session, listener_id=listener.id, campaign_id=campaign.id) == 1


def test_the_api_stops_recording_at_the_cap_but_still_shows_the_ad(client, auth, session):
    auth.login(UserFactory().email)
    replies = [client.post("/api/v1/ads/impressions", json={}) for _ in range(CAP + 1)]
    assert [reply.status_code for reply in replies] == [201] * (CAP + 1)
    assert [reply.json["recorded"] for reply in replies] == [True] * CAP + [False]
    assert replies[-1].json["ad"]["name"] == service.BUILT_IN_AD.name
    assert impressions(session) == CAP


def test_an_anonymous_listener_gets_an_ad_and_a_cookie(client, session):
    response = client.post("/api/v1/ads/impressions", json={"play_id": None})
    assert response.status_code == 201
    assert response.json["recorded"] is True
    assert LISTENER_COOKIE in response.headers.get("Set-Cookie", "")
    assert impressions(session) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [({"play_id": 5}, 422), ({"play_id": "x" * 65}, 422), ({"other": 1}, 422), ([], 400),
     ("text", 400)],
)  # fmt: skip
def test_a_bad_body_is_refused(client, auth, session, body, status):
    auth.login(UserFactory().email)
    assert client.post("/api/v1/ads/impressions", json=body).status_code == status
    assert impressions(session) == 0


# Parallel requests --------------------------------------------------------------------------


@pytest.mark.postgres
def test_parallel_impressions_of_one_listener_never_pass_the_cap(app, session):
    listener = new_listener(session)
    paid_campaign(session)
    workers = 16
    start = threading.Barrier(workers)
    outcomes: list[bool] = []
    failures: list[BaseException] = []

    def show() -> None:
        with app.app_context():
            try:
                start.wait(timeout=30)
                outcomes.append(record(app, db.session, listener) is not None)
            except BaseException as exc:  # reported below, with the test's failure
                failures.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=show) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(outcomes) == [False] * (workers - CAP) + [True] * CAP
    assert impressions(session, listener_id=listener) == CAP
