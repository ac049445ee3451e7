"""Signed download links: Range and resume, validators and file names, expiry, tampering,
the purchase a link is bound to, and who may get one."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from app.catalog.models import Track
from app.commerce import service as commerce
from app.commerce.models import OrderItem
from app.extensions import db
from app.library import service
from app.library.service import LinkClaims
from app.timestamps import utcnow
from app.vault import service as vault
from media_worker.downloads import FLAC, ORIGINAL
from tests.factories import ArtistFactory, UserFactory
from tests.functional.library.conftest import LINK_TTL_SECONDS, fetch


def link(app: Any, item: OrderItem, track: Track, fmt: str = "original", **kwargs: Any) -> str:
    token = service.track_link(app.config, item, track, service.get_format(fmt), **kwargs)
    return f"/downloads/{token}"


@pytest.fixture
def bought(shop, buyer):
    """A buyer's purchase of a one-track release, and the release."""
    release = shop.release(("Überschall / Part 1",))
    return shop.buy(buyer, release), release


def test_a_download_cut_half_way_resumes_to_the_same_bytes(app, client, bought):
    item, release = bought
    url = link(app, item, release.tracks[0])
    master = vault.get_object(db.session, release.tracks[0].media.master_object_id)

    whole = client.get(url)
    assert whole.status_code == 200
    assert hashlib.sha256(whole.data).hexdigest() == master.sha256
    assert whole.headers["ETag"] == f'"{master.id}"'  # strong: the object never changes
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.last_modified == master.created_at.replace(microsecond=0)
    half = len(whole.data) // 2 + 7  # not on a segment boundary
    first = client.get(url, headers={"Range": f"bytes=0-{half - 1}"})
    assert first.status_code == 206 and len(first.data) == half
    rest = client.get(url, headers={"Range": f"bytes={half}-", "If-Range": whole.headers["ETag"]})
    assert rest.status_code == 206
    assert rest.headers["Content-Range"] == f"bytes {half}-{len(whole.data) - 1}/{len(whole.data)}"
    assert first.data + rest.data == whole.data
    stale = client.get(url, headers={"Range": f"bytes={half}-", "If-Range": '"another-version"'})
    assert stale.status_code == 200 and stale.data == whole.data  # changed: start again


def test_the_file_is_named_after_the_artist_and_title_safely(app, client, bought):
    item, release = bought
    response = client.get(link(app, item, release.tracks[0]))
    disposition = response.headers["Content-Disposition"]
    name = f"{release.artist.name} - Überschall _ Part 1.wav"
    assert disposition == (
        f'attachment; filename="{release.artist.name} - Uberschall _ Part 1.wav"; '
        f"filename*=UTF-8''{name.replace(' ', '%20').replace('Ü', '%C3%9C')}"
    )


@pytest.mark.parametrize(
    ("stem", "ascii_name"),
    [
        ('Sigur Rós - "Hoppípolla"', "Sigur Ros - _Hoppipolla_.flac"),
        ("../../etc/passwd", "_.._etc_passwd.flac"),
        ("\u5149 - \u5f71", "_ - _.flac"),
        ("...", "download.flac"),
    ],
)
def test_file_names_keep_only_safe_characters(stem, ascii_name):
    name = service.download_filename(stem, ".flac")
    assert "/" not in name and "\\" not in name and '"' not in name and not name.startswith(".")
    assert service.ascii_filename(name) == ascii_name
    expected = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''"
    assert service.content_disposition(name).startswith(expected)


def test_an_expired_link_is_refused(app, client, bought):
    item, release = bought
    issued = time.time() - LINK_TTL_SECONDS - 1
    response = client.get(link(app, item, release.tracks[0], now=issued))
    assert response.status_code == 403
    assert "expired" in response.text
    assert client.get(link(app, item, release.tracks[0], now=time.time() - 60)).status_code == 200


def test_a_tampered_link_is_refused(app, client, bought):
    item, release = bought
    good = link(app, item, release.tracks[0])
    payload, signature = good.removeprefix("/downloads/").split(".")
    claims = LinkClaims("track", item.id, release.tracks[0].id, "original", int(time.time()) + 60)
    other = service.track_link(app.config, item, release.tracks[0], FLAC).split(".")[0]
    for token in (
        f"{other}.{signature}",  # other claims (another format) under this signature
        f"{payload}.{signature[:-2]}AA",
        f"{payload}x.{signature}",
        payload,
        "not-a-token",
        service.sign_link("another-secret-key", claims),
    ):
        response = client.get(f"/downloads/{token}", headers={"Accept": "application/json"})
        assert response.status_code == 403, token
        assert response.json["error"] == "link_invalid"


