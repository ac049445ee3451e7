"""``megabox statement``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click

from app.catalog.service import get_artist
from app.cli import CommandError
from app.errors import DomainError
from app.extensions import db
from app.statements import service
from app.statements.render import FORMATS, render


@click.command("statement")
@click.argument("artist_slug")
@click.argument("period")
@click.option(
    "--format", "fmt", default="html", show_default=True, metavar="|".join(FORMATS),
    help="The file's format.",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    required=True, help="The file to write, or - for standard output.",
)  # fmt: skip
@click.option("--currency", help="The statement's currency, when the artist has several.")
def statement_command(
    artist_slug: str, period: str, fmt: str, output: Path, currency: str | None
) -> None:
    """Write ARTIST_SLUG's statement for PERIOD (YYYY-MM, e.g. 2026-11) to a file, or to
    standard output with ``-o -`` (what is said about it then goes to standard error).

    A closed period's statement is frozen the first time it is made, so every later file is
    byte for byte the same; an open period's is provisional. A final statement's "content
    sha256" is its frozen content's hash, the one the statement shows in every format; a
    file's own "file sha256" is that of the bytes written.
    """
    if fmt not in FORMATS:
        raise CommandError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    try:
        artist = get_artist(db.session, artist_slug)
        chosen = service.choose_currency(list(service.currencies(db.session, artist.id)), currency)
        view = service.statement(db.session, artist, period, chosen)
        body = render(view, fmt)
    except DomainError as exc:
        db.session.rollback()
        raise CommandError(exc.message) from None
    db.session.commit()  # a closed period's statement was frozen just now
    state = "provisional" if view.provisional else f"final, content sha256 {view.content_hash}"
    with click.open_file(str(output), "wb") as stream:  # "-" is standard output
        stream.write(body)
    if str(output) == "-":
        click.echo(f"wrote standard output ({fmt}, {len(body):,} bytes; {state})", err=True)
        return
    file_hash = hashlib.sha256(body).hexdigest()
    click.echo(f"wrote {output} ({fmt}, {len(body):,} bytes; {state}; file sha256 {file_hash})")
