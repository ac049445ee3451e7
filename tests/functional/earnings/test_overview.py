"""The admin's overview: per-month totals and what is owed equal the ledger's sums."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.catalog.models import PricingMode, TrackStatus
from app.commerce.service import CartLine
from app.earnings import service
from app.ledger import service as ledger
from app.ledger.models import (
    ARTIST_PAYABLE_PREFIX,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    platform_code,
)
from app.ledger.money import Money
from app.pools import service as pools
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory
from tests.functional.earnings.conftest import NOW, Shop
from tests.functional.pools.conftest import Listening

MAY = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
JUNE = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def platform_balance(session: Any, purpose: str) -> int:
    code = platform_code(purpose, "USD")
    found = session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    return 0 if found is None else ledger.balance(session, found).get("USD", 0)


@pytest.fixture
def activity(app: Flask, session: Any) -> dict[str, Any]:
    """Two artists' sales in May and June (with fees, a refund, an extra), and May's ads."""
    shop = Shop(app)
    one = ReleaseFactory(price_minor=700, minimum_price_minor=700)
    two = ReleaseFactory(
        price_minor=500, minimum_price_minor=500, pricing_mode=PricingMode.NAME_YOUR_PRICE
    )
    tracks = [TrackFactory(release=release, status=TrackStatus.READY) for release in (one, two)]
    refunded = shop.sell(CartLine(one.id), at=MAY, fee=40)
    shop.sell(CartLine(two.id, amount_minor=900), at=MAY + timedelta(hours=1), fee=50)
    shop.refund(refunded, 700, at=JUNE)
    shop.sell(CartLine(one.id), at=JUNE, fee=40)
    listening = Listening(app)
    listening.plays("U1", tracks[0], 2, key="2026-05", at=MAY)
    listening.plays("U2", tracks[1], 2, key="2026-05", at=MAY)
    pools.close_period(session, app.config, "2026-05", revenue_minor=2000, now=NOW)
    listening.plays("U1", tracks[0], 1, key="2026-06", at=JUNE)
    session.commit()
    return {"artists": [one.artist_id, two.artist_id]}


def test_month_totals_equal_the_ledger(session: Any, activity: dict[str, Any]) -> None:
    months = {row.month: row for row in service.month_totals(session)}

    may, june = months["2026-05"], months["2026-06"]
    assert (may.gross_sales, june.gross_sales) == (1600, 700)
    assert (may.refunds, june.refunds) == (0, 700)
    assert may.fees + june.fees == platform_balance(session, "processing_fees") == 130
    commission = platform_balance(session, "platform_commission") + platform_balance(
        session, "contributions"
    )
    assert may.commission + june.commission == -commission
    assert (may.commission, june.commission) == (160, 0)  # June's sale minus May's refund
    assert may.ad_revenue == pools.find_period(session, "2026-05").closed_revenue_minor == 2000
    assert june.ad_revenue == 0
    assert may.period.status == "closed" and june.period.status == "open"


def test_what_is_owed_is_the_sum_of_balances_and_of_the_payable_accounts(
    session: Any, activity: dict[str, Any]
) -> None:
    owed = service.owed_to_artists(session)

    balances = [ledger.artist_balances(session, artist) for artist in activity["artists"]]
    payables = session.scalar(
        select(func.sum(LedgerEntry.amount))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.code.startswith(ARTIST_PAYABLE_PREFIX))
    )
    assert owed.by_artist == {"USD": sum(b["USD"] for b in balances)}
    assert owed.payable_accounts == {"USD": -payables}
    # 6.30 (June) + 8.10 (name your price, 9.00) + 9.00 ad pool of 10.00 less nothing refunded
    assert owed.by_artist == {"USD": 630 + 810 + 1800}
    assert owed.agrees and owed.artists == 2


def test_the_page_shows_totals_periods_and_reconciliation(
    client: Any, auth: Any, activity: dict[str, Any]
) -> None:
    auth.login(UserFactory(is_admin=True).email)

    response = client.get("/admin")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    may_row = page[page.index('data-month="2026-05"') :].split("</tr>")[0]
    assert '<td class="num gross-sales">$16.00</td>' in may_row
    assert '<td class="num ad-revenue">$20.00</td>' in may_row
    assert 'href="/admin/periods/2026-05"' in may_row and "closed" in may_row
    june_row = page[page.index('data-month="2026-06"') :].split("</tr>")[0]
    assert '<td class="num refunds">$7.00</td>' in june_row
    assert 'href="/admin/periods/2026-06"' in june_row and "open" in june_row
    assert '<td class="num owed-by-artist">$32.40</td>' in page
    assert '<td class="num owed-payable">$32.40</td>' in page
    assert "Reconciled" in page and "Mismatch" not in page


def test_a_payable_account_without_its_artist_is_flagged(
    client: Any, auth: Any, session: Any
) -> None:
    artist = ArtistFactory()
    orphan = ledger.account(
        session, f"{ARTIST_PAYABLE_PREFIX}999:USD", AccountKind.LIABILITY, "USD"
    )
    linked = ledger.artist_payable(session, artist.id, "USD")
    clearing = ledger.account(session, "clearing:sandbox:USD", AccountKind.ASSET, "USD")
    ledger.post(
        session, idempotency_key="test:orphan", kind="sale",
        entries=[(clearing, Money(300, "USD")), (orphan, Money(-100, "USD")),
                 (linked, Money(-200, "USD"))],
    )  # fmt: skip
    session.commit()
    auth.login(UserFactory(is_admin=True).email)

    owed = service.owed_to_artists(session)
    page = client.get("/admin").get_data(as_text=True)

    assert (owed.by_artist, owed.payable_accounts, owed.agrees) == (
        {"USD": 200}, {"USD": 300}, False,
    )  # fmt: skip
    assert "Mismatch" in page and 'role="alert"' in page
    assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1


def test_anonymous_visitors_are_sent_to_sign_in(client: Any) -> None:
    response = client.get("/admin")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_other_users_are_refused(client: Any, auth: Any) -> None:
    artist = ArtistFactory()
    auth.login(artist.owner.email)
    assert client.get("/admin").status_code == 403
