"""PostgreSQL: closes and plays racing each other are serialised by the period's row lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.ledger.models import LedgerTransaction
from app.ledger.verify import verify
from app.plays.models import Play, PlayOutcome
from app.pools import service
from app.pools.models import Period, PeriodAllocation, PeriodStatus
from app.pools.periods import landing_period
from tests.functional.pools.conftest import AFTER_NOVEMBER, IN_NOVEMBER, NOVEMBER

pytestmark = pytest.mark.postgres

THREADS = 6


def run_together(app: Flask, works: list[Callable[[], Any]]) -> list[Any]:
    """Run each of ``works`` on its own thread, app context and session, all at once."""
    barrier = threading.Barrier(len(works))
    results: list[Any] = []

    def one(work: Callable[[], Any]) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results.append(work())
                db.session.commit()
            except Exception as exc:  # noqa: BLE001 - reported to the test as a result
                db.session.rollback()
                results.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_parallel_closes_post_one_transaction_and_one_allocation(app, three_listeners):
    def close() -> int | None:
        return service.close_period(
            db.session, app.config, NOVEMBER, revenue_minor=10_000, now=AFTER_NOVEMBER
        ).ledger_transaction_id

    results = run_together(app, [close] * THREADS)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len(set(results)) == 1
    assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
    assert db.session.scalar(select(func.count()).select_from(PeriodAllocation)) == 3
    assert db.session.scalar(select(func.sum(PeriodAllocation.amount_minor))) == 9000
    assert verify(db.session) == []


def test_plays_landing_during_a_close_go_before_it_or_to_the_next_period(
    app, three_listeners, listening
):
    track_id, listener_id = three_listeners["C"].id, listening.listener("U3")
    db.session.commit()

    def land() -> str:
        period = landing_period(db.session, app.config, IN_NOVEMBER)
        db.session.add(
            Play(
                track_id=track_id, listener_id=listener_id, threshold_ms=30_000,
                outcome=PlayOutcome.COUNTED, counted_at=IN_NOVEMBER, earns=True,
                period_id=period.id,
            )  # fmt: skip
        )
        return period.key

    def close() -> str:
        service.close_period(db.session, app.config, NOVEMBER, revenue_minor=0, now=AFTER_NOVEMBER)
        return "closed"

    results = run_together(app, [land] * (THREADS - 1) + [close])

    assert [r for r in results if isinstance(r, Exception)] == []
    in_november = results.count(NOVEMBER)
    assert in_november + results.count("2026-12") == THREADS - 1
    november = db.session.scalars(select(Period).where(Period.key == NOVEMBER)).one()
    assert november.status is PeriodStatus.CLOSED
    # Every play that landed in November before the close is in its allocation; none after.
    assert november.earning_plays == 21 + in_november
    allocated = db.session.scalar(
        select(func.sum(PeriodAllocation.plays)).where(PeriodAllocation.period_id == november.id)
    )
    assert allocated == 21 + in_november
