from sqlalchemy import func, select

from app.accounts.models import User
from app.catalog.models import Artist, Release
from tests.factories import ArtistFactory, UserFactory


def test_create_admin_makes_an_administrator(runner, session):
    result = runner.invoke(args=["users", "create-admin", "ops@example.test", "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User).where(User.email == "ops@example.test"))
    assert user.is_admin and user.password_hash.startswith("$argon2")


def test_create_admin_refuses_a_short_password(runner, session):
    result = runner.invoke(args=["users", "create-admin", "ops@example.test", "--password", "short"])
    assert result.exit_code == 2 and "at least 10 characters" in result.output
    assert session.scalar(select(User)) is None


def test_artists_create_makes_the_owner_when_needed(runner, session):
    result = runner.invoke(args=["artists", "create", "new-band", "--name", "New Band", "--email", "band@example.test"])
    assert result.exit_code == 0, result.output
    artist = session.scalar(select(Artist).where(Artist.slug == "new-band"))
    assert artist.owner.email == "band@example.test"
    assert "can sign in with the password" in result.output


def test_artists_create_reuses_an_existing_user(runner, session):
    user = UserFactory(email="known@example.test")
    result = runner.invoke(args=["artists", "create", "second", "--name", "Second", "--email", "known@example.test"])
    assert result.exit_code == 0 and "password" not in result.output
    assert session.scalar(select(Artist).where(Artist.slug == "second")).owner_id == user.id


def test_artists_create_reports_bad_input_without_a_traceback(runner):
    ArtistFactory(slug="taken")
    bad_slug = runner.invoke(args=["artists", "create", "Bad Slug!", "--name", "X"])
    assert bad_slug.exit_code == 1 and "slug:" in bad_slug.output and "Traceback" not in bad_slug.output
    taken = runner.invoke(args=["artists", "create", "taken", "--name", "X"])
    assert taken.exit_code == 1 and "is taken" in taken.output


def test_demo_seed_is_idempotent(runner, session):
    first = runner.invoke(args=["demo", "seed", "--no-audio"])
    assert first.exit_code == 0 and "artist@demo.megabox.test" in first.output
    count = session.scalar(select(func.count(Release.id)))
    assert count >= 3
    second = runner.invoke(args=["demo", "seed", "--no-audio"])
    assert second.exit_code == 0 and "already there" in second.output
    assert session.scalar(select(func.count(Release.id))) == count


def test_demo_seed_makes_playable_tracks(runner, session, client, monkeypatch):
    from app.catalog import demo
    from app.catalog.models import Track, TrackStatus

    monkeypatch.setattr(demo, "DEMO_TRACK_SECONDS", 3)
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    tracks = session.scalars(select(Track)).all()
    assert len(tracks) == 9 and all(t.status is TrackStatus.READY and t.media for t in tracks)
    assert {t.title for t in tracks} >= {"Cold Open", "Free Tea"}
    stream = client.get(f"/tracks/{tracks[0].id}/stream.opus", headers={"Range": "bytes=0-3"})
    assert stream.status_code == 206 and stream.data == b"OggS"
