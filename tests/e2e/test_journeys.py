"""The three journeys of issue #12, end to end in one headless Chromium against a live server
with the in-process worker: an artist publishes, a listener plays and buys, an admin closes
the month and the artist reads the statement.

Every page is watched (``problems``: no console error, uncaught exception or failed request),
and every key page is checked by axe-core and photographed at desktop and phone widths
(``tour``, under the test artifacts).

What "the expected bytes" of a download are (``app.library.service``):

- the Original format is the master object byte for byte, so the key link's file must hash
  like the FLAC the artist uploaded;
- the FLAC format is made by ffmpeg and tagged with the catalogue's details and the cover,
  so its bytes are not the upload's: a downloaded FLAC must hash like the file the server
  made and keeps in the vault (read here through the vault), and its decoded audio must be
  the upload's, sample for sample (both are lossless);
- the zip holds those same made files, byte for byte, and the cover.
"""

from __future__ import annotations

import csv
import hashlib
import io
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pypdf import PdfReader
from sqlalchemy import func, select

from app.accounts.models import User
from app.catalog.models import Artist, PricingMode, Release, TrackStatus
from app.commerce.models import Order, OrderStatus
from app.extensions import db
from app.ledger import service as ledger
from app.ledger.models import LedgerEntry, LedgerTransaction
from app.library.models import DownloadFile, DownloadStatus
from app.plays.models import Play, PlayOutcome
from app.pools.models import Period
from app.pools.service import AD_POOL_KIND, recent_keys
from app.vault import service as vault
from tests import audio_fixtures as audio
from tests.conftest import TEST_PASSWORD
from tests.e2e.conftest import PHONE, BrowserProblems, Tour
from tests.e2e.test_player import KEEP_AUDIO
from tests.factories import UserFactory

pytestmark = pytest.mark.browser

ARTIST = {"name": "Nora Vik", "email": "nora@example.test", "slug": "nora-vik"}
LISTENER = {"name": "Sam Ashby", "email": "sam@example.test"}
PASSWORD = "a-long-password"
RELEASE_TITLE = "Tide Tables"
TITLES = ("First Light", "Second Wind")  # from the masters' tags, not their file names
SUGGESTED, MINIMUM, PAID = "8.00", "5.00", "12.30"
TRACK_PRICE = "1.50"
ARTIST_SHARE_OF_PAID = 1107  # 90% of $12.30, in cents
AD_REVENUE = "100.00"
SECONDS = 8.0  # long enough to count (1 s in tests) and be paused before it ends
# Little chunks, so a master takes several tus PATCHes and the bars move.
CHUNK_BYTES = 64 * 1024
COVER_RGB = (220, 20, 60)  # crimson: the uploaded cover
EMBEDDED_COVER = "navy"  # the FLAC's own art, which an uploaded cover must win over
# Records every state an upload row shows (status, bar width), as the page changes it.
WATCH_UPLOADS = """
window.__uploadStates = [];
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("upload-list");
  if (!list) return;
  new MutationObserver(() => {
    list.querySelectorAll(".upload").forEach((row) => {
      const bar = row.querySelector(".progress-bar");
      const state = [row.querySelector(".upload-name").textContent, row.dataset.status,
                     bar ? bar.style.width : "", row.querySelector(".upload-status").textContent];
      const last = window.__uploadStates[window.__uploadStates.length - 1];
      if (!last || last.join() !== state.join()) window.__uploadStates.push(state);
    });
  }).observe(list, { subtree: true, childList: true, attributes: true, characterData: true });
});
"""
# The page's key-link download takes the Blob path: headless Chromium's save dialog (File
# System Access) would wait for a person to choose a file.
BLOB_SAVE = "delete window.showSaveFilePicker;"
# Pixels of a track's waveform painted as played: teal (the accent, #0f766e), not the grey
# of the rest; bars narrower than a pixel blend with the background, so this is no exact match.
PLAYED_PIXELS = """(id) => {
  const canvas = document.querySelector(`canvas.waveform[data-track-id="${id}"]`);
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 128 && data[i + 1] - data[i] > 50) count++;
  }
  return count;
}"""
# The colour near the top-left corner of the page's first cover picture (its centre is white).
COVER_COLOUR = """async () => {
  const img = document.querySelector("img.cover");
  if (!img) return null;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  return Array.from(ctx.getImageData(4, 4, 1, 1).data.slice(0, 3));
}"""


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(PLAY_COUNT_SECONDS=1.0, WTF_CSRF_ENABLED=True, UPLOAD_CHUNK_BYTES=CHUNK_BYTES)
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def masters(tmp_path: Path) -> dict[str, Path]:
    """A FLAC and a WAV master, titled by their tags; the FLAC carries cover art."""
    flac = audio.synthesise(tmp_path, "take-07", "flac", seconds=SECONDS)
    audio.write_tags(flac, "flac", {"TITLE": TITLES[0], "GENRE": "Ambient"},
                     [audio.Cover(audio.cover_image(600, 600, EMBEDDED_COVER))])  # fmt: skip
    wav = audio.synthesise(tmp_path, "take-08", "wav16", seconds=SECONDS)
    audio.write_tags(wav, "wav16", {"TITLE": TITLES[1]})
    return {"flac": flac, "wav": wav}


