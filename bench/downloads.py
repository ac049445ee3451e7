"""Benchmark: making a FLAC download against the ffmpeg CLI, serving a cached one against ``age``.

    .venv/bin/python bench/downloads.py [--minutes 10] [--repeat 5]

Everything happens in a temporary directory: a stereo 48 kHz 24-bit WAV master of
``--minutes`` (pink noise under a chord, from ``bench/ingest.py``), an embedded instance
(SQLite, local vault) holding it as a ready track, and a free acquisition that owns it.

- ``flac_ratio``: making the FLAC download as the download job does,
  ``app.library.service.make_format`` and its commit (claim, decrypt the master from the
  vault into ffmpeg, encode, write tags, encrypt into the vault with fsync, mark the cache
  row ready), over the ffmpeg CLI encoding the same plaintext WAV to FLAC (``-c:a flac``,
  the same default compression level) into a file. The runs alternate, and the ratio is the
  median of the per-run ratios. Goal: at most 1.3.
- ``cached_get_vs_age``: a GET of the cached FLAC through the WSGI app's signed download
  link (the library's route: link checks, ownership, decryption, Range machinery), its body
  written to ``/dev/null``, over ``age -d -i IDENTITY -o /dev/null`` of the same plaintext
  encrypted to an X25519 recipient. Goal: at most 1.0. Needs Debian's ``age``
  (``apt-get install age``); skipped with a line saying so without it.

Both sides of each ratio read files the page cache holds, and run in this one process run.
Prints ``name = value`` lines. Not a test: it does not run in CI.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import SAMPLE_RATE, make_master  # noqa: E402

DEFAULT_MINUTES = 10.0
DEFAULT_REPEAT = 5
BIT_DEPTH = 24
CHANNELS = 2
MIB = 1024 * 1024
DOWNLOAD_LINK_TTL_SECONDS = 3600


def make_app(workdir: Path) -> Any:
    from app import create_app

    return create_app(
        {
            "INSTANCE_PATH": str(workdir / "instance"),
            "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
            "SECRET_KEY": "bench",
            "STORAGE_URL": "",
            "REDIS_URL": "",
            "OUTBOX_PATH": str(workdir / "outbox"),
            "RATELIMIT_ENABLED": False,
            "DOWNLOAD_LINK_TTL_SECONDS": DOWNLOAD_LINK_TTL_SECONDS,
        }
    )


def owned_track(master: Path, minutes: float) -> tuple[int, int]:
    """A ready track whose master is ``master``, and a free order item that owns it; returns
    (track id, order item id). Needs an app context."""
    from flask import current_app

    from app.accounts.models import User
    from app.catalog.models import Artist, Release, Track, TrackStatus
    from app.commerce import service as commerce
    from app.extensions import db
    from app.ingest.models import TrackMedia
    from app.vault import service as vault

    session = db.session
    # Made directly: hashing a password (argon2) is no part of what is measured.
    owner = User(email="artist@example.test", display_name="Artist", password_hash="!")
    buyer = User(email="buyer@example.test", display_name="Buyer", password_hash="!")
    artist = Artist(owner=owner, slug="bench", name="Bench Quartet")
    release = Release(artist=artist, title="Long Form", currency="USD", price_minor=0,
                      minimum_price_minor=0, published=True)  # fmt: skip
    track = Track(release=release, title="Ten Minutes", position=1, price_minor=0,
                  status=TrackStatus.READY, duration_ms=int(minutes * 60_000))  # fmt: skip
    session.add_all([buyer, track])
    stored = vault.put_path(session, master, kind="master", content_type="audio/wav")
    renditions = [vault.put_stream(session, io.BytesIO(b"r"), kind="rendition", size=1) for _ in "ab"]
    session.flush()
    session.add(
        TrackMedia(
            track_id=track.id, artist_id=artist.id, master_sha256=stored.sha256,
            master_object_id=stored.id, opus_object_id=renditions[0].id,
            mp3_object_id=renditions[1].id, original_filename=master.name, container="wav",
            codec="pcm_s24le", sample_rate=SAMPLE_RATE, bit_depth=BIT_DEPTH, channels=CHANNELS,
            waveform={"buckets": 0, "peaks": []},
        )
    )  # fmt: skip
    # A zero-price order is paid at once: a free acquisition.
    order = commerce.create_order(
        session, buyer, [commerce.CartLine(release.id)], gateway="sandbox",
        config=current_app.config,
    )  # fmt: skip
    session.commit()
    return track.id, order.items[0].id


def make_flac_download(track_id: int) -> tuple[float, str]:
    """Seconds to make the track's FLAC download as the job does, and its vault object id."""
    from flask import current_app

    from app.extensions import db
    from app.library import service as library
    from app.library.models import DownloadFile, DownloadStatus
    from app.catalog.models import Track

    session = db.session
    track = session.get(Track, track_id)
    row = DownloadFile(track_id=track_id, format="flac", tags_digest=library.tags_digest(session, track),
                       status=DownloadStatus.PENDING)  # fmt: skip
    session.add(row)
    session.commit()
    row_id = row.id
    os.sync()
    started = time.perf_counter()
    made = library.make_format(session, current_app.config, row_id)
    session.commit()
    seconds = time.perf_counter() - started
    row = session.get(DownloadFile, row_id, populate_existing=True)
    if not made or row is None or row.status is not DownloadStatus.READY or row.object_id is None:
        sys.exit(f"making the FLAC download failed: {row.error if row else 'row gone'}")
    return seconds, row.object_id


