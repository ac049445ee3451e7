"""Payouts through Stripe Connect, against the local Stripe-compatible server: onboarding,
transfers with idempotency keys, refused and unknown transfers, and reversals by webhook."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.ledger import service as ledger
from app.ledger.models import LedgerTransaction
from app.payouts import service
from app.payouts.models import AccountStatus, Payout, PayoutStatus
from tests.factories import ArtistFactory
from tests.functional.payouts.conftest import MINIMUMS, assert_ledger_verifies, connected, owe
from tests.support.fake_stripe import FakeStripe

WEBHOOK = "/webhooks/stripe/payouts"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def app(make_app: Any, fake: FakeStripe) -> Iterator[Flask]:
    built = make_app(PAYOUT_MINIMUMS=MINIMUMS, **fake.app_settings())
    with built.app_context():
        yield built
        db.session.rollback()


def stripe_artist(fake: FakeStripe) -> Any:
    """An artist with an Express account whose onboarding is finished."""
    account = fake.handle(
        "POST", "/v1/accounts",
        {"type": "express", "capabilities": {"transfers": {"requested": "true"}}},
        {"authorization": f"Bearer {fake.api_key}"},
    )[0][1]  # fmt: skip
    fake.complete_onboarding(account["id"])
    return connected("stripe", account["id"])


def the_payout() -> Payout:
    db.session.expire_all()
    return db.session.scalars(select(Payout).order_by(Payout.id.desc())).first()


def transfer_posts(fake: FakeStripe) -> list[Any]:
    return [r for r in fake.requests if (r.method, r.path) == ("POST", "/v1/transfers")]


def test_an_artist_connects_an_express_account_from_the_studio(
    app: Flask, client: Any, auth: Any, fake: FakeStripe
) -> None:
    artist = ArtistFactory(slug="band")
    auth.login(artist.owner.email)

    started = client.post("/studio/payouts/band/connect")

    account = service.payout_account(db.session, artist.id)
    assert account is not None and account.status is AccountStatus.ONBOARDING
    assert started.status_code == 302
    assert started.headers["Location"].startswith(f"{fake.url}/setup/e/{account.external_id}/")
    [link] = [r for r in fake.requests if r.path == "/v1/account_links"]
    assert link.params["return_url"].endswith("/studio/payouts/band/return")
    assert link.params["refresh_url"].endswith("/studio/payouts/band/onboarding")

    client.get("/studio/payouts/band/return")  # came back before finishing
    db.session.expire_all()
    assert service.payout_account(db.session, artist.id).status is AccountStatus.ONBOARDING

    fake.complete_onboarding(account.external_id)
    page = client.get("/studio/payouts/band/return", follow_redirects=True)

    db.session.expire_all()
    assert service.payout_account(db.session, artist.id).status is AccountStatus.ACTIVE
    assert "payout account is connected" in page.text
    assert fake.ids("account") == [account.external_id]


def test_two_runs_make_one_transfer_under_the_payout_key(app: Flask, run: Any, fake: FakeStripe) -> None:
    artist = stripe_artist(fake)
    owe(artist, 10_000)

    run()
    assert_ledger_verifies()
    run()
    assert_ledger_verifies()

    payout = the_payout()
    [transfer_id] = fake.ids("transfer")
    transfer = fake.get(transfer_id)
    assert (payout.status, payout.transfer_reference) == (PayoutStatus.PAID, transfer_id)
    assert (transfer["amount"], transfer["currency"]) == (9_000, "usd")
    assert transfer["destination"] == service.payout_account(db.session, artist.id).external_id
    assert transfer["metadata"] == {"payout_id": str(payout.id)}
    assert [r.idempotency_key for r in transfer_posts(fake)] == [f"payout:{payout.id}"]


def test_a_refused_transfer_fails_the_payout_and_restores_the_balance(
    app: Flask, run: Any, fake: FakeStripe
) -> None:
    artist = stripe_artist(fake)
    owe(artist, 10_000)
    fake.transfer_refusal = ("balance_insufficient", "You have insufficient funds in your Stripe account.")

    output = run().output

    payout = the_payout()
    assert payout.status is PayoutStatus.FAILED
    assert "insufficient funds" in payout.failure_message
    assert fake.ids("transfer") == []
    assert ledger.artist_balances(db.session, artist.id) == {"USD": 9_000}
    reversal = db.session.scalar(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == f"payout:{payout.id}:reversed")
    )
    assert reversal.kind == "payout_reversal" and reversal.reverses_id == payout.ledger_transaction_id
    assert "1 failed" in output
    assert_ledger_verifies()

    fake.transfer_refusal = None
    run()

    assert the_payout().status is PayoutStatus.PAID
    assert ledger.artist_balances(db.session, artist.id) == {"USD": 0}
    assert len(fake.ids("transfer")) == 1
    assert_ledger_verifies()


def test_a_transfer_with_no_answer_stays_pending_and_the_next_run_makes_it_once(
    app: Flask, run: Any, fake: FakeStripe
) -> None:
    artist = stripe_artist(fake)
    owe(artist, 10_000)
    fake.transfers_unavailable = True

    assert "1 pending" in run().output

    pending = the_payout()
    assert pending.status is PayoutStatus.PENDING
    assert ledger.artist_balances(db.session, artist.id) == {"USD": 0}  # the money is on its way
    assert_ledger_verifies()

    fake.transfers_unavailable = False
    run()

    paid = the_payout()
    assert (paid.id, paid.status) == (pending.id, PayoutStatus.PAID)
    assert len(fake.ids("transfer")) == 1
    assert {r.idempotency_key for r in transfer_posts(fake)} == {f"payout:{pending.id}"}
    assert_ledger_verifies()


def test_a_reversed_transfer_reverses_the_payout_once(
    app: Flask, client: Any, run: Any, fake: FakeStripe
) -> None:
    artist = stripe_artist(fake)
    owe(artist, 10_000)
    run()
    event = fake.reverse_transfer(fake.ids("transfer")[0])
    body, headers = fake.webhook_request(event)

    first = client.post(WEBHOOK, data=body, headers=headers)
    again = client.post(WEBHOOK, data=body, headers=headers)

    assert (first.status_code, first.json) == (200, {"received": True})
    assert again.status_code == 200
    payout = the_payout()
    assert payout.status is PayoutStatus.REVERSED
    assert ledger.artist_balances(db.session, artist.id) == {"USD": 9_000}
    reversals = db.session.scalars(
        select(LedgerTransaction).where(LedgerTransaction.kind == "payout_reversal")
    ).all()
    assert [r.idempotency_key for r in reversals] == [f"payout:{payout.id}:reversed"]
    assert_ledger_verifies()


def test_a_partial_reversal_or_a_forged_event_changes_nothing(
    app: Flask, client: Any, run: Any, fake: FakeStripe
) -> None:
    artist = stripe_artist(fake)
    owe(artist, 10_000)
    run()
    transfer_id = fake.ids("transfer")[0]

    partial_body, partial_headers = fake.webhook_request(fake.reverse_transfer(transfer_id, 100))
    partial = client.post(WEBHOOK, data=partial_body, headers=partial_headers)
    forged_body, forged_headers = fake.webhook_request(fake.reverse_transfer(transfer_id), secret="whsec_wrong")
    forged = client.post(WEBHOOK, data=forged_body, headers=forged_headers)

    assert partial.json == {"received": True, "ignored": "partial_reversal"}
    assert forged.status_code == 400
    assert the_payout().status is PayoutStatus.PAID
    assert ledger.artist_balances(db.session, artist.id) == {"USD": 0}
