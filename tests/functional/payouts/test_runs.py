"""``megabox payouts run`` on the sandbox gateway: who is paid, how much, once, and the ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from app.extensions import db
from app.ledger import service as ledger
from app.ledger.models import LedgerTransaction
from app.payouts import service
from app.payouts.models import AccountStatus, Payout, PayoutAccount, PayoutRun, PayoutStatus
from tests.factories import ArtistFactory
from tests.functional.payouts.conftest import assert_ledger_verifies, connected, owe


def payouts() -> list[Payout]:
    db.session.expire_all()
    return list(db.session.scalars(select(Payout).order_by(Payout.id)))


def transactions(kind: str) -> list[LedgerTransaction]:
    return list(db.session.scalars(select(LedgerTransaction).where(LedgerTransaction.kind == kind)))


def test_a_run_pays_the_whole_balance_and_posts_it_to_the_ledger(app: Any, run: Any) -> None:
    artist = connected()
    owe(artist, 10_000)
    owe(artist, 5_000)

    output = run().output

    [payout] = payouts()
    assert (payout.status, payout.amount_minor, payout.currency) == (PayoutStatus.PAID, 13_500, "USD")
    assert payout.transfer_reference.startswith("sbxtr_")
    assert ledger.artist_balances(db.session, artist.id) == {"USD": 0}
    [posting] = transactions("payout")
    assert posting.idempotency_key == f"payout:{payout.id}"
    assert sorted((e.account.code, e.amount) for e in posting.entries) == [
        (f"artist_payable:{artist.id}:USD", 13_500), ("clearing:sandbox:USD", -13_500),
    ]  # fmt: skip
    assert "1 paid (USD 135.00)" in output
    assert_ledger_verifies()


def test_two_runs_make_one_transfer(app: Any, run: Any) -> None:
    artist = connected()
    owe(artist, 10_000)

    run()
    assert_ledger_verifies()
    second = run().output
    assert_ledger_verifies()

    assert [(p.status, p.amount_minor) for p in payouts()] == [(PayoutStatus.PAID, 9_000)]
    assert len(transactions("payout")) == 1
    assert "0 paid" in second
    assert db.session.scalar(select(func.count()).select_from(PayoutRun)) == 2


def test_new_earnings_after_a_payout_are_paid_by_the_next_run(app: Any, run: Any) -> None:
    artist = connected()
    owe(artist, 10_000)
    run()
    owe(artist, 3_000)  # 2 700 owed: above the USD minimum of 2 500

    run()

    assert [p.amount_minor for p in payouts()] == [9_000, 2_700]
    assert ledger.artist_balances(db.session, artist.id) == {"USD": 0}
    assert_ledger_verifies()


def test_the_minimum_is_per_currency(app: Any, run: Any) -> None:
    # PAYOUT_MINIMUMS is USD:2500,EUR:5000 in these tests; JPY has none, so it is never paid.
    usd_at_minimum, eur_below, eur_at_minimum, usd_below, yen = (connected() for _ in range(5))
    owe(usd_at_minimum, 2_778)  # 2 500 owed (2 778 x 90%, rounded)
    owe(eur_below, 5_000, "EUR")  # 4 500 owed
    owe(eur_at_minimum, 5_556, "EUR")  # 5 000 owed
    owe(usd_below, 2_776)  # 2 498 owed
    owe(yen, 1_000_000, "JPY")

    run()

    paid = {(p.artist_id, p.currency): p.amount_minor for p in payouts()}
    assert paid == {(usd_at_minimum.id, "USD"): 2_500, (eur_at_minimum.id, "EUR"): 5_000}
    assert ledger.artist_balances(db.session, eur_below.id) == {"EUR": 4_500}
    assert ledger.artist_balances(db.session, yen.id) == {"JPY": 900_000}


def test_only_artists_with_an_active_account_of_the_gateway_are_paid(app: Any, run: Any) -> None:
    onboarding, other_gateway, without = connected(), connected("stripe", "acct_x"), ArtistFactory()
    db.session.get(PayoutAccount, service.payout_account(db.session, onboarding.id).id).status = (
        AccountStatus.ONBOARDING
    )
    db.session.commit()
    for artist in (onboarding, other_gateway, without):
        owe(artist, 10_000)

    run()

    assert payouts() == []


def test_a_dry_run_prints_the_plan_and_writes_nothing(app: Any, run: Any) -> None:
    artist = connected(slug="dry-band")
    owe(artist, 10_000)
    counts_before = _row_counts()

    output = run("--dry-run").output

    assert "would pay dry-band USD 90.00" in output
    assert "nothing written" in output
    assert _row_counts() == counts_before
    assert ledger.artist_balances(db.session, artist.id) == {"USD": 9_000}


def _row_counts() -> tuple[int, ...]:
    return tuple(
        db.session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Payout, PayoutRun, LedgerTransaction)
    )


def test_a_negative_or_empty_balance_is_not_paid(app: Any, run: Any) -> None:
    artist = connected()
    owe(artist, 10_000)
    run()

    run()
    assert service.plan_payouts(db.session, app.config, "sandbox") == []
    assert len(payouts()) == 1


def test_recent_runs_and_artist_payouts_show_what_was_paid(app: Any, run: Any) -> None:
    first, second = connected(), connected()
    owe(first, 10_000)
    owe(second, 20_000)
    owe(second, 6_000, "EUR")

    run()

    [latest] = service.recent_runs(db.session)
    assert (latest.paid_count, latest.failed_count, latest.dry_run) == (3, 0, False)
    assert latest.total_minor == {"USD": 27_000, "EUR": 5_400}
    assert latest.finished_at is not None
    [view] = service.artist_payouts(db.session, first.id)
    assert (view.amount_minor, view.currency, view.status) == (9_000, "USD", "paid")
