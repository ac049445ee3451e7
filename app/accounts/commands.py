"""``megabox users ...``: operator commands for accounts."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.accounts import service
from app.accounts.schemas import SignupSchema, TokenCreateSchema
from app.cli import CommandError, load_input
from app.extensions import db

users_cli = AppGroup("users", help="Manage user accounts.")

DEFAULT_TOKEN_NAME = "command line"


@users_cli.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator", show_default=True, help="Display name.")
@click.password_option(help="Asked for when not given.")
def create_admin(email: str, name: str, password: str) -> None:
    """Create an administrator account, or make an existing user an administrator."""
    data = load_input(SignupSchema(), {"email": email, "display_name": name, "password": password})
    user = service.find_user_by_email(db.session, data["email"])
    if user is not None:
        user.is_admin = True
        db.session.commit()
        click.echo(f"{user.email} is now an administrator.")
        return
    user = service.create_user(
        db.session, data["email"], data["password"], data["display_name"], is_admin=True
    )
    db.session.commit()
    click.echo(f"Created administrator {user.email}.")


@users_cli.command("token")
@click.argument("email")
@click.option("--name", default=DEFAULT_TOKEN_NAME, show_default=True, help="What the token is for.")
def create_token(email: str, name: str) -> None:
    """Print a new personal API token for the user EMAIL, for scripts (shown only this once).

    Send it as ``Authorization: Bearer <token>`` to /api/v1; revoke it from the account page.
    """
    data = load_input(TokenCreateSchema(), {"name": name})
    user = service.find_user_by_email(db.session, email)
    if user is None:
        raise CommandError(f"no user has the e-mail address {email}")
    _, secret = service.issue_token(db.session, user, data["name"])
    db.session.commit()
    click.echo(secret)
