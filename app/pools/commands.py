"""``megabox period`` and ``megabox pool``: close a period, preview a pool split.

``megabox pool preview`` reads two CSV files into tables of an in-memory SQLite database and
runs the allocation of ``app.pools.allocation`` on them, the same code a period close runs:

- ``--plays``: the header ``listener,track``, then one row per counted (earning) play;
- ``--impressions``: the header ``listener,impressions``, then a listener's impressions (a
  whole number, 0 or more; a listener's rows add up). Without it, every listener who played
  has one impression, so all listeners weigh the same.

Keys are opaque text, and the output (``track,plays,amount``) is sorted by track key as text.
A file that does not follow this is refused with one line naming the file and line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
)

from app.cli import CommandError
from app.errors import DomainError
from app.extensions import db
from app.ledger.allocation import split_bps
from app.pools import service
from app.pools.allocation import PoolInputs, allocate_pool, equal_impressions
from app.pools.models import PeriodStatus, PoolModel
from app.pools.schemas import read_revenue
from app.timestamps import utcnow
from config import BPS_WHOLE

period_cli = AppGroup("period", help="Ad-revenue periods: close a month and pay its pool.")
pool_cli = AppGroup("pool", help="Ad-revenue pools: preview a split from CSV files.")

# Rows per executemany while a CSV file streams into its table.
CSV_BATCH_ROWS = 10_000
# More impressions than any one listener sees; keeps every sum within SQLite's 64 bits.
MAX_CSV_IMPRESSIONS = 10**9
MAX_CSV_KEY_LENGTH = 200
_WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")

MODEL_OPTION = click.Choice([model.value for model in PoolModel])


# megabox period ---------------------------------------------------------------------------


@period_cli.command("close")
@click.argument("key", metavar="YYYY-MM")
@click.option("--model", type=MODEL_OPTION, help="Split by this model [default: the period's].")
@click.option(
    "--revenue",
    metavar="AMOUNT",
    help="The ad network's figure, e.g. 1200.50 [default: impressions × CPM].",
)
@click.option("--early", is_flag=True, help="Close a period that has not ended yet.")
def close_command(key: str, model: str | None, revenue: str | None, early: bool) -> None:
    """Close a period: split its pool, credit the artists, freeze it (once)."""
    try:
        _close(key, model, revenue, early)
    except DomainError as exc:
        db.session.rollback()
        raise CommandError(exc.message) from None


def _close(key: str, model: str | None, revenue: str | None, early: bool) -> None:
    config = current_app.config
    found = service.find_period(db.session, key)
    currency = found.currency if found is not None else config["DEFAULT_CURRENCY"]
    if found is not None and found.status is PeriodStatus.CLOSED:
        _already_closed(found.key, found.closed_at)
        return
    try:
        revenue_minor = read_revenue(revenue, currency) if revenue is not None else None
    except ValidationError as exc:
        raise CommandError(f"--revenue: {' '.join(map(str, exc.messages))}") from None
    if revenue is not None and revenue_minor is None:
        raise CommandError("--revenue: write an amount, e.g. 1200.50")
    now = utcnow()
    period = service.close_period(
        db.session, config, key, model=model, revenue_minor=revenue_minor, now=now,
        allow_early=early,
    )  # fmt: skip
    if period.closed_at != now:  # another close got there first
        db.session.rollback()
        _already_closed(key, period.closed_at)
        return
    result = service.preview(db.session, config, key)
    db.session.commit()
    click.echo(
        f"Closed {result.key} ({result.model}): revenue {_money(result, result.revenue_minor)} "
        f"({result.revenue_source}), pool {_money(result, result.pool_minor)} "
        f"({result.pool_share_percent}%), platform {_money(result, result.platform_minor)}."
    )
    click.echo(
        f"{result.plays:,} earning plays of {len(result.rows):,} tracks; "
        f"{result.artists_paid:,} artists paid."
    )
    if result.ledger_transaction_id is not None:
        click.echo(f"Ledger transaction {result.ledger_transaction_id} (period:{result.key}).")
    else:
        click.echo("No revenue: no ledger transaction.")


def _already_closed(key: str, closed_at: Any) -> None:
    when = f" on {closed_at:%Y-%m-%d %H:%M} UTC" if closed_at else ""
    click.echo(f"{key} was already closed{when}; nothing changed.")


@period_cli.command("list")
def list_command() -> None:
    """List the periods, newest first: key, status, model, revenue."""
    summaries = service.period_summaries(db.session)
    if not summaries:
        click.echo("no periods yet")
    for summary in summaries:
        period = summary.period
        if summary.revenue_minor is None:
            revenue = "impressions × CPM"
        else:
            revenue = summary.money(summary.revenue_minor).format()
        click.echo(f"{period.key}  {period.status:<6}  {period.model:<12}  {revenue}")


def _money(result: service.PoolPreview, minor: int) -> str:
    return result.money(minor).format()


# megabox pool preview ---------------------------------------------------------------------

_CsvFile = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@pool_cli.command("preview")
@click.option("--plays", "plays_path", type=_CsvFile, required=True, help="CSV: listener,track")
@click.option("--impressions", "impressions_path", type=_CsvFile, help="CSV: listener,impressions")
@click.option("--revenue", type=click.IntRange(min=0), required=True, metavar="MINOR_UNITS")
@click.option("--model", type=MODEL_OPTION, required=True)
@click.option(
    "--pool-share-bps",
    type=click.IntRange(0, BPS_WHOLE),
    help="The artists' pool in basis points of the revenue [default: AD_POOL_SHARE_BPS].",
)
def preview_command(
    plays_path: Path,
    impressions_path: Path | None,
    revenue: int,
    model: str,
    pool_share_bps: int | None,
) -> None:
    """Split a pool over plays read from CSV; print track,plays,amount as CSV."""
    bps = current_app.config["AD_POOL_SHARE_BPS"] if pool_share_bps is None else pool_share_bps
    pool, _ = split_bps(revenue, int(bps))
    engine = create_engine("sqlite://")
    try:
        with engine.begin() as connection:
            inputs = load_csv_inputs(connection, plays_path, impressions_path)
            allocation = allocate_pool(connection, inputs, pool, PoolModel(model))
    finally:
        engine.dispose()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["track", "plays", "amount"])
    for share in allocation.shares:
        writer.writerow([share.track, share.plays, share.amount])
    click.echo(out.getvalue(), nl=False)


def pool_tables(connection: Connection) -> tuple[Table, Table]:
    """Empty ``plays(listener, track)`` and ``impressions(listener, impressions)`` tables,
    created in ``connection``'s (in-memory) database."""
    metadata = MetaData()
    plays = Table(
        "plays", metadata, Column("listener", String, nullable=False),
        Column("track", String, nullable=False),
    )  # fmt: skip
    impressions = Table(
        "impressions", metadata, Column("listener", String, nullable=False),
        Column("impressions", BigInteger, nullable=False),
    )  # fmt: skip
    metadata.create_all(connection)
    return plays, impressions


