"""What a statement says, line by line, for activity with known answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.extensions import db
from app.statements import service
from app.statements.models import Statement
from tests.functional.statements.conftest import OCTOBER, Activity, make_catalogue


def day(month: int, day_: int) -> datetime:
    return datetime(2026, month, day_, 12, tzinfo=UTC)


def test_a_month_of_sales_refunds_disputes_ads_and_payouts(app: Any, activity: Activity) -> None:
    september = activity.sale(day(9, 20), extra=200, fee=59)  # artist 450 + 900
    activity.sale(day(10, 5), extra=0, tracks=True)  # 270 + 135 + 135
    activity.refund(september, september.total_minor, day(10, 10))
    disputed = activity.sale(day(10, 12))  # 270 + 900
    activity.chargeback(disputed, day(10, 15), won_at=day(10, 20))
    activity.payout(2000, day(10, 25))
    activity.payout(500, day(10, 26), reversed_at=day(10, 28))
    activity.ad_period(OCTOBER, {"Opening Song": 300, "Demo": 100}, revenue=10_000,
                       closed_at=day(11, 2))  # fmt: skip
    activity.sale(day(11, 2))

    view = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD")
    content = view.content

    assert content.opening_minor == 1350
    assert [(line.kind, line.amount_minor) for line in content.lines] == [
        ("sale", 270), ("sale", 135), ("sale", 135),
        ("refund", -1350),
        ("sale", 270), ("sale", 900),
        ("chargeback", -1170), ("sale_reinstated", 1170),
        ("payout", -2000), ("payout", -500), ("payout_reversal", 500),
        ("ad_share", 9000),
    ]  # fmt: skip
    assert content.closing_minor == 8710
    assert content.totals() == {"sales": 1710, "refunds": -1350, "chargebacks": 0, "ads": 9000,
                                "payouts": -2000}  # fmt: skip
    refund = content.lines[3]
    assert (refund.reference, refund.linked_sale) == (september.public_id, "2026-09-20")
    name = activity.catalogue.artist.name  # items are titled as the buyer saw them
    assert refund.item == f"{name} – Sketches, {name} – Long Player"
    track_sale = content.lines[1]
    assert (track_sale.item, track_sale.item_type, track_sale.quantity) == (
        f"{name} – Opening Song", "track", 1,
    )  # fmt: skip
    assert (track_sale.price_paid_minor, track_sale.extra_minor, track_sale.fee_minor) == (
        150, 0, 0,
    )  # fmt: skip
    (share,) = content.ads
    assert (share.model, share.plays, share.period_plays) == ("pro_rata", 400, 400)
    assert share.pool_minor == 9000
    assert share.rate_per_1000 == "225.0000"
    assert [(t.title, t.plays, t.amount_minor) for t in share.tracks] == [
        ("Opening Song", 300, 6750), ("Demo", 100, 2250),
    ]  # fmt: skip
    assert view.content_hash is not None  # October is closed: the statement is final


def test_name_your_price_extra_and_a_deducted_fee_show_on_the_sale_lines(make_app: Any) -> None:
    app = make_app(FEE_POLICY="deduct_before_split")
    with app.app_context():
        activity = Activity(app, make_catalogue())
        activity.sale(day(10, 3), extra=200, fee=100)  # Sketches 500, Long Player 1000

        content = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD").content

    lines = [
        (line.item.split(" – ")[1], line.price_paid_minor, line.extra_minor, line.fee_minor,
         line.amount_minor)
        for line in content.lines
    ]  # fmt: skip
    # The fee, 33 and 67 by the items' amounts, is shared 90/10 like the sale: 30 and 60.
    assert lines == [("Sketches", 500, 200, 30, 420), ("Long Player", 1000, 0, 60, 840)]
    assert content.closing_minor == 1260


def test_an_open_period_is_provisional_and_not_stored(app: Any, activity: Activity) -> None:
    activity.sale(day(10, 3))

    view = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD")

    assert view.provisional and view.content.closed is False
    assert view.content.closing_minor == 1170
    assert db.session.query(Statement).count() == 0
