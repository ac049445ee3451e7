"""Accessibility beyond the journeys: the player and the checkout from the keyboard alone, and
axe-core on the forms and pages the journeys do not pass (with their errors shown)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.catalog.models import PricingMode, Release
from app.commerce.models import Order, OrderStatus
from app.extensions import db
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import BrowserProblems, Tour, playable_release
from tests.e2e.test_player import KEEP_AUDIO
from tests.factories import TrackFactory, UserFactory

pytestmark = pytest.mark.browser

# Far more presses than any page here has stops before the one sought.
MAX_TABS = 60
PEAKS = [0.5] * 50


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(PLAY_COUNT_SECONDS=1.0, WTF_CSRF_ENABLED=True)
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def release(app: Flask, tmp_path: Path) -> Release:
    return playable_release(
        tmp_path, (6.0, 2.0), PEAKS, title="Key Signatures", artist__name="Ida Lund",
        pricing_mode=PricingMode.NAME_YOUR_PRICE, price_minor=800, minimum_price_minor=500,
    )  # fmt: skip


def tab_to(page: Any, selector: str) -> None:
    """Press Tab until the focus is on ``selector``; fails if it never gets there."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"Tab never reached {selector}")


def sign_in_by_keyboard(page: Any, live_server: str, email: str) -> None:
    page.goto(f"{live_server}/login")
    tab_to(page, "#f-email")
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(TEST_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)


def test_the_player_works_from_the_keyboard_alone(live_server, open_page, release):
    page = open_page()
    page.add_init_script(KEEP_AUDIO)
    first = release.tracks[0]
    button = f".track[data-track-id='{first.id}'] .play-button"
    page.goto(f"{live_server}/releases/{release.id}")

    tab_to(page, button)
    page.keyboard.press("Space")
    page.wait_for_function("() => window.__audio && window.__audio.currentTime > 0.5")
    assert page.get_attribute(button, "aria-pressed") == "true"
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.__audio.paused")
    # The player marks the button on the "pause" event, which comes after ``paused`` is set.
    page.wait_for_selector(f"{button}[aria-pressed='false']", timeout=5000)
    assert page.get_attribute(button, "aria-pressed") == "false"

    # The waveform is the next stop: its arrows seek.
    tab_to(page, f"canvas.waveform[data-track-id='{first.id}']")
    before = page.evaluate("window.__audio.currentTime")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("window.__audio.currentTime") >= before + 4.5


def test_checkout_works_from_the_keyboard_alone(live_server, open_page, release):
    buyer = UserFactory(display_name="Keyboard Buyer")
    db.session.commit()
    page = open_page()
    sign_in_by_keyboard(page, live_server, buyer.email)
    page.goto(f"{live_server}/releases/{release.id}")

    tab_to(page, "#f-amount")
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type("9.50")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Buy album"
    page.keyboard.press("Enter")
    page.wait_for_url("**/cart")
    tab_to(page, "form[action$='/cart/checkout'] button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/checkout/sandbox/**")
    tab_to(page, "button[name=action][value=pay]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/orders/**")

    db.session.expire_all()
    order = db.session.scalars(select(Order).where(Order.buyer_id == buyer.id)).one()
    assert (order.status, order.total_minor) == (OrderStatus.PAID, 950)


def test_forms_and_pages_off_the_journeys_pass_axe(
    live_server: str, open_page: Any, tour: Tour, problems: BrowserProblems
) -> None:
    release = TrackFactory(release__title="Key Signatures").release
    # A form sent back with its errors answers 422, which the browser notes in its console.
    problems.expect(422, r"/signup|/studio/artists/[^/]+/releases/new")
    visitor = open_page()
    for path, name in (("/login", "login"), ("/signup", "signup")):
        visitor.goto(f"{live_server}{path}")
        tour.visit(visitor, name)
    visitor.click("main button[type=submit]")  # every field empty
    visitor.wait_for_selector(".field-error")
    tour.visit(visitor, "signup-with-errors")

    artist = open_page()
    sign_in_by_keyboard(artist, live_server, release.artist.owner.email)
    slug = release.artist.slug
    for path, name in (
        ("/studio/artists/new", "artist-new"),
        (f"/studio/artists/{slug}/edit", "artist-edit"),
        (f"/studio/artists/{slug}/releases/new", "release-new"),
        (f"/studio/releases/{release.id}/tracks/new", "track-new"),
        ("/orders", "orders"),
        ("/d", "key-links"),
        ("/api/v1/docs", "api-docs"),
    ):
        artist.goto(f"{live_server}{path}")
        tour.visit(artist, name)
    artist.goto(f"{live_server}/studio/artists/{slug}/releases/new")
    artist.fill("#f-price", "a lot")
    artist.click("main form button[type=submit]")
    artist.wait_for_selector(".field-error")
    tour.visit(artist, "release-new-with-errors")

    admin = open_page()
    sign_in_by_keyboard(admin, live_server, UserFactory(is_admin=True).email)
    for path, name in (
        ("/admin/ads", "ads"),
        ("/admin/ads/new", "ad-new"),
        ("/admin/payouts", "admin-payouts"),
    ):
        admin.goto(f"{live_server}{path}")
        tour.visit(admin, name)

    assert not tour.violations, "axe-core found serious or critical problems:\n" + tour.report()
