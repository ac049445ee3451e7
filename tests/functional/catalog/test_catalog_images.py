"""Release covers and artist avatars uploaded in the Studio: stored, served, replaced, removed."""

from __future__ import annotations

import struct
import threading
import time
import zlib
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import event, select

from app.catalog import images
from app.catalog.models import Artist, ArtistAvatar, Release
from app.extensions import db
from app.ingest.models import ReleaseCover
from app.vault.models import VaultObject
from tests.conftest import AuthActions
from tests.factories import ArtistFactory, ReleaseFactory, UserFactory
from tests.functional.catalog.forms import field_errors


def picture(fmt: str = "PNG", size: tuple[int, int] = (640, 480), colour: str = "teal") -> bytes:
    out = BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    image = Image.open(BytesIO(data))
    image.load()
    return image


def ciphertext(app: Any, object_id: str) -> Path:
    stored = db.session.get(VaultObject, object_id)
    return Path(app.instance_path) / "vault" / stored.backend_key


def cover_ids(session: Any, release_id: int) -> dict[int, str]:
    rows = session.scalars(select(ReleaseCover).where(ReleaseCover.release_id == release_id))
    return {row.size: row.object_id for row in rows}


def avatar_ids(session: Any, artist_id: int) -> dict[int, str]:
    rows = session.scalars(select(ArtistAvatar).where(ArtistAvatar.artist_id == artist_id))
    return {row.size: row.object_id for row in rows}


def upload(client: Any, url: str, field: str, data: bytes, name: str = "art.png") -> Any:
    return client.post(url, data={field: (BytesIO(data), name)}, content_type="multipart/form-data")


@pytest.fixture
def release(auth: Any) -> Release:
    made = ReleaseFactory(title="Salt Flats")
    auth.login(made.artist.owner.email)
    return made


def test_an_uploaded_cover_is_stored_as_thumbnails_and_served(client, app, session, release):
    response = upload(client, f"/studio/releases/{release.id}/cover", "cover", picture("PNG"))
    assert response.status_code == 302
    ids = cover_ids(session, release.id)
    assert sorted(ids) == [300, 600, 1200]
    session.refresh(release)
    assert release.cover_url.startswith(f"/releases/{release.id}/cover/600.jpg?v=")
    assert "cover_url" in release.locked_fields
    for size, object_id in ids.items():
        assert ciphertext(app, object_id).exists()
        served = client.get(f"/releases/{release.id}/cover/{size}.jpg")
        assert served.status_code == 200 and served.mimetype == "image/jpeg"
        image = decoded(served.data)
        assert (image.format, image.size) == ("JPEG", (size, size))
    assert release.cover_url in client.get(f"/releases/{release.id}").get_data(as_text=True)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_jpeg_and_webp_covers_are_accepted(client, session, release, fmt):
    response = upload(client, f"/studio/releases/{release.id}/cover", "cover", picture(fmt), "art.bin")
    assert response.status_code == 302
    assert sorted(cover_ids(session, release.id)) == [300, 600, 1200]


def test_replacing_a_cover_deletes_the_old_thumbnails_and_their_files(client, app, session, release):
    upload(client, f"/studio/releases/{release.id}/cover", "cover", picture(colour="red"))
    old = cover_ids(session, release.id)
    old_files = [ciphertext(app, object_id) for object_id in old.values()]
    old_url = session.get(Release, release.id).cover_url

    assert upload(client, f"/studio/releases/{release.id}/cover", "cover", picture(colour="blue")).status_code == 302

    new = cover_ids(session, release.id)
    assert sorted(new) == [300, 600, 1200] and not set(new.values()) & set(old.values())
    assert session.scalars(select(VaultObject.id).where(VaultObject.id.in_(old.values()))).all() == []
    assert not any(path.exists() for path in old_files)
    session.expire_all()
    assert session.get(Release, release.id).cover_url != old_url
    red, green, blue = decoded(client.get(f"/releases/{release.id}/cover/300.jpg").data).getpixel((150, 150))
    assert blue > 200 and red < 50


