"""The platform's commission on each sale line: what the sale posted to the platform, so that
on every sale line the price paid less the commission and the fee deducted is the amount."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlalchemy import func, select

from app.catalog.models import PricingMode, TrackStatus
from app.commerce import service as commerce
from app.commerce.posting import DEDUCT_BEFORE_SPLIT, PLATFORM_ABSORBS, SALE
from app.extensions import db
from app.ledger.models import (
    CONTRIBUTIONS,
    PLATFORM_COMMISSION,
    LedgerAccount,
    LedgerEntry,
    platform_code,
)
from app.statements import service
from app.statements.content import Line, StatementContent, from_json
from app.statements.models import Statement
from app.statements.render import CSV_COLUMNS, render
from config import BPS_WHOLE
from tests.factories import ArtistFactory, ReleaseFactory, TrackFactory, UserFactory
from tests.functional.statements.conftest import OCTOBER, Activity, make_catalogue

OCTOBER_DAY = datetime(2026, 10, 4, 12, tzinfo=UTC)
AFTER_OCTOBER = datetime(2026, 11, 2, tzinfo=UTC)
PLATFORM_ACCOUNTS = (platform_code(PLATFORM_COMMISSION, "USD"), platform_code(CONTRIBUTIONS, "USD"))


def sale_lines(content: StatementContent) -> list[Line]:
    return [line for line in content.lines if line.kind == SALE]


def figures(line: Line) -> tuple[str, int | None, int | None, int | None, int | None, int]:
    """A sale line's item and its money: paid, extra, commission, fee, amount."""
    return (line.item.split(" – ")[1], line.price_paid_minor, line.extra_minor,
            line.commission_minor, line.fee_minor, line.amount_minor)  # fmt: skip


def reconciles(line: Line) -> bool:
    assert line.price_paid_minor is not None and line.commission_minor is not None
    paid_less = line.price_paid_minor - line.commission_minor - (line.fee_minor or 0)
    return paid_less == line.amount_minor


def posted_to_platform(transaction_id: int) -> int:
    """What the sale transaction credited to the platform's commission and contributions."""
    credited = db.session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == transaction_id,
               LedgerAccount.code.in_(PLATFORM_ACCOUNTS))  # fmt: skip
    )
    return -int(credited)


def sold_lines(activity: Activity, **sale: Any) -> list[Any]:
    """The sale lines of October's statement after one October sale (``Activity.sale``)."""
    activity.sale(OCTOBER_DAY, **sale)
    content = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD").content
    return sale_lines(content)


def test_fixed_price_and_name_your_price_lines_show_the_commission_the_sale_posted(
    app: Any, activity: Activity
) -> None:
    lines = sold_lines(activity, extra=250, fee=45)  # Sketches 550, Long Player 1000
    # The platform absorbs the fee: the artist's line carries none of it.
    assert [figures(line) for line in lines] == [
        ("Sketches", 550, 250, 55, 0, 495), ("Long Player", 1000, 0, 100, 0, 900),
    ]  # fmt: skip
    assert all(reconciles(line) for line in lines)
    assert sum(line.commission_minor or 0 for line in lines) == posted_to_platform(
        lines[0].transaction_id
    )


def test_a_fee_deducted_before_the_split_leaves_the_commission_as_the_sale_posted_it(
    make_app: Any,
) -> None:
    app = make_app(FEE_POLICY=DEDUCT_BEFORE_SPLIT)
    with app.app_context():
        activity = Activity(app, make_catalogue())
        lines = sold_lines(activity, extra=200, fee=100)  # Sketches 500, Long Player 1000
        # The fee, 33 and 67 by the items' amounts, shared 90/10: the artist's 30 and 60.
        assert [figures(line) for line in lines] == [
            ("Sketches", 500, 200, 50, 30, 420), ("Long Player", 1000, 0, 100, 60, 840),
        ]  # fmt: skip
        assert all(reconciles(line) for line in lines)
        assert posted_to_platform(lines[0].transaction_id) == 150


def test_the_csv_has_a_commission_column_at_the_end(app: Any, activity: Activity) -> None:
    activity.sale(OCTOBER_DAY, extra=250, tracks=True)  # Sketches 550, two tracks of 150
    activity.payout(500, OCTOBER_DAY)
    view = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD")

    rows = list(csv.DictReader(io.StringIO(render(view, "csv").decode("utf-8"))))

    assert CSV_COLUMNS[-1] == "commission" and tuple(rows[0]) == CSV_COLUMNS
    assert [(row["type"], row["price_paid"], row["commission"], row["amount"]) for row in rows] == [
        ("opening_balance", "", "", "0.00"),
        ("sale", "5.50", "0.55", "4.95"),
        ("sale", "1.50", "0.15", "1.35"),
        ("sale", "1.50", "0.15", "1.35"),
        ("payout", "", "", "-5.00"),
        ("closing_balance", "", "", "2.65"),
    ]  # fmt: skip


def test_the_pdf_shows_the_commission_of_each_line_and_item(app: Any, activity: Activity) -> None:
    activity.sale(OCTOBER_DAY, extra=250)
    view = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD")

    pages = PdfReader(io.BytesIO(render(view, "pdf"))).pages
    text = " ".join(" ".join(page.extract_text() for page in pages).split())

    by_item = text[text.index("Sales by item") : text.index("Lines Date")]
    assert "Qty Paid Extra Commission Fee Amount" in by_item
    assert "$5.50 $2.50 $0.55 $4.95" in by_item and "$10.00 $1.00 $9.00" in by_item
    lines = text[text.index("Lines Date") :]
    assert "Paid Commission Fee Amount" in lines
    assert "$5.50 $0.55 $4.95" in lines and "$10.00 $1.00 $9.00" in lines


