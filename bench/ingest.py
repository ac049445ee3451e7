"""Benchmark: a full ingest against the ffmpeg CLI making the same two renditions.

    .venv/bin/python bench/ingest.py [--minutes 10] [--memory-minutes 60]

Speed: a stereo 48 kHz 24-bit WAV of ``--minutes`` goes through the whole pipeline (hash,
validate and analyse, tags, both loudness-normalised renditions, waveform, encrypting master
and renditions into the vault, creating the track), timed against one ffmpeg command that
makes the same Opus 128k and MP3 192k files with no filters, in the same run.

Memory: a ``--memory-minutes`` master is ingested in a child process (a worker: the app and
its imports loaded, migrations run beforehand by another process) whose peak RSS is read from
the kernel, before the ingest and after it.

Prints ``name = value`` lines. Not a test: it does not run in CI.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SAMPLE_RATE = 48_000


def make_master(path: Path, minutes: float, ffmpeg: str) -> None:
    """Pink noise under a slow chord: dense, music-like audio that encoders must work on."""
    seconds = minutes * 60
    chord = "+".join(f"0.08*sin(2*PI*{hz}*t)" for hz in (110, 220, 277.18, 329.63))
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.25:r={SAMPLE_RATE}:d={seconds}",
         "-f", "lavfi", "-i", f"aevalsrc={chord}|{chord}:s={SAMPLE_RATE}:d={seconds}",
         "-filter_complex", "[0]aformat=channel_layouts=stereo[n];[n][1]amix=inputs=2:normalize=0",
         "-c:a", "pcm_s24le", str(path)],
        check=True,
    )  # fmt: skip


def baseline(master: Path, out: Path, ffmpeg: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-y", "-i", str(master),
         "-map", "0:a", "-c:a", "libopus", "-b:a", "128k", str(out / "base.opus"),
         "-map", "0:a", "-c:a", "libmp3lame", "-b:a", "192k", str(out / "base.mp3")],
        check=True,
    )  # fmt: skip
    return time.perf_counter() - started


def prepare_instance(instance: Path) -> None:
    """Build the schema in a process of its own, as an operator's ``megabox db upgrade`` does:
    the worker being measured never runs migrations."""
    subprocess.run(
        [sys.executable, "-c", "from app.cli import main; main()", "db", "upgrade"],
        check=True, capture_output=True, cwd=ROOT,
        env={"MEGABOX_INSTANCE_PATH": str(instance), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def ingest(master: Path, instance: Path) -> dict[str, float]:
    """Run the real pipeline on ``master`` in a prepared embedded instance; returns timings
    and the process's peak RSS (KiB) before the ingest started."""
    from app import create_app
    from app.catalog import service as catalog
    from app.extensions import db
    from app.ingest import uploads as ingest_service
    from app.ingest.models import Upload, UploadStatus
    from app.accounts.models import User
    from app.catalog.models import Artist
    from app.ingest.tasks import process_upload

    app = create_app({"INSTANCE_PATH": str(instance), "RATELIMIT_ENABLED": False})
    with app.app_context():
        # Made directly: hashing a password (argon2 takes 64 MiB) is no part of a worker's job.
        owner = User(email="bench@example.test", display_name="Bench", password_hash="!")
        artist = Artist(owner=owner, slug="bench", name="Bench")
        db.session.add(artist)
        release = catalog.create_release(
            db.session, artist.owner, artist, {"title": "Bench", "currency": "USD", "price_minor": 700}
        )
        db.session.commit()
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        upload = ingest_service.spool_local_file(db.session, app.config, artist.owner, release, master)
        db.session.commit()
        spooled = time.perf_counter()
        process_upload(upload.id)
        db.session.commit()
        done = time.perf_counter()
        db.session.expire_all()
        state = db.session.get(Upload, upload.id)
        if state.status is not UploadStatus.READY:
            raise SystemExit(f"ingest failed: {state.error_code}: {state.error_message}")
    return {"spool": spooled - started, "process": done - spooled, "rss_before_kib": rss_before}


def child_memory(master: str, instance: str) -> None:
    """Run in a child: ingest, then print this process's peak RSS before and after, in KiB."""
    result = ingest(Path(master), Path(instance))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{result['rss_before_kib']} {own}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--memory-minutes", type=float, default=60.0)
    parser.add_argument("--child-memory", nargs=2, metavar=("MASTER", "INSTANCE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        child_memory(*args.child_memory)
        return

    from media_worker.ffmpeg import ffmpeg_path

    ffmpeg = ffmpeg_path()
    with tempfile.TemporaryDirectory(prefix="megabox-bench-") as folder:
        work = Path(folder)
        master = work / "master.wav"
        make_master(master, args.minutes, ffmpeg)
        print(f"master_minutes = {args.minutes:g}")
        print(f"master_bytes = {master.stat().st_size}")
        base = baseline(master, work, ffmpeg)
        prepare_instance(work / "instance")
        ours = ingest(master, work / "instance")
        print(f"ffmpeg_cli_two_renditions_s = {base:.2f}")
        print(f"ingest_spool_s = {ours['spool']:.2f}")
        print(f"ingest_process_s = {ours['process']:.2f}")
        print(f"ingest_ratio = {ours['process'] / base:.3f}")
        print(f"ingest_ratio_with_spool = {(ours['process'] + ours['spool']) / base:.3f}")
        master.unlink()

        if args.memory_minutes > 0:
            long_master = work / "long.wav"
            make_master(long_master, args.memory_minutes, ffmpeg)
            prepare_instance(work / "instance-long")
            result = subprocess.run(
                [sys.executable, __file__, "--child-memory", str(long_master), str(work / "instance-long")],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            before_kib, peak_kib = (int(v) for v in result.stdout.split()[-2:])
            print(f"memory_master_minutes = {args.memory_minutes:g}")
            print(f"worker_rss_before_ingest_mb = {before_kib / 1024:.1f}")
            print(f"worker_peak_rss_mb = {peak_kib / 1024:.1f}")
            print(f"worker_rss_growth_mb = {(peak_kib - before_kib) / 1024:.1f}")


if __name__ == "__main__":
    main()
