"""Benchmark: making a FLAC download against the ffmpeg CLI, serving a cached one against
``age``, and the memory a release zip takes to serve.

    .venv/bin/python bench/downloads.py [--minutes 10] [--repeat 5] [--only flac|age|zip]
        [--zip-tracks 12] [--zip-minutes 3]

Everything happens in a temporary directory: a stereo 48 kHz 24-bit WAV master of
``--minutes`` (pink noise under a chord, from ``bench/ingest.py``), an embedded instance
(SQLite, local vault) holding it as a ready track, and a free acquisition that owns it.
The three parts below run by default; ``--only`` (repeatable) picks some of them.

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
- ``zip_peak_rss_mb``: the peak RSS of a process serving a release zip through the WSGI
  app's signed zip link, its body written to ``/dev/null``. The release has ``--zip-tracks``
  tracks of ``--zip-minutes`` (each master a copy of one generated master under its own
  title tag, so each is stored once) and a cover, and every track's FLAC download is made
  beforehand as the job makes it. Each run is a child process that loads the app, reads its
  RSS, serves the zip and reads its high-water mark (``VmHWM``), so the figure is that of
  serving, not of setting up. ``zip_rss_growth_mb`` is the peak less the RSS before the
  request. Before the measured runs one child writes the zip to a file, which must list
  every track and ``cover.jpg`` with good CRCs. Goal: at most 150 MB.

Both sides of each ratio read files the page cache holds, and run in this one process run.
The figures are medians of ``--repeat`` runs. Prints ``name = value`` lines. Not a test: it
does not run in CI.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import SAMPLE_RATE, make_master  # noqa: E402

DEFAULT_MINUTES = 10.0
DEFAULT_REPEAT = 5
DEFAULT_ZIP_TRACKS = 12
DEFAULT_ZIP_MINUTES = 3.0
PARTS = ("flac", "age", "zip")
BIT_DEPTH = 24
CHANNELS = 2
MIB = 1024 * 1024
KIB_PER_MB = 1024  # /proc reports kB (KiB); the figures are MiB, as bench/ingest.py prints
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


def owned_release(
    slug: str, title: str, masters: Sequence[Path], minutes: float, *, cover: bytes | None = None
) -> tuple[list[int], int]:
    """A free release with a ready track per master (each ``minutes`` long) and, given its
    JPEG, a cover at the delivered size; and a free order item that owns it. Returns (track
    ids in release order, order item id). Needs an app context."""
    from flask import current_app

    from app.accounts.models import User
    from app.catalog.models import Artist, Release, Track, TrackStatus
    from app.commerce import service as commerce
    from app.extensions import db
    from app.ingest.models import ReleaseCover, TrackMedia
    from app.vault import service as vault
    from media_worker.tagging import DELIVERY_COVER_SIZE

    session = db.session
    # Made directly: hashing a password (argon2) is no part of what is measured.
    owner = User(email=f"artist-{slug}@example.test", display_name="Artist", password_hash="!")
    buyer = User(email=f"buyer-{slug}@example.test", display_name="Buyer", password_hash="!")
    artist = Artist(owner=owner, slug=slug, name="Bench Quartet")
    release = Release(artist=artist, title=title, currency="USD", price_minor=0,
                      minimum_price_minor=0, published=True)  # fmt: skip
    session.add_all([buyer, release])
    if cover is not None:
        stored_cover = vault.put_stream(session, io.BytesIO(cover), kind="cover",
                                        content_type="image/jpeg", size=len(cover))  # fmt: skip
        session.flush()  # the release's id
        session.add(ReleaseCover(release_id=release.id, size=DELIVERY_COVER_SIZE,
                                 vault_object=stored_cover))  # fmt: skip
    tracks = []
    for position, master in enumerate(masters, start=1):
        track = Track(release=release, title=f"Movement {position}", position=position,
                      price_minor=0, status=TrackStatus.READY,
                      duration_ms=int(minutes * 60_000))  # fmt: skip
        session.add(track)
        stored = vault.put_path(session, master, kind="master", content_type="audio/wav")
        renditions = [
            vault.put_stream(session, io.BytesIO(b"r"), kind="rendition", size=1) for _ in "ab"
        ]
        session.flush()
        session.add(
            TrackMedia(
                track_id=track.id, artist_id=artist.id, master_sha256=stored.sha256,
                master_object_id=stored.id, opus_object_id=renditions[0].id,
                mp3_object_id=renditions[1].id, original_filename=master.name, container="wav",
                codec="pcm_s24le", sample_rate=SAMPLE_RATE, bit_depth=BIT_DEPTH,
                channels=CHANNELS, waveform={"buckets": 0, "peaks": []},
            )
        )  # fmt: skip
        tracks.append(track)
    # A zero-price order is paid at once: a free acquisition.
    order = commerce.create_order(
        session, buyer, [commerce.CartLine(release.id)], gateway="sandbox",
        config=current_app.config,
    )  # fmt: skip
    session.commit()
    return [track.id for track in tracks], order.items[0].id


def owned_track(master: Path, minutes: float) -> tuple[int, int]:
    """A ready track whose master is ``master``, and a free order item that owns it; returns
    (track id, order item id). Needs an app context."""
    track_ids, item_id = owned_release("bench", "Long Form", [master], minutes)
    return track_ids[0], item_id


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
    if (
        made is not library.MakeOutcome.MADE
        or row is None
        or row.status is not DownloadStatus.READY
        or row.object_id is None
    ):
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


def zip_masters(base: Path, count: int, ffmpeg: str) -> list[Path]:
    """``count`` masters with the audio of ``base``, each under its own title tag: an artist
    stores a master once, so the tracks' masters must differ, and copying the audio is far
    quicker than generating it again."""
    masters = []
    for position in range(1, count + 1):
        path = base.with_name(f"{base.stem}-{position:02d}.wav")
        subprocess.run(
            [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(base), "-map", "0:a:0",
             "-c:a", "copy", "-metadata", f"title=Movement {position}", str(path)],
            check=True,
        )  # fmt: skip
        masters.append(path)
    return masters


def cover_jpeg() -> bytes:
    """A cover as a release's largest stored thumbnail is: a square JPEG at the delivered size."""
    from PIL import Image

    from media_worker.covers import thumbnails
    from media_worker.tagging import DELIVERY_COVER_SIZE

    size = (DELIVERY_COVER_SIZE, DELIVERY_COVER_SIZE)
    image = Image.effect_mandelbrot(size, (-2.2, -1.5, 0.8, 1.5), 256).convert("RGB")
    png = io.BytesIO()
    image.save(png, format="PNG")
    return thumbnails(png.getvalue(), (DELIVERY_COVER_SIZE,))[DELIVERY_COVER_SIZE]