def test_the_page_and_the_api_show_the_commission(
    client: Any, auth: Any, activity: Activity
) -> None:
    activity.sale(OCTOBER_DAY, extra=250)
    artist = activity.catalogue.artist
    auth.login(artist.owner.email)

    page = client.get(f"/studio/statements/{artist.slug}/{OCTOBER}/USD")
    (statement,) = client.get(f"/api/v1/artists/{artist.slug}/statements/{OCTOBER}").get_json()

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    table = html[html.index('<table class="table statement-lines">') :]
    headers = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', table[: table.index("</thead>")])
    assert headers[-4:] == ["Extra", "Commission", "Fee", "Amount"]
    cells = [re.findall(r'<td class="amount">([^<]*)</td>', row)
             for row in re.findall(r'<tr class="line-sale">(.*?)</tr>', table, re.S)]  # fmt: skip
    assert cells == [["1", "$5.50", "$2.50", "$0.55", "", "$4.95"],
                     ["1", "$10.00", "", "$1.00", "", "$9.00"]]  # fmt: skip
    assert "Commission is the platform's share of what buyers paid" in html
    assert [line["commission_minor"] for line in statement["lines"]] == [55, 100]


def test_a_statement_frozen_before_lines_had_a_commission_shows_it_from_its_figures(
    app: Any, activity: Activity
) -> None:
    activity.sale(OCTOBER_DAY, extra=250, fee=45)
    activity.payout(700, OCTOBER_DAY)
    activity.ad_period(OCTOBER, {"Demo": 5}, revenue=1000, closed_at=AFTER_OCTOBER)
    artist = activity.catalogue.artist
    current = service.statement(db.session, artist, OCTOBER, "USD")
    db.session.commit()
    stored = json.loads(db.session.query(Statement).one().content)
    assert stored["line_fields"][-1] == "commission_minor"
    stored["line_fields"].pop()
    for row in stored["lines"]:
        row.pop()
    old_text = json.dumps(stored, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    old_hash = hashlib.sha256(old_text.encode("utf-8")).hexdigest()
    db.session.query(Statement).update({"content": old_text, "content_hash": old_hash})
    db.session.commit()

    view = service.statement(db.session, artist, OCTOBER, "USD")

    assert view.content_hash == old_hash  # the stored text is what it was
    assert view.content == current.content
    assert [line.commission_minor for line in view.content.lines] == [55, 100, None, None]
    assert render(view, "csv") == render(current, "csv")


# Every item earns its artist at least one minor unit (10 at 10%), so each makes a sale line.
ITEMS = st.lists(
    st.tuples(st.booleans(), st.integers(10, 20_000), st.integers(0, 20_000)),
    min_size=1, max_size=3,
)  # fmt: skip


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=ITEMS,
    share_bps=st.one_of(st.just(9000), st.integers(BPS_WHOLE // 10, BPS_WHOLE)),
    policy=st.sampled_from([PLATFORM_ABSORBS, DEDUCT_BEFORE_SPLIT]),
    fee_part=st.floats(0, 1),
)
def test_every_sale_line_reconciles_whatever_the_prices_extras_share_and_fee(
    app: Any, items: list[tuple[bool, int, int]], share_bps: int, policy: str, fee_part: float
) -> None:
    """Each example sells one order of a new artist's releases (name your price: a minimum and
    an extra; fixed: a price), with a fee of any part of the total, under either policy."""
    config = {**app.config, "ARTIST_SHARE_BPS": share_bps, "FEE_POLICY": policy}
    artist = ArtistFactory()
    cart = []
    for name_your_price, minimum, extra in items:
        mode = PricingMode.NAME_YOUR_PRICE if name_your_price else PricingMode.FIXED
        release = ReleaseFactory(artist=artist, pricing_mode=mode, price_minor=minimum,
                                 minimum_price_minor=minimum)  # fmt: skip
        TrackFactory(release=release, status=TrackStatus.READY)
        amount = minimum + extra if name_your_price else None
        cart.append(commerce.CartLine(release.id, amount_minor=amount))
    order = commerce.create_order(db.session, UserFactory(), cart, gateway="sandbox",
                                  config=config)  # fmt: skip
    fee = int(order.total_minor * fee_part)
    commerce.record_payment(
        db.session,
        commerce.Payment(order_public_id=order.public_id, gateway="sandbox",
                         amount_minor=order.total_minor, currency="USD", fee_minor=fee,
                         paid_at=OCTOBER_DAY),  # fmt: skip
        config=config,
    )
    db.session.commit()

    content = service.statement(db.session, artist, OCTOBER, "USD").content

    lines = sale_lines(content)
    assert len(lines) == len(items) == len(content.lines)
    assert all(reconciles(line) for line in lines)
    assert sum(line.commission_minor or 0 for line in lines) == posted_to_platform(
        lines[0].transaction_id
    )
    assert content.closing_minor == sum(line.amount_minor for line in lines)
    assert from_json(content.canonical_json()) == content  # as a frozen statement reads it
