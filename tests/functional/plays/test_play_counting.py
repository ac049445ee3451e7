"""Counting free plays: the server's clock, the dedupe window, the daily cap, owned tracks, the
artist's own plays, and the period a counted play lands in. Driven through the service with
explicit times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.catalog.models import Track
from app.extensions import db
from app.plays import service
from app.plays.errors import PlayExpired, PlayNotFound, TrackHasNoAudio
from app.plays.listeners import Identity
from app.plays.models import Play, PlayOutcome, TrackPlayDay
from app.pools.models import Period, PeriodListener, PeriodStatus
from tests.factories import TrackFactory, UserFactory

START = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def later(seconds: float, start: datetime = START) -> datetime:
    return start + timedelta(seconds=seconds)


def config(app: Flask, **overrides: Any) -> dict[str, Any]:
    return {**app.config, **overrides}


def start(
    app: Flask,
    track: Track,
    who: Identity,
    at: datetime = START,
    viewer: Any = None,
    **settings: Any,
) -> Play:
    play = service.start_play(
        db.session, config(app, **settings), track=track, identity=who, viewer=viewer, now=at
    )
    db.session.commit()
    return play


def beat(app: Flask, play: Play, at: datetime, position_ms: int = 0, **settings: Any) -> Play:
    beaten = service.heartbeat(
        db.session, config(app, **settings), token=play.token, position_ms=position_ms, now=at
    )
    db.session.commit()
    return beaten


def listen(app: Flask, track: Track, who: Identity, at: datetime, **settings: Any) -> Play:
    """A play started at ``at`` and heard for 30 s: what counting decided."""
    play = start(app, track, who, at, **settings)
    return beat(app, play, later(30, at), **settings)


@pytest.fixture
def track(make_track: Callable[..., Track]) -> Track:
    return make_track(duration_ms=200_000)


@pytest.fixture
def someone(listener: Callable[..., Identity]) -> Identity:
    return listener()


def test_29_seconds_do_not_count_and_30_do(app: Flask, track: Track, someone: Identity) -> None:
    play = start(app, track, someone)
    assert play.threshold_ms == 30_000

    early = beat(app, play, later(29.999), position_ms=29_999)
    assert (early.outcome, early.counted_at, early.period_id) == (None, None, None)
    assert service.counted_plays(db.session, [track.id]) == {track.id: 0}

    due = beat(app, play, later(30), position_ms=30_000)
    assert due.outcome is PlayOutcome.COUNTED
    assert due.counted_at == later(30) and due.earns is True
    assert db.session.get(Period, due.period_id).key == "2026-11"
    assert service.counted_plays(db.session, [track.id]) == {track.id: 1}


def test_a_track_shorter_than_the_setting_counts_after_its_whole_length(
    app: Flask, make_track: Callable[..., Track], someone: Identity
) -> None:
    short = make_track(duration_ms=12_500)
    play = start(app, short, someone)
    assert play.threshold_ms == 12_500
    assert beat(app, play, later(12.499)).outcome is None
    assert beat(app, play, later(12.5)).outcome is PlayOutcome.COUNTED


def test_a_track_of_unknown_length_takes_the_setting(
    app: Flask, make_track: Callable[..., Track], someone: Identity
) -> None:
    play = start(app, make_track(duration_ms=None), someone, PLAY_COUNT_SECONDS=45.5)
    assert play.threshold_ms == 45_500


def test_a_forged_position_far_ahead_does_not_count_early(
    app: Flask, track: Track, someone: Identity
) -> None:
    play = start(app, track, someone)
    forged = beat(app, play, later(1), position_ms=10 * 60_000)
    assert forged.outcome is None and forged.counted_at is None
    # The position is kept (within the track) but never believed.
    assert forged.reported_position_ms == 200_000
    assert forged.last_heartbeat_at == later(1)
    assert beat(app, play, later(29), position_ms=10 * 60_000).outcome is None
    assert beat(app, play, later(30), position_ms=0).outcome is PlayOutcome.COUNTED


def test_a_negative_position_is_kept_as_zero(app: Flask, track: Track, someone: Identity) -> None:
    play = start(app, track, someone)
    assert beat(app, play, later(2), position_ms=-5_000).reported_position_ms == 0


def test_a_play_is_decided_once_and_later_heartbeats_change_nothing(
    app: Flask, track: Track, someone: Identity
) -> None:
    play = start(app, track, someone)
    beat(app, play, later(31))
    again = beat(app, play, later(95), position_ms=95_000)
    assert (again.outcome, again.counted_at) == (PlayOutcome.COUNTED, later(31))
    assert again.reported_position_ms == 95_000
    assert service.counted_plays(db.session, [track.id]) == {track.id: 1}


def test_a_replay_inside_the_window_does_not_count_and_after_it_does(
    app: Flask, track: Track, make_track: Callable[..., Track], someone: Identity
) -> None:
    window = 3600
    first = listen(app, track, someone, START)
    assert first.outcome is PlayOutcome.COUNTED  # counted at START + 30 s

    replay = listen(app, track, someone, later(window - 31))  # due 1 s inside the window
    assert (replay.outcome, replay.counted_at, replay.earns) == (PlayOutcome.REPLAY, None, False)
    # The window is per track: another track counts at once.
    assert listen(app, make_track(), someone, later(60)).outcome is PlayOutcome.COUNTED

    after = listen(app, track, someone, later(window))  # due exactly one window later
    assert after.outcome is PlayOutcome.COUNTED
    assert service.counted_plays(db.session, [track.id]) == {track.id: 2}


def test_the_window_is_per_listener(
    app: Flask, track: Track, listener: Callable[..., Identity]
) -> None:
    one, other = listener(address="198.51.100.1"), listener(address="198.51.100.2")
    assert listen(app, track, one, START).outcome is PlayOutcome.COUNTED
    assert listen(app, track, other, later(5)).outcome is PlayOutcome.COUNTED


def test_the_daily_cap_holds_and_the_next_utc_day_counts_again(
    app: Flask, make_track: Callable[..., Track], someone: Identity
) -> None:
    tracks = [make_track() for _ in range(5)]
    late_evening = datetime(2026, 11, 10, 23, 50, tzinfo=UTC)
    outcomes = [
        listen(app, t, someone, later(60 * i, late_evening), PLAY_DAILY_CAP=3).outcome
        for i, t in enumerate(tracks[:4])
    ]
    assert outcomes == [PlayOutcome.COUNTED] * 3 + [PlayOutcome.CAPPED]

    next_day = datetime(2026, 11, 11, 0, 0, 1, tzinfo=UTC)
    tomorrow = listen(app, tracks[4], someone, next_day, PLAY_DAILY_CAP=3)
    assert tomorrow.outcome is PlayOutcome.COUNTED
    capped = db.session.query(Play).filter_by(outcome=PlayOutcome.CAPPED).one()
    assert (capped.counted_at, capped.period_id, capped.earns) == (None, None, False)
    assert sum(service.counted_plays(db.session, [t.id for t in tracks]).values()) == 4


def test_the_cap_counts_owned_plays_too(
    app: Flask, make_track: Callable[..., Track], listener: Callable[..., Identity], buy: Any
) -> None:
    fan = UserFactory()
    owned = make_track()
    buy(fan, owned.release)
    who = listener(fan)
    assert listen(app, owned, who, START, PLAY_DAILY_CAP=1).earns is False
    assert listen(app, make_track(), who, later(60), PLAY_DAILY_CAP=1).outcome is PlayOutcome.CAPPED


def test_an_owned_track_counts_without_earning(
    app: Flask, make_track: Callable[..., Track], listener: Callable[..., Identity], buy: Any
) -> None:
    fan = UserFactory()
    bought_release = make_track()
    single = make_track()
    bought_single = make_track(release=single.release)
    unpaid = make_track()
    not_bought = make_track()
    buy(fan, bought_release.release)
    buy(fan, single.release, track=bought_single)
    buy(fan, unpaid.release, paid=False)
    who = listener(fan)

    earns = {
        name: listen(app, t, who, later(60 * i))
        for i, (name, t) in enumerate(
            [("release", bought_release), ("single", bought_single), ("other track", single),
             ("unpaid", unpaid), ("not bought", not_bought)]
        )
    }  # fmt: skip
    assert {name: (p.outcome, p.earns) for name, p in earns.items()} == {
        "release": (PlayOutcome.COUNTED, False),
        "single": (PlayOutcome.COUNTED, False),
        "other track": (PlayOutcome.COUNTED, True),
        "unpaid": (PlayOutcome.COUNTED, True),
        "not bought": (PlayOutcome.COUNTED, True),
    }
    # Owned plays are counted plays: the track page shows them.
    assert service.counted_plays(db.session, [bought_release.id]) == {bought_release.id: 1}


def test_an_anonymous_listener_on_the_buyers_address_earns(
    app: Flask, track: Track, listener: Callable[..., Identity], buy: Any
) -> None:
    fan = UserFactory()
    buy(fan, track.release)
    assert listen(app, track, listener(), START).earns is True


def test_the_artists_own_plays_are_never_counted(
    app: Flask, track: Track, listener: Callable[..., Identity]
) -> None:
    artist_user = track.release.artist.owner
    play = start(app, track, listener(artist_user), viewer=artist_user)
    assert play.outcome is PlayOutcome.ARTIST

    after = beat(app, play, later(120), position_ms=120_000)
    assert (after.outcome, after.counted_at, after.earns, after.period_id) == (
        PlayOutcome.ARTIST, None, False, None,
    )  # fmt: skip
    assert service.counted_plays(db.session, [track.id]) == {track.id: 0}


def test_a_play_counted_after_its_month_closed_lands_in_the_next_period(
    app: Flask, track: Track, make_track: Callable[..., Track], someone: Identity
) -> None:
    november = listen(app, track, someone, datetime(2026, 11, 20, tzinfo=UTC))
    period = db.session.get(Period, november.period_id)
    assert period.key == "2026-11"
    period.status = PeriodStatus.CLOSED
    db.session.commit()

    late = listen(app, make_track(), someone, datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    assert late.outcome is PlayOutcome.COUNTED
    assert late.counted_at.month == 11
    assert db.session.get(Period, late.period_id).key == "2026-12"


def test_a_heartbeat_after_the_session_ttl_is_refused(
    app: Flask, track: Track, someone: Identity
) -> None:
    play = start(app, track, someone)
    ttl = app.config["PLAY_SESSION_TTL_SECONDS"]
    assert beat(app, play, later(ttl)).outcome is PlayOutcome.COUNTED  # the last moment
    with pytest.raises(PlayExpired) as expired:
        beat(app, play, later(ttl + 1))
    assert (expired.value.status, expired.value.code) == (410, "play_expired")

    never_heard = start(app, track, someone, later(10))
    with pytest.raises(PlayExpired):
        beat(app, never_heard, later(ttl + 11))
    db.session.refresh(never_heard)
    assert (never_heard.outcome, never_heard.last_heartbeat_at) == (None, None)


@pytest.mark.parametrize("token", ["no-such-play", "x" * 25, "bad token", "", "ü" * 5])
def test_an_unknown_token_names_no_play(app: Flask, token: str) -> None:
    with pytest.raises(PlayNotFound):
        service.heartbeat(db.session, app.config, token=token, position_ms=0)


def test_a_track_without_audio_cannot_be_played(app: Flask, someone: Identity) -> None:
    silent = TrackFactory()
    with pytest.raises(TrackHasNoAudio):
        service.start_play(db.session, app.config, track=silent, identity=someone, viewer=None)


def test_counted_plays_counts_each_tracks_counted_plays_in_one_answer(
    app: Flask, make_track: Callable[..., Track], listener: Callable[..., Identity]
) -> None:
    first, second, silent = make_track(), make_track(), make_track()
    for n in range(3):
        listen(app, first, listener(address=f"198.51.100.{n}"), later(n))
    who = listener(address="198.51.100.9")
    listen(app, second, who, START)
    listen(app, second, who, later(60))  # a replay
    start(app, second, who, later(120))  # never heard long enough
    assert service.counted_plays(db.session, [first.id, second.id, silent.id]) == {
        first.id: 3, second.id: 1, silent.id: 0,
    }  # fmt: skip
    assert service.counted_plays(db.session, []) == {}


def test_counted_plays_are_added_to_their_listeners_period_and_their_tracks_day(
    app: Flask, make_track: Callable[..., Track], listener: Callable[..., Identity], buy: Any
) -> None:
    fan = UserFactory()
    owned, free = make_track(), make_track()
    buy(fan, owned.release)
    who, other = listener(fan), listener(address="203.0.113.9")
    listen(app, free, who, START)
    listen(app, free, who, later(10))  # a replay: not counted
    listen(app, owned, who, later(120))  # counted, but earns nothing
    listen(app, free, other, later(60))
    third = make_track()
    listen(app, third, other, later(90))
    december = listen(app, free, who, datetime(2026, 12, 3, 9, 0, tzinfo=UTC))

    counters = db.session.execute(
        select(Period.key, PeriodListener.listener_id, PeriodListener.earning_plays)
        .join(Period, Period.id == PeriodListener.period_id)
    ).all()
    assert sorted(counters) == sorted([
        ("2026-11", who.listener_id, 1), ("2026-11", other.listener_id, 2),
        ("2026-12", who.listener_id, 1),
    ])  # fmt: skip
    assert december.outcome is PlayOutcome.COUNTED
    # Each counted play, earning or not, is in its track's count for its UTC day.
    days = db.session.execute(select(TrackPlayDay.track_id, TrackPlayDay.day, TrackPlayDay.plays))
    assert sorted(days.all()) == sorted([
        (free.id, START.date(), 2), (owned.id, START.date(), 1), (third.id, START.date(), 1),
        (free.id, datetime(2026, 12, 3).date(), 1),
    ])  # fmt: skip