def test_a_link_for_one_purchase_cannot_fetch_another_object(app, client, shop, buyer, bought):
    item, release = bought
    elsewhere = shop.release(("Not Yours",))
    soon = int(time.time()) + 60
    secret = app.config["SECRET_KEY"]
    claims = [
        # not this item's track
        LinkClaims("track", item.id, elsewhere.tracks[0].id, "original", soon),
        LinkClaims("track", item.id + 1000, release.tracks[0].id, "original", soon),  # no such item
        LinkClaims("track", item.id, None, "original", soon),
        LinkClaims("track", item.id, release.tracks[0].id, "no_such_format", soon),
    ]
    for claim in claims:
        token = service.sign_link(secret, claim)
        response = client.get(f"/downloads/{token}", headers={"Accept": "application/json"})
        assert response.status_code == 404, claim
    zip_token = service.zip_link(app.config, item, ORIGINAL)
    # A zip link is no track link.
    assert client.get(f"/downloads/{zip_token}").status_code == 403


def test_a_track_purchase_reaches_only_its_track(app, client, shop, buyer):
    release = shop.release(("One", "Two"))
    item = shop.buy(buyer, release, release.tracks[1])
    assert client.get(link(app, item, release.tracks[1])).status_code == 200
    assert client.get(link(app, item, release.tracks[0])).status_code == 404


def test_a_refunded_purchase_stops_its_links(app, client, bought):
    item, release = bought
    url = link(app, item, release.tracks[0])
    assert client.get(url).status_code == 200
    total = item.order.total_minor
    commerce.record_refund(db.session, item.order, refunded_total_minor=total, at=utcnow())
    db.session.commit()
    refused = client.get(url, headers={"Accept": "application/json"})
    assert refused.status_code == 403 and refused.json["error"] == "not_owned"


def test_a_partly_refunded_purchase_still_downloads(app, client, bought):
    item, release = bought
    commerce.record_refund(db.session, item.order, refunded_total_minor=100, at=utcnow())
    db.session.commit()
    assert client.get(link(app, item, release.tracks[0])).status_code == 200


def test_only_the_buyer_the_artist_and_an_admin_get_links(app, client, shop, bought):
    item, release = bought
    people = {
        "buyer": item.order.buyer,
        "artist": release.artist.owner,
        "admin": UserFactory(is_admin=True),
        "stranger": UserFactory(),
        "another artist": ArtistFactory().owner,
    }
    for who, user in people.items():
        headers = shop.token_headers(user)
        url = f"/api/v1/library/items/{item.id}/downloads"
        response = client.get(f"{url}?format=original", headers=headers)
        if who in ("stranger", "another artist"):
            assert response.status_code == 404, who
            asked = client.post(url, json={"format": "flac"}, headers=headers)
            assert asked.status_code == 404, who
        else:
            assert response.status_code == 200, who
            assert all(fetch(client, t["url"]).status_code == 200 for t in response.json["tracks"])
    shop.login(people["stranger"])
    assert client.get(f"/library/items/{item.id}").status_code == 404
    assert client.get("/api/v1/library/items/99999/downloads").status_code == 404


def test_an_anonymous_visitor_cannot_ask_for_links(client, bought):
    item, _ = bought
    assert client.get(f"/api/v1/library/items/{item.id}/downloads").status_code == 401
    assert client.get(f"/library/items/{item.id}").status_code == 302  # to the sign-in page


def test_file_names_drop_format_characters_and_fit_a_file_system() -> None:
    from app.library.service import FILENAME_MAX_BYTES, download_filename

    assert download_filename("01 evil\u202eexe.mp3", ".flac") == "01 evilexe.mp3.flac"
    assert download_filename("zero\u200bwidth", ".mp3") == "zerowidth.mp3"
    long = download_filename("🎸" * 200, ".flac")
    assert len(long.encode("utf-8")) <= FILENAME_MAX_BYTES + len(".flac")
    assert long.startswith("🎸") and long.endswith(".flac")
