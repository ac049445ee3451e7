"""The Studio page's uploader speaks tus: several chunks, each with a SHA-256 Upload-Checksum."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.extensions import db
from app.ingest import uploads as service
from app.ingest.models import Upload, UploadStatus
from tests.conftest import TEST_PASSWORD
from tests.functional.ingest.conftest import Studio
from tests.functional.ingest.test_upload_support import serving, stand_in_processing  # noqa: F401

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("MEGABOX_TEST_CHROMIUM", "/usr/bin/chromium")
CHUNK = 64 * 1024


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_the_studio_uploader_sends_checksummed_tus_chunks(make_app, stand_in_processing, tmp_path, browser):
    app = make_app(UPLOAD_CHUNK_BYTES=CHUNK)
    master = tmp_path / "Été.flac"
    data = os.urandom(3 * CHUNK + 123)
    master.write_bytes(data)
    with app.app_context(), serving(app) as base_url:
        studio = Studio(app, app.test_client())
        email, release_id = studio.artist.owner.email, studio.release.id
        context = browser.new_context()
        try:
            page = context.new_page()
            patches: list[dict[str, str]] = []
            page.on("request", lambda r: patches.append(r.headers) if r.method == "PATCH" else None)
            page.goto(f"{base_url}/login")
            page.fill("#f-email", email)
            page.fill("#f-password", TEST_PASSWORD)
            page.click("main button[type=submit]")
            page.goto(f"{base_url}/studio/releases/{release_id}/edit")
            page.set_input_files("#dropzone input[type=file]", str(master))
            page.wait_for_function("document.querySelector('.upload[data-status=processing]') !== null", timeout=30_000)
        finally:
            context.close()
        db.session.rollback()
        upload = db.session.query(Upload).one()
        assert upload.filename == "Été.flac" and upload.status is UploadStatus.PROCESSING
        assert service.spool_path(app.config, upload.id).read_bytes() == data
        assert [h["upload-offset"] for h in patches] == [str(n * CHUNK) for n in range(4)]
        assert all(h["tus-resumable"] == "1.0.0" and h["upload-checksum"].startswith("sha256 ") for h in patches)
