"""The admin's period pages: admins only, the preview of both models, the close."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.timestamps import utcnow
from app.pools.periods import bounds, period_key
from app.ledger.models import LedgerTransaction
from app.pools.models import Period, PeriodStatus, PoolModel
from tests.factories import UserFactory


def november() -> Period | None:
    return db.session.scalar(select(Period).where(Period.key == "2026-11"))


def transactions() -> int:
    return db.session.scalar(select(func.count()).select_from(LedgerTransaction))


@pytest.mark.parametrize(
    "path", ["/admin/periods", "/admin/periods/2026-11", "/admin/periods/2026-11/ledger"]
)
def test_anonymous_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_listeners_cannot_see_or_close_periods(client, auth, three_listeners):
    auth.login(UserFactory().email)
    assert client.get("/admin/periods").status_code == 403
    assert client.get("/admin/periods/2026-11").status_code == 403
    closing = client.post("/admin/periods/2026-11/close", data={"model": "pro_rata"})
    saving = client.post("/admin/periods/2026-11", data={"revenue": "5", "model": "pro_rata"})
    assert closing.status_code == saving.status_code == 403
    assert november().status is PeriodStatus.OPEN and november().revenue_minor is None


def test_the_list_shows_periods_newest_first(client, admin, three_listeners, listening):
    listening.plays("U1", three_listeners["A"], 2, key="2026-12")
    page = client.get("/admin/periods").get_data(as_text=True)
    table = page[page.index("<tbody>") :]
    assert table.index(">2026-12<") < table.index(">2026-11<")
    november_row = table[table.index(">2026-11<") :].split("</tr>")[0]
    assert "impressions × CPM" in november_row and ">21<" in november_row


def test_open_goes_to_any_month(client, admin):
    response = client.get("/admin/periods/open?period=2025-02")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/periods/2025-02"
    bad = client.get("/admin/periods/open?period=Feb")
    assert bad.status_code == 302 and bad.headers["Location"] == "/admin/periods"
    assert "Write the year and month" in client.get("/admin/periods").get_data(as_text=True)


def test_a_month_without_a_row_shows_an_empty_preview(client, admin):
    response = client.get("/admin/periods/2025-02")
    assert response.status_code == 200
    assert "No earning plays in this period yet" in response.get_data(as_text=True)
    assert db.session.scalar(select(Period)) is None  # looking writes nothing


def test_the_preview_shows_both_models_side_by_side(client, admin, three_listeners):
    client.post("/admin/periods/2026-11", data={"revenue": "33.34", "model": "user_centric"})
    page = client.get("/admin/periods/2026-11").get_data(as_text=True)
    # Pool 90% of 33.34 = 30.01 (a half goes to the pool): pro rata / user-centric per track.
    for title, pro_rata, user_centric in [
        ("Track A", "$12.86", "$9.00"),
        ("Track B", "$15.72", "$11.01"),
        ("Track C", "$1.43", "$10.00"),
    ]:  # fmt: skip
        row = page[page.index(title) :].split("</tr>")[0]
        assert pro_rata in row and user_centric in row, row
    assert "$30.01" in page and "$3.33" in page


def test_saving_revenue_and_model(client, admin, three_listeners):
    typed = {"revenue": "1.200,50", "model": "user_centric"}
    response = client.post("/admin/periods/2026-11", data=typed)
    assert response.status_code == 302
    assert (november().revenue_minor, november().model) == (120_050, PoolModel.USER_CENTRIC)
    cleared = client.post("/admin/periods/2026-11", data={"revenue": "", "model": "pro_rata"})
    assert cleared.status_code == 302
    assert (november().revenue_minor, november().model) == (None, PoolModel.PRO_RATA)


def test_a_bad_revenue_is_shown_under_its_field(client, admin, three_listeners):
    response = client.post("/admin/periods/2026-11", data={"revenue": "-3", "model": "pro_rata"})
    assert response.status_code == 422
    assert "Revenue cannot be negative." in response.get_data(as_text=True)
    assert november().revenue_minor is None


def test_closing_from_the_page_and_again_does_nothing(client, admin, three_listeners):
    client.post("/admin/periods/2026-11", data={"revenue": "30.00", "model": "pro_rata"})
    response = client.post("/admin/periods/2026-11/close", data={"model": "user_centric"})
    assert response.status_code == 302
    period = november()
    assert period.status is PeriodStatus.CLOSED and period.model is PoolModel.USER_CENTRIC
    assert period.closed_by_id == admin.id
    page = client.get("/admin/periods/2026-11").get_data(as_text=True)
    assert "Closed 2026-11: $27.00 split over 3 tracks, user-centric." in page
    assert f"Transaction {period.ledger_transaction_id}" in page
    assert "$8.10" in page and "$9.90" in page and "$9.00" in page  # 2700 by listener

    again = client.post("/admin/periods/2026-11/close", data={"model": "pro_rata"})
    assert again.status_code == 302 and transactions() == 1
    assert november().model is PoolModel.USER_CENTRIC
    page = client.get("/admin/periods/2026-11").get_data(as_text=True)
    assert "2026-11 was already closed; nothing changed." in page


def test_a_closed_period_refuses_new_settings(client, admin, three_listeners):
    client.post("/admin/periods/2026-11/close", data={"model": "pro_rata"})
    response = client.post(
        "/admin/periods/2026-11", data={"revenue": "9", "model": "pro_rata"},
        headers={"Referer": "/admin/periods/2026-11"},
    )  # fmt: skip
    assert response.status_code == 302
    page = client.get("/admin/periods/2026-11").get_data(as_text=True)
    assert "closed; its revenue and model are frozen" in page
    assert november().revenue_minor is None


def test_an_open_month_needs_the_early_box(client, admin):
    # The current month: begun, not ended.
    month = period_key(utcnow())
    month_end = bounds(month)[1]
    # Without a Referer too, the refusal leads back to the month's page.
    response = client.post(f"/admin/periods/{month}/close", data={"model": "pro_rata"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/periods/{month}")
    assert db.session.scalar(select(Period.status).where(Period.key == month)) is None
    assert f"runs until {month_end:%Y-%m-%d}" in client.get("/admin/periods").get_data(as_text=True)
    early = client.post(f"/admin/periods/{month}/close", data={"model": "pro_rata", "early": "on"})
    assert early.status_code == 302
    status = db.session.scalar(select(Period.status).where(Period.key == month))
    assert status is PeriodStatus.CLOSED


def test_the_ledger_page_lists_the_transaction(client, admin, three_listeners):
    client.post("/admin/periods/2026-11", data={"revenue": "10", "model": "pro_rata"})
    client.post("/admin/periods/2026-11/close", data={"model": "user_centric"})
    page = client.get("/admin/periods/2026-11/ledger").get_data(as_text=True)
    for text in ("period:2026-11", "ads_receivable:USD", "platform_ad_share:USD"):
        assert text in page
    assert "$10.00" in page and "$6.00" in page and "$3.00" in page and "$1.00" in page
    assert client.get("/admin/periods/2026-10/ledger").status_code == 404
