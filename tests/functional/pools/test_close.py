"""Closing a period: the allocation, the one ledger transaction, and what is frozen after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text

from app.errors import InvalidInput
from app.extensions import db
from app.ledger import service as ledger
from app.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction
from app.ledger.verify import verify
from app.plays.models import Play, PlayOutcome
from app.pools import service
from app.pools.periods import parse_key
from app.pools.errors import InvalidRevenue, PeriodClosed, PeriodNotOver
from app.catalog.models import Track
from app.pools.models import (
    Period,
    PeriodAllocation,
    PeriodListener,
    PeriodStatus,
    PoolModel,
    RevenueSource,
)
from app.pools.periods import landing_period
from tests.functional.pools.conftest import AFTER_NOVEMBER, IN_NOVEMBER, NOVEMBER


def whole_pool(app):
    """The settings with the whole revenue in the pool, as in the issue's oracles."""
    return {**app.config, "AD_POOL_SHARE_BPS": 10_000}


def allocations(key: str = NOVEMBER) -> dict[str, tuple[int, int]]:
    """Track title -> (plays, amount) of the closed period's allocation."""
    rows = db.session.execute(
        select(PeriodAllocation.track_title, PeriodAllocation.plays, PeriodAllocation.amount_minor)
        .join(Period, Period.id == PeriodAllocation.period_id)
        .where(Period.key == key)
    )
    return {title: (plays, amount) for title, plays, amount in rows}


def transactions() -> int:
    return db.session.scalar(select(func.count()).select_from(LedgerTransaction))


def close(app, **kwargs):
    kwargs.setdefault("now", AFTER_NOVEMBER)
    period = service.close_period(db.session, kwargs.pop("config", app.config), NOVEMBER, **kwargs)
    db.session.commit()
    return period


@pytest.mark.parametrize(
    ("model", "amounts"),
    [
        (PoolModel.PRO_RATA, {"Track A": 1286, "Track B": 1571, "Track C": 143}),
        (PoolModel.USER_CENTRIC, {"Track A": 900, "Track B": 1100, "Track C": 1000}),
    ],
)
def test_closing_pays_the_oracle_to_the_artists(app, three_listeners, model, amounts):
    first, second = three_listeners.artist_id("A"), three_listeners.artist_id("C")

    period = close(app, config=whole_pool(app), model=model, revenue_minor=3000)

    assert {title: amount for title, (_, amount) in allocations().items()} == amounts
    assert (period.status, period.model, period.revenue_source) == (
        PeriodStatus.CLOSED, model, RevenueSource.ENTERED,
    )  # fmt: skip
    assert (period.closed_revenue_minor, period.pool_minor, period.platform_minor) == (
        3000, 3000, 0,
    )  # fmt: skip
    assert period.earning_plays == 21
    first_amount = amounts["Track A"] + amounts["Track B"]
    assert ledger.artist_balances(db.session, first) == {"USD": first_amount}
    assert ledger.artist_balances(db.session, second) == {"USD": amounts["Track C"]}
    assert verify(db.session) == []


def test_closing_twice_posts_once(app, three_listeners):
    first = close(app, revenue_minor=10_000)
    before = allocations()
    transaction_id = first.ledger_transaction_id

    again = close(app, revenue_minor=99_999, model=PoolModel.USER_CENTRIC)

    assert again.ledger_transaction_id == transaction_id and transactions() == 1
    assert again.closed_revenue_minor == 10_000 and again.model is PoolModel.PRO_RATA
    assert allocations() == before
    assert db.session.scalar(select(func.count()).select_from(PeriodAllocation)) == 3


def test_the_transaction_debits_revenue_and_credits_artists_and_platform(app, three_listeners):
    first, second = three_listeners.artist_id("A"), three_listeners.artist_id("C")
    ledger_before = {a: ledger.artist_balances(db.session, a) for a in (first, second)}

    period = close(app, revenue_minor=10_000, model=PoolModel.USER_CENTRIC)

    entries = db.session.execute(
        select(LedgerEntry.amount, LedgerAccount.code)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == period.ledger_transaction_id)
    ).all()
    codes = {code: amount for amount, code in entries}
    # The pool is 9000 of 10,000: A 2700, B 3300, C 3000 by listener.
    assert codes == {
        "ads_receivable:USD": 10_000,
        f"artist_payable:{first}:USD": -6000,
        f"artist_payable:{second}:USD": -3000,
        "platform_ad_share:USD": -1000,
    }
    assert ledger_before == {first: {}, second: {}}
    assert ledger.artist_balances(db.session, first) == {"USD": 6000}
    transaction = db.session.get(LedgerTransaction, period.ledger_transaction_id)
    assert transaction.idempotency_key == "period:2026-11" and transaction.kind == "ad_pool"
    # Effective at the period's last instant, so November's balances include it.
    assert transaction.effective_at == period.ends_at - timedelta(microseconds=1)
    at_end = ledger.artist_balances(db.session, first, at=period.ends_at)
    assert at_end == {"USD": 6000}


