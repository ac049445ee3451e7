"""``megabox period close|list`` and ``megabox pool preview``."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.timestamps import utcnow
from app.pools.periods import bounds, period_key
from app.ledger.models import LedgerTransaction
from app.pools.models import Period, PeriodStatus, PoolModel, RevenueSource

THREE_LISTENERS_CSV = "listener,track\n" + "".join(
    f"{listener},{track}\n"
    for listener, track, count in [("U1", "A", 9), ("U1", "B", 1), ("U2", "B", 10), ("U3", "C", 1)]
    for _ in range(count)
)


NO_PLAYS_HEADER = "plays.csv line 1: the header must be listener,track"


def november() -> Period:
    return db.session.scalars(select(Period).where(Period.key == "2026-11")).one()


def test_period_close_closes_and_reports(runner, three_listeners):
    result = runner.invoke(
        args=["period", "close", "2026-11", "--model", "user_centric", "--revenue", "100,00"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Closed 2026-11 (user_centric): revenue $100.00 (entered), pool $90.00 (90%), "
        "platform $10.00.",
        "21 earning plays of 3 tracks; 2 artists paid.",
        f"Ledger transaction {november().ledger_transaction_id} (period:2026-11).",
    ]
    period = november()
    assert (period.status, period.model, period.closed_revenue_minor) == (
        PeriodStatus.CLOSED, PoolModel.USER_CENTRIC, 10_000,
    )  # fmt: skip


def test_period_close_twice_says_so_and_posts_once(runner, three_listeners):
    assert runner.invoke(args=["period", "close", "2026-11", "--revenue", "12"]).exit_code == 0
    again = runner.invoke(args=["period", "close", "2026-11", "--revenue", "99"])
    assert again.exit_code == 0
    assert again.output.startswith("2026-11 was already closed on ")
    assert again.output.endswith("; nothing changed.\n")
    assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
    assert november().closed_revenue_minor == 1200


def test_period_close_uses_impressions_without_revenue(runner, three_listeners, listening):
    listening.impressions("U1", 2, cpm_minor=5_000)
    result = runner.invoke(args=["period", "close", "2026-11"])
    assert result.exit_code == 0, result.output
    assert "revenue $0.10 (impressions)" in result.output
    assert november().revenue_source is RevenueSource.IMPRESSIONS


def test_period_close_refuses_an_open_month_unless_early(runner, app):
    # The current month: begun, not ended.
    month = period_key(utcnow())
    month_end = bounds(month)[1]
    result = runner.invoke(args=["period", "close", month])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"megabox: Period {month} runs until {month_end:%Y-%m-%d} 00:00 UTC.")
    assert db.session.scalar(select(Period.status).where(Period.key == month)) is None
    early = runner.invoke(args=["period", "close", month, "--early"])
    assert early.exit_code == 0, early.output
    assert "No revenue: no ledger transaction." in early.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["2026-13"],
            "megabox: '2026-13' is not a period: write the year and month, as in 2026-11.\n",
        ),
        (["2026-11", "--revenue", "-5"], "megabox: --revenue: Revenue cannot be negative.\n"),
        (["2026-11", "--revenue", "1,200"], None),
        (["2026-11", "--revenue", ""], "megabox: --revenue: write an amount, e.g. 1200.50\n"),
    ],
)
def test_period_close_reports_bad_input_in_one_line(runner, app, args, message):
    result = runner.invoke(args=["period", "close", *args])
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("megabox: ")
    if message is not None:
        assert result.stderr == message
    assert db.session.scalar(select(func.count()).select_from(LedgerTransaction)) == 0


def test_period_list_shows_newest_first(runner, three_listeners):
    runner.invoke(args=["period", "close", "2026-11", "--revenue", "30"])
    runner.invoke(args=["period", "close", "2026-12", "--early"])
    result = runner.invoke(args=["period", "list"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "2026-12  closed  pro_rata      $0.00",
        "2026-11  closed  pro_rata      $30.00",
    ]


# megabox pool preview ----------------------------------------------------------------------


def preview(runner, tmp_path: Path, plays: str, *args: str, impressions: str | None = None):
    plays_csv = tmp_path / "plays.csv"
    plays_csv.write_text(plays)
    extra = []
    if impressions is not None:
        imps_csv = tmp_path / "imps.csv"
        imps_csv.write_text(impressions)
        extra = ["--impressions", str(imps_csv)]
    return runner.invoke(args=["pool", "preview", "--plays", str(plays_csv), *extra, *args])


@pytest.mark.parametrize(
    ("model", "csv"),
    [
        ("pro_rata", "track,plays,amount\nA,9,1286\nB,11,1571\nC,1,143\n"),
        ("user_centric", "track,plays,amount\nA,9,900\nB,11,1100\nC,1,1000\n"),
    ],
)
def test_pool_preview_prints_the_oracle(runner, app, tmp_path, model, csv):
    result = preview(
        runner, tmp_path, THREE_LISTENERS_CSV,
        "--revenue", "3000", "--model", model, "--pool-share-bps", "10000",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == csv


def test_pool_preview_weighs_listeners_by_their_impressions(runner, app, tmp_path):
    plays = "listener,track\r\n" + "A,t1\r\n" + "B,t2\r\n" * 31
    impressions = "\ufefflistener,impressions\nA,1000\nB,1000\n"
    result = preview(
        runner, tmp_path, plays, "--revenue", "2000", "--model", "pro_rata",
        "--pool-share-bps", "10000", impressions=impressions,
    )  # fmt: skip
    assert result.stdout == "track,plays,amount\nt1,1,63\nt2,31,1937\n"


def test_pool_preview_takes_the_pool_share_from_the_settings(runner, app, tmp_path):
    result = preview(
        runner, tmp_path, THREE_LISTENERS_CSV, "--revenue", "10000", "--model", "user_centric"
    )
    assert result.stdout == "track,plays,amount\nA,9,2700\nB,11,3300\nC,1,3000\n"


@pytest.mark.parametrize(
    ("plays", "impressions", "message"),
    [
        ("", None, f"{NO_PLAYS_HEADER} (missing listener, track)"),
        ("U1,A\nU2,B\n", None, f"{NO_PLAYS_HEADER} (missing listener, track)"),
        ("listener,song\nU1,A\n", None, f"{NO_PLAYS_HEADER} (missing track)"),
        (
            "listener,track\nU1,A\nU2\n", None,
            "plays.csv line 3: expected 2 columns (listener,track), found 1",
        ),
        ("listener,track\nU1,\n", None, "plays.csv line 2: the track is empty"),
        ("listener,track\nU1,A\n", "listener,impressions\nU1,-3\n",
         "imps.csv line 2: impressions must be a whole number from 0 to 1,000,000,000, not '-3'"),
        ("listener,track\nU1,A\n", "listener,impressions\nU1,2.5\n",
         "imps.csv line 2: impressions must be a whole number from 0 to 1,000,000,000, not '2.5'"),
        (
            "listener,track\nU1,A\n", "listener,views\n",
            "imps.csv line 1: the header must be listener,impressions (missing impressions)",
        ),
    ],
)
def test_pool_preview_refuses_bad_csv_in_one_line(
    runner, app, tmp_path, plays, impressions, message
):
    result = preview(
        runner, tmp_path, plays, "--revenue", "100", "--model", "user_centric",
        impressions=impressions,
    )  # fmt: skip
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == f"megabox: {message}\n"


def test_pool_preview_refuses_a_negative_revenue(runner, app, tmp_path):
    result = preview(
        runner, tmp_path, THREE_LISTENERS_CSV, "--revenue", "-1", "--model", "pro_rata"
    )
    assert result.exit_code == 2 and "--revenue" in result.stderr


def test_pool_preview_streams_a_large_file(runner, app, tmp_path):
    # More rows than one batch: they reach the table in several executemany calls.
    rows = "".join(f"l{i % 997},t{i % 13}\n" for i in range(25_000))
    result = preview(
        runner, tmp_path, "listener,track\n" + rows,
        "--revenue", "1000000", "--model", "user_centric",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "track,plays,amount" and len(lines) == 14
    assert sum(int(line.split(",")[2]) for line in lines[1:]) == 900_000
    assert sum(int(line.split(",")[1]) for line in lines[1:]) == 25_000
