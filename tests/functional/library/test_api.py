"""/api/v1 library: described in the OpenAPI document, asked and polled with a token, and
refusing what it cannot do with the API's error shape."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.library.models import DownloadFile
from tests.functional.library.conftest import downloads, fetch, request_format


def test_the_library_endpoints_are_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    assert set(paths["/api/v1/library"]) == {"get"}
    assert set(paths["/api/v1/library/items/{item_id}/downloads"]) == {"get", "post"}
    listed = paths["/api/v1/library"]["get"]
    assert {p["name"] for p in listed["parameters"]} >= {"q", "limit", "offset"}
    schemas = spec["components"]["schemas"]
    assert {"LibraryEntry", "ItemDownloads", "DownloadRequest"} <= set(schemas)
    assert "url" in schemas["DownloadState"]["properties"]


def test_ask_poll_and_download_with_a_token(shop, buyer, client):
    release = shop.release(("Signal",), cover=False)
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)

    asked = request_format(client, headers, item, "vorbis", release.tracks[0])
    assert asked.status_code == 202
    assert asked.json["item_id"] == item.id and asked.json["format"] == "vorbis"
    assert asked.json["tracks"][0]["status"] in ("pending", "processing", "ready")
    shop.finish_jobs()
    state = downloads(client, headers, item, "vorbis")
    (track,) = state["tracks"]
    assert track["status"] == "ready" and track["progress"] == 1.0 and track["error"] is None
    response = fetch(client, track["url"])
    assert response.status_code == 200 and response.mimetype == "audio/ogg"
    assert response.data[:4] == b"OggS"
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="{release.artist.name} - Signal.ogg"'
    )
    assert state["zip_url"] and state["zip_url"].startswith("http://localhost/downloads/zip/")


def test_the_api_refuses_with_its_error_shape(shop, buyer, client):
    release = shop.release(("Refusals",), cover=False)
    item = shop.buy(buyer, release)
    headers = shop.token_headers(buyer)
    url = f"/api/v1/library/items/{item.id}/downloads"

    unknown = client.post(url, json={"format": "mp4_lol"}, headers=headers)
    assert unknown.status_code == 422 and "format" in unknown.json["details"]
    as_text = client.post(url, json={"format": "flac", "track_id": "1"}, headers=headers)
    assert as_text.status_code == 422
    not_json = client.post(url, data="format=flac", headers=headers)
    assert not_json.status_code == 400 and not_json.json["error"] == "invalid_body"
    other_track = {"format": "flac", "track_id": release.tracks[0].id + 1}
    foreign = client.post(url, json=other_track, headers=headers)
    assert foreign.status_code == 404 and foreign.json["error"] == "library_item_not_found"
    assert client.get(f"{url}?format=nope", headers=headers).status_code == 422
    assert client.post(url, json={"format": "flac"}).status_code == 401
    assert client.get("/api/v1/library?limit=x", headers=headers).status_code == 400
    assert db.session.scalar(select(DownloadFile.id)) is None  # nothing was asked for
