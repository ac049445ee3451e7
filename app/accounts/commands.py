"""``megabox users ...``: operator commands for accounts."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.accounts import service
from app.accounts.errors import EmailTaken
from app.accounts.schemas import PASSWORD_MIN_LENGTH
from app.extensions import db

users_cli = AppGroup("users", help="Manage user accounts.")


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator", show_default=True, help="Display name.")
@click.password_option(help="Asked for when not given.")
def create_admin(email: str, name: str, password: str) -> None:
    """Create an administrator account, or make an existing user an administrator."""
    user = service.find_user_by_email(db.session, email)
    if user is not None:
        user.is_admin = True
        db.session.commit()
        click.echo(f"{user.email} is now an administrator.")
        return
    if len(password) < PASSWORD_MIN_LENGTH:
        raise click.BadParameter(f"use at least {PASSWORD_MIN_LENGTH} characters", param_hint="password")
    try:
        user = service.create_user(db.session, email, password, name, is_admin=True)
    except EmailTaken as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"Created administrator {user.email}.")
