"""A statement's lines take its opening balance to its closing balance, which is the ledger's
balance at the period's last instant, in the content and in every format."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pypdf import PdfReader

from app.extensions import db
from app.ledger.money import Money
from app.statements import service
from app.statements.content import AD_SHARE, PAYOUT, PAYOUT_REVERSAL, StatementContent
from app.statements.render import CSV_COLUMNS, render
from tests.functional.statements.conftest import (
    OCTOBER,
    OCTOBER_LAST_INSTANT,
    OCTOBER_START,
    Activity,
    make_catalogue,
    random_activity,
)

SEEDS = range(4)


def ledger_balance(app: Any, slug: str, at: Any) -> str:
    """What ``megabox ledger balance SLUG --at AT`` prints."""
    result = app.test_cli_runner().invoke(args=["ledger", "balance", slug, "--at", at.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def plain(content: StatementContent, minor: int) -> str:
    return Money(minor, content.currency).format_plain()


@pytest.mark.parametrize("fee_policy", ["platform_absorbs", "deduct_before_split"])
@pytest.mark.parametrize("seed", SEEDS)
def test_statement_reconciles_with_the_ledger_in_every_format(
    make_app: Any, seed: int, fee_policy: str
) -> None:
    app = make_app(FEE_POLICY=fee_policy)
    with app.app_context():
        catalogue = make_catalogue()
        random_activity(Activity(app, catalogue), seed)
        artist = catalogue.artist
        view = service.statement(db.session, artist, OCTOBER, "USD")
        db.session.commit()
        content = view.content

        assert {AD_SHARE, PAYOUT, PAYOUT_REVERSAL} <= {line.kind for line in content.lines}
        assert content.opening_minor + content.lines_total_minor == content.closing_minor
        assert sum(content.totals().values()) == content.closing_minor - content.opening_minor
        closing = ledger_balance(app, artist.slug, OCTOBER_LAST_INSTANT)
        assert closing == f"USD {plain(content, content.closing_minor)}"
        opening = ledger_balance(app, artist.slug, OCTOBER_START - timedelta(microseconds=1))
        if content.opening_minor or opening != "no ledger entries":
            assert opening == f"USD {plain(content, content.opening_minor)}"

        rows = list(csv.DictReader(io.StringIO(render(view, "csv").decode("utf-8"))))
        assert tuple(rows[0]) == CSV_COLUMNS
        assert rows[0]["type"] == "opening_balance" and rows[-1]["type"] == "closing_balance"
        lines_sum = sum(Decimal(row["amount"]) for row in rows[1:-1])
        assert Decimal(rows[0]["amount"]) + lines_sum == Decimal(rows[-1]["amount"])
        assert f"USD {rows[-1]['amount']}" == closing
        assert len(rows) - 2 == len(content.lines)

        pdf = PdfReader(io.BytesIO(render(view, "pdf")))
        pdf_text = "".join(page.extract_text() for page in pdf.pages)
        html = render(view, "html").decode("utf-8")
        figures = [content.opening_minor, content.closing_minor, *content.totals().values()]
        for minor in figures:
            assert content.money(minor).format() in pdf_text
            assert content.money(minor).format() in html
