"""The release page's player in headless Chromium, with real (short, generated) audio: time
display, keyboard, waveform slider, switching and autoplay of the next track, play counting
and the ad slot, against a live server with CSRF on."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.ads.models import Campaign, Impression
from app.catalog.models import Release
from app.extensions import db
from app.plays.models import Play, PlayOutcome
from app.vault import service as vault
from tests.e2e.conftest import PHONE, playable_release
from tests.factories import UserFactory
from tests.functional.ads.conftest import image_bytes

pytestmark = pytest.mark.browser

# Seconds of audio per track: the first is long enough to seek in, the others end quickly.
LENGTHS = (12.0, 2.5, 2.5)
PEAKS = [0.2 + 0.6 * ((i * 7) % 10) / 10 for i in range(100)]
# Runs before the page's script: keeps the page's <audio> (which is never in the DOM) reachable.
KEEP_AUDIO = """
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  window.__audio = this;
  return play.apply(this, arguments);
};
"""
# Painted pixels in the accent colour (#0f766e) of a track's waveform canvas.
ACCENT_PIXELS = """(id) => {
  const canvas = document.querySelector(`canvas.waveform[data-track-id="${id}"]`);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === 15 && data[i + 1] === 118 && data[i + 2] === 110) count++;
  }
  return count;
}"""


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(PLAY_COUNT_SECONDS=1.0, WTF_CSRF_ENABLED=True)
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def release(app: Flask, tmp_path: Path) -> Release:
    return playable_release(tmp_path, LENGTHS, PEAKS, title="Short Waves", artist__name="Ola Tern")


@pytest.fixture
def campaign(app: Flask) -> Campaign:
    banner = image_bytes("PNG", size=(728, 90))
    stored = vault.put_stream(db.session, io.BytesIO(banner), kind="ad_image",
                              content_type="image/png", size=len(banner))  # fmt: skip
    db.session.flush()
    made = Campaign(name="Tape Shop", link_url="https://tapes.example/", weight=1,
                    cpm_minor=2500, currency="USD", image_object_id=stored.id,
                    image_mimetype="image/png")  # fmt: skip
    db.session.add(made)
    db.session.commit()
    return made


def _count(model: Any, **where: Any) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(model).filter_by(**where))


def _current_time(page: Any) -> float:
    return page.evaluate("window.__audio.currentTime")


def _wait_for_text(page: Any, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector).textContent === text",
        arg=[selector, text],
    )


def _wait_for_track(page: Any, track_id: int, past_seconds: float) -> None:
    """Until the audio plays ``track_id`` beyond ``past_seconds``."""
    page.wait_for_function(
        "([path, seconds]) => window.__audio && window.__audio.src.includes(path)"
        " && window.__audio.currentTime > seconds",
        arg=[f"/tracks/{track_id}/", past_seconds],
    )


def _watch_console(page: Any) -> list[str]:
    """Errors the page logs or throws, collected as they happen."""
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def test_the_player_counts_shows_an_ad_seeks_and_moves_on(live_server, open_page, release, campaign):
    page = open_page()  # any console error or failed request fails the test
    page.add_init_script(KEEP_AUDIO)
    first, second, third = (track.id for track in release.tracks)
    row = {track: f".track[data-track-id='{track}']" for track in (first, second, third)}
    listener = UserFactory()

    page.goto(f"{live_server}/login")
    page.fill("#f-email", listener.email)
    page.fill("#f-password", "correct-horse-battery")
    page.click("main button[type=submit]")
    page.goto(f"{live_server}/releases/{release.id}")
    assert page.inner_text(f"{row[first]} .track-plays") == "0 plays"
    assert page.inner_text(f"{row[first]} .track-time") == "0:12"

    # Play: time runs, the elapsed display follows, an ad shows, the play counts.
    page.click(f"{row[first]} .play-button")
    _wait_for_track(page, first, 1.2)
    page.wait_for_function(
        "selector => /^0:0[1-9] \\/ 0:12$/.test(document.querySelector(selector).textContent)",
        arg=f"{row[first]} .track-time",
    )
    image = page.wait_for_selector(".ad-slot a[rel='sponsored noopener'] img[alt='Tape Shop']")
    assert image.evaluate("img => img.closest('a').href") == "https://tapes.example/"
    assert page.get_attribute(".ad-slot", "aria-label") == "Advertisement"
    _wait_for_text(page, f"{row[first]} .track-plays", "1 play")
    assert _count(Impression, campaign_id=campaign.id, cpm_minor=2500) == 1
    play = db.session.scalars(select(Play).where(Play.track_id == first)).one()
    assert play.user_id == listener.id
    assert play.outcome is PlayOutcome.COUNTED
    assert db.session.scalar(select(Impression.play_id)) == play.id

    # Space pauses and plays again, wherever the focus is not a control.
    page.evaluate("document.activeElement.blur()")
    button = f"{row[first]} .play-button"
    page.keyboard.press("Space")
    page.wait_for_function(
        "button => window.__audio.paused"
        " && document.querySelector(button).getAttribute('aria-pressed') === 'false'",
        arg=button,
    )
    page.keyboard.press("Space")
    page.wait_for_function(
        "button => !window.__audio.paused"
        " && document.querySelector(button).getAttribute('aria-pressed') === 'true'",
        arg=button,
    )

    # The right arrow seeks 5 s forward, anywhere on the page.
    before = _current_time(page)
    page.keyboard.press("ArrowRight")
    assert _current_time(page) >= before + 4.5

    # The waveform is a slider: focused, its arrows, Home and End seek.
    waveform = page.locator(f"canvas.waveform[data-track-id='{first}']")
    assert waveform.get_attribute("role") == "slider"
    waveform.focus()
    before = _current_time(page)
    page.keyboard.press("ArrowLeft")
    assert _current_time(page) <= before - 4.5
    page.keyboard.press("Home")
    assert _current_time(page) < 1.0
    page.keyboard.press("ArrowRight")
    assert float(waveform.get_attribute("aria-valuenow")) >= 4.5
    assert page.evaluate(ACCENT_PIXELS, first) > 0

    # Switching clears the first track's progress; the second plays to its end, then the
    # third starts on its own, each start a play of its own.
    page.click(f"{row[second]} .play-button")
    _wait_for_track(page, second, 0)
    assert page.evaluate(ACCENT_PIXELS, first) == 0
    assert page.inner_text(f"{row[first]} .track-time") == "0:12"
    assert waveform.get_attribute("aria-valuenow") == "0.0"
    _wait_for_track(page, third, 0.2)
    assert page.get_attribute(f"{row[third]} .play-button", "aria-pressed") == "true"
    assert page.get_attribute(f"{row[second]} .play-button", "aria-pressed") == "false"
    _wait_for_text(page, f"{row[third]} .track-plays", "1 play")
    assert [_count(Play, track_id=track) for track in (first, second, third)] == [1, 1, 1]
    assert _count(Play, outcome=PlayOutcome.COUNTED) == 3
    assert _count(Impression) == 3

    # On a phone's width, the playing page with its ad and times does not scroll sideways.
    page.set_viewport_size(PHONE)
    page.wait_for_function(f"document.documentElement.clientWidth === {PHONE['width']}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_music_goes_on_when_the_api_fails(live_server, page, release):
    problems = _watch_console(page)
    page.add_init_script(KEEP_AUDIO)
    page.route("**/api/v1/**", lambda route: route.fulfill(status=503, json={"error": "down"}))
    first, second, _ = (track.id for track in release.tracks)

    page.goto(f"{live_server}/releases/{release.id}")
    page.click(f".track[data-track-id='{first}'] .play-button")
    _wait_for_track(page, first, 0.5)
    page.click(f".track[data-track-id='{second}'] .play-button")
    _wait_for_track(page, second, 0.5)
    assert page.inner_text(".ad-slot") == ""
    assert page.inner_text(f".track[data-track-id='{first}'] .track-plays") == "0 plays"
    # The browser itself notes each failed request; the page adds nothing of its own.
    assert [text for text in problems if not text.startswith("Failed to load resource")] == []
    assert _count(Play) == 0
