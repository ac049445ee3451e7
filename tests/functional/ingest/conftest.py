"""Helpers for ingest tests: an artist's API headers, and uploading a file through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.accounts.service import issue_token
from app.catalog import service as catalog
from app.extensions import db
from app.ingest.models import Upload
from app.vault.models import VaultObject
from app.jobs import get_queue
from tests.factories import ArtistFactory

JOB_WAIT_SECONDS = 120
CHUNK = 64 * 1024


class Studio:
    """An artist with a release (created as the artist would, so typed fields are locked)."""

    def __init__(self, app: Any, client: Any) -> None:
        self.app = app
        self.client = client
        self.artist = ArtistFactory()
        _, secret = issue_token(db.session, self.artist.owner, "tests")
        self.release = catalog.create_release(
            db.session, self.artist.owner, self.artist,
            {"title": "Typed Title", "currency": "USD", "price_minor": 700},
        )  # fmt: skip
        db.session.commit()
        self.headers = {"Authorization": f"Bearer {secret}"}

    def open(self, name: str, size: int, release_id: int | None = None) -> Any:
        return self.client.post(
            f"/api/v1/releases/{release_id or self.release.id}/uploads",
            json={"filename": name, "size": size},
            headers=self.headers,
        )

    def send(self, upload_id: str, offset: int, data: bytes) -> Any:
        return self.client.patch(
            f"/api/v1/uploads/{upload_id}",
            data=data,
            headers={**self.headers, "Upload-Offset": str(offset),
                     "Content-Type": "application/offset+octet-stream"},
        )  # fmt: skip

    def upload(self, path: Path, chunk: int = CHUNK) -> str:
        """Upload a file in chunks; returns the upload id once the last chunk is in."""
        data = path.read_bytes()
        opened = self.open(path.name, len(data))
        assert opened.status_code == 201, opened.json
        upload_id = opened.json["id"]
        for offset in range(0, len(data), chunk):
            sent = self.send(upload_id, offset, data[offset : offset + chunk])
            assert sent.status_code == 204, sent.data
        return upload_id

    def process(self) -> None:
        assert get_queue(self.app).wait_idle(JOB_WAIT_SECONDS)
        db.session.rollback()  # read what the job committed
        db.session.expire_all()

    def status(self, upload_id: str) -> Upload:
        return db.session.get(Upload, upload_id)


@pytest.fixture
def studio(app: Any, client: Any) -> Studio:
    return Studio(app, client)


def vault_files(app: Any) -> list[Path]:
    root = Path(app.instance_path) / "vault"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def vault_rows() -> int:
    return db.session.query(VaultObject).count()


def spool_files(app: Any) -> list[Path]:
    root = Path(app.instance_path) / "uploads"
    return [p for p in root.iterdir()] if root.exists() else []
