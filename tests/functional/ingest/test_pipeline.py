"""Uploads through the real pipeline: ffmpeg, the vault and the job queue, for real."""

from pathlib import Path

import pytest
from sqlalchemy import select

from app.catalog.models import Release, Track, TrackStatus
from app.extensions import db
from app.ingest.models import ReleaseCover, TrackMedia, UploadStatus
from app.ingest.uploads import PROCESS_JOB
from app.vault import service as vault
from app.ingest import service as pipeline
from app.ingest import tasks
from tests import audio_fixtures as audio
from tests.functional.ingest.conftest import spool_files, vault_files, vault_rows


def _decrypt(object_id: str, target: Path) -> Path:
    target.write_bytes(b"".join(vault.iter_plaintext(db.session, object_id)))
    return target


def test_an_upload_becomes_a_playable_normalised_track(studio, app, client, tmp_path):
    master = audio.music_like(tmp_path, lufs=-24.0, fmt="flac", seconds=6.0)
    upload_id = studio.upload(master)
    studio.process()

    upload = studio.status(upload_id)
    assert upload.status is UploadStatus.READY and upload.progress == 100
    track = upload.track
    assert track.status is TrackStatus.READY and track.release_id == studio.release.id
    assert abs(track.duration_ms - 6000) <= 50
    media = track.media
    assert (media.sample_rate, media.channels, media.codec) == (44100, 2, "flac")
    assert media.master_sha256 == vault.get_object(db.session, media.master_object_id).sha256
    assert 1000 <= media.waveform["buckets"] <= 2000

    for object_id, suffix in ((media.opus_object_id, ".opus"), (media.mp3_object_id, ".mp3")):
        rendition = _decrypt(object_id, tmp_path / f"rendition{suffix}")
        lufs, _ = audio.measure_loudness(rendition)
        assert abs(lufs - (-14.0)) <= 1.0, (suffix, lufs)
        assert abs(audio.decoded_duration_ms(rendition) - 6000) <= 50, suffix

    studio.release.published = True  # streams are public pages: API tokens do not open drafts
    db.session.commit()
    whole = client.get(f"/tracks/{track.id}/stream.mp3")
    assert whole.status_code == 200 and whole.mimetype == "audio/mpeg"
    assert whole.data == (tmp_path / "rendition.mp3").read_bytes()
    part = client.get(f"/tracks/{track.id}/stream.mp3", headers={"Range": "bytes=70000-140000"})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 70000-140000/{len(whole.data)}"
    assert part.data == whole.data[70000:140001]
    assert spool_files(app) == []


def test_tags_fill_what_the_artist_left_empty_and_never_what_they_typed(studio, tmp_path):
    master = audio.synthesise(tmp_path, "tagged", "flac")
    cover = audio.Cover(audio.cover_image(900, 700))
    audio.write_tags(
        master, "flac",
        {"TITLE": "Ünïcode Sœng\x00", "ALBUM": "Tag Album", "TRACKNUMBER": "3/9",
         "DATE": "2024-05-06", "ISRC": "US-RC1-76-07839"},
        [cover],
    )  # fmt: skip
    upload_id = studio.upload(master)
    studio.process()
    track = studio.status(upload_id).track
    assert track is not None, studio.status(upload_id).error_message
    assert (track.title, track.position, track.isrc) == ("Ünïcode Sœng", 3, "USRC17607839")
    release = db.session.get(Release, studio.release.id)
    assert release.title == "Typed Title"  # typed by the artist: the album tag does not win
    assert release.release_date.isoformat() == "2024-05-06"
    sizes = sorted(c.size for c in db.session.scalars(select(ReleaseCover)))
    assert sizes == [300, 600, 1200]
    assert release.cover_url == f"/releases/{release.id}/cover/600.jpg"
    release.published = True  # covers are public pages: API tokens do not open drafts
    db.session.commit()
    jpeg = studio.client.get(release.cover_url)
    assert jpeg.status_code == 200 and jpeg.data[:3] == b"\xff\xd8\xff"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda d: audio.garbage_named_mp3(d), "not_audio"),
        (lambda d: audio.zip_named_wav(d), "not_audio"),
        (lambda d: audio.truncated_flac(d), "corrupt_audio"),
        (lambda d: audio.text_named_mp3(d), "not_audio"),
        (lambda d: next(iter(audio.unsupported_codecs(d).values())), "unsupported_codec"),
    ],
)
def test_every_malformed_file_gets_its_code_and_leaves_nothing_behind(studio, app, tmp_path, make, code):
    upload_id = studio.upload(make(tmp_path))
    studio.process()
    upload = studio.status(upload_id)
    assert upload.status is UploadStatus.FAILED and upload.error_code == code
    assert upload.error_message
    assert db.session.scalar(select(Track)) is None
    assert vault_rows() == 0 and vault_files(app) == [] and spool_files(app) == []