def load_csv_inputs(
    connection: Connection, plays_path: Path, impressions_path: Path | None
) -> PoolInputs:
    """The CSV files as tables of ``connection``'s database. Raises CommandError."""
    plays, impressions = pool_tables(connection)
    _stream(connection, plays, _read(plays_path, ("listener", "track"), _play_row))
    if impressions_path is None:
        return PoolInputs(plays, equal_impressions(plays))
    _stream(
        connection,
        impressions,
        _read(impressions_path, ("listener", "impressions"), _impression_row),
    )
    return PoolInputs(plays, impressions)


def _stream(connection: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CSV_BATCH_ROWS:
            connection.execute(insert(table), batch)
            batch = []
    if batch:
        connection.execute(insert(table), batch)


_RowParser = Callable[[dict[str, str]], dict[str, Any]]


def _read(path: Path, columns: tuple[str, ...], parse: _RowParser) -> Iterator[dict[str, Any]]:
    """The file's rows as dicts of ``columns``. Raises CommandError naming file and line."""
    expected = ",".join(columns)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            missing = [name for name in columns if name not in header]
            if missing:
                raise CommandError(
                    f"{path.name} line 1: the header must be {expected} "
                    f"(missing {', '.join(missing)})"
                )
            where = [header.index(name) for name in columns]
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise CommandError(
                        f"{path.name} line {reader.line_num}: expected {len(header)} "
                        f"columns ({expected}), found {len(row)}"
                    )
                try:
                    yield parse({name: row[index].strip() for name, index in zip(columns, where)})
                except ValueError as exc:
                    raise CommandError(f"{path.name} line {reader.line_num}: {exc}") from None
    except csv.Error as exc:
        raise CommandError(f"{path.name}: not valid CSV ({exc})") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path.name}: not UTF-8 text") from None


def _key(value: str, column: str) -> str:
    if not value:
        raise ValueError(f"the {column} is empty")
    if len(value) > MAX_CSV_KEY_LENGTH:
        raise ValueError(f"the {column} is longer than {MAX_CSV_KEY_LENGTH} characters")
    return value


def _play_row(row: dict[str, str]) -> dict[str, Any]:
    return {"listener": _key(row["listener"], "listener"), "track": _key(row["track"], "track")}


def _impression_row(row: dict[str, str]) -> dict[str, Any]:
    text = row["impressions"]
    if not _WHOLE_NUMBER.fullmatch(text) or int(text) > MAX_CSV_IMPRESSIONS:
        raise ValueError(
            f"impressions must be a whole number from 0 to {MAX_CSV_IMPRESSIONS:,}, not {text!r}"
        )
    return {"listener": _key(row["listener"], "listener"), "impressions": int(text)}
