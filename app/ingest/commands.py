"""``megabox ingest``: send files and folders through the upload pipeline from a shell."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from app.accounts.models import User
from app.catalog import service as catalog
from app.catalog.models import PricingMode, Release
from app.errors import DomainError
from app.extensions import db
from app.ingest import service, uploads
from app.ingest.models import Upload, UploadStatus
from app.timestamps import utcnow
from app.ingest.uploads import PROCESS_JOB
from app.jobs import enqueue_after_commit
from app.jobs.runner import perform_job

EXIT_SOME_REJECTED = 2

uploads_cli = AppGroup("uploads", help="Manage uploads in flight.")


@uploads_cli.command("sweep")
def sweep_command() -> None:
    """Remove uploads abandoned for longer than MEGABOX_UPLOAD_EXPIRY_HOURS, and queue again
    those stuck in processing for longer than MEGABOX_UPLOAD_PROCESSING_TIMEOUT_MINUTES (run it
    hourly or daily)."""
    config = current_app.config
    removed = uploads.sweep_abandoned(db.session, config)
    stuck = service.recover_stuck(db.session, config)
    for upload_id in stuck.requeued:
        enqueue_after_commit(db.session, PROCESS_JOB, upload_id, job_id=f"process-{upload_id}")
    db.session.commit()
    click.echo(f"Removed {removed} abandoned upload(s).")
    click.echo(
        f"{len(stuck.requeued)} stuck upload(s) queued again, {stuck.failed} failed (their bytes were gone)."
    )


def _expand(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
            )
        else:
            files.append(path)
    return files


def _import_release(artist) -> Release:  # type: ignore[no-untyped-def]
    title = f"Import {utcnow():%Y-%m-%d %H:%M}"
    release = catalog.create_release(
        db.session,
        artist.owner,
        artist,
        {"title": title, "pricing_mode": PricingMode.NAME_YOUR_PRICE,
         "currency": current_app.config["DEFAULT_CURRENCY"]},
    )  # fmt: skip
    release.locked_fields = []  # the album tag may name it
    db.session.commit()
    return release


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@click.option("--artist", "artist_slug", required=True, help="The artist the files belong to.")
@click.option("--release", "release_id", type=int, help="Add to this release (default: a new draft).")
@with_appcontext
def ingest_command(paths: tuple[str, ...], artist_slug: str, release_id: int | None) -> None:
    """Ingest audio files and folders through the same pipeline as uploads.

    Prints one line per file. Exits 0 when every file was accepted, 2 when some were rejected.
    """
    try:
        artist = catalog.get_artist(db.session, artist_slug)
        if release_id is None:
            release = _import_release(artist)
        else:
            release = catalog.editable_release(db.session, release_id, artist.owner)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    files = _expand(paths)
    if not files:
        raise click.ClickException("no files found")
    click.echo(f"Ingesting {len(files)} file(s) into “{release.title}” (release {release.id}).")
    rejected = 0
    # Each file is a unit of work of its own that ends with the session: keep ids, not rows.
    release_id, owner_id = release.id, artist.owner_id
    for path in files:
        outcome = _ingest_one(path, release_id, owner_id)
        rejected += not outcome.startswith("accepted")
        click.echo(f"{outcome.split(' ', 1)[0]:<9} {path}  {outcome.split(' ', 1)[1]}")
    click.echo(f"{len(files) - rejected} accepted, {rejected} rejected.")
    sys.exit(EXIT_SOME_REJECTED if rejected else 0)


def _ingest_one(path: Path, release_id: int, owner_id: int) -> str:
    """Spool, process and report one file: ``accepted …`` or ``rejected <code>: …``."""
    release = db.session.get(Release, release_id)
    owner = db.session.get(User, owner_id)
    try:
        upload = uploads.spool_local_file(db.session, current_app.config, owner, release, path)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return f"rejected {exc.code}: {exc.message}"
    except OSError as exc:
        db.session.rollback()
        return f"rejected unreadable: {exc.strerror or exc}"
    upload_id = upload.id
    try:
        # As a worker runs it: one unit of work, and the failure hook on a failure.
        perform_job(PROCESS_JOB, (upload_id,), final_attempt=True)
    except Exception:  # noqa: BLE001 - logged, recorded on the upload and reported below
        pass
    db.session.expire_all()
    done = db.session.get(Upload, upload_id)
    if done.status is UploadStatus.READY and done.track is not None:
        seconds = (done.track.duration_ms or 0) // 1000
        return f"accepted track {done.track.id} “{done.track.title}” ({seconds // 60}:{seconds % 60:02d})"
    return f"rejected {done.error_code}: {done.error_message}"
