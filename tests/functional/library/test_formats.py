"""Formats made on demand: the original byte for byte, lossless formats to the master's PCM,
tags and cover in every file, the cache, failures and retries, and one encode per format."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from app.catalog.models import PricingMode
from app.extensions import db
from app.library import service
from app.library.models import DownloadFile, DownloadStatus
from app.vault import service as vault
from app.vault.format import HEADER_SIZE
from app.vault.models import VaultObject
from media_worker.tags import read_tags
from tests import audio_fixtures as audio
from tests.functional.library.conftest import (
    COVER_SIZE,
    MASTER_GENRE,
    MASTER_LABEL,
    downloads,
    fetch,
    request_format,
)

LOSSLESS = ("flac", "alac", "wav", "aiff")
LOSSY = ("mp3_320", "mp3_v0", "aac_256", "vorbis", "opus")


def pcm_md5(path: Path) -> str:
    """MD5 of the decoded audio as 32-bit PCM (ffmpeg's md5 muxer), whatever the container."""
    done = audio.ffmpeg("-i", str(path), "-map", "0:a:0", "-c:a", "pcm_s32le", "-f", "md5", "-")
    return done.stdout.decode().strip()


def save(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def ready_tracks(
    shop: Any, client: Any, headers: dict[str, str], item: Any, fmt: str
) -> list[dict[str, Any]]:
    """Ask for ``fmt`` of every track of ``item``, let the jobs run, and return the states."""
    asked = request_format(client, headers, item, fmt)
    assert asked.status_code == 202, asked.json
    shop.finish_jobs()
    tracks = downloads(client, headers, item, fmt)["tracks"]
    assert [t["status"] for t in tracks] == ["ready"] * len(tracks), tracks
    return tracks


def test_the_original_is_the_masters_bytes(shop, buyer, client, tmp_path):
    release = shop.release(("Raw Take",), fmt="flac")
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    master = vault.get_object(db.session, release.tracks[0].media.master_object_id)

    (track,) = downloads(client, headers, item, "original")["tracks"]
    assert track["status"] == "ready"  # no job: the master itself
    response = fetch(client, track["url"])
    assert response.status_code == 200
    assert hashlib.sha256(response.data).hexdigest() == master.sha256
    assert response.mimetype == "audio/flac"
    assert db.session.scalar(select(DownloadFile.id)) is None


def assert_delivered_tags(path: Path, title: str, release: Any, position: int, total: int) -> None:
    tags = read_tags(path)
    assert tags.title == title
    assert tags.artists == (release.artist.name,)  # the catalogue's artist, not the master's tag
    assert tags.album_artist == release.artist.name
    assert tags.album == release.title
    assert (tags.track_number, tags.track_total) == (position, total)
    assert (tags.genre, tags.label) == (MASTER_GENRE, MASTER_LABEL)  # no catalogue column: kept
    assert tags.cover is not None
    with Image.open(io.BytesIO(tags.cover.data)) as image:
        assert (image.format, image.size) == ("JPEG", (COVER_SIZE, COVER_SIZE))


def test_lossless_downloads_decode_to_the_masters_pcm_and_carry_tags(shop, buyer, client, tmp_path):
    release = shop.release(("Deep Water",), fmt="wav24")
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    master_path = save(tmp_path, "master.wav", b"".join(
        vault.iter_plaintext(db.session, release.tracks[0].media.master_object_id)))  # fmt: skip
    for fmt in LOSSLESS:
        assert request_format(shop.client, headers, item, fmt).status_code == 202
    shop.finish_jobs()

    for fmt in LOSSLESS:
        (track,) = downloads(client, headers, item, fmt)["tracks"]
        assert track["status"] == "ready", track
        delivered = save(tmp_path, f"delivered-{fmt}", fetch(client, track["url"]).data)
        assert pcm_md5(delivered) == pcm_md5(master_path), fmt
        assert_delivered_tags(delivered, "Deep Water", release, 1, 1)
    rows = db.session.scalars(select(DownloadFile)).all()
    assert sorted(row.format for row in rows) == sorted(LOSSLESS)
    kinds = {vault.get_object(db.session, row.object_id).kind for row in rows}
    assert kinds == {service.DOWNLOAD_KIND}  # each in the vault under a key of its own


def test_lossy_downloads_carry_tags_and_cover(shop, buyer, client, tmp_path):
    release = shop.release(("Side A", "Side B"))
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    for fmt in LOSSY:
        assert request_format(client, headers, item, fmt, release.tracks[1]).status_code == 202
    shop.finish_jobs()

    for fmt in LOSSY:
        states = {t["track_id"]: t for t in downloads(client, headers, item, fmt)["tracks"]}
        assert states[release.tracks[0].id]["status"] == "not_requested"
        second = states[release.tracks[1].id]
        assert second["status"] == "ready", second
        response = fetch(client, second["url"])
        delivered = save(tmp_path, f"delivered-{fmt}", response.data)
        assert_delivered_tags(delivered, "Side B", release, 2, 2)
        assert abs(audio.decoded_duration_ms(delivered) - 1000) <= 60, fmt


def test_a_lossy_master_gets_lossy_formats_only_and_says_why(shop, buyer, client):
    release = shop.release(("Bedroom Demo",), fmt="mp3")
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)

    options = {o["name"]: o for o in downloads(client, headers, item, "mp3_320")["formats"]}
    assert [name for name, o in options.items() if not o["available"]] == list(LOSSLESS)
    lossy_note = "This master is lossy (MP3), so lossless formats are not offered"
    assert lossy_note in options["flac"]["reason"]
    refused = request_format(client, headers, item, "flac")
    assert refused.status_code == 422 and refused.json["error"] == "format_not_offered"
    assert db.session.scalar(select(DownloadFile.id)) is None

    shop.login(buyer)
    page = client.get(f"/library/items/{item.id}")
    assert page.status_code == 200
    assert lossy_note in page.text
    assert "Master: MP3, 44.1 kHz, lossy." in page.text
    assert 'value="flac"  disabled' in page.text or 'value="flac" disabled' in page.text


def test_a_second_request_is_served_from_the_cache(shop, buyer, client):
    release = shop.release()
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    (first,) = ready_tracks(shop, client, headers, item, "opus")
    row = db.session.scalars(select(DownloadFile)).one()
    made_at = row.updated_at

    again = request_format(client, headers, item, "opus")
    assert again.status_code == 202
    (state,) = again.json["tracks"]
    assert state["status"] == "ready" and state["url"]  # at once: nothing to make
    shop.finish_jobs()
    row = db.session.scalars(select(DownloadFile)).one()
    assert (row.status, row.updated_at) == (DownloadStatus.READY, made_at)
    assert fetch(client, state["url"]).data == fetch(client, first["url"]).data
    assert db.session.query(VaultObject).filter_by(kind=service.DOWNLOAD_KIND).count() == 1


def test_the_artists_edits_win_and_make_a_new_cache_entry(shop, buyer, client, tmp_path):
    release = shop.release(("Working Title",))
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    ready_tracks(shop, client, headers, item, "mp3_v0")
    old = db.session.scalars(select(DownloadFile)).one()
    old_object, old_digest = old.object_id, old.tags_digest

    release.tracks[0].title = "Final Title"
    release.title = "The Record"
    db.session.commit()
    (state,) = ready_tracks(shop, client, headers, item, "mp3_v0")

    delivered = save(tmp_path, "edited.mp3", fetch(client, state["url"]).data)
    tags = read_tags(delivered)
    assert (tags.title, tags.album) == ("Final Title", "The Record")
    new = db.session.scalars(select(DownloadFile)).one()  # the superseded entry is gone
    assert new.tags_digest != old_digest
    assert db.session.get(VaultObject, old_object) is None


def test_a_failed_format_says_why_and_can_be_retried(shop, buyer, client, app):
    release = shop.release()
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    master = vault.get_object(db.session, release.tracks[0].media.master_object_id)
    ciphertext = Path(app.instance_path) / "vault" / master.backend_key
    original = ciphertext.read_bytes()
    damaged = bytearray(original)
    damaged[HEADER_SIZE + 100] ^= 0x01  # the first segment no longer authenticates
    ciphertext.write_bytes(bytes(damaged))

    request_format(client, headers, item, "flac")
    shop.finish_jobs()
    (failed,) = downloads(client, headers, item, "flac")["tracks"]
    assert failed["status"] == "failed" and failed["url"] is None
    assert failed["error"] == "Making this format failed on our side. Try again later."
    assert db.session.query(VaultObject).filter_by(kind=service.DOWNLOAD_KIND).count() == 0

    ciphertext.write_bytes(original)
    (retried,) = ready_tracks(shop, client, headers, item, "flac")
    assert retried["error"] is None
    assert fetch(client, retried["url"]).status_code == 200
    assert db.session.scalars(select(DownloadFile)).one().status is DownloadStatus.READY


def test_the_page_shows_progress_then_a_download_button(shop, buyer, client):
    release = shop.release(("Slow Burn",), mode=PricingMode.FREE)
    item = shop.buy(buyer, release)
    track = release.tracks[0]
    # A job part-way through AIFF (the state a worker leaves between its progress writes).
    db.session.add(DownloadFile(track_id=track.id, format="aiff", status=DownloadStatus.PROCESSING,
                                progress=0.4, tags_digest=service.tags_digest(db.session, track)))
    db.session.commit()
    shop.login(buyer)

    making = client.get(f"/library/items/{item.id}?format=aiff")
    assert "Master: WAV, 16-bit, 44.1 kHz, lossless." in making.text
    assert "Lossless downloads keep the master's sample rate and its bit depth" in making.text
    assert 'aria-valuenow="40"' in making.text and "fetch(" in making.text
    polled = client.get(f"/api/v1/library/items/{item.id}/downloads?format=aiff")
    assert polled.json["tracks"][0]["status"] == "processing"
    assert polled.json["tracks"][0]["progress"] == 0.4

    page = client.get(f"/library/items/{item.id}?format=wav")
    assert ">Prepare<" in page.text
    assert "Download</a>" not in page.text and "fetch(" not in page.text
    asked = client.post(f"/library/items/{item.id}/downloads", data={"format": "wav"})
    assert asked.status_code == 302
    shop.finish_jobs()
    done = client.get(asked.headers["Location"])
    assert "Download</a>" in done.text and "fetch(" not in done.text


@pytest.mark.postgres
def test_concurrent_requests_make_one_row_and_one_encode(shop, buyer, client, app):
    release = shop.release()
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    url = f"/api/v1/library/items/{item.id}/downloads"
    start = threading.Barrier(8)
    statuses: list[int] = []

    def ask() -> None:
        with app.test_client() as own:
            start.wait()
            statuses.append(own.post(url, json={"format": "flac"}, headers=headers).status_code)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shop.finish_jobs()
    assert statuses == [202] * 8
    (row,) = db.session.scalars(select(DownloadFile)).all()
    assert row.status is DownloadStatus.READY
    assert db.session.query(VaultObject).filter_by(kind=service.DOWNLOAD_KIND).count() == 1


@pytest.mark.postgres
def test_two_jobs_at_once_encode_once(shop, buyer, app):
    release = shop.release()
    track = release.tracks[0]
    digest = service.tags_digest(db.session, track)
    row = DownloadFile(track_id=track.id, format="alac", status=DownloadStatus.PENDING,
                       progress=0.0, tags_digest=digest)  # fmt: skip
    db.session.add(row)
    db.session.commit()
    row_id = row.id
    start = threading.Barrier(2)
    outcomes: list[service.MakeOutcome] = []

    def run_job() -> None:
        with app.app_context():
            start.wait()
            outcomes.append(service.make_format(db.session, app.config, row_id))
            db.session.commit()

    threads = [threading.Thread(target=run_job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One claimed the row and encoded; the other found it claimed and encoded nothing.
    assert sorted(outcomes) == [service.MakeOutcome.MADE, service.MakeOutcome.NOT_CLAIMED]
    db.session.expire_all()
    assert db.session.get(DownloadFile, row_id).status is DownloadStatus.READY
    assert db.session.query(VaultObject).filter_by(kind=service.DOWNLOAD_KIND).count() == 1
