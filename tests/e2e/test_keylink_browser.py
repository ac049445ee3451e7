"""Key-in-link downloads in headless Chromium: WebCrypto decrypts to the bytes Python gets, a
flipped byte in a segment shows the error and saves nothing, and the server's log never
holds the key."""

from __future__ import annotations

import base64
import io
import logging
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import Flask

from app.catalog.models import Track, TrackStatus
from app.commerce import service as commerce
from app.extensions import db
from app.ingest.models import TrackMedia
from app.library import keylinks
from app.timestamps import utcnow
from app.vault import service as vault
from app.vault.models import VaultObject
from tests.factories import ReleaseFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.browser

SEGMENT_LOG2 = 10
SEGMENT = 1 << SEGMENT_LOG2
# Forty whole segments and a short final one.
MASTER = random.Random(11).randbytes(40 * SEGMENT + 321)
TAMPERED = "This file has been tampered with or damaged; nothing was saved."
# Runs before the page's own script: no File System Access (the Blob path is taken), and a
# count of the object URLs the page makes.
BLOB_PATH = """
delete window.showSaveFilePicker;
window.__objectUrls = 0;
const makeObjectUrl = URL.createObjectURL.bind(URL);
URL.createObjectURL = (blob) => { window.__objectUrls += 1; return makeObjectUrl(blob); };
"""
# A stand-in for the save dialog that records what the page writes and how it ends.
FILE_SYSTEM_PATH = """
window.__saved = { chunks: [], closed: false, aborted: false };
window.showSaveFilePicker = async (options) => {
  window.__saved.name = options.suggestedName;
  return { createWritable: async () => ({
    write: async (bytes) => { window.__saved.chunks.push(Array.from(bytes)); },
    close: async () => { window.__saved.closed = true; },
    abort: async () => { window.__saved.aborted = true; },
  }) };
};
"""


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(VAULT_SEGMENT_SIZE_LOG2=SEGMENT_LOG2)
    with built.app_context():
        yield built
        db.session.rollback()


@pytest.fixture
def server_log() -> Iterator[list[str]]:
    """Every record logged while the test runs, the werkzeug request log included."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.DEBUG)
    root, requests = logging.getLogger(), logging.getLogger("werkzeug")
    levels = root.level, requests.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    requests.setLevel(logging.DEBUG)
    yield lines
    root.removeHandler(handler)
    root.setLevel(levels[0])
    requests.setLevel(levels[1])


@pytest.fixture
def master(app: Flask) -> tuple[Track, VaultObject]:
    release = ReleaseFactory(title="Tide Tables", artist__name="Nora Vik", price_minor=500)
    track = TrackFactory(release=release, position=1, title="Neap", status=TrackStatus.READY)
    stored = vault.put_stream(
        db.session, io.BytesIO(MASTER), kind="master", content_type="audio/flac", size=len(MASTER)
    )
    renditions = [vault.put_stream(db.session, io.BytesIO(b"r"), kind="rendition", size=1) for _ in "ab"]
    db.session.add(
        TrackMedia(
            track_id=track.id, artist_id=release.artist_id, master_sha256=stored.sha256,
            master_object_id=stored.id, opus_object_id=renditions[0].id,
            mp3_object_id=renditions[1].id, original_filename="neap.flac", container="flac",
            codec="flac", sample_rate=48000, bit_depth=24, channels=2,
            waveform={"buckets": 0, "peaks": []},
        )
    )  # fmt: skip
    db.session.commit()
    return track, stored


@pytest.fixture
def link_path(app: Flask, master: tuple[Track, VaultObject]) -> str:
    """``/d/<token>#k=<key>`` for a buyer's paid purchase of the track's release."""
    track, _ = master
    buyer = UserFactory()
    order = commerce.create_order(
        db.session, buyer, [commerce.CartLine(track.release_id)], gateway="sandbox", config=app.config
    )
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
    created = keylinks.create_key_link(
        db.session, buyer, order_item_id=order.items[0].id, track_id=track.id, fmt="original"
    )
    db.session.commit()
    return created.path


