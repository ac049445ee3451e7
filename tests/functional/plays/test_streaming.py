"""Streaming renditions from the vault: conditional and range requests as RFC 9110 has them,
and a damaged object never sending a byte that failed authentication."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.catalog.models import Track
from app.extensions import db
from app.ingest.models import ReleaseCover, TrackMedia
from app.vault import service as vault
from app.vault.errors import AuthenticationFailed
from app.vault.format import HEADER_SIZE, TAG_SIZE
from app.vault.keys import Keyring, new_kek
from app.vault.models import VaultObject
from tests.factories import ReleaseFactory, TrackFactory
from tests.functional.plays.conftest import put_rendition

SEGMENT_LOG2 = 8
PS = 1 << SEGMENT_LOG2
# Ten segments and a short final one.
AUDIO = random.Random(7).randbytes(10 * PS + 100)
SIZE = len(AUDIO)
JSON = {"Accept": "application/json"}


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(VAULT_SEGMENT_SIZE_LOG2=SEGMENT_LOG2)
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def track(app: Flask) -> Track:
    """A published track whose mp3 rendition is AUDIO."""
    made = TrackFactory()
    master, opus, mp3 = put_rendition(b"master"), put_rendition(b"opus"), put_rendition(AUDIO)
    db.session.add(
        TrackMedia(
            track_id=made.id,
            artist_id=made.release.artist_id,
            master_sha256=master.sha256,
            master_object_id=master.id,
            opus_object_id=opus.id,
            mp3_object_id=mp3.id,
            original_filename="take.wav",
            container="wav",
            codec="pcm_s16le",
            sample_rate=44100,
            channels=2,
            waveform={"buckets": 0, "peaks": []},
        )
    )
    db.session.commit()
    return made


def url(track: Track) -> str:
    return f"/tracks/{track.id}/stream.mp3"


def mp3_object(track: Track) -> VaultObject:
    assert track.media is not None
    return vault.get_object(db.session, track.media.mp3_object_id)


def flip_segment(app: Flask, stored: VaultObject, segment: int) -> None:
    """Flip one ciphertext byte of ``segment`` in the local store."""
    path = Path(app.instance_path) / "vault" / stored.backend_key
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + segment * (PS + TAG_SIZE) + 5] ^= 0x01
    path.write_bytes(raw)


def received_until_failure(response: Any) -> bytes:
    """The body as a client receives it when the server cuts the stream on an error."""
    received = bytearray()
    with pytest.raises(AuthenticationFailed):
        for chunk in response.response:
            received += chunk
    return bytes(received)


def test_a_plain_request_gets_the_whole_rendition_with_validators(
    client: FlaskClient, track: Track
) -> None:
    response = client.get(url(track))
    assert response.status_code == 200
    assert response.data == AUDIO
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Cache-Control"] == "no-store"
    stored = mp3_object(track)
    assert response.headers["ETag"] == f'"{stored.id}"'  # strong: no W/ prefix
    assert response.last_modified == stored.created_at.replace(microsecond=0)


def test_a_single_range_gets_206_and_exactly_those_bytes(client: FlaskClient, track: Track) -> None:
    response = client.get(url(track), headers={"Range": f"bytes={PS - 3}-{3 * PS + 1}"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {PS - 3}-{3 * PS + 1}/{SIZE}"
    assert response.data == AUDIO[PS - 3 : 3 * PS + 2]
    assert response.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    "header",
    ["bytes=0-1,5-6", "bytes=0-0, 100-200", "items=0-1", "bytes=9-3", "bytes=abc"],
    ids=["two ranges", "two ranges with a space", "another unit", "backwards", "malformed"],
)
def test_a_range_other_than_one_byte_range_is_ignored(
    client: FlaskClient, track: Track, header: str
) -> None:
    response = client.get(url(track), headers={"Range": header})
    assert response.status_code == 200
    assert "Content-Range" not in response.headers
    assert response.data == AUDIO


def test_a_suffix_longer_than_the_file_gets_the_whole_file(
    client: FlaskClient, track: Track
) -> None:
    response = client.get(url(track), headers={"Range": f"bytes=-{SIZE + 500}"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 0-{SIZE - 1}/{SIZE}"
    assert response.data == AUDIO


def test_a_suffix_gets_the_last_bytes(client: FlaskClient, track: Track) -> None:
    response = client.get(url(track), headers={"Range": "bytes=-300"})
    assert response.status_code == 206
    assert response.data == AUDIO[-300:]


def test_a_matching_if_none_match_gets_304(client: FlaskClient, track: Track) -> None:
    etag = client.get(url(track)).headers["ETag"]
    response = client.get(url(track), headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag


def test_an_if_range_with_a_stale_validator_gets_the_whole_body(
    client: FlaskClient, track: Track
) -> None:
    response = client.get(url(track), headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert response.status_code == 200
    assert response.data == AUDIO


def test_an_if_range_with_the_current_validator_gets_the_range(
    client: FlaskClient, track: Track
) -> None:
    etag = client.get(url(track)).headers["ETag"]
    response = client.get(url(track), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert response.status_code == 206
    assert response.data == AUDIO[:10]


def test_a_range_past_the_end_gets_416_in_the_api_error_shape(
    client: FlaskClient, track: Track
) -> None:
    response = client.get(url(track), headers={"Range": f"bytes={SIZE}-", **JSON})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    body = response.get_json()
    assert body["error"] == "range_not_satisfiable"
    assert body["message"]
    assert body["details"] == {"size": SIZE}


def test_a_damaged_first_segment_is_a_500_before_any_byte(
    app: Flask, client: FlaskClient, track: Track, caplog: pytest.LogCaptureFixture
) -> None:
    stored = mp3_object(track)
    flip_segment(app, stored, 0)
    with caplog.at_level(logging.ERROR):
        response = client.get(url(track), headers=JSON)
    assert response.status_code == 500
    body = response.get_json()
    assert body["error"] == "internal_error"
    assert "egment" not in body["message"] and stored.id not in response.get_data(as_text=True)
    assert stored.id in caplog.text


def test_a_damaged_first_segment_of_a_range_is_a_500(
    app: Flask, client: FlaskClient, track: Track
) -> None:
    flip_segment(app, mp3_object(track), 4)
    response = client.get(url(track), headers={"Range": f"bytes={4 * PS + 1}-", **JSON})
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"


def test_a_damaged_later_segment_cuts_the_stream_before_its_bytes(
    app: Flask, client: FlaskClient, track: Track, caplog: pytest.LogCaptureFixture
) -> None:
    stored = mp3_object(track)
    flip_segment(app, stored, 6)
    with caplog.at_level(logging.ERROR):
        response = client.get(url(track))
        assert response.status_code == 200  # the headers went out before the damage was met
        received = received_until_failure(response)
    assert len(received) <= 6 * PS
    assert received == AUDIO[: len(received)]
    assert f"object {stored.id} failed at segment 6" in caplog.text


def test_a_damaged_segment_inside_a_range_cuts_the_stream(
    app: Flask, client: FlaskClient, track: Track
) -> None:
    flip_segment(app, mp3_object(track), 3)
    start = PS + 10
    response = client.get(url(track), headers={"Range": f"bytes={start}-{8 * PS}"})
    assert response.status_code == 206
    received = received_until_failure(response)
    assert len(received) <= 3 * PS - start
    assert received == AUDIO[start : start + len(received)]


def test_a_missing_ciphertext_names_no_path(
    app: Flask, client: FlaskClient, track: Track, caplog: pytest.LogCaptureFixture
) -> None:
    stored = mp3_object(track)
    (Path(app.instance_path) / "vault" / stored.backend_key).unlink()
    response = client.get(url(track), headers=JSON)
    assert response.status_code == 404
    text = response.get_data(as_text=True)
    assert stored.backend_key not in text and app.instance_path not in text
    assert stored.backend_key in caplog.text


def test_a_missing_kek_is_a_500_that_names_no_key_file(
    app: Flask, client: FlaskClient, track: Track, caplog: pytest.LogCaptureFixture
) -> None:
    vault.current_vault().keyring = Keyring({99: new_kek()}, "KEK file /secret/megabox-kek")
    response = client.get(url(track), headers=JSON)
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_error"
    assert "/secret/megabox-kek" not in response.get_data(as_text=True)
    assert "/secret/megabox-kek" in caplog.text


def test_a_head_request_gets_the_headers_only(client: FlaskClient, track: Track) -> None:
    response = client.head(url(track))
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.data == b""


def test_a_cover_is_cached_privately_and_served_by_range(client: FlaskClient, app: Flask) -> None:
    release = ReleaseFactory()
    jpeg = b"\xff\xd8\xff" + random.Random(3).randbytes(3 * PS)
    db.session.add(ReleaseCover(release_id=release.id, size=300, object_id=put_rendition(jpeg).id))
    db.session.commit()
    response = client.get(f"/releases/{release.id}/cover/300.jpg", headers={"Range": "bytes=0-2"})
    assert response.status_code == 206
    assert response.data == b"\xff\xd8\xff"
    assert response.headers["Cache-Control"] == "private, max-age=86400"
