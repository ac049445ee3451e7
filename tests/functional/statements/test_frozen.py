"""A closed period's statement is frozen: every rendering, in every format, is the same bytes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.commerce.models import OrderItem
from app.extensions import db
from app.statements import service
from app.statements.models import Statement
from tests.functional.statements.conftest import OCTOBER, Activity, random_activity

FORMATS = ("html", "csv", "pdf")


def write(app: Any, slug: str, fmt: str, path: Path, period: str = OCTOBER) -> bytes:
    result = app.test_cli_runner().invoke(
        args=["statement", slug, period, "--format", fmt, "-o", str(path)]
    )
    assert result.exit_code == 0, result.output
    return path.read_bytes()


@pytest.mark.parametrize("fmt", FORMATS)
def test_regenerating_a_closed_statement_gives_the_same_bytes_and_hash(
    app: Any, activity: Activity, tmp_path: Path, fmt: str
) -> None:
    random_activity(activity, seed=7, sales=6)
    slug = activity.catalogue.artist.slug

    first = write(app, slug, fmt, tmp_path / "first")
    # Nothing a statement shows may change it once frozen: not even an item's title.
    db.session.execute(OrderItem.__table__.update().values(title="Renamed"))
    db.session.commit()
    second = write(app, slug, fmt, tmp_path / "second")

    assert first == second and len(first) > 1000
    stored = db.session.query(Statement).one()
    assert stored.content_hash == hashlib.sha256(stored.content.encode()).hexdigest()
    view = service.statement(db.session, activity.catalogue.artist, OCTOBER, "USD")
    assert view.content_hash == stored.content_hash
    if fmt == "html":
        assert stored.content_hash.encode() in first
    assert b"Renamed" not in second


def test_the_statement_shows_its_hash_and_an_open_one_is_provisional(
    app: Any, activity: Activity, tmp_path: Path
) -> None:
    activity.sale(datetime(2026, 10, 4, tzinfo=UTC))
    activity.sale(datetime(2026, 11, 4, tzinfo=UTC))
    closed_at = datetime(2026, 11, 2, tzinfo=UTC)
    activity.ad_period(OCTOBER, {"Demo": 10}, revenue=500, closed_at=closed_at)
    slug = activity.catalogue.artist.slug

    closed = write(app, slug, "html", tmp_path / "october.html").decode()
    stored = db.session.query(Statement).one()
    assert stored.content_hash in closed and "Final" in closed
    november = write(app, slug, "html", tmp_path / "november.html", period="2026-11").decode()
    assert "Provisional" in november and "Content hash" not in november
    assert db.session.query(Statement).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", OCTOBER], "No artist called 'nobody'."),
        (["{slug}", "2026-13"], "'2026-13' is not a period"),
        (["{slug}", "2999-01"], "No such statement."),
        (["{slug}", OCTOBER, "--format", "xls"], "unknown format 'xls'"),
        (["{slug}", OCTOBER, "--currency", "EUR"], "No such statement."),
    ],
)
def test_the_command_says_what_is_wrong_in_one_line(
    app: Any, activity: Activity, tmp_path: Path, args: list[str], message: str
) -> None:
    activity.sale(datetime(2026, 10, 4, tzinfo=UTC))
    slug = activity.catalogue.artist.slug
    argv = ["statement", *(a.format(slug=slug) for a in args), "-o", str(tmp_path / "out")]

    result = app.test_cli_runner().invoke(args=argv)

    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