def test_a_master_over_the_length_limit_is_rejected(make_app, tmp_path):
    app = make_app(MAX_AUDIO_SECONDS=2)
    with app.app_context():
        from tests.functional.ingest.conftest import Studio

        studio = Studio(app, app.test_client())
        upload_id = studio.upload(audio.synthesise(tmp_path, "long", "wav16", seconds=4.0))
        studio.process()
        assert studio.status(upload_id).error_code == "too_long"
        assert vault_rows() == 0 and spool_files(app) == []


def test_a_duplicate_master_is_reported_not_stored_twice(studio, app, tmp_path):
    master = audio.synthesise(tmp_path, "twice", "wav16")
    first = studio.upload(master)
    studio.process()
    objects = vault_rows()
    second = studio.upload(master)
    studio.process()
    upload = studio.status(second)
    assert studio.status(first).status is UploadStatus.READY
    assert upload.status is UploadStatus.FAILED and upload.error_code == "duplicate"
    assert "already uploaded" in upload.error_message
    assert db.session.query(Track).count() == 1 and vault_rows() == objects


def test_running_the_job_twice_does_no_harm(studio, app, tmp_path):
    upload_id = studio.upload(audio.synthesise(tmp_path, "once", "wav16"))
    studio.process()
    objects, files = vault_rows(), len(vault_files(app))
    tasks.process_upload(upload_id)
    db.session.commit()
    assert db.session.query(Track).count() == 1
    assert (vault_rows(), len(vault_files(app))) == (objects, files)


def test_a_failure_in_the_middle_of_processing_cleans_up(studio, app, tmp_path, monkeypatch):
    real_put = vault.put_path
    stored_when_it_failed = []

    def put_then_fail(session, path, **kwargs):
        if kwargs["kind"] == "rendition" and path.name.endswith(".mp3"):
            # The master and the Opus rendition are in the store by now.
            stored_when_it_failed.append(len(vault_files(app)))
            raise OSError("No space left on device")
        return real_put(session, path, **kwargs)

    monkeypatch.setattr(pipeline.vault, "put_path", put_then_fail)
    upload_id = studio.upload(audio.synthesise(tmp_path, "doomed", "flac"))
    studio.process()
    upload = studio.status(upload_id)
    assert stored_when_it_failed == [2]
    assert upload.status is UploadStatus.FAILED and upload.error_code == "processing_failed"
    assert db.session.scalar(select(TrackMedia)) is None and db.session.scalar(select(Track)) is None
    assert vault_rows() == 0 and vault_files(app) == [] and spool_files(app) == []


def test_an_ffmpeg_time_limit_fails_the_upload_cleanly(make_app, tmp_path):
    app = make_app(JOB_TIMEOUT_SECONDS=0.3)
    with app.app_context():
        from tests.functional.ingest.conftest import Studio

        studio = Studio(app, app.test_client())
        upload_id = studio.upload(audio.synthesise(tmp_path, "slow", "flac", seconds=60.0), chunk=1024 * 1024)
        studio.process()
        upload = studio.status(upload_id)
        assert upload.status is UploadStatus.FAILED and upload.error_code == "processing_timeout"
        assert vault_rows() == 0 and spool_files(app) == []


def test_deleting_a_release_crypto_shreds_its_media(studio, app, tmp_path):
    master = audio.synthesise(tmp_path, "gone", "flac")
    audio.write_tags(master, "flac", {"TITLE": "Gone"}, [audio.Cover(audio.cover_image(400, 400))])
    studio.upload(master)
    studio.process()
    assert vault_rows() == 6 and len(vault_files(app)) == 6  # master, 2 renditions, 3 covers
    deleted = studio.client.delete(f"/api/v1/releases/{studio.release.id}", headers=studio.headers)
    assert deleted.status_code == 204
    assert vault_rows() == 0 and vault_files(app) == []


@pytest.mark.redis
def test_the_rq_path_processes_uploads_on_the_real_redis(make_app, tmp_path):
    import uuid

    from redis import Redis

    from app.jobs import get_queue
    from app.jobs.rq_queue import build_worker
    from tests.conftest import TEST_REDIS_URL
    from tests.functional.ingest.conftest import Studio

    queue_name = f"test-ingest-{uuid.uuid4().hex[:8]}"
    app = make_app(REDIS_URL=TEST_REDIS_URL, JOB_QUEUE_NAME=queue_name)
    try:
        with app.app_context():
            studio = Studio(app, app.test_client())
            upload_id = studio.upload(audio.synthesise(tmp_path, "queued", "flac"))
            assert studio.status(upload_id).status is UploadStatus.PROCESSING
            build_worker(app).work(burst=True)
            db.session.rollback()
            upload = studio.status(upload_id)
            assert upload.status is UploadStatus.READY and upload.track.media is not None
            objects = vault_rows()
            # Delivered twice (a redelivery, or an operator's requeue): no harm done.
            get_queue(app).enqueue(PROCESS_JOB, upload_id)
            build_worker(app).work(burst=True)
            db.session.rollback()
            assert db.session.query(Track).count() == 1 and vault_rows() == objects
    finally:
        redis = Redis.from_url(TEST_REDIS_URL)
        for key in redis.scan_iter(f"*{queue_name}*"):
            redis.delete(key)
