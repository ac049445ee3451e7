"""Key-in-link downloads: what a link's holder gets decrypts, by FORMAT.md alone, to the vault's
plaintext; the server keeps no key; revoking, refunds, strangers and unknown tokens all stop it.

The decryptor below is written from app/vault/FORMAT.md and app/library/keylinks.py's
docstring, not from app.vault.format, so it checks the published construction.
"""

from __future__ import annotations

import base64
import io
import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from app.catalog.models import Release, Track, TrackStatus
from app.commerce import service as commerce
from app.commerce.models import Order
from app.extensions import db
from app.ingest.models import TrackMedia
from app.library import service as library
from app.library.models import DownloadFile, DownloadStatus, KeyLink
from app.timestamps import utcnow
from app.vault import service as vault
from app.vault.models import VaultObject
from tests.conftest import AuthActions
from tests.factories import ReleaseFactory, TrackFactory, UserFactory

SEGMENT_LOG2 = 8
SEGMENT = 1 << SEGMENT_LOG2
# Nine whole segments and a short final one.
MASTER = random.Random(9).randbytes(9 * SEGMENT + 77)
JSON = {"Accept": "application/json"}


# A reference decryptor, from the published formats ---------------------------------------


def split_link(location: str) -> tuple[str, bytes]:
    """The token and the fragment key of ``/d/<token>#k=<key>``."""
    parts = urlsplit(location)
    assert parts.path.startswith("/d/") and parts.fragment.startswith("k=")
    encoded = parts.fragment[2:]
    return parts.path[3:], base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))