def zip_release(work: Path, ffmpeg: str, tracks: int, minutes: float) -> tuple[str, int]:
    """A free release of ``tracks`` tracks of ``minutes`` whose FLAC downloads are all made,
    as the job makes them; returns the path of its signed FLAC zip link and the number of
    tracks. Needs an app context."""
    from flask import current_app, url_for

    from app.commerce.models import OrderItem
    from app.extensions import db
    from app.library import service as library

    base = work / "zip-master.wav"
    make_master(base, minutes, ffmpeg)
    masters = zip_masters(base, tracks, ffmpeg)
    base.unlink()
    track_ids, item_id = owned_release("zip", "Twelve Pieces", masters, minutes, cover=cover_jpeg())
    for master in masters:
        master.unlink()  # the vault holds them now
    for track_id in track_ids:
        make_flac_download(track_id)
    item = db.session.get(OrderItem, item_id)
    token = library.zip_link(current_app.config, item, library.get_format("flac"))
    with current_app.test_request_context():
        return url_for("library.download_zip", token=token), len(track_ids)


def memory_kib() -> dict[str, int]:
    """This process's resident set now (``VmRSS``) and its high-water mark (``VmHWM``), in KiB.

    Read from /proc rather than ``getrusage``: after an exec, Linux's ``ru_maxrss`` keeps the
    high-water mark of the process image it replaced, which here is the parent's."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def serve_zip_child(folder: str, link_path: str, sink: str) -> None:
    """Run in a child: load the app on the prepared instance, serve the zip link into
    ``sink``, and print one JSON line: RSS before the request, the peak after it, the seconds,
    the body's size, the status and the Content-Length."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    app = make_app(Path(folder))
    environ = EnvironBuilder(path=link_path, method="GET").get_environ()
    before = memory_kib()
    started = time.perf_counter()
    body, status, headers = run_wsgi_app(app, environ, buffered=False)
    size = 0
    try:
        with open(sink, "wb") as out:
            for chunk in body:
                out.write(chunk)
                size += len(chunk)
    finally:
        if hasattr(body, "close"):
            body.close()
    seconds = time.perf_counter() - started
    after = memory_kib()
    queue = app.extensions.get("jobs")
    if queue is not None:
        queue.shutdown()
    print(json.dumps({
        "rss_before_kib": before["VmRSS"], "hwm_before_kib": before["VmHWM"],
        "peak_kib": after["VmHWM"], "seconds": seconds, "bytes": size, "status": status,
        "content_length": int(headers.get("Content-Length", -1)),
    }))  # fmt: skip


