"""Payouts on the dashboard and payout runs on the admin overview, as the ledger has them."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.commerce.service import CartLine
from app.earnings import service
from app.ledger import service as ledger
from app.payouts import service as payouts
from app.payouts.errors import TransferRefused
from app.payouts.gateways import SandboxPayouts
from app.payouts.runner import run_payouts
from app.timestamps import utcnow
from tests.factories import UserFactory
from tests.functional.earnings.conftest import days_ago

REFUSAL = "No such destination account."


class RefusingPayouts(SandboxPayouts):
    """The sandbox processor, refusing every transfer (a 4xx from Stripe)."""

    def transfer(self, **kwargs: Any) -> str:
        raise TransferRefused(REFUSAL)


def connect(session: Any, artist: Any) -> None:
    gateway = SandboxPayouts("")
    account = payouts.connect_account(session, gateway, artist, None)
    payouts.finish_onboarding(session, gateway, account, utcnow())
    session.commit()


def test_a_paid_payout_shows_on_the_dashboard_and_empties_the_balance(
    app: Flask, client: Any, session: Any, album: Any, shop: Any
) -> None:
    for _ in range(5):
        shop.sell(CartLine(album.id), at=days_ago(3))  # 5 × 6.30 = 31.50, above 25.00
    connect(session, album.artist)

    run_payouts(session, SandboxPayouts(""), app.config)

    page = client.get("/studio/earnings").get_data(as_text=True)
    paid = payouts.artist_payouts(session, album.artist_id)
    assert [(p.status, p.amount_minor) for p in paid] == [("paid", 3150)]
    row = page[page.index(f'data-payout-id="{paid[0].id}"') :].split("</tr>")[0]
    assert "$31.50" in row and "paid" in row and paid[0].transfer_reference in row
    assert ledger.artist_balances(session, album.artist_id) == {"USD": 0}
    assert '<p class="stat-value balance">$0.00</p>' in page


def test_a_refused_payout_shows_as_a_failed_run_and_the_balance_returns(
    app: Flask, client: Any, auth: Any, session: Any, album: Any, shop: Any
) -> None:
    for _ in range(5):
        shop.sell(CartLine(album.id), at=days_ago(3))
    connect(session, album.artist)

    run_payouts(session, RefusingPayouts(""), app.config)

    assert ledger.artist_balances(session, album.artist_id) == {"USD": 3150}
    overview = service.overview(session)
    assert [(run.paid_count, run.failed_count) for run in overview.runs] == [(0, 1)]
    assert [view.failure_message for view, _ in overview.failures] == [REFUSAL]
    assert sum(row.paid_out for row in overview.months) == 0
    assert overview.owed.by_artist == overview.owed.payable_accounts == {"USD": 3150}
    auth.login(UserFactory(is_admin=True).email)
    page = client.get("/admin").get_data(as_text=True)
    assert 'class="run-failed"' in page and REFUSAL in page and album.artist.name in page


def test_paid_out_per_month_is_what_left_the_processor(
    app: Flask, session: Any, album: Any, shop: Any
) -> None:
    for _ in range(5):
        shop.sell(CartLine(album.id), at=days_ago(3))
    connect(session, album.artist)

    run_payouts(session, SandboxPayouts(""), app.config)

    months = service.month_totals(session)
    assert sum(row.paid_out for row in months) == 3150
    assert service.owed_to_artists(session).by_artist == {"USD": 0}
