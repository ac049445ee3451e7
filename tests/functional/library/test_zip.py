"""A release's zip: every track in order, each entry the same bytes as its single download,
the cover as cover.jpg, and offered only once every track is ready."""

from __future__ import annotations

import io
import zipfile

from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.library import service
from app.library.models import DownloadFile
from media_worker.downloads import FLAC, ORIGINAL
from tests.functional.library.conftest import COVER_SIZE, downloads, fetch, request_format


def test_the_zip_holds_every_track_in_order_and_each_matches_its_download(shop, buyer, client):
    release = shop.release(("Opening", "Middle / Bit", "Ending"))
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    assert downloads(client, headers, item, "flac")["zip_url"] is None  # nothing made yet
    assert request_format(client, headers, item, "flac").status_code == 202
    shop.finish_jobs()

    state = downloads(client, headers, item, "flac")
    response = fetch(client, state["zip_url"])
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Length"] == str(len(response.data))
    zip_name = f"{release.artist.name} - {release.title} (FLAC).zip"
    assert zip_name in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert archive.testzip() is None
    names = ["01 Opening.flac", "02 Middle _ Bit.flac", "03 Ending.flac", "cover.jpg"]
    assert archive.namelist() == names
    for name, track in zip(archive.namelist(), state["tracks"], strict=False):
        assert archive.read(name) == fetch(client, track["url"]).data, name
    assert all(info.compress_type == zipfile.ZIP_STORED for info in archive.infolist())
    with Image.open(io.BytesIO(archive.read("cover.jpg"))) as cover:
        assert (cover.format, cover.size) == ("JPEG", (COVER_SIZE, COVER_SIZE))


def test_a_zip_asked_for_early_starts_the_missing_tracks(app, shop, buyer, client):
    release = shop.release(("Early", "Bird"), cover=False)
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    request_format(client, headers, item, "mp3_320", release.tracks[0])
    shop.finish_jobs()

    token = service.zip_link(app.config, item, service.get_format("mp3_320"))
    early = client.get(f"/downloads/zip/{token}", headers={"Accept": "application/json"})
    assert early.status_code == 409 and early.json["error"] == "download_not_ready"
    assert early.json["details"]["tracks"] == [release.tracks[1].id]
    shop.finish_jobs()
    made = db.session.scalars(select(DownloadFile.track_id).order_by(DownloadFile.track_id)).all()
    assert made == [track.id for track in release.tracks]
    archive = zipfile.ZipFile(io.BytesIO(client.get(f"/downloads/zip/{token}").data))
    assert archive.namelist() == ["01 Early.mp3", "02 Bird.mp3"]  # no cover to add


def test_the_original_zip_holds_the_masters(app, shop, buyer, client):
    release = shop.release(("Only",), fmt="flac", cover=False)
    item = shop.buy(buyer, release)
    response = client.get(f"/downloads/zip/{service.zip_link(app.config, item, ORIGINAL)}")
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    (track,) = downloads(client, shop.token_headers(buyer), item, "original")["tracks"]
    assert archive.namelist() == ["01 Only.flac"]
    assert archive.read("01 Only.flac") == fetch(client, track["url"]).data
    assert "(Original).zip" in response.headers["Content-Disposition"]


def test_a_single_track_purchase_has_no_zip(app, shop, buyer, client):
    release = shop.release(("Lone",))
    item = shop.buy(buyer, release, release.tracks[0])
    headers = shop.token_headers(buyer)
    assert downloads(client, headers, item, "original")["zip_url"] is None
    response = client.get(f"/downloads/zip/{service.zip_link(app.config, item, FLAC)}",
                          headers={"Accept": "application/json"})  # fmt: skip
    assert response.status_code == 422 and response.json["error"] == "not_a_release"


def test_two_tracks_left_at_one_position_keep_their_own_zip_entries(app, shop, buyer, client):
    release = shop.release(("First", "Second"), fmt="flac", cover=False)
    for track in release.tracks:
        track.position = 1
    db.session.commit()
    item = shop.buy(buyer, release)
    response = client.get(f"/downloads/zip/{service.zip_link(app.config, item, ORIGINAL)}")
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert len(archive.namelist()) == 2 and len(set(archive.namelist())) == 2
    assert [name[:3] for name in archive.namelist()] == ["01 ", "02 "]
