"""Browser journeys: Playwright drives Debian's Chromium against a live server in a thread.

Besides ``live_server`` and ``page``, tests here can open pages whose console errors, uncaught
exceptions and failed requests fail the test (``open_page``), and walk the site's key pages
with ``tour``: each visit runs axe-core and saves a screenshot at a desktop and a phone width
under the test artifacts (``MEGABOX_TEST_ARTIFACTS``, by default ``<repo>/test-artifacts``).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from app.catalog.models import Release, TrackStatus
from app.extensions import db
from app.ingest.models import TrackMedia
from app.vault import service as vault
from tests import audio_fixtures as audio
from tests.conftest import CHROMIUM
from tests.factories import ReleaseFactory, TrackFactory

REPOSITORY = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("MEGABOX_TEST_ARTIFACTS") or REPOSITORY / "test-artifacts")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # CSS pixels: an iPhone 12 to 15
DEFAULT_TIMEOUT_MS = 15_000
# axe-core's impact levels that fail a page.
BLOCKING_IMPACTS = ("serious", "critical")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    opened = context.new_page()
    opened.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield opened
    context.close()


def playable_release(
    directory: Path, lengths: Sequence[float], peaks: list[float], **fields: Any
) -> Release:
    """A release (``ReleaseFactory`` with ``fields``) of ready tracks "Wave 1", "Wave 2"... of
    the test tone, ``lengths`` seconds long, with real Opus and MP3 renditions to stream and
    ``peaks`` as each waveform. Committed."""
    made = ReleaseFactory(**fields)
    for position, seconds in enumerate(lengths, start=1):
        track = TrackFactory(release=made, position=position, title=f"Wave {position}",
                             status=TrackStatus.READY, duration_ms=int(seconds * 1000))  # fmt: skip
        opus = audio.synthesise(directory, f"wave{position}", "opus", seconds=seconds)
        mp3 = audio.synthesise(directory, f"wave{position}", "mp3", seconds=seconds)
        opus_object, mp3_object = _stored(opus, "audio/ogg"), _stored(mp3, "audio/mpeg")
        db.session.add(
            TrackMedia(
                track_id=track.id, artist_id=made.artist_id, master_sha256=opus_object.sha256,
                master_object_id=opus_object.id, opus_object_id=opus_object.id,
                mp3_object_id=mp3_object.id, original_filename=opus.name, container="ogg",
                codec="opus", sample_rate=48000, bit_depth=None, channels=2,
                waveform={"buckets": len(peaks), "peaks": peaks},
            )
        )  # fmt: skip
    db.session.commit()
    return made


def _stored(path: Path, content_type: str) -> Any:
    data = path.read_bytes()
    return vault.put_stream(
        db.session, io.BytesIO(data), kind="rendition", content_type=content_type, size=len(data)
    )


class BrowserProblems:
    """What went wrong in the pages of the contexts it watches: console errors, uncaught
    exceptions, requests that failed and responses of 400 or more (a missing favicon too).

    A test that means to get an error status (the 404 page) says so first with ``expect``.
    """

    def __init__(self) -> None:
        self.found: list[str] = []
        self._expected: list[tuple[int, re.Pattern[str]]] = []

    def expect(self, status: int, path: str) -> None:
        """Responses of ``status`` for ``path`` (a regular expression over the URL's path)
        are the test's intent, and so is the console line the browser logs for them."""
        self._expected.append((status, re.compile(path)))

    def watch(self, context: Any) -> None:
        context.on("console", self._console)
        context.on("weberror", lambda error: self.found.append(f"uncaught: {error.error}"))
        context.on("requestfailed", self._failed)
        context.on("response", self._response)

    def _is_expected(self, url: str, status: int | None = None) -> bool:
        path = urlsplit(url).path
        return any(
            pattern.fullmatch(path) and (status is None or status == wanted)
            for wanted, pattern in self._expected
        )

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if message.text.startswith("Failed to load resource") and self._is_expected(url):
            return
        self.found.append(f"console: {message.text} ({url})")

    def _failed(self, request: Any) -> None:
        # ERR_ABORTED is the page's own doing, not a failure: a navigation that leaves a
        # fetch behind, an <audio> that moves to another source, a link that is a download.
        if request.failure == "net::ERR_ABORTED":
            return
        self.found.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and not self._is_expected(response.url, response.status):
            self.found.append(f"HTTP {response.status}: {response.request.method} {response.url}")


@pytest.fixture
def problems() -> Iterator[BrowserProblems]:
    """Fails the test when any page opened through ``open_page`` had a problem."""
    watched = BrowserProblems()
    yield watched
    if watched.found:
        pytest.fail("The browser reported problems:\n" + "\n".join(watched.found))


@pytest.fixture
def open_page(browser: Any, problems: BrowserProblems) -> Iterator[Callable[..., Any]]:
    """``open_page()`` gives a page in a browser context of its own (its own cookies: one
    person), at the desktop width, watched by ``problems``. Keyword arguments go to
    ``new_context``."""
    contexts: list[Any] = []

    def opener(**options: Any) -> Any:
        context = browser.new_context(**{"viewport": DESKTOP, **options})
        problems.watch(context)
        contexts.append(context)
        opened = context.new_page()
        opened.set_default_timeout(DEFAULT_TIMEOUT_MS)
        return opened

    yield opener
    for context in contexts:
        context.close()


class Tour:
    """Key pages, visited: axe-core's serious and critical violations of each, and a
    screenshot of each at the desktop and the phone width (``<name>-desktop.png``,
    ``<name>-phone.png`` under ``directory``)."""

    def __init__(self, directory: Path) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.directory = directory
        shutil.rmtree(directory, ignore_errors=True)  # no screenshot of an earlier run stays
        self.directory.mkdir(parents=True)
        self.axe = Axe()
        self.visited: list[str] = []
        self.violations: dict[str, list[str]] = {}
        self.phone_widths: dict[str, int] = {}

    def visit(self, page: Any, name: str) -> None:
        """Check and photograph the page as it is now; it is left at the desktop width."""
        page.wait_for_load_state("load")
        self.visited.append(name)
        found = self.blocking_violations(page)
        if found:
            self.violations[name] = found
        restore = page.viewport_size or DESKTOP
        page.set_viewport_size(DESKTOP)
        page.screenshot(path=self.directory / f"{name}-desktop.png", full_page=True)
        page.set_viewport_size(PHONE)
        page.wait_for_function(f"document.documentElement.clientWidth <= {PHONE['width']}")
        self.phone_widths[name] = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=self.directory / f"{name}-phone.png", full_page=True)
        page.set_viewport_size(restore)

    def blocking_violations(self, page: Any) -> list[str]:
        """axe-core's serious and critical violations on the page: "rule: what, where"."""
        results = self.axe.run(page).response
        found = []
        for violation in results["violations"]:
            if violation.get("impact") not in BLOCKING_IMPACTS:
                continue
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:5]]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
        return found

    def report(self) -> str:
        """The violations by page, for a failure message."""
        return "\n".join(
            f"{name}:\n  " + "\n  ".join(found) for name, found in self.violations.items()
        )

    def save(self) -> None:
        """The violations and the pages' widths on a phone, as JSON beside the screenshots."""
        for name, data in (("accessibility", self.violations), ("phone-widths", self.phone_widths)):
            path = self.directory / f"{name}.json"
            path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


@pytest.fixture
def tour(request: pytest.FixtureRequest) -> Iterator[Tour]:
    """A ``Tour`` saving under ``<artifacts>/screenshots/<test name>/``."""
    walked = Tour(ARTIFACTS / "screenshots" / request.node.name)
    yield walked
    walked.save()
