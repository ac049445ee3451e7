"""``megabox vault`` and ``megabox keys``: each command is one unit of work and commits it."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from app.errors import DomainError
from app.extensions import db
from app.vault import service
from app.vault.errors import AuthenticationFailed, KekUnavailable, ObjectNotFound
from app.vault.keys import Keyring, format_keks
from config import ConfigurationError

CLI_KIND = "file"

vault_cli = AppGroup("vault", help="Store, read and check encrypted objects.")
keys_cli = AppGroup("keys", help="Manage the key-encryption keys (KEKs) that wrap data keys.")


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Turn the errors a user can cause or fix into one line and exit status 1."""
    try:
        yield
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from None
    except ConfigurationError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc.filename or 'I/O'}: {exc.strerror}") from None


def _parse_range(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> tuple[int, int] | None:
    if value is None:
        return None
    first, separator, last = value.partition("-")
    if not (separator and first.isdigit() and last.isdigit()) or int(first) > int(last):
        raise click.BadParameter("write it A-B, two byte offsets with A <= B, e.g. 0-1023")
    return int(first), int(last)


@vault_cli.command("put")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kind", default=CLI_KIND, show_default=True, help="What the object is.")
@click.option("--content-type", default=None, help="A MIME type to record with it.")
def put_command(file: Path, kind: str, content_type: str | None) -> None:
    """Encrypt FILE into the vault and print its object id."""
    with _one_line_errors():
        stored = service.put_path(db.session, file, kind=kind, content_type=content_type)
        db.session.commit()
    click.echo(stored.id)


@vault_cli.command("get")
@click.argument("object_id")
@click.option(
    "--range",
    "byte_range",
    metavar="A-B",
    callback=_parse_range,
    help="Only bytes A to B, inclusive.",
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Where to write the plaintext; - for standard output.",
)
def get_command(object_id: str, byte_range: tuple[int, int] | None, output: Path) -> None:
    """Decrypt object OBJECT_ID (or a byte range of it) to OUTPUT."""
    with _one_line_errors():
        if byte_range is None:
            stream = service.iter_plaintext(db.session, object_id)
        else:
            stream = service.open_range_stream(db.session, object_id, *byte_range)
        with stream:
            if str(output) == "-":
                with click.open_file("-", "wb") as stdout:
                    stream.copy_to(stdout.write)
            elif _is_regular_or_absent(output):
                _write_atomically(output, stream)
            else:
                # A device or a FIFO is written in place: renaming over it would replace it.
                with open(output, "wb") as handle:
                    stream.copy_to(handle.write)


def _is_regular_or_absent(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


def _write_atomically(path: Path, stream: service.PlaintextStream) -> None:
    """Write ``stream`` to ``path`` so that a failed read leaves no partial file there."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            stream.copy_to(handle.write)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@vault_cli.command("verify")
@click.argument("object_id", required=False)
@click.option("--all", "check_all", is_flag=True, help="Verify every object.")
def verify_command(object_id: str | None, check_all: bool) -> None:
    """Re-authenticate every segment of OBJECT_ID, or of all objects; list the bad ones.

    Exits with status 1 if any object is bad.
    """
    if (object_id is None) != check_all:
        raise click.UsageError("Give an object id or --all.")
    checked = bad = 0
    with _one_line_errors():
        object_ids: Iterable[str] = (
            [object_id] if object_id is not None else service.all_object_ids(db.session)
        )
        for each in object_ids:
            checked += 1
            try:
                service.verify(db.session, each)
            except (AuthenticationFailed, KekUnavailable, ObjectNotFound) as exc:
                bad += 1
                click.echo(f"BAD {each}: {exc.message}")
    click.echo(f"{checked} checked, {bad} bad.")
    if bad:
        raise click.exceptions.Exit(1)


@keys_cli.command("rotate")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Data keys re-wrapped per commit [default: KEK_ROTATE_BATCH].",
)
def rotate_command(batch_size: int | None) -> None:
    """Add a KEK version and re-wrap every data key under it; objects are untouched.

    Interrupted, it resumes where it stopped when run again. With keys from MEGABOX_KEK it
    prints the new value to set, and re-wraps once that is in place.
    """
    batch_size = batch_size or current_app.config["KEK_ROTATE_BATCH"]
    with _one_line_errors():
        keyring = service.current_vault().keyring
        current = keyring.current_version
        counts = service.count_by_kek_version(db.session)
        stale = sum(n for version, n in counts.items() if version != current)
        if stale:
            click.echo(f"Resuming: {stale} data keys are not yet under KEK version {current}.")
        elif not _add_version(keyring):
            return
        current = keyring.current_version
        rewrapped, after = 0, ""
        failed: dict[str, str] = {}
        while True:
            batch = service.rewrap_batch(db.session, after=after, limit=batch_size)
            db.session.commit()
            if batch.last_id is None:
                break
            rewrapped += batch.rewrapped
            failed.update(batch.failed)
            after = batch.last_id
            click.echo(f"Re-wrapped {rewrapped} data keys under KEK version {current}.")
        counts = service.count_by_kek_version(db.session)
    for object_id, message in failed.items():
        click.echo(f"FAILED {object_id}: {message}")
    left = {version: n for version, n in counts.items() if version != current}
    if left:
        listing = ", ".join(f"{n} under version {version}" for version, n in sorted(left.items()))
        click.echo(f"Not finished: {listing}. Run `megabox keys rotate` again.")
        raise click.exceptions.Exit(1)
    retired = [version for version in keyring.versions if version != current]
    click.echo(f"Done: every data key is wrapped under KEK version {current}.")
    if retired:
        listing = ", ".join(str(version) for version in retired)
        click.echo(
            f"KEK version(s) {listing} no longer wrap anything; remove them from "
            f"{keyring.origin} once every process runs with version {current}."
        )


def _add_version(keyring: Keyring) -> bool:
    """Save a new KEK version where the keyring lives; False if the operator must set it."""
    keks = keyring.with_new_version()
    version = max(keks)
    if keyring.writable:
        try:
            keyring.save(keks)
        except OSError as exc:
            click.echo(f"Cannot write {keyring.path}: {exc.strerror}. Put these lines in it:")
            click.echo(format_keks(keks, "\n"))
            raise click.exceptions.Exit(1) from None
        click.echo(f"Added KEK version {version} to {keyring.path}.")
        return True
    click.echo(
        f"KEK version {version} is ready. The keys come from {keyring.origin}; set it in every "
        f"process to\n\n  {keyring.origin}={format_keks(keks)}\n\n"
        "restart them, then run `megabox keys rotate` again to re-wrap every data key."
    )
    return False
