"""``megabox statement``."""

from __future__ import annotations

import click


@click.command("statement")
def statement_command() -> None:
    """Write an artist's statement for a period."""
    raise click.ClickException("not built yet")
