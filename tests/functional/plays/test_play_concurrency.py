"""Heartbeats at once, on PostgreSQL: each thread a request of its own (its own app context,
session and connection), all released together by a barrier. A play is decided once, and a
listener's dedupe window and daily cap, and an address's, hold however their heartbeats
interleave."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.catalog.models import Track
from app.extensions import db
from app.plays import service
from app.plays.listeners import Identity
from app.plays.models import Play, PlayOutcome
from app.pools.models import PeriodListener
from app.timestamps import utcnow

pytestmark = pytest.mark.postgres

# Within the connection pool (5 + 10 overflow), so every request holds a connection at once.
THREADS = 12
START_TIMEOUT_SECONDS = 30
CAP = 3


def started_long_ago(app: Flask, track: Track, who: Identity) -> str:
    """A play of ``track`` by ``who`` that started 31 s ago, so its next heartbeat decides it."""
    play = service.start_play(
        db.session, app.config, track=track, identity=who, viewer=None,
        now=utcnow() - timedelta(seconds=31),
    )  # fmt: skip
    db.session.commit()
    return play.token


def heartbeats_at_once(app: Flask, tokens: list[str]) -> list[tuple[int, Any]]:
    """POST one heartbeat for each token, all at the same moment: (status, body) of each."""
    start = threading.Barrier(len(tokens))

    def send(token: str) -> tuple[int, Any]:
        client = app.test_client()
        start.wait(timeout=START_TIMEOUT_SECONDS)
        answer = client.post(f"/api/v1/plays/{token}/heartbeat", json={"position_seconds": 31})
        return answer.status_code, answer.json

    with ThreadPoolExecutor(max_workers=len(tokens)) as pool:
        return list(pool.map(send, tokens))


def outcomes() -> Counter[PlayOutcome | None]:
    db.session.expire_all()
    return Counter(play.outcome for play in db.session.query(Play))


def test_parallel_heartbeats_of_one_due_play_count_it_once(
    make_app: Any, make_track: Callable[..., Track], listener: Callable[..., Identity]
) -> None:
    app = make_app()
    with app.app_context():
        track = make_track()
        token = started_long_ago(app, track, listener())

        answers = heartbeats_at_once(app, [token] * THREADS)

        assert [status for status, _ in answers] == [200] * THREADS
        assert {(body["counted"], body["outcome"]) for _, body in answers} == {(True, "counted")}
        assert outcomes() == Counter({PlayOutcome.COUNTED: 1})
        assert service.counted_plays(db.session, [track.id]) == {track.id: 1}


def test_parallel_plays_of_one_track_by_one_listener_count_once_and_the_rest_are_replays(
    make_app: Any, make_track: Callable[..., Track], listener: Callable[..., Identity]
) -> None:
    app = make_app()
    with app.app_context():
        track = make_track()
        who = listener()
        tokens = [started_long_ago(app, track, who) for _ in range(THREADS)]

        answers = heartbeats_at_once(app, tokens)

        assert Counter(body["outcome"] for _, body in answers) == Counter(
            {"counted": 1, "replay": THREADS - 1}
        )
        assert outcomes() == Counter({PlayOutcome.COUNTED: 1, PlayOutcome.REPLAY: THREADS - 1})


def test_the_daily_cap_holds_under_parallel_plays_of_different_tracks(
    make_app: Any, make_track: Callable[..., Track], listener: Callable[..., Identity]
) -> None:
    app = make_app(PLAY_DAILY_CAP=CAP)
    with app.app_context():
        who = listener()
        tokens = [started_long_ago(app, make_track(), who) for _ in range(THREADS)]

        answers = heartbeats_at_once(app, tokens)

        assert Counter(body["outcome"] for _, body in answers) == Counter(
            {"counted": CAP, "capped": THREADS - CAP}
        )
        assert outcomes() == Counter({PlayOutcome.COUNTED: CAP, PlayOutcome.CAPPED: THREADS - CAP})
        assert db.session.scalar(select(func.sum(PeriodListener.earning_plays))) == CAP


def test_parallel_plays_of_different_listeners_all_count(
    make_app: Any, make_track: Callable[..., Track], listener: Callable[..., Identity]
) -> None:
    app = make_app()
    with app.app_context():
        track = make_track()
        listeners = [listener(address=f"198.51.100.{n}") for n in range(THREADS)]
        tokens = [started_long_ago(app, track, who) for who in listeners]

        answers = heartbeats_at_once(app, tokens)

        assert {body["outcome"] for _, body in answers} == {"counted"}
        assert service.counted_plays(db.session, [track.id]) == {track.id: THREADS}
        # Each listener's period counter took its one play.
        counters = db.session.execute(select(PeriodListener.listener_id, PeriodListener.earning_plays))
        assert dict(counters.all()) == {who.listener_id: 1 for who in listeners}


def test_parallel_plays_of_one_track_from_fresh_cookies_at_one_address_count_once(
    make_app: Any, make_track: Callable[..., Track], listener: Callable[..., Identity]
) -> None:
    app = make_app()
    with app.app_context():
        track = make_track()
        strangers = [listener(fresh_cookie=True) for _ in range(THREADS)]
        assert len({who.listener_id for who in strangers}) == THREADS
        tokens = [started_long_ago(app, track, who) for who in strangers]

        answers = heartbeats_at_once(app, tokens)

        assert Counter(body["outcome"] for _, body in answers) == Counter(
            {"counted": 1, "replay": THREADS - 1}
        )
        assert outcomes() == Counter({PlayOutcome.COUNTED: 1, PlayOutcome.REPLAY: THREADS - 1})


def test_the_address_cap_holds_under_parallel_plays_from_fresh_cookies(
    make_app: Any, make_track: Callable[..., Track], listener: Callable[..., Identity]
) -> None:
    app = make_app(PLAY_ADDRESS_DAILY_CAP=CAP)
    with app.app_context():
        tokens = [
            started_long_ago(app, make_track(), listener(fresh_cookie=True))
            for _ in range(THREADS)
        ]

        answers = heartbeats_at_once(app, tokens)

        assert Counter(body["outcome"] for _, body in answers) == Counter(
            {"counted": CAP, "capped": THREADS - CAP}
        )
        assert outcomes() == Counter({PlayOutcome.COUNTED: CAP, PlayOutcome.CAPPED: THREADS - CAP})