def python_decrypt(live_server: str, path: str) -> bytes:
    """What the link gives Python: meta and blob over HTTP, decrypted as FORMAT.md says."""
    import json
    from urllib.request import Request, urlopen

    parts = urlsplit(path)
    token, encoded = parts.path[3:], parts.fragment[2:]
    key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    request = Request(f"{live_server}{parts.path}/meta", headers={"Accept": "application/json"})
    with urlopen(request) as response:
        meta = json.load(response)
    with urlopen(live_server + meta["blob_url"]) as response:
        blob = response.read()
    header, wrapped = base64.b64decode(meta["header"]), base64.b64decode(meta["wrapped_key"])
    wrapping = HKDF(hashes.SHA256(), 32, token.encode(), b"megabox-keylink/v1").derive(key)
    dek = AESGCM(wrapping).decrypt(wrapped[:12], wrapped[12:], header)
    okm = HKDF(hashes.SHA256(), 48, header[23:33], b"megabox-vault/v1" + header[:48]).derive(dek)
    assert okm[32:] == header[48:] and blob[:64] == header
    length = int.from_bytes(header[40:48], "big")
    count = max(1, -(-length // SEGMENT))
    plain, position = bytearray(), 64
    for index in range(count):
        size = (SEGMENT if index < count - 1 else length - (count - 1) * SEGMENT) + 16
        nonce = header[33:40] + index.to_bytes(4, "big") + bytes([index == count - 1])
        plain += AESGCM(okm[:32]).decrypt(nonce, blob[position : position + size], header)
        position += size
    assert position == len(blob)
    return bytes(plain)


def flip_a_segment_byte(app: Flask, stored: VaultObject, segment: int) -> None:
    path = Path(app.instance_path) / "vault" / stored.backend_key
    raw = bytearray(path.read_bytes())
    raw[64 + segment * (SEGMENT + 16) + 100] ^= 0x20
    path.write_bytes(raw)


def watch_console(page: Any) -> list[str]:
    """Console errors and uncaught exceptions."""
    problems: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error":
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def ready(page: Any) -> None:
    page.wait_for_selector("#keylink-start:not([disabled])")


def test_chromium_decrypts_the_link_to_the_bytes_python_gets(
    live_server: str, page: Any, link_path: str, server_log: list[str]
) -> None:
    page.add_init_script(BLOB_PATH)
    problems = watch_console(page)
    page.goto(live_server + link_path)
    ready(page)
    assert page.inner_text("h1") == "Neap"
    with page.expect_download() as caught:
        page.click("#keylink-start")
    download = caught.value
    assert download.suggested_filename == "Nora Vik - Neap.flac"
    saved = Path(download.path()).read_bytes()
    assert saved == MASTER == python_decrypt(live_server, link_path)
    assert page.inner_text("#keylink-status") == "Saved Nora Vik - Neap.flac."
    assert page.get_attribute("#keylink-progress", "aria-valuenow") == "100"
    assert page.is_hidden("#keylink-error")
    assert problems == []
    # The request log saw the page and what it fetched, and never the fragment's key.
    token, key = urlsplit(link_path).path[3:], urlsplit(link_path).fragment[2:]
    logged = "\n".join(server_log)
    assert f"GET /d/{token}/blob" in logged and f"GET /d/{token}/meta" in logged
    assert key not in logged and "#k=" not in logged


def test_a_flipped_byte_shows_the_error_and_saves_nothing(
    app: Flask, live_server: str, page: Any, link_path: str,
    master: tuple[Track, VaultObject], server_log: list[str],
) -> None:  # fmt: skip
    flip_a_segment_byte(app, master[1], segment=17)
    page.add_init_script(BLOB_PATH)
    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    page.goto(live_server + link_path)
    ready(page)
    page.click("#keylink-start")
    page.wait_for_selector("#keylink-error:not([hidden])")
    assert page.inner_text("#keylink-error") == TAMPERED
    # Give a download that should not exist the time to show up.
    time.sleep(0.5)
    assert downloads == []
    assert page.evaluate("window.__objectUrls") == 0
    assert page.is_hidden("#keylink-progress")
    assert urlsplit(link_path).fragment[2:] not in "\n".join(server_log)


def test_the_file_system_path_writes_the_file_or_aborts_it(
    app: Flask, live_server: str, page: Any, link_path: str, master: tuple[Track, VaultObject]
) -> None:
    page.add_init_script(FILE_SYSTEM_PATH)
    page.goto(live_server + link_path)
    ready(page)
    page.click("#keylink-start")
    page.wait_for_function("window.__saved.closed || window.__saved.aborted")
    saved = page.evaluate("window.__saved")
    assert (saved["closed"], saved["aborted"], saved["name"]) == (True, False, "Nora Vik - Neap.flac")
    assert b"".join(bytes(chunk) for chunk in saved["chunks"]) == MASTER

    flip_a_segment_byte(app, master[1], segment=40)  # the short, final segment
    page.reload()
    ready(page)
    page.click("#keylink-start")
    page.wait_for_selector("#keylink-error:not([hidden])")
    saved = page.evaluate("window.__saved")
    assert (saved["closed"], saved["aborted"]) == (False, True)
    assert page.inner_text("#keylink-error") == TAMPERED


def test_a_download_cut_off_half_way_resumes_with_a_range_request(
    live_server: str, page: Any, link_path: str
) -> None:
    page.add_init_script(BLOB_PATH)
    asked: list[str | None] = []
    cut_at: list[int] = []

    def cut_the_first_off(route: Any) -> None:
        asked.append(route.request.headers.get("range"))
        if len(asked) > 1:
            route.continue_()
            return
        whole = route.fetch().body()
        cut_at.append(len(whole) // 2 + 5)
        route.fulfill(status=200, body=whole[: cut_at[0]], content_type="application/octet-stream")

    page.route("**/blob", cut_the_first_off)
    page.goto(live_server + link_path)
    ready(page)
    with page.expect_download() as caught:
        page.click("#keylink-start")
    assert Path(caught.value.path()).read_bytes() == MASTER
    assert asked == [None, f"bytes={cut_at[0]}-"]


def test_a_link_without_its_key_says_so(live_server: str, page: Any, link_path: str) -> None:
    problems = watch_console(page)
    page.goto(live_server + link_path.split("#")[0])
    page.wait_for_selector("#keylink-error:not([hidden])")
    assert "missing its key" in page.inner_text("#keylink-error")
    assert page.is_disabled("#keylink-start")
    wrong = base64.urlsafe_b64encode(bytes(32)).rstrip(b"=").decode()
    page.goto(live_server + link_path.split("#")[0] + "#k=" + wrong)
    page.reload()
    page.wait_for_selector("#keylink-error:not([hidden])")
    assert "does not open this file" in page.inner_text("#keylink-error")
    assert problems == []
