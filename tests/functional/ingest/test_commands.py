"""``megabox ingest`` and ``megabox uploads sweep``."""

from datetime import timedelta

from sqlalchemy import select

from app.catalog.models import Release, Track
from app.extensions import db
from app.ingest import uploads as service
from app.ingest.models import Upload
from app.timestamps import utcnow
from tests import audio_fixtures as audio
from tests.factories import ArtistFactory


def test_ingest_reports_each_file_and_exits_2_when_some_are_rejected(runner, tmp_path):
    artist_id = ArtistFactory(slug="bulk").id  # each file's unit of work ends the session
    folder = tmp_path / "masters"
    folder.mkdir()
    tagged = audio.synthesise(folder, "a-good", "flac")
    audio.write_tags(tagged, "flac", {"TITLE": "Good One", "ALBUM": "Bulk Album", "TRACKNUMBER": "2/4"})
    audio.garbage_named_mp3(folder)
    audio.empty_file(folder)
    result = runner.invoke(args=["ingest", str(folder), "--artist", "bulk"])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("accepted") and "Good One" in line for line in lines)
    assert any(line.startswith("rejected") and "not_audio" in line for line in lines)
    assert any(line.startswith("rejected") and "empty_file" in line for line in lines)
    assert "Traceback" not in result.output
    release = db.session.scalar(select(Release).where(Release.artist_id == artist_id))
    assert release.title == "Bulk Album" and not release.published
    assert [(t.title, t.position) for t in release.tracks] == [("Good One", 2)]


def test_ingest_exits_0_when_everything_is_accepted(runner, tmp_path):
    track = ArtistFactory(slug="solo")
    from app.catalog import service as catalog

    release = catalog.create_release(db.session, track.owner, track, {"title": "Mine", "currency": "EUR", "price_minor": 500})
    db.session.commit()
    one = audio.synthesise(tmp_path, "one", "wav16")
    two = audio.synthesise(tmp_path, "two", "mp3")
    result = runner.invoke(args=["ingest", str(one), str(two), "--artist", "solo", "--release", str(release.id)])
    assert result.exit_code == 0, result.output
    assert "2 accepted, 0 rejected." in result.output
    assert db.session.query(Track).count() == 2


def test_ingest_refuses_an_unknown_artist_cleanly(runner, tmp_path):
    result = runner.invoke(args=["ingest", str(tmp_path), "--artist", "nobody"])
    assert result.exit_code == 1 and "No artist called 'nobody'" in result.output


def test_sweep_removes_only_abandoned_uploads(app, runner):
    from tests.functional.ingest.conftest import Studio

    studio = Studio(app, app.test_client())
    old = studio.open("old.wav", 100).json["id"]
    fresh = studio.open("fresh.wav", 100).json["id"]
    db.session.get(Upload, old).updated_at = utcnow() - timedelta(hours=100)
    db.session.commit()
    result = runner.invoke(args=["uploads", "sweep"])
    assert result.exit_code == 0 and "Removed 1" in result.output
    assert db.session.get(Upload, old) is None and db.session.get(Upload, fresh) is not None
    assert not service.spool_path(app.config, old).exists()
    assert service.spool_path(app.config, fresh).exists()