def serve_zip(work: Path, link_path: str, sink: Path | str) -> dict[str, Any]:
    """Serve the zip link in a child process (see ``serve_zip_child``); returns its report.
    Exits when the link did not answer 200 with the whole body."""
    result = subprocess.run(
        [sys.executable, __file__, "--serve-zip", str(work), link_path, str(sink)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"serving the zip failed:\n{result.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    if not report["status"].startswith("200") or report["bytes"] != report["content_length"]:
        sys.exit(f"the zip link answered {report['status']} with {report['bytes']} of "
                 f"{report['content_length']} bytes")  # fmt: skip
    return report


def check_zip(path: Path, tracks: int) -> bool:
    """Whether the file is a zip of ``tracks`` FLAC files and the cover, every CRC good."""
    import zipfile

    from app.library.service import ZIP_COVER_NAME

    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        flacs = [name for name in names if name.endswith(".flac")]
        return (
            len(flacs) == tracks
            and names[-1] == ZIP_COVER_NAME
            and len(names) == tracks + 1
            and archive.testzip() is None
        )


def zip_figures(work: Path, link_path: str, tracks: int, runs: int) -> dict[str, Any]:
    """Serve the zip once into a file to check it, then ``runs`` times into /dev/null, each
    in a fresh child; the memory figures are medians of those runs, in MiB."""
    written = work / "release.zip"
    serve_zip(work, link_path, written)
    valid = check_zip(written, tracks)
    written.unlink()
    reports = [serve_zip(work, link_path, os.devnull) for _ in range(runs)]
    return {
        "zip_tracks": tracks,
        "zip_bytes": reports[-1]["bytes"],
        "zip_mib": reports[-1]["bytes"] / MIB,
        "zip_valid": valid,
        "zip_serve_s": statistics.median(r["seconds"] for r in reports),
        "zip_rss_before_mb": statistics.median(r["rss_before_kib"] for r in reports) / KIB_PER_MB,
        "zip_peak_rss_mb": statistics.median(r["peak_kib"] for r in reports) / KIB_PER_MB,
        "zip_rss_growth_mb": statistics.median(
            r["peak_kib"] - r["rss_before_kib"] for r in reports
        ) / KIB_PER_MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="master length")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs; the median counts")
    parser.add_argument("--only", action="append", choices=PARTS,
                        help="run this part only (repeatable); all parts by default")  # fmt: skip
    parser.add_argument("--zip-tracks", type=int, default=DEFAULT_ZIP_TRACKS,
                        help="tracks in the zipped release")  # fmt: skip
    parser.add_argument("--zip-minutes", type=float, default=DEFAULT_ZIP_MINUTES,
                        help="length of each zipped track")  # fmt: skip
    parser.add_argument("--serve-zip", nargs=3, metavar=("WORK", "LINK", "SINK"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args()
    if args.serve_zip:
        serve_zip_child(*args.serve_zip)
        return
    runs = max(1, args.repeat)
    parts = set(args.only or PARTS)

    from flask_migrate import upgrade

    from media_worker.ffmpeg import ffmpeg_path

    ffmpeg = ffmpeg_path()
    figures: dict[str, Any] = {"runs": runs}
    age: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="megabox-bench-") as folder:
        work = Path(folder)
        app = make_app(work)
        with app.app_context():
            upgrade()
            if parts & {"flac", "age"}:
                master = work / "master.wav"
                make_master(master, args.minutes, ffmpeg)
                figures["master_minutes"] = args.minutes
                figures["master_mib"] = master.stat().st_size / MIB
                track_id, item_id = owned_track(master, args.minutes)
                if "flac" in parts:
                    flac, object_id = flac_figures(ffmpeg, master, work, track_id, runs)
                    figures.update(flac)
                else:
                    _seconds, object_id = make_flac_download(track_id)
                if "age" in parts:
                    link_path = signed_link_path(track_id, item_id)
                    age = age_figures(app, work, object_id, link_path, runs)
                    figures.update(age)
                master.unlink()
            if "zip" in parts:
                zip_path, zip_tracks = zip_release(work, ffmpeg, args.zip_tracks, args.zip_minutes)
                figures["zip_track_minutes"] = args.zip_minutes
        queue = app.extensions.get("jobs")
        if queue is not None:
            queue.shutdown()
        if "zip" in parts:
            # Served by children while this process holds no transaction.
            figures.update(zip_figures(work, zip_path, zip_tracks, runs))
    for name, value in figures.items():
        print(f"{name} = {value:.3f}" if isinstance(value, float) else f"{name} = {value}")
    if "age" in parts and not age:
        print("age = not installed: cached_get_vs_age skipped")


if __name__ == "__main__":
    main()