def test_ledger_verify_passes_after_the_close(app, runner, three_listeners):
    close(app, revenue_minor=12_345)
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ledger ok: 1 transactions")


def test_a_play_counted_after_the_close_lands_in_the_next_period(app, three_listeners, listening):
    close(app, revenue_minor=3000)
    closed = allocations()

    landed = landing_period(db.session, app.config, IN_NOVEMBER)
    late = Play(
        track_id=three_listeners["C"].id, listener_id=listening.listener("U3"),
        threshold_ms=30_000, outcome=PlayOutcome.COUNTED, counted_at=IN_NOVEMBER, earns=True,
        period_id=landed.id,
    )  # fmt: skip
    db.session.add(late)
    db.session.commit()

    assert landed.key == "2026-12" and landed.status is PeriodStatus.OPEN
    assert allocations() == closed
    december = service.preview(db.session, app.config, "2026-12", revenue_minor=100)
    assert [(row.title, row.plays) for row in december.rows] == [("Track C", 1)]


def test_revenue_comes_from_impressions_when_none_was_entered(app, three_listeners, listening):
    listening.impressions("U9", 4, cpm_minor=2_500)  # 4 × 2500 / 1000 = 10
    listening.impressions("U8", 1, cpm_minor=999)  # 10.999 rounds down to 10

    period = close(app)

    assert (period.revenue_source, period.closed_revenue_minor) == (RevenueSource.IMPRESSIONS, 10)
    assert (period.pool_minor, period.platform_minor) == (9, 1)
    assert sum(amount for _, amount in allocations().values()) == 9
    assert period.revenue_minor is None


def test_a_period_without_revenue_posts_nothing(app, three_listeners):
    period = close(app)

    assert period.status is PeriodStatus.CLOSED and period.closed_revenue_minor == 0
    assert period.ledger_transaction_id is None and transactions() == 0
    assert allocations() == {"Track A": (9, 0), "Track B": (11, 0), "Track C": (1, 0)}
    assert verify(db.session) == []


def test_a_period_without_plays_gives_the_revenue_to_the_platform(app, listening):
    listening.impressions("U1", 3)

    period = close(app, revenue_minor=5000)

    assert (period.pool_minor, period.platform_minor, period.earning_plays) == (0, 5000, 0)
    assert allocations() == {}
    entries = db.session.scalars(
        select(LedgerEntry.amount).where(LedgerEntry.transaction_id == period.ledger_transaction_id)
    ).all()
    assert sorted(entries) == [-5000, 5000]
    assert verify(db.session) == []


def test_an_empty_month_can_be_closed(app):
    period = service.close_period(db.session, app.config, "2026-03", now=AFTER_NOVEMBER)
    db.session.commit()
    assert (period.key, period.status, period.closed_revenue_minor) == (
        "2026-03", PeriodStatus.CLOSED, 0,
    )  # fmt: skip


def test_plays_of_owned_tracks_earn_nothing(app, three_listeners, listening):
    listening.plays("buyer", three_listeners["C"], 500, earns=False)

    close(app, config=whole_pool(app), revenue_minor=3000)

    assert allocations() == {"Track A": (9, 1286), "Track B": (11, 1571), "Track C": (1, 143)}


def test_an_open_period_is_not_closed_before_it_ends(app, three_listeners):
    with pytest.raises(PeriodNotOver):
        service.close_period(db.session, app.config, NOVEMBER, now=IN_NOVEMBER)
    db.session.rollback()
    status = db.session.scalar(select(Period.status).where(Period.key == NOVEMBER))
    assert status is PeriodStatus.OPEN
    assert transactions() == 0

    period = close(app, now=IN_NOVEMBER, allow_early=True, revenue_minor=1000)

    assert period.status is PeriodStatus.CLOSED and period.closed_at == IN_NOVEMBER
    transaction = db.session.get(LedgerTransaction, period.ledger_transaction_id)
    assert transaction.effective_at == IN_NOVEMBER