@pytest.mark.postgres
def test_parallel_replacements_leave_one_cover_and_no_stray_files(app, session):
    """Each replacement holds the release's row: the last one in deletes every earlier
    one's files, not only its rows. (Each waits a moment before deleting the rows it read,
    which without the hold lets the others commit in between.)"""
    made = ReleaseFactory(title="Raced")
    owner, release_id = made.artist.owner.email, made.id
    url = f"/studio/releases/{release_id}/cover"
    colours = ["red", "green", "blue", "white", "black", "yellow"]
    racers = len(colours)
    clients = [app.test_client() for _ in range(racers)]
    for client in clients:
        AuthActions(client).login(owner)
    barrier = threading.Barrier(racers)
    statuses: list[int] = []

    def replace(client: Any, colour: str) -> None:
        image = picture(colour=colour)
        barrier.wait()
        answer = upload(client, url, "cover", image)
        statuses.append(answer.status_code)
        with app.app_context():
            db.session.remove()

    def linger(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("DELETE FROM release_covers"):
            time.sleep(0.3)

    event.listen(db.engine, "before_cursor_execute", linger)

    threads = [threading.Thread(target=replace, args=pair) for pair in zip(clients, colours, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    event.remove(db.engine, "before_cursor_execute", linger)
    assert statuses == [302] * racers
    session.expire_all()
    kept = cover_ids(session, release_id)
    assert sorted(kept) == [300, 600, 1200]
    covers = session.scalars(select(VaultObject.id).where(VaultObject.kind == "cover")).all()
    assert sorted(covers) == sorted(kept.values())
    files = [path for path in (Path(app.instance_path) / "vault").rglob("*") if path.is_file()]
    assert sorted(files) == sorted(ciphertext(app, object_id) for object_id in kept.values())


def test_removing_a_cover_deletes_it_and_keeps_the_lock(client, app, session, release):
    upload(client, f"/studio/releases/{release.id}/cover", "cover", picture())
    files = [ciphertext(app, object_id) for object_id in cover_ids(session, release.id).values()]
    response = client.post(f"/studio/releases/{release.id}/cover/delete")
    assert response.status_code == 302
    assert cover_ids(session, release.id) == {} and not any(path.exists() for path in files)
    session.expire_all()
    removed = session.get(Release, release.id)
    assert removed.cover_url is None and "cover_url" in removed.locked_fields
    assert client.get(f"/releases/{release.id}/cover/600.jpg").status_code == 404


def bomb() -> bytes:
    """A small PNG that declares 7000 × 7000 pixels: more than a cover may have."""
    out = BytesIO()
    Image.new("1", (7000, 7000)).save(out, "PNG")
    return out.getvalue()


def huge_header() -> bytes:
    """A PNG header declaring 30000 × 30000 pixels, which Pillow refuses to open at all."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 30_000, 30_000, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def gif() -> bytes:
    out = BytesIO()
    Image.new("P", (50, 50)).save(out, "GIF")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The chosen file is empty."),
        (b"%PDF-1.4 not a picture", "That file is not an image we can use: choose a JPEG, PNG or WebP image."),
        (gif(), "That file is not an image we can use: choose a JPEG, PNG or WebP image."),
        (picture("PNG")[:200], "That image is incomplete or damaged. Save it again and choose it anew."),
        (bomb(), "The image is too large: use at most 40,000,000 pixels (3000 × 3000 is plenty)."),
        (huge_header(), "The image is too large: use at most 40,000,000 pixels (3000 × 3000 is plenty)."),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 garbage", "That image is incomplete or damaged. Save it again and choose it anew."),
    ],
    ids=["empty", "not-an-image", "gif", "truncated", "decompression-bomb", "huge-header", "bad-webp"],
)
def test_a_bad_cover_is_explained_inline_and_changes_nothing(client, app, session, release, data, message):
    upload(client, f"/studio/releases/{release.id}/cover", "cover", picture())
    before = cover_ids(session, release.id)
    objects = session.scalars(select(VaultObject.id)).all()
    files = sorted((Path(app.instance_path) / "vault").rglob("*"))

    response = upload(client, f"/studio/releases/{release.id}/cover", "cover", data)

    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "cover") == [message]
    assert cover_ids(session, release.id) == before
    assert session.scalars(select(VaultObject.id)).all() == objects
    assert sorted((Path(app.instance_path) / "vault").rglob("*")) == files


def test_a_cover_over_the_size_setting_is_refused(make_app):
    app = make_app(COVER_UPLOAD_MAX_BYTES=1000)
    with app.app_context():
        client = app.test_client()
        release = ReleaseFactory()
        AuthActions(client).login(release.artist.owner.email)
        response = upload(client, f"/studio/releases/{release.id}/cover", "cover", picture(size=(900, 900)))
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert field_errors(page, "cover") == ["The image is larger than 1,000 bytes. Choose a smaller file."]
        assert "up to 1,000 bytes" in page
        assert cover_ids(db.session, release.id) == {}


def test_no_file_chosen_is_explained(client, release):
    response = client.post(f"/studio/releases/{release.id}/cover", data={}, content_type="multipart/form-data")
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "cover") == ["Choose an image file first."]


def test_only_the_artist_may_change_a_cover(client, auth, session):
    release = ReleaseFactory()
    auth.login(UserFactory().email)
    assert upload(client, f"/studio/releases/{release.id}/cover", "cover", picture()).status_code in (403, 404)
    assert client.post(f"/studio/releases/{release.id}/cover/delete").status_code in (403, 404)
    assert cover_ids(session, release.id) == {}


def test_a_cover_the_artist_chose_or_removed_is_not_replaced_by_embedded_art(session, release):
    from app.ingest.service import _prefill_release
    from media_worker.tags import CoverArt, Tags

    embedded = Tags(cover=CoverArt(picture(colour="red"), "image/png", 3, 640, 480))
    images.set_release_cover(session, release, picture(colour="blue"))
    session.commit()
    chosen = cover_ids(session, release.id)
    _prefill_release(session, release, embedded)
    session.commit()
    assert cover_ids(session, release.id) == chosen

    images.remove_release_cover(session, release)
    session.commit()
    _prefill_release(session, release, embedded)
    session.commit()
    assert cover_ids(session, release.id) == {} and release.cover_url is None


def test_deleting_a_release_deletes_its_cover_files(client, app, session, release):
    upload(client, f"/studio/releases/{release.id}/cover", "cover", picture())
    files = [ciphertext(app, object_id) for object_id in cover_ids(session, release.id).values()]
    assert client.post(f"/studio/releases/{release.id}/delete").status_code == 302
    assert session.get(Release, release.id) is None
    assert not any(path.exists() for path in files)


# Avatars --------------------------------------------------------------------------------


@pytest.fixture
def artist(auth: Any) -> Artist:
    made = ArtistFactory(name="Salt Choir")
    auth.login(made.owner.email)
    return made


def test_an_uploaded_avatar_is_stored_served_and_shown(client, app, session, artist):
    response = upload(client, f"/studio/artists/{artist.slug}/avatar", "avatar", picture("JPEG", (300, 500)))
    assert response.status_code == 302
    ids = avatar_ids(session, artist.id)
    assert sorted(ids) == [100, 300, 600]
    session.expire_all()
    url = session.get(Artist, artist.id).avatar_url
    assert url.startswith(f"/artists/{artist.slug}/avatar/300.jpg?v=")
    for size, object_id in ids.items():
        assert ciphertext(app, object_id).exists()
        served = client.get(f"/artists/{artist.slug}/avatar/{size}.jpg")
        assert served.status_code == 200 and decoded(served.data).size == (size, size)
    assert client.get(f"/artists/{artist.slug}/avatar/64.jpg").status_code == 404
    assert url in client.get(f"/artists/{artist.slug}").get_data(as_text=True)
    assert url in client.get("/studio").get_data(as_text=True)
    assert url in client.get(f"/studio/artists/{artist.slug}/edit").get_data(as_text=True)


def test_saving_the_profile_keeps_the_avatar(client, session, artist):
    upload(client, f"/studio/artists/{artist.slug}/avatar", "avatar", picture())
    saved = client.post(f"/studio/artists/{artist.slug}/edit", data={"name": "Salt Choir", "bio": "Now with a bio."})
    assert saved.status_code == 302
    session.expire_all()
    kept = session.get(Artist, artist.id)
    assert kept.bio == "Now with a bio." and kept.avatar_url.startswith(f"/artists/{artist.slug}/avatar/")


def test_replacing_and_removing_an_avatar_leave_no_files_behind(client, app, session, artist):
    upload(client, f"/studio/artists/{artist.slug}/avatar", "avatar", picture(colour="red"))
    first = [ciphertext(app, object_id) for object_id in avatar_ids(session, artist.id).values()]
    upload(client, f"/studio/artists/{artist.slug}/avatar", "avatar", picture(colour="blue"))
    second = [ciphertext(app, object_id) for object_id in avatar_ids(session, artist.id).values()]
    assert not any(path.exists() for path in first) and all(path.exists() for path in second)

    assert client.post(f"/studio/artists/{artist.slug}/avatar/delete").status_code == 302
    assert avatar_ids(session, artist.id) == {} and not any(path.exists() for path in second)
    session.expire_all()
    assert session.get(Artist, artist.id).avatar_url is None
    assert session.scalars(select(VaultObject)).all() == []


def test_a_bad_avatar_is_explained_inline(client, session, artist):
    response = upload(client, f"/studio/artists/{artist.slug}/avatar", "avatar", b"GIF89a nonsense")
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "avatar") == [
        "That file is not an image we can use: choose a JPEG, PNG or WebP image."
    ]
    assert avatar_ids(session, artist.id) == {}


def test_deleting_an_artist_deletes_avatar_and_cover_files(app, session):
    from app.catalog import service

    artist = ArtistFactory()
    release = ReleaseFactory(artist=artist)
    images.set_artist_avatar(session, artist, picture())
    images.set_release_cover(session, release, picture())
    session.commit()
    files = [ciphertext(app, object_id) for object_id in session.scalars(select(VaultObject.id))]
    assert len(files) == 6 and all(path.exists() for path in files)

    service.delete_artist(session, artist.owner, artist)
    session.commit()

    assert session.scalars(select(VaultObject)).all() == []
    assert not any(path.exists() for path in files)


# The API --------------------------------------------------------------------------------


def bearer(session: Any, user: Any) -> dict[str, str]:
    from app.accounts.service import issue_token

    _, secret = issue_token(session, user, "tests")
    session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_the_api_puts_and_deletes_a_cover_as_the_raw_body(client, app, session):
    release = ReleaseFactory()
    headers = bearer(session, release.artist.owner)
    url = f"/api/v1/releases/{release.id}/cover"
    put = client.put(url, data=picture("WEBP"), headers=headers, content_type="image/webp")
    assert put.status_code == 200
    assert put.json["cover_url"].startswith(f"/releases/{release.id}/cover/600.jpg?v=")
    files = [ciphertext(app, object_id) for object_id in cover_ids(session, release.id).values()]
    assert len(files) == 3 and all(path.exists() for path in files)

    bad = client.put(url, data=b"not an image", headers=headers, content_type="image/png")
    assert bad.status_code == 422 and bad.json["error"] == "invalid_image"
    assert all(path.exists() for path in files)

    assert client.delete(url, headers=headers).status_code == 204
    assert cover_ids(session, release.id) == {} and not any(path.exists() for path in files)


def test_the_api_refuses_a_cover_from_someone_else_or_too_large(make_app):
    app = make_app(COVER_UPLOAD_MAX_BYTES=500)
    with app.app_context():
        client = app.test_client()
        release = ReleaseFactory()
        url = f"/api/v1/releases/{release.id}/cover"
        stranger = client.put(url, data=picture(), headers=bearer(db.session, UserFactory()))
        assert stranger.status_code == 403 and stranger.json["error"] == "not_owner"
        large = client.put(url, data=picture(size=(800, 800)), headers=bearer(db.session, release.artist.owner))
        assert large.status_code == 422
        assert large.json["message"] == "The image is larger than 500 bytes. Choose a smaller file."
        assert cover_ids(db.session, release.id) == {}


def test_the_api_puts_and_deletes_an_avatar(client, app, session):
    artist = ArtistFactory()
    headers = bearer(session, artist.owner)
    put = client.put(f"/api/v1/artists/{artist.slug}/avatar", data=picture("JPEG"), headers=headers)
    assert put.status_code == 200 and put.json["avatar_url"].startswith(f"/artists/{artist.slug}/avatar/300.jpg")
    assert sorted(avatar_ids(session, artist.id)) == [100, 300, 600]
    assert client.delete(f"/api/v1/artists/{artist.slug}/avatar", headers=headers).status_code == 204
    assert avatar_ids(session, artist.id) == {} and session.scalars(select(VaultObject)).all() == []


def test_the_api_document_describes_the_picture_uploads(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in ("/api/v1/releases/{release_id}/cover", "/api/v1/artists/{slug}/avatar"):
        assert set(paths[path]) == {"put", "delete"}
        assert "image/*" in paths[path]["put"]["requestBody"]["content"]
