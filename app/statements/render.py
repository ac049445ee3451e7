"""A statement in each of its formats: HTML, CSV and PDF (``app.statements.pdf``).

Every format is made from the statement's content alone (never from the database), so a
frozen statement gives the same bytes each time. The HTML and PDF show the totals, a chart of
the earnings by day, the ad share, the lines added up by item and, up to
``STATEMENT_DETAIL_LINES_MAX`` lines, each line; the CSV always has every line.

CSV columns (the header row names them; they only ever gain columns at the end):

==================  =============================================================================
``date``            when the money moved, ``YYYY-MM-DD`` (UTC)
``type``            ``opening_balance``, ``sale``, ``processing_fee``, ``refund``, ``chargeback``,
                    ``sale_reinstated``, ``ad_share``, ``payout``, ``payout_reversal``, any other
                    ledger kind, ``closing_balance``
``reference``       the order's public id (a refund or chargeback has its sale's), the ad
                    period, ``payout <id>``
``item``            the track or release title, or what the line is
``item_type``       ``track`` or ``release`` for sales
``quantity``        1 per item sold; the counted plays of an ad share
``price_paid``      what the buyer paid for the item
``extra``           what a name-your-price buyer paid above the minimum
``processor_fee``   the processor's fee deducted from the artist's share (``deduct_before_split``)
``amount``          what the line adds to the balance (negative: a refund, a payout); for the
                    balance rows, the balance
``currency``        ISO 4217
``linked_sale``     a refund's, chargeback's or dispute's sale date
``transaction_id``  the ledger transaction
``commission``      on a sale, the platform's share of the price paid (the extra included), so
                    ``price_paid - commission - processor_fee = amount``
==================  =============================================================================

Amounts are decimals in major units (``7.00``, ``-0.90``; ``700`` for JPY). The opening
balance plus the ``amount`` of every line is the closing balance. When the statement does not
cover its calendar month (a month closed early, ``app.statements.lines``), the two balance
rows' ``item`` says what it covers: "Closing balance, 1 Dec – 3 Dec 2026, 10:04 UTC (the
month was closed early)".

A text cell that a spreadsheet would take for a formula (it starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return: an artist named ``=HYPERLINK(...)``) is written with a
single quote before it, which spreadsheets read as "this is text". Amounts and other numbers
are written as they are, so a negative amount stays a number.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from pathlib import Path

from flask import current_app
from markupsafe import Markup

from app.charts import svg_bar_chart
from app.ledger.money import Money
from app.statements.content import StatementContent, StatementView
from app.statements.pdf import pdf_document

FORMATS = ("html", "csv", "pdf")
# Whole Content-Type values, charset included: sent as they are.
MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
CSV_COLUMNS = (
    "date", "type", "reference", "item", "item_type", "quantity", "price_paid", "extra",
    "processor_fee", "amount", "currency", "linked_sale", "transaction_id", "commission",
)  # fmt: skip
OPENING_BALANCE = "opening_balance"
CLOSING_BALANCE = "closing_balance"
DEFAULT_DETAIL_LINES_MAX = 2000
# What makes a spreadsheet read a cell as a formula (module docstring).
FORMULA_STARTS = frozenset("=+-@\t\r")
STYLESHEET = Path(__file__).resolve().parents[1] / "static" / "statements.css"


def detail_lines_max() -> int:
    """How many lines the HTML and PDF list one by one (``STATEMENT_DETAIL_LINES_MAX``)."""
    return int(current_app.config.get("STATEMENT_DETAIL_LINES_MAX", DEFAULT_DETAIL_LINES_MAX))


def file_name(content: StatementContent, fmt: str) -> str:
    """``statement-<artist>-<period>-<currency>.<fmt>``."""
    return f"statement-{content.artist_slug}-{content.period}-{content.currency}.{fmt}"


def earnings_chart(content: StatementContent) -> Markup:
    """The period's earnings by day as an SVG bar chart."""
    return svg_bar_chart(
        [(day[5:], minor) for day, minor in content.earnings_by_day()],
        title=f"Earnings by day, {content.span_label()} ({content.currency})",
        label=lambda minor: Money(minor, content.currency).format(),
    )


def html_document(view: StatementView) -> bytes:
    """The statement as a standalone HTML page (its stylesheet inline): what ``megabox
    statement --format html`` writes and the HTML download serves."""
    # Straight from the environment: no context processors, so the page holds nothing of the
    # request (or of its absence, in the CLI) and the same content gives the same bytes.
    page = current_app.jinja_env.get_template("statements/document.html").render(
        view=view,
        statement=view.content,
        chart=earnings_chart(view.content),
        detail_lines_max=detail_lines_max(),
        stylesheet=Markup(STYLESHEET.read_text(encoding="utf-8")),
    )
    return page.encode("utf-8")


def csv_document(view: StatementView) -> bytes:
    """The statement's lines as CSV (module docstring), between its two balance rows."""
    content = view.content
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)

    # Remembered per amount: a statement of 100k sales holds a few hundred distinct ones.
    @cache
    def amount(minor: int | None) -> str:
        return "" if minor is None else Money(minor, content.currency).format_plain()

    def balance_row(kind: str, day: str, balance: str) -> list[str]:
        row = dict.fromkeys(CSV_COLUMNS, "")
        label = kind.replace("_", " ").capitalize()
        if content.starts_late or content.ends_early:
            label = f"{label}, {content.span_label()}"
        row.update(date=day, type=kind, item=label, amount=balance, currency=content.currency)
        return list(row.values())

    opening_day = content.starts_at[:10]
    writer.writerow(balance_row(OPENING_BALANCE, opening_day, amount(content.opening_minor)))
    writer.writerows(
        (
            line.day, _text_cell(line.kind), _text_cell(line.reference), _text_cell(line.item),
            _text_cell(line.item_type), "" if line.quantity is None else line.quantity,
            amount(line.price_paid_minor), amount(line.extra_minor), amount(line.fee_minor),
            amount(line.amount_minor), content.currency, _text_cell(line.linked_sale),
            line.transaction_id, amount(line.commission_minor),
        )  # fmt: skip
        for line in content.lines
    )
    writer.writerow(
        balance_row(CLOSING_BALANCE, content.last_day, amount(content.closing_minor))
    )
    return buffer.getvalue().encode("utf-8")


def _text_cell(value: str) -> str:
    """A text cell as a spreadsheet must see it: as text, never a formula (module docstring)."""
    return f"'{value}" if value[:1] in FORMULA_STARTS else value


def render(view: StatementView, fmt: str) -> bytes:
    """The statement in ``fmt`` (one of ``FORMATS``). Raises ValueError for another."""
    if fmt == "html":
        return html_document(view)
    if fmt == "csv":
        return csv_document(view)
    if fmt == "pdf":
        return pdf_document(view, detail_lines_max())
    raise ValueError(f"unknown statement format {fmt!r}")
