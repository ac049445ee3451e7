"""An artist drops several files on a release and watches them become tracks, no reload."""

import pytest

from app.catalog import service as catalog
from app.extensions import db
from tests import audio_fixtures as audio
from tests.factories import ArtistFactory

pytestmark = pytest.mark.browser


def test_dropped_files_upload_process_and_appear_without_a_reload(live_server, page, tmp_path):
    artist = ArtistFactory()
    release = catalog.create_release(db.session, artist.owner, artist, {"title": "Drops", "currency": "USD", "price_minor": 500})
    db.session.commit()
    good = audio.synthesise(tmp_path, "first-light", "flac")
    audio.write_tags(good, "flac", {"TITLE": "First Light"})
    other = audio.synthesise(tmp_path, "second-wind", "mp3")
    bad = audio.zip_named_wav(tmp_path)

    page.goto(f"{live_server}/login")
    page.fill("#f-email", artist.owner.email)
    page.fill("#f-password", "correct-horse-battery")
    page.click("main button[type=submit]")
    page.goto(f"{live_server}/studio/releases/{release.id}/edit")
    page.evaluate("window.notReloaded = true")
    page.set_input_files("#dropzone input[type=file]", [str(good), str(other), str(bad)])

    page.wait_for_function("document.querySelectorAll('.upload[data-status=ready]').length === 2", timeout=90_000)
    page.wait_for_function("document.querySelectorAll('.upload[data-status=failed]').length === 1", timeout=30_000)
    failed = page.inner_text(".upload[data-status=failed]")
    assert bad.name in failed and "not audio" in failed
    page.wait_for_function("document.getElementById('studio-tracklist').innerText.includes('First Light')")
    tracks = page.inner_text("#studio-tracklist")
    assert "second-wind" in tracks and "ready" in tracks.lower()
    assert page.evaluate("window.notReloaded") is True
