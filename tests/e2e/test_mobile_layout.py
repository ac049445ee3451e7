"""Pages on a phone: at 390 CSS pixels wide (an iPhone 12 to 15), signed in as an admin (the
longest header), nothing makes the page scroll sideways: release pages with their player and
buy forms, the admin's campaign list and its forms, with and without errors shown."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from app.ads.models import Campaign
from app.catalog.models import PricingMode, Release, TrackStatus
from app.extensions import db
from app.ingest.models import TrackMedia, Upload, UploadStatus
from app.vault import service as vault
from tests.conftest import TEST_PASSWORD
from tests.factories import ReleaseFactory, TrackFactory, UserFactory
from tests.functional.ads.conftest import image_bytes

pytestmark = pytest.mark.browser

PHONE_WIDTH = 390
# The elements that reach past the viewport's right edge, for the failure message.
OVERFLOWING = """(width) => Array.from(document.querySelectorAll("body *"))
  .filter((el) => el.getBoundingClientRect().right > width + 0.5)
  .slice(0, 8)
  .map((el) => `${el.tagName.toLowerCase()}.${el.className} right=${
    Math.round(el.getBoundingClientRect().right)}`)"""


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(WTF_CSRF_ENABLED=True)
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": 844}, device_scale_factor=3, is_mobile=True,
        has_touch=True,
    )  # fmt: skip
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def _media(track_id: int, artist_id: int) -> TrackMedia:
    data = f"audio of {track_id}".encode()
    stored = vault.put_stream(db.session, io.BytesIO(data), kind="rendition", size=len(data))
    return TrackMedia(
        track_id=track_id, artist_id=artist_id, master_sha256=f"{track_id:064x}",
        master_object_id=stored.id, opus_object_id=stored.id, mp3_object_id=stored.id,
        original_filename="take.wav", container="wav", codec="pcm_s16le", sample_rate=44100,
        channels=2, waveform={"buckets": 4, "peaks": [0.2, 0.8, 0.5, 0.3]},
    )  # fmt: skip


def _release(title: str, pricing_mode: PricingMode, track_titles: list[str]) -> Release:
    made = ReleaseFactory(
        title=title, pricing_mode=pricing_mode, price_minor=1200, minimum_price_minor=500,
        artist__name="The Extraordinarily Long-Named Orchestra of Somewhere",
        description="Recorded live.\nMixed at home.",
    )  # fmt: skip
    for position, track_title in enumerate(track_titles, start=1):
        track = TrackFactory(
            release=made, position=position, title=track_title, status=TrackStatus.READY,
            duration_ms=3_725_000, price_minor=129,  # over an hour: the longest time display
        )
        db.session.add(_media(track.id, made.artist_id))
    db.session.commit()
    return made


@pytest.fixture
def releases(app: Flask) -> list[Release]:
    return [
        _release("Short Waves", PricingMode.FIXED, ["Wave 1", "Wave 2"]),
        _release(
            "Songs for Supercalifragilisticexpialidocious Afternoons", PricingMode.NAME_YOUR_PRICE,
            ["An Unreasonably Long Track Title That Keeps On Going", "Pneumonoultramicroscopic"],
        ),  # fmt: skip
    ]


@pytest.fixture
def campaigns(app: Flask) -> list[Campaign]:
    banner = image_bytes("PNG", size=(728, 90))
    stored = vault.put_stream(db.session, io.BytesIO(banner), kind="ad_image",
                              content_type="image/png", size=len(banner))  # fmt: skip
    db.session.flush()
    made = [
        Campaign(name="Tape Shop Winter Clearance Extravaganza", weight=3, cpm_minor=250_000,
                 link_url="https://tapes.example/a/very/long/path/that/goes/on/and/on?ref=megabox",
                 currency="USD", image_object_id=stored.id, image_mimetype="image/png"),
        Campaign(name="Megabox", link_url="https://megabox.example/", weight=0, currency="USD",
                 is_house=True),
    ]  # fmt: skip
    db.session.add_all(made)
    db.session.commit()
    return made


def _sign_in_as_admin(page: Any, live_server: str) -> None:
    admin = UserFactory(is_admin=True, display_name="Administrator Extraordinaire")
    page.goto(f"{live_server}/login")
    page.fill("#f-email", admin.email)
    page.fill("#f-password", TEST_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def _assert_fits(page: Any, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    overflowing = [] if width <= PHONE_WIDTH else page.evaluate(OVERFLOWING, PHONE_WIDTH)
    assert width <= PHONE_WIDTH, f"{what} is {width}px wide: {overflowing}"


def test_pages_fit_a_phone_without_sideways_scrolling(
    live_server, phone, releases, campaigns
):
    _sign_in_as_admin(phone, live_server)
    pages = [f"/releases/{release.id}" for release in releases] + [
        "/", "/admin/ads", "/admin/ads/new", f"/admin/ads/{campaigns[0].id}/edit",
    ]
    for path in pages:
        phone.goto(f"{live_server}{path}")
        _assert_fits(phone, path)

    # The header's links wrap onto their own line, all of them on the screen.
    for link in phone.locator(".site-header .nav a, .site-header .nav button").all():
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE_WIDTH

    # A campaign form sent back with errors (and the note asking for the image again).
    phone.goto(f"{live_server}/admin/ads/new")
    phone.fill("#f-name", "A campaign with a problem")
    phone.fill("#f-link_url", "not a link at all, with a rather long explanation after it")
    phone.set_input_files("#f-image", files=[{
        "name": "a-banner-with-a-very-long-file-name-that-does-not-break-anywhere.png",
        "mimeType": "image/png", "buffer": image_bytes("PNG", size=(728, 90)),
    }])  # fmt: skip
    phone.click("main button[type=submit]")
    phone.wait_for_selector(".image-again")
    _assert_fits(phone, "the new-campaign form with errors")

    # A playing release: the ad slot filled, times shown as "elapsed / total".
    phone.goto(f"{live_server}/releases/{releases[1].id}")
    phone.evaluate("""() => {
      document.querySelectorAll('.track-time')
        .forEach((el) => { el.textContent = '1:02:05 / 1:02:05'; });
      const slot = document.querySelector('.ad-slot');
      slot.innerHTML = '<p class="ad-label">Advertisement</p><a class="ad-link" href="#">'
        + '<img class="ad-image" width="728" height="90" alt="" src="/ads/0/image"></a>';
      slot.classList.add('ad-slot-filled');
    }""")
    _assert_fits(phone, "a playing release page")


def _uploads(release: Release) -> None:
    """Uploads in every state the Studio lists, with long names and a long error."""
    name = "a-master-with-a-very-long-file-name-that-does-not-break-anywhere-at-all-final-v2.wav"
    states = [
        (UploadStatus.UPLOADING, {"received": 400_000}),
        (UploadStatus.PROCESSING, {"received": 1_000_000, "progress": 40, "stage": "encoding"}),
        (UploadStatus.FAILED, {"received": 1_000_000, "error_code": "not_audio",
                               "error_message": "This file is not audio that we can read: " * 4}),
    ]  # fmt: skip
    for number, (status, values) in enumerate(states):
        db.session.add(Upload(
            id=f"{number:032x}", user_id=release.artist.owner_id, artist_id=release.artist_id,
            release_id=release.id, filename=f"{number}-{name}", size=1_000_000, status=status,
            **values,
        ))  # fmt: skip
    db.session.commit()


def test_the_studio_and_the_api_docs_fit_a_phone(live_server, phone, releases):
    release = releases[1]
    _uploads(release)
    track = release.tracks[0]
    artist = release.artist
    phone.goto(f"{live_server}/login")
    phone.fill("#f-email", artist.owner.email)
    phone.fill("#f-password", TEST_PASSWORD)
    phone.click("main button[type=submit]")
    phone.wait_for_url(lambda url: "/login" not in url)

    pages = [
        "/studio", f"/studio/artists/{artist.slug}/edit",
        f"/studio/artists/{artist.slug}/releases/new", f"/studio/tracks/{track.id}/edit",
        f"/studio/releases/{release.id}/tracks/new", "/studio/earnings", "/studio/statements",
        "/studio/payouts", "/api/v1/docs",
    ]  # fmt: skip
    for path in pages:
        phone.goto(f"{live_server}{path}")
        _assert_fits(phone, path)

    # The release's edit form with its tracks and the upload list in every state.
    phone.goto(f"{live_server}/studio/releases/{release.id}/edit")
    phone.wait_for_function("document.querySelectorAll('#upload-list .upload').length === 3")
    _assert_fits(phone, "the release edit page with uploads")

    # A form sent back with errors.
    phone.fill("#f-title", "")
    phone.fill("#f-price", "not a price at all")
    phone.click("main form button[type=submit]:text-is('Save changes')")
    phone.wait_for_selector(".field-error")
    _assert_fits(phone, "the release edit form with errors")
