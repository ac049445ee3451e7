"""The ``megabox`` command: Flask's CLI with the app factory and each area's commands."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from config import ConfigurationError


def _create_app() -> Flask:
    from app import create_app

    try:
        return create_app()
    except ConfigurationError as exc:
        click.echo(f"megabox: {exc}", err=True)
        sys.exit(1)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug/--no-debug", default=False)
@with_appcontext
def serve_command(host: str, port: int, debug: bool) -> None:
    """Serve Megabox with the development server (use gunicorn in production)."""
    from flask import current_app
    from werkzeug.serving import run_simple

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    app.debug = debug
    click.echo(f"Megabox is serving on http://{host}:{port}/ (Ctrl-C stops it)")
    run_simple(host, port, app, threaded=True, use_debugger=debug, use_reloader=False)


def register_commands(app: Flask) -> None:
    from app.accounts.commands import users_cli
    from app.catalog.commands import artists_cli, demo_cli
    from app.ingest.commands import ingest_command, uploads_cli
    from app.vault.commands import keys_cli, vault_cli
    from media_worker.worker import worker_command

    app.cli.add_command(serve_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(artists_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(ingest_command)
    app.cli.add_command(uploads_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(vault_cli)
    app.cli.add_command(keys_cli)


def main() -> None:
    cli = FlaskGroup(create_app=_create_app, help="Megabox: the artist-direct music platform.")
    cli.main(prog_name="megabox")
