from sqlalchemy import func, select

from app.accounts.models import ApiToken, User
from app.catalog.models import Artist, Release
from tests.factories import ArtistFactory, UserFactory


def test_create_admin_makes_an_administrator(runner, session):
    result = runner.invoke(args=["users", "create-admin", "ops@example.test", "--password", "a-long-password"])
    assert result.exit_code == 0, result.output
    user = session.scalar(select(User).where(User.email == "ops@example.test"))
    assert user.is_admin and user.password_hash.startswith("$argon2")


def test_create_admin_refuses_a_short_password_in_one_line(runner, session):
    result = runner.invoke(args=["users", "create-admin", "ops@example.test", "--password", "short"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "megabox: password: Use 10 to 1024 characters.\n"
    assert session.scalar(select(User)) is None


def test_create_admin_refuses_a_bad_email_in_one_line(runner, session):
    result = runner.invoke(args=["users", "create-admin", "not-an-email", "--password", "a-long-password"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "megabox: email: Enter an e-mail address like name@example.com.\n"
    assert session.scalar(select(User)) is None


def test_create_admin_promotes_an_existing_user(runner, session):
    user = UserFactory(email="someone@example.test")
    result = runner.invoke(args=["users", "create-admin", "Someone@Example.test", "--password", "a-long-password"])
    assert result.exit_code == 0 and "now an administrator" in result.output
    session.refresh(user)
    assert user.is_admin and session.scalar(select(func.count(User.id))) == 1


def test_users_token_prints_a_token_that_authenticates_the_api(runner, client, session):
    user = UserFactory(email="script@example.test")
    result = runner.invoke(args=["users", "token", "script@example.test", "--name", "nightly export"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip()
    assert secret.startswith("mbx_") and result.stdout == secret + "\n"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.get_json()["email"] == "script@example.test"
    token = session.scalar(select(ApiToken).where(ApiToken.user_id == user.id))
    assert token.name == "nightly export" and token.last_used_at is not None


def test_users_token_for_an_unknown_email_is_one_line(runner, session):
    result = runner.invoke(args=["users", "token", "nobody@example.test"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "megabox: no user has the e-mail address nobody@example.test\n"
    assert session.scalar(select(ApiToken)) is None


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


def test_artists_create_reports_bad_input_in_one_line(runner, session):
    ArtistFactory(slug="taken")
    bad_slug = runner.invoke(args=["artists", "create", "Bad Slug!", "--name", "X"])
    assert bad_slug.exit_code == 1 and bad_slug.stderr.startswith("megabox: slug:")
    assert len(bad_slug.stderr.splitlines()) == 1 and "Traceback" not in bad_slug.output
    taken = runner.invoke(args=["artists", "create", "taken", "--name", "X"])
    assert taken.exit_code == 1 and taken.stderr == "megabox: The address 'taken' is taken.\n"
    assert session.scalar(select(func.count(Artist.id))) == 1
    bad_email = runner.invoke(args=["artists", "create", "fine", "--name", "X", "--email", "nope"])
    assert bad_email.exit_code == 1 and bad_email.stderr == "megabox: email: Enter an e-mail address like name@example.com.\n"


def test_demo_seed_is_idempotent(runner, session):
    first = runner.invoke(args=["demo", "seed", "--no-audio"])
    assert first.exit_code == 0 and "artist@demo.megabox.test" in first.output
    count = session.scalar(select(func.count(Release.id)))
    assert count >= 3
    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0 and "already there" in second.output and "Seeding" not in second.output
    assert session.scalar(select(func.count(Release.id))) == count


def test_demo_seed_reports_a_taken_address_in_one_line(runner, session):
    ArtistFactory(slug="aurora-lines")
    result = runner.invoke(args=["demo", "seed", "--no-audio"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "megabox: cannot seed the demo: The address 'aurora-lines' is taken.\n"
    assert session.scalar(select(func.count(Release.id))) == 0


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