@pytest.fixture
def cover_file(tmp_path: Path) -> Path:
    path = tmp_path / "tide-tables-cover.png"
    path.write_bytes(audio.cover_image(1200, 1200, "crimson", fmt="PNG"))
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pcm(path: Path) -> bytes:
    """The decoded audio: 16-bit stereo samples at the file's own rate."""
    return subprocess.run(
        [audio.FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-f", "s16le", "-c:a",
         "pcm_s16le", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip


def fresh() -> Any:
    """The test's session, with what the server committed meanwhile visible."""
    db.session.expire_all()
    db.session.rollback()
    return db.session


def sign_up(page: Any, live_server: str, name: str, email: str) -> None:
    page.goto(f"{live_server}/signup")
    page.fill("#f-display_name", name)
    page.fill("#f-email", email)
    page.fill("#f-password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_selector(".flashes")
    assert f"Welcome to Megabox, {name}." in page.inner_text(".flashes")


def sign_in(page: Any, live_server: str, email: str, password: str) -> None:
    page.goto(f"{live_server}/login")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.click("main button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def download(page: Any, selector: str) -> tuple[str, bytes]:
    """Click what saves a file; its suggested name and bytes."""
    with page.expect_download() as caught:
        page.click(selector)
    saved = caught.value
    return saved.suggested_filename, Path(saved.path()).read_bytes()


def money_cell(page: Any, row_label: str) -> str:
    """The amount beside ``row_label`` in the statement's summary."""
    return page.inner_text(f".statement-summary tr:has(th:text-is('{row_label}')) td").strip()


def dollars(minor: int) -> str:
    return f"${minor / 100:,.2f}" if minor >= 0 else f"-${-minor / 100:,.2f}"


# Journey 1 ----------------------------------------------------------------------------------


def artist_publishes(
    page: Any, live_server: str, tour: Tour, masters: dict[str, Path], cover_file: Path
) -> Release:
    """Sign up, profile, release, cover, two masters uploaded and ready, prices, publish."""
    sign_up(page, live_server, ARTIST["name"], ARTIST["email"])
    page.get_by_role("link", name="Studio", exact=True).first.click()
    page.get_by_role("link", name="Create an artist profile", exact=True).first.click()
    page.fill("#f-name", ARTIST["name"])
    page.fill("#f-slug", ARTIST["slug"])
    page.click("main button[type=submit]")
    page.get_by_role("link", name="New release", exact=True).first.click()
    page.fill("#f-title", RELEASE_TITLE)
    page.select_option("#f-pricing_mode", "name_your_price")
    page.fill("#f-price", SUGGESTED)
    page.fill("#f-minimum_price", MINIMUM)
    page.click("main button[type=submit]")
    page.wait_for_selector("#dropzone")
    release = fresh().scalar(select(Release).where(Release.title == RELEASE_TITLE))
    assert release is not None and not release.published

    # The cover, from the release's edit form.
    cover_input = page.locator("main form input[type=file][name=cover]")
    cover_input.set_input_files(str(cover_file))
    cover_input.locator("xpath=ancestor::form").locator("button[type=submit]").first.click()
    page.wait_for_selector("#dropzone")

    # Both masters at once, watching the bars.
    page.set_input_files("#dropzone input[type=file]", [str(masters["flac"]), str(masters["wav"])])
    page.wait_for_selector(".upload[data-status=uploading], .upload[data-status=processing]")
    tour.visit(page, "upload")
    page.wait_for_function(
        "document.querySelectorAll('.upload[data-status=ready]').length === 2", timeout=90_000
    )
    states = page.evaluate("window.__uploadStates")
    for master in masters.values():
        seen = [state for state in states if state[0] == master.name]
        widths = [int(state[2].rstrip("%")) for state in seen if state[1] == "uploading" and state[2]]
        assert any(0 < width < 100 for width in widths), (master.name, seen)
        assert widths == sorted(widths), f"{master.name}'s bar went backwards: {widths}"
        assert [state[1] for state in seen][-1] == "ready"
        assert any(state[1] == "processing" for state in seen), seen
    # Tags pre-filled the titles; the track list shows them ready without a reload.
    page.wait_for_function(
        "titles => titles.every((t) => document.getElementById('studio-tracklist').innerText.includes(t))",
        arg=list(TITLES),
    )
    listed = page.inner_text("#studio-tracklist")
    assert "take-07" not in listed and listed.lower().count("ready") == 2

    # A fixed price on the second track, sold on its own.
    page.click(f"#studio-tracklist a:text-is('{TITLES[1]}')")
    page.fill("#f-price", TRACK_PRICE)
    page.check("input[name=sold_separately]")
    tour.visit(page, "track-edit")
    page.click("main form button[type=submit]:text-is('Save')")

    # Publish.
    page.wait_for_selector("#f-title")
    page.check("input[name=published]")
    page.click("main form button[type=submit]:text-is('Save changes')")
    page.wait_for_selector(".flashes")
    tour.visit(page, "release-edit")

    session = fresh()
    release = session.get(Release, release.id)
    assert release.published and release.pricing_mode is PricingMode.NAME_YOUR_PRICE
    assert (release.price_minor, release.minimum_price_minor) == (800, 500)
    tracks = {track.title: track for track in release.tracks}
    assert set(tracks) == set(TITLES)
    assert all(track.status is TrackStatus.READY for track in tracks.values())
    assert tracks[TITLES[1]].price_minor == 150 and tracks[TITLES[1]].sold_separately
    assert tracks[TITLES[0]].media.original_filename == masters["flac"].name

    page.goto(f"{live_server}/releases/{release.id}")
    assert page.evaluate(COVER_COLOUR) == pytest.approx(list(COVER_RGB), abs=12)
    page.goto(f"{live_server}/studio")
    tour.visit(page, "studio")
    return release


# Journey 2 ----------------------------------------------------------------------------------


def listener_buys(
    page: Any, live_server: str, tour: Tour, release: Release, masters: dict[str, Path]
) -> Order:
    """Play without an account, sign up, buy above the minimum, download three ways."""
    page.goto(live_server)
    tour.visit(page, "home")
    page.fill("header input[name=q]", "tide")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/search?**")
    tour.visit(page, "search")
    page.click(f".card:has-text('{RELEASE_TITLE}')")
    page.wait_for_selector(".play-button")
    tour.visit(page, "release")
    hint = page.inner_text(".buy-box")
    assert "$8.00" in hint and "$5.00" in hint, hint
    page.click(f".byline a:text-is('{ARTIST['name']}')")
    page.wait_for_url(f"**/artists/{ARTIST['slug']}")
    tour.visit(page, "artist")
    page.go_back()
    page.wait_for_selector(".play-button")

    first = min(release.tracks, key=lambda track: track.position)
    row = f".track[data-track-id='{first.id}']"
    page.click(f"{row} .play-button")
    page.wait_for_function("() => window.__audio && window.__audio.currentTime > 1.5")
    assert float(page.get_attribute(f"{row} canvas.waveform", "aria-valuenow")) > 0
    assert page.evaluate(PLAYED_PIXELS, first.id) > 0
    page.wait_for_function(
        "selector => document.querySelector(selector).textContent === '1 play'",
        arg=f"{row} .track-plays",
    )
    page.wait_for_selector(".ad-slot.ad-slot-filled .ad-label")
    assert page.get_attribute(".ad-slot", "aria-label") == "Advertisement"
    tour.visit(page, "player")
    page.click(f"{row} .play-button")  # pause
    page.wait_for_function("() => window.__audio.paused")
    counted = fresh().scalars(select(Play).where(Play.track_id == first.id)).one()
    assert counted.outcome is PlayOutcome.COUNTED and counted.earns and counted.user_id is None

    # An account, then the release at a price above the minimum.
    sign_up(page, live_server, LISTENER["name"], LISTENER["email"])
    page.goto(f"{live_server}/releases/{release.id}")
    page.fill("#f-amount", PAID)
    page.click(".buy-form button[type=submit]")
    page.wait_for_url("**/cart")
    assert page.inner_text(".cart-total") == f"${PAID}"
    tour.visit(page, "cart")
    page.click("main form[action$='/cart/checkout'] button[type=submit]")
    page.wait_for_url("**/checkout/sandbox/**")
    tour.visit(page, "sandbox-checkout")
    page.click("button[name=action][value=pay]")
    page.wait_for_url("**/orders/**")
    tour.visit(page, "order")

    session = fresh()
    buyer = session.scalar(select(User).where(User.email == LISTENER["email"]))
    order = session.scalars(select(Order).where(Order.buyer_id == buyer.id)).one()
    assert order.status is OrderStatus.PAID and order.total_minor == 1230
    assert order.public_id in page.url
    artist = session.scalar(select(Artist).where(Artist.slug == ARTIST["slug"]))
    assert ledger.artist_balances(session, artist.id) == {"USD": ARTIST_SHARE_OF_PAID}

    # The library holds the release.
    page.get_by_role("link", name="Library", exact=True).first.click()
    tour.visit(page, "library")
    page.click(f".card:has-text('{RELEASE_TITLE}')")
    page.wait_for_selector(".library-item")
    tour.visit(page, "library-item")

    # FLAC (the default for lossless masters): every track, then each file and the zip.
    assert page.input_value("#f-format") == "flac"
    page.click("button:text-is('Prepare every track for a zip')")
    page.wait_for_selector(".zip-actions a[download]", timeout=90_000)
    downloaded: dict[int, bytes] = {}
    for track in release.tracks:
        name, data = download(page, f"#track-{track.id} a[download]")
        assert name == f"{ARTIST['name']} - {track.title}.flac"
        downloaded[track.id] = data
    zip_name, zipped = download(page, ".zip-actions a[download]")
    assert zip_name == f"{ARTIST['name']} - {RELEASE_TITLE} (FLAC).zip"

    session = fresh()
    made = {
        row.track_id: row
        for row in session.scalars(
            select(DownloadFile).where(
                DownloadFile.format == "flac", DownloadFile.status == DownloadStatus.READY
            )
        )
    }
    expected = {}
    for track in release.tracks:
        with vault.iter_plaintext(session, made[track.id].object_id) as stream:
            expected[track.id] = b"".join(stream)
        assert sha256(downloaded[track.id]) == sha256(expected[track.id]), track.title
    master_of = {TITLES[0]: masters["flac"], TITLES[1]: masters["wav"]}
    for track in release.tracks:
        path = master_of[track.title].with_suffix(".delivered.flac")
        path.write_bytes(downloaded[track.id])
        assert sha256(pcm(path)) == sha256(pcm(master_of[track.title])), track.title
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        names = archive.namelist()
        ordered = sorted(release.tracks, key=lambda track: track.position)
        assert names == [f"{n:02d} {t.title}.flac" for n, t in enumerate(ordered, 1)] + ["cover.jpg"]
        for number, track in enumerate(ordered, start=1):
            entry = archive.read(f"{number:02d} {track.title}.flac")
            assert sha256(entry) == sha256(expected[track.id]), track.title

    # The Original, through a key link: the master as uploaded, decrypted in the browser.
    page.select_option("#f-format", "original")
    page.click(".format-picker button[type=submit]")
    page.wait_for_url("**format=original**")
    page.click(f"#track-{first.id} button:text-is('Get a key link')")
    page.wait_for_url("**/d/**#k=**")
    page.wait_for_selector("#keylink-start:not([disabled])")
    tour.visit(page, "key-link")
    name, data = download(page, "#keylink-start")
    assert name == f"{ARTIST['name']} - {first.title}.flac"
    assert sha256(data) == sha256(masters["flac"].read_bytes())
    return order


# Journey 3 ----------------------------------------------------------------------------------


def admin_closes_the_month(admin_page: Any, live_server: str, tour: Tour) -> str:
    """Enter this month's ad revenue and close it early. Returns the month."""
    admin = UserFactory(is_admin=True, display_name="Ada Admin")
    db.session.commit()
    sign_in(admin_page, live_server, admin.email, TEST_PASSWORD)
    admin_page.goto(f"{live_server}/admin")
    tour.visit(admin_page, "admin-overview")
    admin_page.get_by_role("link", name="Periods", exact=True).first.click()
    admin_page.wait_for_url("**/admin/periods")
    tour.visit(admin_page, "periods")
    month, _ = recent_keys()
    admin_page.get_by_role("link", name=f"This month ({month})").click()
    admin_page.fill("#f-revenue", AD_REVENUE)
    admin_page.click("main form button[type=submit]:text-is('Save')")
    admin_page.wait_for_selector(".flashes")
    assert f"Saved the revenue and model of {month}." in admin_page.inner_text(".flashes")
    tour.visit(admin_page, "period")
    admin_page.check("input[name=early]")
    admin_page.once("dialog", lambda dialog: dialog.accept())
    admin_page.click(f"button:text-is('Close {month}')")
    admin_page.wait_for_selector(".flashes .alert-success")
    assert f"Closed {month}: $90.00 split over" in admin_page.inner_text(".flashes")
    period = fresh().scalar(select(Period).where(Period.key == month))
    assert period is not None and period.closed_at is not None
    return month


def artist_reads_the_statement(
    page: Any, live_server: str, tour: Tour, month: str, problems: BrowserProblems
) -> None:
    """The statement's totals equal the ledger; CSV, PDF and the dashboard's charts."""
    session = fresh()
    artist = session.scalar(select(Artist).where(Artist.slug == ARTIST["slug"]))
    payable = ledger.artist_payable(session, artist.id, "USD")

    def posted(kind: str) -> int:
        """What the artist's payable was credited by transactions of ``kind``."""
        total = session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0))
            .join(LedgerTransaction, LedgerEntry.transaction)
            .where(LedgerEntry.account_id == payable.id, LedgerTransaction.kind == kind)
        )
        return -int(total)

    sales, ads = posted("sale"), posted(AD_POOL_KIND)
    balance = ledger.artist_balances(session, artist.id)["USD"]
    assert sales == ARTIST_SHARE_OF_PAID and ads == 9000 and balance == sales + ads

    page.goto(f"{live_server}/studio/earnings")
    page.wait_for_selector(".plays-chart svg")
    assert page.locator(".sales-chart svg").count() >= 1
    tour.visit(page, "earnings")

    page.goto(f"{live_server}/studio")
    page.get_by_role("link", name="Statements", exact=True).first.click()
    page.wait_for_url("**/studio/statements")
    tour.visit(page, "statements")
    page.click(f"table.statements a:text-is('{month}')")
    page.wait_for_selector(".statement-summary")
    tour.visit(page, "statement")
    assert "Final" in page.inner_text("#statement-title")
    assert money_cell(page, "Opening balance") == "$0.00"
    assert money_cell(page, "Sales") == dollars(sales)
    assert money_cell(page, "Ad share") == dollars(ads)
    assert money_cell(page, "Closing balance") == dollars(balance)
    assert page.locator(".statement-chart svg").count() == 1

    name, data = download(page, "a:text-is('Download CSV')")
    assert name.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    amounts = {row["type"]: row["amount"] for row in rows}
    assert amounts["opening_balance"] == "0.00"
    assert amounts["sale"] == f"{sales / 100:.2f}" and amounts["ad_share"] == f"{ads / 100:.2f}"
    assert amounts["closing_balance"] == f"{balance / 100:.2f}"
    sale = next(row for row in rows if row["type"] == "sale")
    assert (sale["item"], sale["price_paid"]) == (f"{ARTIST['name']} – {RELEASE_TITLE}", PAID)

    name, data = download(page, "a:text-is('Download PDF')")
    assert name.endswith(".pdf") and data.startswith(b"%PDF")
    text = "\n".join(page_.extract_text() for page_ in PdfReader(io.BytesIO(data)).pages)
    assert dollars(balance) in text and dollars(sales) in text and ARTIST["name"] in text

    page.goto(f"{live_server}/studio/payouts")
    tour.visit(page, "payouts")
    page.goto(f"{live_server}/account")
    tour.visit(page, "account")
    problems.expect(404, r"/no-such-page")
    page.goto(f"{live_server}/no-such-page")
    tour.visit(page, "not-found")


def test_the_three_journeys(
    live_server: str, open_page: Any, tour: Tour, problems: BrowserProblems,
    masters: dict[str, Path], cover_file: Path,
) -> None:  # fmt: skip
    artist_page = open_page(accept_downloads=True)
    artist_page.add_init_script(WATCH_UPLOADS)
    release = artist_publishes(artist_page, live_server, tour, masters, cover_file)

    listener_page = open_page(accept_downloads=True)
    listener_page.add_init_script(KEEP_AUDIO)
    listener_page.add_init_script(BLOB_SAVE)
    listener_buys(listener_page, live_server, tour, release, masters)

    month = admin_closes_the_month(open_page(), live_server, tour)
    artist_reads_the_statement(artist_page, live_server, tour, month, problems)

    assert not tour.violations, "axe-core found serious or critical problems:\n" + tour.report()
    too_wide = {name: width for name, width in tour.phone_widths.items() if width > PHONE["width"]}
    assert not too_wide, f"pages wider than a phone (CSS pixels): {too_wide}"
