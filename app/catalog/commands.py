"""``megabox artists ...`` and ``megabox demo ...``: operator commands for the catalogue."""

from __future__ import annotations

import secrets

import click
from flask import current_app
from flask.cli import AppGroup

from app.accounts import service as accounts
from app.accounts.schemas import SignupSchema
from app.catalog import service
from app.catalog.demo import DEMO_LOGINS, seed_demo_catalogue
from app.catalog.errors import SlugTaken
from app.catalog.schemas import ArtistSchema
from app.cli import CommandError, load_input
from app.errors import DomainError
from app.extensions import db
from app.jobs import get_queue

artists_cli = AppGroup("artists", help="Manage artist profiles.")
demo_cli = AppGroup("demo", help="The demo catalogue.")
# How long ``demo seed`` waits for the jobs it queued (its orders' receipts) before it exits.
DEMO_JOBS_WAIT_SECONDS = 30.0


@artists_cli.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="The artist's display name.")
@click.option("--email", help="The owning user's e-mail; created when there is no such user.")
def create_artist(slug: str, name: str, email: str | None) -> None:
    """Create an artist profile, and its owning user if needed."""
    data = load_input(ArtistSchema(), {"slug": slug, "name": name})
    if email is not None:
        email = load_input(SignupSchema(only=("email",)), {"email": email})["email"]
    email = email or f"{slug}@artists.megabox.invalid"
    owner = accounts.find_user_by_email(db.session, email)
    password = None
    if owner is None:
        password = secrets.token_urlsafe(12)
        owner = accounts.create_user(db.session, email, password, name)
    try:
        artist = service.create_artist(db.session, owner, data)
    except SlugTaken as exc:
        raise CommandError(exc.message) from None
    db.session.commit()
    click.echo(f"Created artist {artist.slug!r} ({artist.name}) owned by {owner.email}.")
    if password:
        click.echo(f"New user {owner.email} can sign in with the password: {password}")


@demo_cli.command("seed")
@click.option(
    "--no-audio", is_flag=True,
    help="Skip synthesising and processing the audio (and so the sales, plays and closed month).",
)
def seed(no_audio: bool) -> None:
    """Create the demo users and catalogue, with a month of sales and plays and last month
    closed (running it again changes nothing)."""
    try:
        created = seed_demo_catalogue(db.session, current_app.config, audio=not no_audio, report=click.echo)
    except DomainError as exc:  # e.g. an operator took a demo artist's address
        raise CommandError(f"cannot seed the demo: {exc.message}") from None
    db.session.commit()
    if created and not current_app.config["REDIS_URL"]:
        # The receipts of the demo's orders run on this process's job threads, which end with it.
        get_queue(current_app).wait_idle(DEMO_JOBS_WAIT_SECONDS)
    click.echo("Seeded the demo catalogue." if created else "The demo catalogue is already there.")
    for role, (email, password) in DEMO_LOGINS.items():
        click.echo(f"  {role:<8} {email} / {password}")
    click.echo(
        "The artist's numbers are at /studio/earnings and /studio/statements; "
        "the listener's purchases at /library."
    )
