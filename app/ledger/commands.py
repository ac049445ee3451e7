"""``megabox ledger``: check the journal's invariants and read artists' balances. Read-only."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from app.catalog.errors import ArtistNotFound
from app.catalog.service import get_artist
from app.cli import CommandError
from app.extensions import db
from app.ledger import service
from app.ledger.money import Money
from app.ledger.verify import counts, verify

ledger_cli = AppGroup("ledger", help="Check the double-entry ledger and read balances.")


def _parse_timestamp(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> datetime | None:
    """An ISO 8601 timestamp; one without an offset is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("write an ISO 8601 time, e.g. 2025-01-31T23:59:59Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@ledger_cli.command("verify")
@click.option(
    "--clearing-settled",
    is_flag=True,
    help="Also require every clearing account to net to zero (true right after settlement).",
)
def verify_command(clearing_settled: bool) -> None:
    """Check every invariant of the ledger; print each violation and exit 1 if any."""
    violations = verify(db.session, clearing_settled=clearing_settled)
    for violation in violations:
        click.echo(str(violation))
    if violations:
        raise click.exceptions.Exit(1)
    transactions, entries = counts(db.session)
    click.echo(f"ledger ok: {transactions} transactions, {entries} entries")


@ledger_cli.command("balance")
@click.argument("artist_slug")
@click.option(
    "--at",
    metavar="TIMESTAMP",
    callback=_parse_timestamp,
    help="The balance as of this ISO 8601 time (UTC unless it has an offset).",
)
def balance_command(artist_slug: str, at: datetime | None) -> None:
    """Print what the platform owes the artist, one currency per line (e.g. USD 12.34)."""
    try:
        artist = get_artist(db.session, artist_slug)
    except ArtistNotFound as exc:
        raise CommandError(exc.message) from None
    balances = service.artist_balances(db.session, artist.id, at=at)
    if not balances:
        click.echo("no ledger entries")
    for currency, minor in sorted(balances.items()):
        click.echo(f"{currency} {Money(minor, currency).format_plain()}")
