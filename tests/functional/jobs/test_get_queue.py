"""Which queue an app gets is a matter of configuration."""

from __future__ import annotations

from typing import Any

from app.jobs import get_queue
from app.jobs.inprocess import InProcessJobQueue
from app.jobs.rq_queue import RQJobQueue


def test_without_redis_jobs_run_in_process(make_app: Any) -> None:
    app = make_app(REDIS_URL="")

    assert isinstance(get_queue(app), InProcessJobQueue)
    assert get_queue(app) is get_queue(app)


def test_with_a_redis_url_jobs_go_to_rq(make_app: Any) -> None:
    # Building the queue does not connect, so no Redis server is needed here.
    app = make_app(REDIS_URL="redis://127.0.0.1:6379/15")

    assert isinstance(get_queue(app), RQJobQueue)
