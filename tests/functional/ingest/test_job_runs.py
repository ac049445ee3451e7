"""The ingest job run twice, twice at once, killed half-way and run again, and swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, text, update

from app.catalog.models import Track
from app.extensions import db
from app.ingest import uploads
from app.ingest.models import TrackMedia, Upload, UploadStatus
from app.ingest.uploads import PROCESS_JOB
from app.jobs.runner import perform_job
from app.timestamps import utcnow
from app.vault.models import VaultObject
from tests import audio_fixtures as audio
from tests.functional.ingest.conftest import spool_files, vault_files, vault_rows

KILL_WAIT_SECONDS = 60
OBJECTS_PER_TRACK = 3  # the master and two renditions


def _spooled(studio, app, master: Path) -> str:
    """An upload in ``processing`` whose job has not run (as if its enqueue was lost)."""
    upload = uploads.spool_local_file(db.session, app.config, studio.artist.owner, studio.release, master)
    db.session.commit()
    return upload.id


def _assert_one_track_and_nothing_orphaned(app, upload_id: str) -> None:
    db.session.rollback()
    db.session.expire_all()
    upload = db.session.get(Upload, upload_id)
    assert upload.status is UploadStatus.READY and upload.track is not None
    assert db.session.query(Track).count() == 1 and db.session.query(TrackMedia).count() == 1
    assert vault_rows() == OBJECTS_PER_TRACK
    stored = {row.backend_key.rsplit("/", 1)[-1] for row in db.session.scalars(select(VaultObject))}
    assert stored == set(upload.track.media.object_ids())
    assert spool_files(app) == []


def test_two_runs_at_once_store_one_track(studio, app, tmp_path):
    upload_id = _spooled(studio, app, audio.synthesise(tmp_path, "twice-at-once", "flac", seconds=3.0))
    errors: list[BaseException] = []

    def run() -> None:
        with app.app_context():
            try:
                perform_job(PROCESS_JOB, (upload_id,), final_attempt=True)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    _assert_one_track_and_nothing_orphaned(app, upload_id)
    # The losing run's ciphertext went with its rollback: every file has its row.
    assert len(vault_files(app)) == OBJECTS_PER_TRACK


def test_a_run_killed_half_way_is_finished_by_the_next_run(studio, app, tmp_path):
    upload_id = _spooled(studio, app, audio.synthesise(tmp_path, "killed", "flac", seconds=90.0))
    env = {
        **os.environ,
        "MEGABOX_DATABASE_URL": app.config["DATABASE_URL"],
        "MEGABOX_INSTANCE_PATH": app.instance_path,
        "MEGABOX_SECRET_KEY": "test",
        "MEGABOX_FFMPEG_CONCURRENCY": "1",
    }
    script = (
        "import sys\nfrom app import create_app\nfrom app.jobs.runner import perform_job\n"
        "with create_app().app_context():\n"
        f"    perform_job({PROCESS_JOB!r}, ({upload_id!r},), final_attempt=True)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            stage = db.session.scalar(select(Upload.stage).where(Upload.id == upload_id))
            db.session.rollback()
            if stage == "encoding":
                break
            assert worker.poll() is None, worker.stderr.read().decode()
            time.sleep(0.05)
        assert stage == "encoding"
        if db.engine.dialect.name == "postgresql":
            # While ffmpeg encodes, the job holds no transaction open (and so no row lock).
            open_transactions = db.session.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            ))
            db.session.rollback()
            assert open_transactions == 0
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(30)
        worker.stderr.close()
    killed = db.session.get(Upload, upload_id)
    assert killed.status is UploadStatus.PROCESSING and db.session.query(Track).count() == 0
    assert vault_rows() == 0  # nothing the killed run did reached the database

    perform_job(PROCESS_JOB, (upload_id,), final_attempt=True)
    _assert_one_track_and_nothing_orphaned(app, upload_id)


def test_the_sweep_requeues_uploads_stuck_in_processing(studio, app, tmp_path, runner):
    upload_id = _spooled(studio, app, audio.synthesise(tmp_path, "stuck", "wav16"))
    lost_id = _spooled(studio, app, audio.synthesise(tmp_path, "lost", "wav16", seconds=1.5))
    uploads.spool_path(app.config, lost_id).unlink()
    long_ago = utcnow() - timedelta(minutes=app.config["UPLOAD_PROCESSING_TIMEOUT_MINUTES"] + 1)
    db.session.execute(update(Upload).values(updated_at=long_ago))
    db.session.commit()

    result = runner.invoke(args=["uploads", "sweep"])
    assert result.exit_code == 0, result.output
    assert "1 stuck upload(s) queued again" in result.output and "1 failed" in result.output
    from tests.functional.ingest.conftest import Studio

    Studio.process(studio)
    _assert_one_track_and_nothing_orphaned(app, upload_id)
    lost = db.session.get(Upload, lost_id)
    assert lost.status is UploadStatus.FAILED and lost.error_code == "upload_lost"
    # A failed upload no longer holds quota.
    assert uploads.storage_used(db.session, studio.artist.id) == sum(
        db.session.scalars(select(VaultObject.size))
    )


def test_a_processing_job_whose_release_is_gone_fails_cleanly(studio, app, tmp_path):
    upload_id = _spooled(studio, app, audio.synthesise(tmp_path, "orphan", "wav16"))
    db.session.delete(studio.release)
    db.session.commit()
    perform_job(PROCESS_JOB, (upload_id,), final_attempt=True)
    db.session.rollback()
    assert db.session.get(Upload, upload_id) is None
    assert db.session.query(Track).count() == 0 and vault_rows() == 0 and vault_files(app) == []


def test_renditions_count_against_the_quota(make_app, tmp_path):
    # A minute of near silence compresses to little; its streaming copies do not.
    expression = f"if(lt(t\\,59.5)\\,0\\,{audio.TONE})"
    master = audio.synthesise(tmp_path, "quiet", "flac", expression=expression, seconds=60.0)
    app = make_app(ARTIST_STORAGE_QUOTA_BYTES=master.stat().st_size * 4)
    with app.app_context():
        from tests.functional.ingest.conftest import Studio

        studio = Studio(app, app.test_client())
        upload_id, artist_id = _spooled(studio, app, master), studio.artist.id
        perform_job(PROCESS_JOB, (upload_id,), final_attempt=True)
        db.session.rollback()
        upload = db.session.get(Upload, upload_id)
        assert upload.status is UploadStatus.FAILED and upload.error_code == "quota_exceeded"
        assert vault_rows() == 0 and vault_files(app) == [] and spool_files(app) == []
        assert uploads.storage_used(db.session, artist_id) == 0


def test_deleting_a_release_removes_the_spools_of_its_uploads(studio, app, tmp_path):
    processing = _spooled(studio, app, audio.synthesise(tmp_path, "in-flight", "wav16"))
    receiving = studio.open("half.wav", 10_000).json["id"]
    assert studio.send(receiving, 0, b"\0" * 4000).status_code == 204
    assert len(spool_files(app)) == 2
    deleted = studio.client.delete(f"/api/v1/releases/{studio.release.id}", headers=studio.headers)
    assert deleted.status_code == 204
    db.session.rollback()
    assert db.session.get(Upload, processing) is None and db.session.get(Upload, receiving) is None
    assert spool_files(app) == []


def test_a_deletion_rolled_back_keeps_the_spools(studio, app, tmp_path):
    from app.catalog import service as catalog

    _spooled(studio, app, audio.synthesise(tmp_path, "kept", "wav16"))
    catalog.delete_release(db.session, studio.artist.owner, studio.release, config=app.config)
    db.session.flush()
    db.session.rollback()
    assert len(spool_files(app)) == 1
