"""Payout runs at once, on PostgreSQL: each thread a run of its own (its own app context,
session and connection), all released together by a barrier. Each balance is paid once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.ledger import service as ledger
from app.ledger.models import LedgerTransaction
from app.payouts.gateways import payout_gateway
from app.payouts.models import Payout, PayoutStatus
from app.payouts.runner import RunReport, run_payouts
from tests.functional.payouts.conftest import assert_ledger_verifies, connected, owe

pytestmark = pytest.mark.postgres

RUNS = 6
ARTISTS = 4
START_TIMEOUT_SECONDS = 30


def runs_at_once(app: Flask, count: int) -> list[RunReport]:
    start = threading.Barrier(count)

    def one_run(_: int) -> RunReport:
        with app.app_context():
            start.wait(timeout=START_TIMEOUT_SECONDS)
            try:
                return run_payouts(db.session, payout_gateway(app.config), app.config)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one_run, range(count)))


def test_parallel_runs_pay_each_balance_once(app: Flask) -> None:
    artists = [connected() for _ in range(ARTISTS)]
    for artist in artists:
        owe(artist, 10_000)
        owe(artist, 6_000, "EUR")

    reports = runs_at_once(app, RUNS)

    db.session.expire_all()
    paid = db.session.scalars(select(Payout)).all()
    assert sorted((p.artist_id, p.currency, p.amount_minor, p.status) for p in paid) == sorted(
        (a.id, c, amount, PayoutStatus.PAID) for a in artists for c, amount in (("USD", 9_000), ("EUR", 5_400))
    )
    assert sum(len(r.of("paid")) for r in reports) == 2 * ARTISTS
    postings = db.session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.kind == "payout")
    ).all()
    assert len(postings) == 2 * ARTISTS
    for artist in artists:
        assert ledger.artist_balances(db.session, artist.id) == {"USD": 0, "EUR": 0}
    assert_ledger_verifies()