def test_a_closed_period_is_frozen(app, three_listeners):
    service.set_revenue(db.session, app.config, NOVEMBER, 2000)
    service.set_model(db.session, app.config, NOVEMBER, PoolModel.USER_CENTRIC)
    db.session.commit()
    period = close(app, config=whole_pool(app))
    assert (period.closed_revenue_minor, period.model) == (2000, PoolModel.USER_CENTRIC)

    with pytest.raises(PeriodClosed):
        service.set_revenue(db.session, app.config, NOVEMBER, 5)
    with pytest.raises(PeriodClosed):
        service.set_model(db.session, app.config, NOVEMBER, PoolModel.PRO_RATA)
    db.session.rollback()
    frozen = service.preview(
        db.session, app.config, NOVEMBER, model=PoolModel.PRO_RATA, revenue_minor=1
    )
    assert (frozen.closed, frozen.model, frozen.revenue_minor) == (
        True, PoolModel.USER_CENTRIC, 2000,
    )  # fmt: skip
    assert [(row.title, row.amount_minor) for row in frozen.rows] == [
        ("Track A", 600), ("Track B", 733), ("Track C", 667),
    ]  # fmt: skip


def test_a_negative_revenue_is_refused(app, three_listeners):
    with pytest.raises(InvalidRevenue):
        service.set_revenue(db.session, app.config, NOVEMBER, -1)
    with pytest.raises(InvalidRevenue):
        service.close_period(db.session, app.config, NOVEMBER, revenue_minor=-1, now=AFTER_NOVEMBER)


def test_the_preview_matches_what_the_close_pays(app, three_listeners):
    config = whole_pool(app)
    comparison = service.compare_models(db.session, config, NOVEMBER, revenue_minor=3000)
    assert [(row.title, row.amounts) for row in comparison.rows] == [
        ("Track B", {PoolModel.PRO_RATA: 1571, PoolModel.USER_CENTRIC: 1100}),
        ("Track A", {PoolModel.PRO_RATA: 1286, PoolModel.USER_CENTRIC: 900}),
        ("Track C", {PoolModel.PRO_RATA: 143, PoolModel.USER_CENTRIC: 1000}),
    ]
    close(app, config=config, revenue_minor=3000, model=PoolModel.USER_CENTRIC)
    assert {title: amount for title, (_, amount) in allocations().items()} == {
        "Track A": 900, "Track B": 1100, "Track C": 1000,
    }  # fmt: skip


def test_verify_finds_an_allocation_that_does_not_match_its_transaction(app, three_listeners):
    close(app, revenue_minor=10_000)
    db.session.execute(
        text("UPDATE period_allocations SET amount_minor = amount_minor + 1 WHERE plays = 1")
    )
    db.session.commit()
    checks = {violation.check for violation in verify(db.session)}
    assert checks == {"period_allocation", "period_artist_credits"}


def test_verify_finds_a_closed_period_without_its_transaction(app):
    service.close_period(db.session, app.config, "2026-01", now=AFTER_NOVEMBER)
    db.session.execute(text("UPDATE periods SET closed_revenue_minor = 50, platform_minor = 50"))
    db.session.commit()
    assert [violation.check for violation in verify(db.session)] == ["period_without_transaction"]


def test_a_month_that_has_not_begun_cannot_be_closed_even_early(app) -> None:
    december = datetime(2026, 12, 3, tzinfo=UTC)
    with pytest.raises(PeriodNotOver):
        service.close_period(db.session, app.config, "2027-05", allow_early=True, now=december)
    db.session.rollback()
    assert db.session.query(Period).filter_by(key="2027-05").count() == 0


@pytest.mark.parametrize("key", ["２０２６-12", "9999-12", "1969-12", "2026-1"])
def test_only_ascii_months_of_supported_years_are_periods(key: str) -> None:
    with pytest.raises(InvalidInput):
        parse_key(key)


def test_a_track_deleted_in_the_month_takes_its_plays_and_the_close_counts_again(
    app, three_listeners, listening
):
    # U3's one play goes with track C: U3's impression is then split pro rata over A×9, B×11.
    db.session.execute(delete(Track).where(Track.id == three_listeners["C"].id))
    db.session.commit()
    expected = {"Track A": (9, 900 + 450), "Track B": (11, 100 + 1000 + 550)}
    u3 = select(PeriodListener.earning_plays).filter_by(listener_id=listening.listener("U3"))

    shown = service.preview(db.session, whole_pool(app), NOVEMBER, model=PoolModel.USER_CENTRIC,
                            revenue_minor=3000)  # fmt: skip
    assert {row.title: (row.plays, row.amount_minor) for row in shown.rows} == expected
    assert db.session.scalar(u3) == 1  # a preview writes nothing

    close(app, config=whole_pool(app), model=PoolModel.USER_CENTRIC, revenue_minor=3000)
    assert allocations() == expected
    assert db.session.scalar(u3) == 0
    assert verify(db.session) == []