def reference_decrypt(fragment_key: bytes, token: str, meta: dict[str, Any], blob: bytes) -> bytes:
    header = base64.b64decode(meta["header"])
    wrapped = base64.b64decode(meta["wrapped_key"])
    wrapping_key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=token.encode("ascii"),
        info=b"megabox-keylink/v1",
    ).derive(fragment_key)  # fmt: skip
    dek = AESGCM(wrapping_key).decrypt(wrapped[:12], wrapped[12:], header)
    assert blob[:64] == header
    log2, salt, prefix = header[6], header[23:33], header[33:40]
    length = int.from_bytes(header[40:48], "big")
    okm = HKDF(
        algorithm=hashes.SHA256(), length=48, salt=salt, info=b"megabox-vault/v1" + header[:48]
    ).derive(dek)
    assert okm[32:48] == header[48:64], "key commitment"
    aead = AESGCM(okm[:32])
    size = 1 << log2
    count = max(1, -(-length // size))
    plaintext = bytearray()
    position = 64
    for index in range(count):
        sealed_length = (size if index < count - 1 else length - (count - 1) * size) + 16
        sealed = blob[position : position + sealed_length]
        position += sealed_length
        final = b"\x01" if index == count - 1 else b"\x00"
        plaintext += aead.decrypt(prefix + index.to_bytes(4, "big") + final, sealed, header)
    assert position == len(blob), "no trailing bytes"
    return bytes(plaintext)


# A purchased track whose master is MASTER --------------------------------------------------


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(VAULT_SEGMENT_SIZE_LOG2=SEGMENT_LOG2)
    with built.app_context():
        yield built
        db.session.rollback()


def add_media(track: Track, master: bytes) -> VaultObject:
    stored = vault.put_stream(
        db.session, io.BytesIO(master), kind="master", content_type="audio/wav", size=len(master)
    )
    renditions = [vault.put_stream(db.session, io.BytesIO(b"r"), kind="rendition", size=1) for _ in "ab"]
    db.session.add(
        TrackMedia(
            track_id=track.id, artist_id=track.release.artist_id, master_sha256=stored.sha256,
            master_object_id=stored.id, opus_object_id=renditions[0].id,
            mp3_object_id=renditions[1].id, original_filename="Take 3.WAV", container="wav",
            codec="pcm_s16le", sample_rate=44100, channels=2,
            waveform={"buckets": 0, "peaks": []},
        )
    )  # fmt: skip
    db.session.commit()
    return stored


@pytest.fixture
def release(app: Flask) -> Release:
    made = ReleaseFactory(title="Salt Marsh", artist__name="Ines / Ortega", price_minor=700)
    for position, title in enumerate(["Shoal", "Heron"], start=1):
        track = TrackFactory(release=made, position=position, title=title, status=TrackStatus.READY)
        add_media(track, MASTER if position == 1 else MASTER[::-1])
    return made


@pytest.fixture
def buyer(app: Flask) -> Any:
    return UserFactory()


def buy(app: Flask, buyer: Any, release: Release, track: Track | None = None) -> Order:
    line = commerce.CartLine(release.id, track.id if track else None)
    order = commerce.create_order(db.session, buyer, [line], gateway="sandbox", config=app.config)
    db.session.commit()
    commerce.record_payment(
        db.session,
        commerce.Payment(
            order_public_id=order.public_id, gateway=order.gateway,
            amount_minor=order.total_minor, currency=order.currency, fee_minor=0,
            paid_at=utcnow(),
        ),
        config=app.config,
    )  # fmt: skip
    db.session.commit()
    return order


@pytest.fixture
def order(app: Flask, buyer: Any, release: Release) -> Order:
    return buy(app, buyer, release)


def make_link(client: FlaskClient, order: Order, track: Track, fmt: str = "original") -> Any:
    return client.post(
        "/d", data={"order_item_id": order.items[0].id, "track_id": track.id, "format": fmt}
    )


@pytest.fixture
def link(client: FlaskClient, auth: AuthActions, buyer: Any, order: Order, release: Release) -> tuple[str, bytes]:
    auth.login(buyer.email)
    response = make_link(client, order, release.tracks[0])
    assert response.status_code == 303
    return split_link(response.headers["Location"])


# Tests -------------------------------------------------------------------------------------


def test_the_link_decrypts_by_the_published_format_to_the_masters_bytes(
    client: FlaskClient, link: tuple[str, bytes], release: Release
) -> None:
    token, key = link
    page = client.get(f"/d/{token}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "Ines _ Ortega - Shoal.wav" in page.text
    meta = client.get(f"/d/{token}/meta", headers=JSON).json
    assert meta["file_name"] == "Ines _ Ortega - Shoal.wav"
    assert (meta["size"], meta["segment_size"], meta["content_type"]) == (len(MASTER), SEGMENT, "audio/wav")
    blob = client.get(meta["blob_url"])
    assert blob.status_code == 200 and blob.headers["Cache-Control"] == "no-store"
    assert len(blob.data) == meta["ciphertext_size"] == 64 + len(MASTER) + 16 * 10

    assert reference_decrypt(key, token, meta, blob.data) == MASTER
    # What is served is the stored object as it is, never decrypted on the way.
    stored = vault.get_object(db.session, release.tracks[0].media.master_object_id)
    assert blob.data == (Path(client.application.instance_path) / "vault" / stored.backend_key).read_bytes()


def test_a_download_cut_half_way_resumes_with_range_to_the_same_bytes(
    client: FlaskClient, link: tuple[str, bytes]
) -> None:
    token, key = link
    whole = client.get(f"/d/{token}/blob")
    cut = len(whole.data) // 2 + 3
    rest = client.get(f"/d/{token}/blob", headers={"Range": f"bytes={cut}-", "If-Range": whole.headers["ETag"]})
    assert rest.status_code == 206
    assert rest.headers["Content-Range"] == f"bytes {cut}-{len(whole.data) - 1}/{len(whole.data)}"
    assert whole.data[:cut] + rest.data == whole.data
    beyond = client.get(f"/d/{token}/blob", headers={"Range": f"bytes={len(whole.data)}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(whole.data)}"


def test_a_key_from_another_link_does_not_open_this_one(
    client: FlaskClient, link: tuple[str, bytes], order: Order, release: Release
) -> None:
    token, key = link
    other_token, other_key = split_link(make_link(client, order, release.tracks[0]).headers["Location"])
    assert other_token != token and other_key != key
    meta = client.get(f"/d/{token}/meta", headers=JSON).json
    blob = client.get(f"/d/{token}/blob").data
    with pytest.raises(InvalidTag):
        reference_decrypt(other_key, token, meta, blob)
    # The token is the wrap's salt: the right key under another link's token fails too.
    with pytest.raises(InvalidTag):
        reference_decrypt(key, other_token, meta, blob)


def test_the_server_stores_and_logs_nothing_of_the_fragment_key(
    app: Flask, client: FlaskClient, auth: AuthActions, buyer: Any, order: Order,
    release: Release, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    auth.login(buyer.email)
    with caplog.at_level(logging.DEBUG):
        response = make_link(client, order, release.tracks[0])
        token, key = split_link(response.headers["Location"])
        meta = client.get(f"/d/{token}/meta", headers=JSON).json
        client.get(f"/d/{token}/blob")
        client.post(f"/d/{token}/revoke")
    forms = [
        key, key.hex().encode(), base64.b64encode(key), base64.urlsafe_b64encode(key).rstrip(b"=")
    ]  # fmt: skip
    assert meta["wrapped_key"]  # the link worked, so its key existed
    # Every column of every row in the database.
    everything = bytearray()
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(select(table)):
            for value in row:
                everything += value if isinstance(value, bytes) else str(value).encode()
    assert token.encode() in everything
    assert not any(form in everything for form in forms)
    if db.engine.dialect.name == "sqlite":
        db.session.execute(text("PRAGMA wal_checkpoint(FULL)"))
        files = Path(db.engine.url.database).parent.glob(Path(db.engine.url.database).name + "*")
        raw = b"".join(path.read_bytes() for path in files)
        assert token.encode() in raw
        assert not any(form in raw for form in forms)
    logged = caplog.text.encode() + b"".join(r.getMessage().encode() for r in caplog.records)
    assert not any(form in logged for form in forms)


def test_revoking_deletes_the_wrapped_key_and_stops_the_link(
    client: FlaskClient, link: tuple[str, bytes]
) -> None:
    token, _ = link
    response = client.post(f"/d/{token}/revoke")
    assert response.status_code == 302
    row = db.session.scalar(select(KeyLink).where(KeyLink.token == token))
    db.session.refresh(row)
    assert row.wrapped_key is None and row.revoked_at is not None
    assert client.get(f"/d/{token}").status_code == 410
    meta = client.get(f"/d/{token}/meta", headers=JSON)
    assert meta.status_code == 410 and meta.json["error"] == "link_gone"
    assert "wrapped_key" not in meta.json and "wrapped_key" not in meta.json["details"]
    assert client.get(f"/d/{token}/blob").status_code == 410
    assert token not in client.get("/d").text
    # Revoking again changes nothing, not even when it happened.
    first = row.revoked_at
    assert client.post(f"/d/{token}/revoke").status_code == 302
    db.session.refresh(row)
    assert row.revoked_at == first


def test_only_the_buyer_can_revoke(
    client: FlaskClient, auth: AuthActions, link: tuple[str, bytes], release: Release
) -> None:
    token, _ = link
    auth.logout()
    stranger = UserFactory()
    auth.login(stranger.email)
    assert client.post(f"/d/{token}/revoke").status_code == 404
    auth.logout()
    auth.login(release.artist.owner.email)
    assert client.post(f"/d/{token}/revoke").status_code == 404
    row = db.session.scalar(select(KeyLink).where(KeyLink.token == token))
    db.session.refresh(row)
    assert row.wrapped_key is not None and row.revoked_at is None


def test_a_link_needs_no_sign_in_but_only_the_buyer_sees_revoke(
    client: FlaskClient, auth: AuthActions, link: tuple[str, bytes]
) -> None:
    token, _ = link
    assert "Revoke this link" in client.get(f"/d/{token}").text
    auth.logout()
    page = client.get(f"/d/{token}")
    assert page.status_code == 200 and "Revoke this link" not in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert client.get(f"/d/{token}/meta", headers=JSON).status_code == 200


def test_an_unknown_token_is_not_found(client: FlaskClient, link: tuple[str, bytes]) -> None:
    token, _ = link
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for path in (f"/d/{wrong}", f"/d/{wrong}/meta", f"/d/{wrong}/blob"):
        assert client.get(path, headers=JSON).status_code == 404


def test_a_refund_stops_the_link(
    client: FlaskClient, link: tuple[str, bytes], order: Order
) -> None:
    token, _ = link
    commerce.record_refund(db.session, order, refunded_total_minor=order.total_minor, at=utcnow())
    db.session.commit()
    meta = client.get(f"/d/{token}/meta", headers=JSON)
    assert meta.status_code == 410 and "wrapped_key" not in meta.json
    assert client.get(f"/d/{token}/blob").status_code == 410


def test_only_the_buyer_can_make_a_link_and_only_to_what_they_own(
    app: Flask, client: FlaskClient, auth: AuthActions, buyer: Any, release: Release
) -> None:
    first, second = release.tracks
    single = buy(app, buyer, release, track=first)
    assert make_link(client, single, first).status_code == 302  # to the sign-in page
    auth.login(release.artist.owner.email)
    assert make_link(client, single, first).status_code == 404
    auth.logout()
    auth.login(buyer.email)
    # A track item owns its track only; an unknown format is not offered.
    assert make_link(client, single, second).status_code == 404
    assert make_link(client, single, first, fmt="mp4").status_code == 404
    too_big = {"order_item_id": str(2**70), "track_id": first.id, "format": "original"}
    assert client.post("/d", data=too_big, headers=JSON).status_code == 422
    assert db.session.scalar(select(KeyLink)) is None
    assert make_link(client, single, first).status_code == 303


def test_a_format_not_made_yet_cannot_be_linked(
    client: FlaskClient, auth: AuthActions, buyer: Any, order: Order, release: Release
) -> None:
    auth.login(buyer.email)
    response = client.post(
        "/d",
        data={"order_item_id": order.items[0].id, "track_id": release.tracks[0].id, "format": "flac"},
        headers=JSON,
    )
    assert response.status_code == 409 and response.json["error"] == "download_not_ready"
    assert db.session.scalar(select(KeyLink)) is None


def test_a_made_format_links_to_its_cached_file(
    client: FlaskClient, auth: AuthActions, buyer: Any, order: Order, release: Release
) -> None:
    track = release.tracks[1]
    made = MASTER[: 3 * SEGMENT]  # stands in for an encoded FLAC: the bytes are what count
    stored = vault.put_stream(db.session, io.BytesIO(made), kind="download", size=len(made))
    db.session.add(
        DownloadFile(
            track_id=track.id, format="flac", tags_digest=library.tags_digest(db.session, track),
            status=DownloadStatus.READY, progress=1.0, object_id=stored.id, size=len(made),
        )
    )  # fmt: skip
    db.session.commit()
    auth.login(buyer.email)
    token, key = split_link(make_link(client, order, track, fmt="flac").headers["Location"])
    meta = client.get(f"/d/{token}/meta", headers=JSON).json
    assert (meta["file_name"], meta["content_type"]) == ("Ines _ Ortega - Heron.flac", "audio/flac")
    assert reference_decrypt(key, token, meta, client.get(meta["blob_url"]).data) == made


def test_the_buyers_links_are_listed_for_revoking(
    client: FlaskClient, link: tuple[str, bytes], order: Order, release: Release
) -> None:
    token, _ = link
    other, _ = split_link(make_link(client, order, release.tracks[1]).headers["Location"])
    listing = client.get("/d")
    assert listing.status_code == 200
    assert f"/d/{token}/revoke" in listing.text and f"/d/{other}/revoke" in listing.text
    assert "Heron" in listing.text and "Original master" in listing.text
