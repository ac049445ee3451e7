"""A month closed early ends its statement at the close: what happens after it is in the next
month's statement, which opens where the early one closes, and the list shows the frozen one."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pypdf import PdfReader

from app.extensions import db
from app.statements import service
from app.statements.content import StatementView
from app.statements.models import Statement
from app.statements.render import render
from tests.functional.statements.conftest import Activity
from tests.functional.statements.test_reconciliation import ledger_balance, plain

DECEMBER, JANUARY = "2026-12", "2027-01"
CLOSED_AT = datetime(2026, 12, 3, 10, 4, tzinfo=UTC)
CUT = CLOSED_AT + timedelta(microseconds=1)  # December's statement ends, January's begins
AFTER_THE_CLOSE = datetime(2026, 12, 5, 9, tzinfo=UTC)
READ_AT = datetime(2026, 12, 10, tzinfo=UTC)  # December closed, January begun
JANUARY_LAST_INSTANT = datetime(2027, 2, 1, tzinfo=UTC) - timedelta(microseconds=1)


@pytest.fixture
def early(activity: Activity) -> Activity:
    """A sale on 2 December (1170 to the artist), then December closed early on the 3rd."""
    activity.sale(datetime(2026, 12, 2, 15, tzinfo=UTC))
    activity.ad_period(DECEMBER, {"Demo": 10}, revenue=1000, closed_at=CLOSED_AT, early=True)
    return activity


def statement(activity: Activity, key: str) -> Any:
    view = service.statement(db.session, activity.catalogue.artist, key, "USD", now=READ_AT)
    db.session.commit()  # December's is frozen on its first reading
    return view


def test_a_sale_and_a_payout_after_an_early_close_are_in_the_next_months_statement(
    early: Activity,
) -> None:
    december = statement(early, DECEMBER)
    early.sale(AFTER_THE_CLOSE)
    early.payout(500, AFTER_THE_CLOSE)

    january = statement(early, JANUARY)

    after_the_close = [
        (line.kind, line.at) for line in january.content.lines if line.at.startswith("2026-12")
    ]
    assert after_the_close == [("sale", AFTER_THE_CLOSE.isoformat())] * 2 + [
        ("payout", AFTER_THE_CLOSE.isoformat())
    ]
    assert january.provisional and january.content.starts_at == CUT.isoformat()
    assert january.content.opening_minor == december.content.closing_minor == 1170 + 900
    assert january.content.closing_minor == 2070 + 1170 - 500
    assert statement(early, DECEMBER) == december  # frozen, unchanged
    assert december.content.ends_at == CUT.isoformat()
    assert [line.kind for line in december.content.lines] == ["sale", "sale", "ad_share"]


def test_the_early_months_statement_stops_at_the_close_whenever_it_is_first_read(
    app: Any, early: Activity
) -> None:
    early.sale(AFTER_THE_CLOSE)
    early.payout(500, AFTER_THE_CLOSE)
    slug = early.catalogue.artist.slug

    december = statement(early, DECEMBER)  # first read after the later sale: frozen now
    january = statement(early, JANUARY)

    assert all(line.at < CUT.isoformat() for line in december.content.lines)
    assert january.content.opening_minor == december.content.closing_minor
    # The ledger at the cut's last instant, the close itself, agrees with both.
    closing = december.content.closing_minor
    assert ledger_balance(app, slug, CLOSED_AT) == f"USD {plain(december.content, closing)}"
    assert ledger_balance(app, slug, JANUARY_LAST_INSTANT) == (
        f"USD {plain(january.content, january.content.closing_minor)}"
    )
    rows = list(csv.DictReader(io.StringIO(render(january, "csv").decode("utf-8"))))
    assert (rows[0]["date"], rows[0]["amount"]) == ("2026-12-03", "20.70")
    assert rows[-1]["amount"] == "27.40"


def test_the_statements_say_what_they_cover_in_every_format(early: Activity) -> None:
    december, january = statement(early, DECEMBER), statement(early, JANUARY)
    december_span = "1 Dec – 3 Dec 2026, 10:04 UTC (the month was closed early)"
    january_span = "3 Dec 2026, 10:04 – 31 Jan 2027 UTC (December 2026 was closed early)"

    assert december.content.span_label() == december_span
    assert january.content.span_label() == january_span
    for view, span in ((december, december_span), (january, january_span)):
        pdf = PdfReader(io.BytesIO(render(view, "pdf")))
        assert span in " ".join(pdf.pages[0].extract_text().split())
        html = render(view, "html").decode("utf-8")
        first, last, note = view.content.span()
        assert (f'<span class="nowrap">{first}</span> – <span class="nowrap">{last} UTC</span>'
                f" ({note})") in html  # fmt: skip
        rows = list(csv.DictReader(io.StringIO(render(view, "csv").decode("utf-8"))))
        assert rows[0]["item"] == f"Opening balance, {span}"
        assert rows[-1]["item"] == f"Closing balance, {span}"
    december_rows = list(csv.DictReader(io.StringIO(render(december, "csv").decode("utf-8"))))
    assert (december_rows[0]["date"], december_rows[-1]["date"]) == ("2026-12-01", "2026-12-03")


def test_a_calendar_month_says_so_without_a_note(activity: Activity) -> None:
    activity.sale(datetime(2026, 10, 4, tzinfo=UTC))
    content = service.statement(db.session, activity.catalogue.artist, "2026-10", "USD").content

    assert content.span_label() == "1 Oct – 31 Oct 2026 UTC"
    rows = list(csv.DictReader(io.StringIO(render(StatementView(content), "csv").decode())))
    assert (rows[0]["item"], rows[-1]["item"]) == ("Opening balance", "Closing balance")
    assert (rows[0]["date"], rows[-1]["date"]) == ("2026-10-01", "2026-10-31")


def test_the_list_shows_a_closed_months_frozen_figures_not_the_live_balance(
    client: Any, auth: Any, early: Activity
) -> None:
    statement(early, DECEMBER)  # frozen: 20.70
    early.sale(AFTER_THE_CLOSE)  # then money moves, and would move a live balance
    artist = early.catalogue.artist

    listed = service.artist_statements(db.session, artist, now=READ_AT)

    assert [(s.period, s.closed, s.closing_minor) for s in listed] == [
        (JANUARY, False, 2070 + 1170), (DECEMBER, True, 2070),
    ]  # fmt: skip
    auth.login(artist.owner.email)
    rows = {row["period"]: row for row in client.get(f"/api/v1/artists/{artist.slug}/statements")
            .get_json()}  # fmt: skip
    assert (rows[DECEMBER]["status"], rows[DECEMBER]["closing_minor"]) == ("final", 2070)
    assert (rows[JANUARY]["status"], rows[JANUARY]["closing_minor"]) == ("provisional", 3240)
    page = client.get("/studio/statements").get_data(as_text=True)
    assert "$20.70" in page and f"/{artist.slug}/{JANUARY}/USD" in page


def test_a_closed_month_the_list_reads_first_is_frozen_then(early: Activity) -> None:
    artist = early.catalogue.artist
    assert db.session.query(Statement).count() == 0

    listed = service.artist_statements(db.session, artist, now=READ_AT)
    db.session.commit()

    stored = db.session.query(Statement).one()
    assert (stored.artist_id, stored.currency) == (artist.id, "USD")
    december = statement(early, DECEMBER)
    assert december.content_hash == stored.content_hash
    assert [s.closing_minor for s in listed if s.period == DECEMBER] == [
        december.content.closing_minor
    ]
