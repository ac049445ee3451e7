"""What the formats show beyond the figures: safe CSV cells, the command's output and hashes,
the downloads' headers, the ad rate as money, sales by item, and tables that fit a phone."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from app.extensions import db
from app.statements import service
from app.statements.content import AdShare
from app.statements.render import render
from tests.factories import ArtistFactory
from tests.functional.statements.conftest import OCTOBER, Activity, make_catalogue

OCTOBER_DAY = datetime(2026, 10, 4, 12, tzinfo=UTC)
AFTER_OCTOBER = datetime(2026, 11, 2, tzinfo=UTC)


def csv_rows(view: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(render(view, "csv").decode("utf-8"))))


def pdf_text(view: Any) -> str:
    """The PDF's text, every run of whitespace one space."""
    pages = PdfReader(io.BytesIO(render(view, "pdf"))).pages
    return " ".join(" ".join(page.extract_text() for page in pages).split())


@pytest.mark.parametrize("name", ['=HYPERLINK("http://evil.example","x")', "+1", "-2+3",
                                  "@SUM(A1)", "\tTabbed", "\rReturned"])  # fmt: skip
def test_a_csv_cell_that_looks_like_a_formula_is_written_as_text(
    app: Any, name: str
) -> None:
    activity = Activity(app, make_catalogue(ArtistFactory(name=name)))
    order = activity.sale(OCTOBER_DAY)
    activity.refund(order, order.total_minor, OCTOBER_DAY)

    rows = csv_rows(service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD"))

    items = [row["item"] for row in rows[1:-1]]
    assert items and all(item.startswith(f"'{name} – ") for item in items)
    refund = rows[-2]
    assert refund["type"] == "refund" and refund["amount"] == "-11.70"  # a number still
    assert [row["amount"] for row in rows[1:3]] == ["2.70", "9.00"]


def test_an_ordinary_csv_cell_is_left_as_it_is(app: Any, activity: Activity) -> None:
    activity.sale(OCTOBER_DAY)
    rows = csv_rows(service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD"))
    name = activity.catalogue.artist.name
    assert [row["item"] for row in rows[1:-1]] == [f"{name} – Sketches", f"{name} – Long Player"]


def test_the_command_writes_to_standard_output_with_a_dash(
    app: Any, activity: Activity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    activity.sale(OCTOBER_DAY)
    activity.ad_period(OCTOBER, {"Demo": 10}, revenue=500, closed_at=AFTER_OCTOBER)
    slug = activity.catalogue.artist.slug
    monkeypatch.chdir(tmp_path)
    runner = app.test_cli_runner()

    to_stdout = runner.invoke(args=["statement", slug, OCTOBER, "--format", "csv", "-o", "-"])
    to_file = runner.invoke(args=["statement", slug, OCTOBER, "--format", "csv", "-o", "s.csv"])

    assert to_stdout.exit_code == 0 and to_file.exit_code == 0, to_stdout.output + to_file.output
    written = (tmp_path / "s.csv").read_bytes()
    assert to_stdout.stdout_bytes == written and written.startswith(b"date,type,")
    assert not (tmp_path / "-").exists()
    content_hash = service.statement(db.session, activity.catalogue.artist, OCTOBER,
                                     "USD").content_hash  # fmt: skip
    assert f"content sha256 {content_hash}" in to_stdout.stderr
    file_hash = hashlib.sha256(written).hexdigest()
    assert f"content sha256 {content_hash}; file sha256 {file_hash}" in to_file.stdout
    assert content_hash != file_hash


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("csv", "text/csv; charset=utf-8"), ("html", "text/html; charset=utf-8"),
     ("pdf", "application/pdf")],
)  # fmt: skip
def test_a_download_names_its_charset_once(
    client: Any, auth: Any, activity: Activity, fmt: str, content_type: str
) -> None:
    activity.sale(OCTOBER_DAY)
    auth.login(activity.catalogue.artist.owner.email)
    slug = activity.catalogue.artist.slug

    response = client.get(f"/studio/statements/{slug}/{OCTOBER}/USD.{fmt}")

    assert response.status_code == 200 and response.headers["Content-Type"] == content_type


def test_the_ad_rate_shows_as_money_and_stays_exact_in_the_api(
    client: Any, auth: Any, activity: Activity
) -> None:
    activity.ad_period(OCTOBER, {"Demo": 7}, revenue=10_000, closed_at=AFTER_OCTOBER)
    artist = activity.catalogue.artist
    view = service.statement(db.session, artist, OCTOBER, "USD")
    db.session.commit()

    html = render(view, "html").decode("utf-8")
    pdf = pdf_text(view)
    # 9000 cents over 7 plays: 1,285,714.29 cents per 1000 plays.
    for text in (html, pdf):
        assert "$12,857.14" in text and "per 1,000 plays" in text and "12857.1429" not in text
    auth.login(artist.owner.email)
    (statement,) = client.get(f"/api/v1/artists/{artist.slug}/statements/{OCTOBER}").get_json()
    assert statement["ads"][0]["rate_per_1000"] == "12857.1429"


@pytest.mark.parametrize(
    ("amount", "plays", "minor"),
    [(1, 2000, 0), (3, 2000, 2), (5, 2000, 2), (7, 2000, 4), (2077, 3, 692333), (0, 5, 0),
     (10, 0, 0)],
)  # fmt: skip
def test_the_rate_rounds_half_to_even_to_the_minor_unit(amount: int, plays: int,
                                                        minor: int) -> None:  # fmt: skip
    share = AdShare("2026-10", "pro_rata", plays, amount, plays, amount, "", ())
    assert share.rate_per_1000_minor() == minor


def test_sales_by_item_lists_sales_only_with_blanks_like_the_lines(
    app: Any, activity: Activity
) -> None:
    activity.sale(OCTOBER_DAY)
    activity.sale(OCTOBER_DAY, extra=200)
    activity.payout(1000, OCTOBER_DAY)
    view = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD")

    name = activity.catalogue.artist.name
    totals = [(t.item, t.quantity, t.amount_minor) for t in view.content.sales_by_item()]
    assert totals == [(f"{name} – Long Player", 2, 1800), (f"{name} – Sketches", 2, 720)]
    html = render(view, "html").decode("utf-8")
    by_item = html[html.index("Sales by item") : html.index('<h2 class="section-title">Lines')]
    assert "Payout" not in by_item and "$0.00" not in by_item and "$2.00" in by_item
    pdf = pdf_text(view)
    pdf_by_item = pdf[pdf.index("Sales by item") : pdf.index("Lines Date")]
    assert "Payout" not in pdf_by_item and "$0.00" not in pdf_by_item and "$2.00" in pdf_by_item
    pdf_lines = pdf[pdf.index("Lines Date") :]
    assert "Payout" in pdf_lines and "$0.00" not in pdf_lines


def test_wide_tables_scroll_in_their_box_and_dates_do_not_wrap(
    app: Any, activity: Activity
) -> None:
    activity.sale(OCTOBER_DAY)
    activity.ad_period(OCTOBER, {"Demo": 7, "Opening Song": 3}, revenue=10_000,
                       closed_at=AFTER_OCTOBER)  # fmt: skip
    html = render(service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD"),
                  "html").decode("utf-8")  # fmt: skip

    tables = re.findall(r'<table class="table ([\w-]+)', html)
    scrolled = re.findall(
        r'<div class="table-scroll" role="region" aria-label="[^"]+" tabindex="0">\s*'
        r'<table class="table ([\w-]+)', html
    )  # fmt: skip
    assert tables == ["statement-summary", *scrolled]
    assert scrolled == ["statement-ads", "statement-items", "statement-lines"]
    dates = re.findall(r"<td( class=\"nowrap\")?>2026-10-\d\d</td>", html)
    assert dates == [' class="nowrap"'] * 3  # two sale lines and the ad share
    assert ".nowrap { white-space: nowrap; }" in html