def drop_download(object_id: str) -> None:
    """Delete a made download and its object, so the next run makes it afresh."""
    from app.extensions import db
    from app.library.models import DownloadFile
    from app.vault import service as vault

    session = db.session
    session.query(DownloadFile).filter_by(object_id=object_id).delete()
    session.flush()
    vault.delete(session, object_id)
    session.commit()


def ffmpeg_flac(ffmpeg: str, master: Path, out: Path) -> float:
    out.unlink(missing_ok=True)
    os.sync()
    started = time.perf_counter()
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(master), "-map", "0:a:0",
         "-c:a", "flac", str(out)],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def flac_figures(ffmpeg: str, master: Path, work: Path, track_id: int, runs: int) -> tuple[dict[str, Any], str]:
    """Make the FLAC download ``runs`` times, alternating with the CLI; returns the figures and
    the object id of the last download made (kept, for serving)."""
    ours: list[float] = []
    cli: list[float] = []
    object_id = ""
    for run in range(runs):
        cli.append(ffmpeg_flac(ffmpeg, master, work / "cli.flac"))
        seconds, object_id = make_flac_download(track_id)
        ours.append(seconds)
        if run < runs - 1:
            drop_download(object_id)
    return {
        "ffmpeg_cli_flac_s": statistics.median(cli),
        "make_flac_download_s": statistics.median(ours),
        "flac_ratio": statistics.median(o / c for o, c in zip(ours, cli, strict=True)),
        "cli_flac_bytes": (work / "cli.flac").stat().st_size,
    }, object_id


def serve_signed_link(app: Any, path: str) -> tuple[float, str]:
    """Seconds to GET ``path`` through the WSGI app with the body written to /dev/null, and
    the body's SHA-256."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    environ = EnvironBuilder(path=path, method="GET").get_environ()
    hasher = hashlib.sha256()
    os.sync()
    started = time.perf_counter()
    body, status, _headers = run_wsgi_app(app, environ, buffered=False)
    try:
        with open(os.devnull, "wb") as sink:
            for chunk in body:
                sink.write(chunk)
    finally:
        if hasattr(body, "close"):
            body.close()
    seconds = time.perf_counter() - started
    if not status.startswith("200"):
        sys.exit(f"the signed link answered {status}")
    # Hashing is kept out of the timed run: a check that what was served is the file.
    body, status, _headers = run_wsgi_app(app, environ, buffered=False)
    try:
        for chunk in body:
            hasher.update(chunk)
    finally:
        if hasattr(body, "close"):
            body.close()
    return seconds, hasher.hexdigest()


def age_figures(app: Any, work: Path, object_id: str, link_path: str, runs: int) -> dict[str, Any]:
    from app.extensions import db
    from app.vault import service as vault

    age, keygen = shutil.which("age"), shutil.which("age-keygen")
    if age is None or keygen is None:
        return {}
    plain = work / "download.flac"
    with open(plain, "wb") as out, vault.iter_plaintext(db.session, object_id) as stream:
        stream.copy_to(out.write)
    identity, sealed = work / "age-identity.txt", work / "download.flac.age"
    subprocess.run([keygen, "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(
        [keygen, "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([age, "-e", "-r", recipient, "-o", str(sealed), str(plain)], check=True)
    ours: list[float] = []
    theirs: list[float] = []
    digest = ""
    for _ in range(runs):
        os.sync()
        started = time.perf_counter()
        subprocess.run([age, "-d", "-i", str(identity), "-o", os.devnull, str(sealed)], check=True)
        theirs.append(time.perf_counter() - started)
        seconds, digest = serve_signed_link(app, link_path)
        ours.append(seconds)
    expected = hashlib.sha256(plain.read_bytes()).hexdigest()
    return {
        "cached_flac_bytes": plain.stat().st_size,
        "age_decrypt_s": statistics.median(theirs),
        "cached_get_s": statistics.median(ours),
        "cached_get_vs_age": statistics.median(o / t for o, t in zip(ours, theirs, strict=True)),
        "cached_get_matches_plaintext": digest == expected,
    }


def signed_link_path(track_id: int, item_id: int) -> str:
    """The signed download link of the item's track in FLAC, as the library page gives it."""
    from flask import current_app, url_for

    from app.catalog.models import Track
    from app.commerce.models import OrderItem
    from app.extensions import db
    from app.library import service as library

    item = db.session.get(OrderItem, item_id)
    track = db.session.get(Track, track_id)
    token = library.track_link(current_app.config, item, track, library.get_format("flac"))
    with current_app.test_request_context():
        return url_for("library.download", token=token)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="master length")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs; the median counts")
    args = parser.parse_args()
    runs = max(1, args.repeat)

    from flask_migrate import upgrade

    from media_worker.ffmpeg import ffmpeg_path

    ffmpeg = ffmpeg_path()
    with tempfile.TemporaryDirectory(prefix="megabox-bench-") as folder:
        work = Path(folder)
        master = work / "master.wav"
        make_master(master, args.minutes, ffmpeg)
        app = make_app(work)
        with app.app_context():
            upgrade()
            track_id, item_id = owned_track(master, args.minutes)
            flac, object_id = flac_figures(ffmpeg, master, work, track_id, runs)
            link_path = signed_link_path(track_id, item_id)
            age = age_figures(app, work, object_id, link_path, runs)
        figures: dict[str, Any] = {
            "master_minutes": args.minutes,
            "master_mib": master.stat().st_size / MIB,
            "runs": runs,
            **flac,
            **age,
        }
        queue = app.extensions.get("jobs")
        if queue is not None:
            queue.shutdown()
    for name, value in figures.items():
        print(f"{name} = {value:.3f}" if isinstance(value, float) else f"{name} = {value}")
    if not age:
        print("age = not installed: cached_get_vs_age skipped")


if __name__ == "__main__":
    main()
