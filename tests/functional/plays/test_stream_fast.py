"""Streaming reads the database once per request, and keeps nothing between requests: who may
hear a track, and whether its audio still exists, are decided afresh every time."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from app.catalog import service as catalog
from app.catalog.models import Track
from app.extensions import db
from app.ingest.models import TrackMedia
from app.vault import service as vault
from tests.conftest import AuthActions
from tests.factories import ReleaseFactory, TrackFactory, UserFactory
from tests.functional.plays.conftest import put_rendition

SEGMENT_LOG2 = 8
PS = 1 << SEGMENT_LOG2
OPUS = random.Random(11).randbytes(5 * PS + 17)
MP3 = random.Random(13).randbytes(7 * PS + 3)
HEADERS = {"Range": f"bytes={PS - 5}-{2 * PS + 4}", "Accept": "application/json"}


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(VAULT_SEGMENT_SIZE_LOG2=SEGMENT_LOG2)
    with built.app_context():
        yield built
        db.session.rollback()


def with_audio(track: Track) -> str:
    """Give ``track`` its renditions (OPUS and MP3, each an object of its own), commit, and
    return the track's stream address without its format."""
    master = put_rendition(b"master")
    db.session.add(
        TrackMedia(
            track_id=track.id,
            artist_id=track.release.artist_id,
            master_sha256=master.sha256,
            master_object_id=master.id,
            opus_object_id=put_rendition(OPUS).id,
            mp3_object_id=put_rendition(MP3).id,
            original_filename="take.wav",
            container="wav",
            codec="pcm_s16le",
            sample_rate=44100,
            channels=2,
            waveform={"buckets": 0, "peaks": []},
        )
    )
    address = f"/tracks/{track.id}/stream"
    db.session.commit()
    return address


@pytest.fixture
def statements(app: Flask) -> Iterator[list[str]]:
    """Every SQL statement the app sends while the test runs."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    yield sent
    event.remove(db.engine, "before_cursor_execute", record)


def wanted(start: int, end: int) -> Callable[[bytes], bytes]:
    return lambda data: data[start : end + 1]


def test_each_format_streams_its_own_rendition(client: FlaskClient) -> None:
    address = with_audio(TrackFactory())
    part = wanted(PS - 5, 2 * PS + 4)
    # Opus after MP3 as well: each format's query is built once and kept.
    for fmt, data in (("opus", OPUS), ("mp3", MP3), ("opus", OPUS)):
        response = client.get(f"{address}.{fmt}", headers=HEADERS)
        assert response.status_code == 206
        assert response.headers["Content-Range"] == f"bytes {PS - 5}-{2 * PS + 4}/{len(data)}"
        assert response.data == part(data)


def test_a_range_request_reads_the_database_once(
    client: FlaskClient, statements: list[str]
) -> None:
    address = with_audio(TrackFactory())
    statements.clear()
    response = client.get(f"{address}.mp3", headers=HEADERS)
    assert response.status_code == 206 and response.data == wanted(PS - 5, 2 * PS + 4)(MP3)
    assert len(statements) == 1


@pytest.mark.postgres
def test_the_read_runs_without_a_transaction_and_leaves_the_pool_transactional(
    client: FlaskClient,
) -> None:
    """On PostgreSQL the one read is made in autocommit (no BEGIN and ROLLBACK round trips),
    and every connection goes back to the pool with transactions on."""
    address = with_audio(TrackFactory())
    modes: list[bool] = []

    def record(conn: Any, *_args: Any) -> None:
        modes.append(conn.connection.driver_connection.autocommit)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        response = client.get(f"{address}.opus", headers=HEADERS)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert response.status_code == 206 and response.data == wanted(PS - 5, 2 * PS + 4)(OPUS)
    assert modes == [True]
    pooled = [db.engine.raw_connection() for _ in range(db.engine.pool.checkedin())]
    try:
        assert pooled and not any(c.driver_connection.autocommit for c in pooled)
    finally:
        for connection in pooled:
            connection.close()


def test_a_draft_streams_for_its_artist_and_admins_only(
    client: FlaskClient, auth: AuthActions
) -> None:
    draft = ReleaseFactory(published=False, published_at=None)
    owner_email = draft.artist.owner.email
    address = with_audio(TrackFactory(release=draft))
    response = client.get(f"{address}.opus", headers=HEADERS)
    assert response.status_code == 404
    assert response.get_json()["error"] == "track_not_found"
    stranger, admin = UserFactory().email, UserFactory(is_admin=True).email
    db.session.commit()
    for email, status in ((stranger, 404), (owner_email, 206), (admin, 206)):
        auth.login(email)
        response = client.get(f"{address}.opus", headers=HEADERS)
        assert response.status_code == status, email
        if status == 206:
            assert response.data == wanted(PS - 5, 2 * PS + 4)(OPUS)
        auth.logout()


def test_unpublishing_stops_the_stream_at_once(client: FlaskClient) -> None:
    track = TrackFactory()
    address = with_audio(track)
    assert client.get(f"{address}.opus", headers=HEADERS).status_code == 206
    track.release.published = False
    db.session.commit()
    response = client.get(f"{address}.opus", headers=HEADERS)
    assert response.status_code == 404
    assert response.get_json()["error"] == "track_not_found"


def test_a_deleted_track_stops_streaming_at_once(client: FlaskClient) -> None:
    track = TrackFactory()
    owner = track.release.artist.owner
    address = with_audio(track)
    assert client.get(f"{address}.mp3", headers=HEADERS).status_code == 206
    catalog.delete_track(db.session, owner, track)
    db.session.commit()
    response = client.get(f"{address}.mp3", headers=HEADERS)
    assert response.status_code == 404
    assert response.get_json()["error"] == "track_not_found"


def test_a_track_whose_media_is_gone_has_no_audio_at_once(client: FlaskClient) -> None:
    track = TrackFactory()
    address = with_audio(track)
    assert client.get(f"{address}.mp3", headers=HEADERS).status_code == 206
    media = db.session.get(TrackMedia, track.id)
    rendition = media.mp3_object_id
    db.session.delete(media)
    vault.delete(db.session, rendition)
    db.session.commit()
    response = client.get(f"{address}.mp3", headers=HEADERS)
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_an_unknown_track_or_format_is_404(client: FlaskClient) -> None:
    address = with_audio(TrackFactory())
    assert client.get(f"{address}.flac", headers=HEADERS).status_code == 404
    response = client.get("/tracks/2147483000/stream.opus", headers=HEADERS)
    assert response.status_code == 404
    assert response.get_json()["error"] == "track_not_found"
