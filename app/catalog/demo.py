"""The demo catalogue that ``make demo`` seeds: two artists, a listener, a few releases.

Every demo track is real audio: a short chord progression synthesised with ffmpeg and sent
through the same ingest pipeline as an upload, so the demo plays.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.catalog import service
from app.catalog.models import PricingMode, ReleaseType
from app.ingest import uploads as ingest
from media_worker.ffmpeg import ffmpeg_path

DEMO_LOGINS = {
    "artist": ("artist@demo.megabox.test", "demo-artist-pass"),
    "listener": ("listener@demo.megabox.test", "demo-listener-pass"),
    "admin": ("admin@demo.megabox.test", "demo-admin-pass"),
}

DEMO_ARTISTS = [
    {
        "slug": "aurora-lines",
        "name": "Aurora Lines",
        "bio": "Slow-burning synth pop recorded in a converted boathouse.",
        "releases": [
            {"title": "Northern Static", "release_type": ReleaseType.ALBUM,
             "release_date": date(2026, 9, 12), "pricing_mode": PricingMode.FIXED,
             "price_minor": 900, "currency": "USD",
             "description": "Nine songs about long winters and short radio waves.",
             "tracks": ["Cold Open", "Static Bloom", "Harbour Lights", "Night Ferry"]},
            {"title": "Tidal Memory", "release_type": ReleaseType.SINGLE,
             "release_date": date(2026, 10, 30), "pricing_mode": PricingMode.NAME_YOUR_PRICE,
             "price_minor": 200, "minimum_price_minor": 0, "currency": "USD",
             "description": "A single for the first frost.", "tracks": ["Tidal Memory"]},
        ],
    },
    {
        "slug": "the-copper-kettles",
        "name": "The Copper Kettles",
        "bio": "A four-piece folk band with too many banjos.",
        "releases": [
            {"title": "Kitchen Sessions", "release_type": ReleaseType.EP,
             "release_date": date(2026, 8, 1), "pricing_mode": PricingMode.FIXED,
             "price_minor": 500, "currency": "EUR",
             "description": "Recorded live around one microphone.",
             "tracks": ["Steam", "Whistle", "Pour"]},
            {"title": "Free Tea", "release_type": ReleaseType.SINGLE,
             "release_date": date(2026, 11, 1), "pricing_mode": PricingMode.FREE,
             "currency": "EUR", "description": "On the house.", "tracks": ["Free Tea"]},
        ],
    },
]  # fmt: skip


DEMO_TRACK_SECONDS = 24
# Root notes (Hz) the demo chords cycle through, and the major-triad ratios above a root.
DEMO_ROOTS = (220.0, 246.94, 261.63, 293.66, 329.63, 196.0, 174.61)
TRIAD = (1.0, 1.26, 1.5)


def seed_demo_catalogue(
    session: Session,
    config: Any,
    audio: bool = True,
    report: Callable[[str], None] = lambda line: None,
) -> bool:
    """Create the demo users, artists and published releases, with playable tracks.

    Returns False if they are already there. With ``audio`` off, tracks are created without
    audio (fast, for tests of the catalogue alone).
    """
    email, password = DEMO_LOGINS["artist"]
    if accounts.find_user_by_email(session, email) is not None:
        return False
    if audio:
        report("Seeding the demo catalogue; synthesising and processing its audio …")
    owner = accounts.create_user(session, email, password, "Demo Artist")
    listener_email, listener_password = DEMO_LOGINS["listener"]
    accounts.create_user(session, listener_email, listener_password, "Demo Listener")
    admin_email, admin_password = DEMO_LOGINS["admin"]
    accounts.create_user(session, admin_email, admin_password, "Demo Admin", is_admin=True)
    uploads: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="megabox-demo-") as folder:
        for spec in DEMO_ARTISTS:
            artist = service.create_artist(session, owner, spec)
            for release_spec in spec["releases"]:
                fields = {k: v for k, v in release_spec.items() if k != "tracks"}
                release = service.create_release(session, owner, artist, {**fields, "published": True})
                for number, title in enumerate(release_spec["tracks"], start=1):
                    if not audio:
                        service.add_track(session, owner, release, {"title": title, "price_minor": 100})
                        continue
                    session.flush()  # the release needs its id before an upload can name it
                    path = _synthesise(Path(folder), config, title, release.title, number, len(uploads))
                    upload = ingest.spool_local_file(session, config, owner, release, path)
                    uploads.append((upload.id, title))
        session.commit()
        _process(uploads, report)
    return True


def _synthesise(folder: Path, config: Any, title: str, album: str, number: int, seed: int) -> Path:
    """A FLAC of a few chords with the track's tags, made by ffmpeg's tone generators."""
    beat = DEMO_TRACK_SECONDS / 4
    chords = []
    for step in range(4):
        root = DEMO_ROOTS[(seed + step * 3) % len(DEMO_ROOTS)]
        tones = "+".join(f"0.2*sin(2*PI*{root * ratio:.2f}*t)" for ratio in TRIAD)
        chords.append(f"between(t,{step * beat},{(step + 1) * beat})*({tones})")
    envelope = f"(0.6+0.4*sin(2*PI*{1 + seed % 3}*t))"
    expression = f"{envelope}*({'+'.join(chords)})"
    path = folder / f"{seed:02d}.flac"
    command = [
        ffmpeg_path(config["FFMPEG"]), "-nostdin", "-v", "error", "-y",
        "-f", "lavfi", "-i", f"aevalsrc='{expression}|{expression}':s=44100:d={DEMO_TRACK_SECONDS}",
        "-af", "afade=t=in:d=0.5,afade=t=out:st={:.1f}:d=1.5".format(DEMO_TRACK_SECONDS - 1.5),
        "-c:a", "flac", "-metadata", f"title={title}", "-metadata", f"album={album}",
        "-metadata", f"track={number}", str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return path


def _process(uploads: list[tuple[str, str]], report: Callable[[str], None]) -> None:
    from app.ingest.uploads import PROCESS_JOB
    from app.jobs.runner import perform_job

    for index, (upload_id, title) in enumerate(uploads, start=1):
        report(f"  [{index}/{len(uploads)}] {title}")
        perform_job(PROCESS_JOB, (upload_id,), final_attempt=True)  # as a worker runs it
