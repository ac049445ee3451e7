"""The ``megabox`` command: Flask's CLI with the app factory and each area's commands.

No command shows a traceback. An error the operator can act on is one line on stderr,
``megabox: <message>``, with exit status 1; so is an unexpected one, whose traceback goes to
``<instance>/megabox-cli.log`` instead. Click's usage errors keep their usual form and status 2.

Every command but ``db ...`` (and ``--help``) first checks that the database is at the
migrations' head, so none of them fails half-way on a missing table. Like the settings, this is
checked before the command's own arguments. ``megabox serve`` in the embedded mode (a SQLite
database) upgrades the database itself.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from marshmallow import Schema, ValidationError
from sqlalchemy.exc import DBAPIError

from app.errors import DomainError
from config import ENV_PREFIX, SETTINGS, ConfigurationError

CLI_LOG_NAME = "megabox-cli.log"
# Commands that run on a database of any revision: they are the way to change it.
SCHEMA_EXEMPT_COMMANDS = frozenset({"db", "serve"})
UPGRADE_HINT = 'run "megabox db upgrade" first'

logger = logging.getLogger(__name__)


class CommandError(click.ClickException):
    """An error the operator can act on: ``megabox: <message>`` on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"megabox: {self.format_message()}", err=True, file=file)


def load_input(schema: Schema, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` loaded by ``schema``. Raises CommandError naming each field that is wrong."""
    try:
        return schema.load(data)
    except ValidationError as exc:
        messages = exc.normalized_messages()
        problems = "; ".join(f"{field}: {' '.join(map(str, m))}" for field, m in messages.items())
        raise CommandError(problems) from None


def require_current_schema() -> None:
    """Raise CommandError unless the app's database is at the head of the migrations.

    Needs an app context. Reads the one-row ``alembic_version`` table, so it is cheap.
    """
    from app.extensions import db

    script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    with db.engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    if current == set(script.get_heads()):
        return
    known = {revision.revision for revision in script.walk_revisions()}
    if unknown := sorted(current - known):
        raise CommandError(
            f"the database is at revision {', '.join(unknown)}, which this version of Megabox "
            "does not know; run the version that upgraded it"
        )
    if current:
        raise CommandError(f"the database is not at the latest revision; {UPGRADE_HINT}")
    raise CommandError(f"the database has no tables yet; {UPGRADE_HINT}")


def _create_app() -> Flask:
    from app import create_app

    try:
        return create_app()
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from None


def _instance_path() -> Path:
    default, _ = SETTINGS["INSTANCE_PATH"]
    return Path(os.environ.get(ENV_PREFIX + "INSTANCE_PATH", default)).expanduser().resolve()


def _log_traceback(exc: BaseException) -> Path | None:
    """Append ``exc``'s traceback to the instance's CLI log; the log's path, or None."""
    path = _instance_path() / CLI_LOG_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False  # the traceback goes to the file only, never to the terminal
    try:
        command = " ".join(["megabox", *sys.argv[1:]])
        logger.error("%s failed", command, exc_info=exc)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return path


def _summary(exc: BaseException) -> str:
    """One line about an unexpected error, for the operator."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"database error: {_first_line(exc.orig) or type(exc.orig).__name__}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    detail = _first_line(exc)
    return f"unexpected error: {type(exc).__name__}" + (f": {detail}" if detail else "")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else ""


def _report(exc: Exception) -> None:
    """Print ``exc`` as one line on stderr; log the traceback of an unexpected one."""
    if isinstance(exc, click.ClickException):
        exc.show()
    elif isinstance(exc, DomainError):
        click.echo(f"megabox: {exc.message}", err=True)
    else:
        log = _log_traceback(exc)
        where = f" (details in {log})" if log else ""
        click.echo(f"megabox: {_summary(exc)}{where}", err=True)


def _help_requested(ctx: click.Context, args: list[str]) -> bool:
    options = args[: args.index("--")] if "--" in args else args
    return any(name in options for name in ctx.help_option_names)


class MegaboxGroup(FlaskGroup):
    """Flask's command group, with one-line errors and the schema check described above."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().main(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise  # only reached with standalone_mode=False: the caller handles them
        except Exception as exc:  # noqa: BLE001 - the last resort: one line, the rest logged
            _report(exc)
        sys.exit(1)

    def list_commands(self, ctx: click.Context) -> list[str]:
        # Flask prints a traceback when the app fails to load here (for --help): report the
        # failure in one line and list the commands that need no app.
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except Exception as exc:  # noqa: BLE001 - reported like any failed command
            _report(exc)
            return sorted(click.Group.list_commands(self, ctx))
        return super().list_commands(ctx)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        needs_schema = not (
            ctx.resilient_parsing
            or name in SCHEMA_EXEMPT_COMMANDS
            or _help_requested(ctx, rest)
            or (isinstance(command, click.Group) and not rest)
        )
        if command is not None and needs_schema:
            with ctx.ensure_object(ScriptInfo).load_app().app_context():
                require_current_schema()
        return name, command, rest


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug/--no-debug", default=False)
@with_appcontext
def serve_command(host: str, port: int, debug: bool) -> None:
    """Serve Megabox with the development server (use gunicorn in production).

    In the embedded mode (a SQLite database) it upgrades the database first.
    """
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    from app.extensions import db

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if db.engine.dialect.name == "sqlite":
        upgrade()
    else:
        require_current_schema()
    app.debug = debug
    click.echo(f"Megabox is serving on http://{host}:{port}/ (Ctrl-C stops it)")
    run_simple(host, port, app, threaded=True, use_debugger=debug, use_reloader=False)


def register_commands(app: Flask) -> None:
    from app.accounts.commands import users_cli
    from app.catalog.commands import artists_cli, demo_cli
    from app.ingest.commands import ingest_command, uploads_cli
    from app.jobs.worker import worker_command
    from app.ledger.commands import ledger_cli
    from app.payouts.commands import payouts_cli
    from app.pools.commands import period_cli, pool_cli
    from app.statements.commands import statement_command
    from app.vault.commands import keys_cli, vault_cli

    app.cli.add_command(serve_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(artists_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(ingest_command)
    app.cli.add_command(uploads_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(vault_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(period_cli)
    app.cli.add_command(pool_cli)
    app.cli.add_command(statement_command)
    app.cli.add_command(payouts_cli)


def main() -> None:
    cli = MegaboxGroup(create_app=_create_app, help="Megabox: the artist-direct music platform.")
    cli.main(prog_name="megabox")
