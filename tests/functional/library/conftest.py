"""Library fixtures: releases ingested from generated masters, purchases, and the job queue.

Masters go through the real ingest pipeline (``tests.functional.ingest.conftest.Studio``), so
each track has a master in the vault, measured media and, when asked, a release cover. Audio is
one second long to keep the suite fast.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.accounts.models import User
from app.accounts.service import issue_token
from app.catalog.models import PricingMode, Release, Track
from app.commerce import service as commerce
from app.commerce.models import Order, OrderItem, OrderStatus
from app.extensions import db
from app.ingest.models import UploadStatus
from app.jobs import get_queue
from app.timestamps import utcnow
from tests import audio_fixtures as audio
from tests.conftest import TEST_PASSWORD
from tests.factories import UserFactory
# The gateway's report of a payment, as a fixture.
from tests.functional.commerce.conftest import pay  # noqa: F401
from tests.functional.ingest.conftest import Studio

SECONDS = 1.0
LINK_TTL_SECONDS = 3600
JOB_WAIT_SECONDS = 120
# Master tags for fields the catalogue has no column for: they reach the downloads.
MASTER_GENRE = "Ambient"
MASTER_LABEL = "Tape Hiss Records"
COVER_SIZE = 1200


@pytest.fixture
def app(make_app: Any) -> Iterator[Flask]:
    built = make_app(DOWNLOAD_LINK_TTL_SECONDS=LINK_TTL_SECONDS)
    with built.app_context():
        yield built
        db.session.rollback()


def tone(index: int) -> str:
    """A different tone per track, so no two masters are the same file (ingest refuses that)."""
    return f"0.4*sin(2*PI*{330 + 110 * index}*t)"


class Shop:
    """Releases of ingested masters, and listeners who buy them."""

    def __init__(self, app: Flask, client: FlaskClient, tmp_path: Path, pay: Any) -> None:
        self.app = app
        self.client = client
        self.tmp_path = tmp_path
        self._pay = pay

    def release(
        self,
        titles: Sequence[str] = ("First Light",),
        *,
        fmt: str = "wav16",
        cover: bool = True,
        mode: PricingMode = PricingMode.FIXED,
        price: int = 700,
    ) -> Release:
        """A published release by a new artist, one ingested track per title, in order."""
        studio = Studio(self.app, self.client)
        directory = self.tmp_path / f"release-{studio.release.id}"
        directory.mkdir()
        uploads = []
        for index, title in enumerate(titles):
            master = audio.synthesise(directory, f"master{index}", fmt, expression=tone(index),
                                      seconds=SECONDS)  # fmt: skip
            covers = [audio.Cover(audio.cover_image(800, 600))] if cover and index == 0 else []
            tags = {"TITLE": title, "TRACKNUMBER": str(index + 1), "GENRE": MASTER_GENRE,
                    "LABEL": MASTER_LABEL, "ARTIST": "Whoever The Tag Says"}  # fmt: skip
            audio.write_tags(master, fmt, tags, covers)
            uploads.append(studio.upload(master))
        studio.process()
        for upload_id in uploads:
            upload = studio.status(upload_id)
            assert upload.status is UploadStatus.READY, (upload.error_code, upload.error_message)
        release = db.session.get(Release, studio.release.id)
        release.published = True
        release.published_at = utcnow()
        release.pricing_mode = mode
        release.price_minor = release.minimum_price_minor = 0 if mode is PricingMode.FREE else price
        db.session.commit()
        return release

    def order(
        self, buyer: User, release: Release, track: Track | None = None, *, paid: bool = True
    ) -> Order:
        """``buyer`` orders the release (or one track of it) through the sandbox, and pays
        unless ``paid`` is False; a free one is paid at once."""
        line = commerce.CartLine(release.id, track.id if track else None)
        made = commerce.create_order(
            db.session, buyer, [line], gateway="sandbox", config=self.app.config
        )
        db.session.commit()
        if paid and made.status is OrderStatus.PENDING:
            self._pay(db.session, made)
        return made

    def buy(self, buyer: User, release: Release, track: Track | None = None) -> OrderItem:
        """``buyer`` buys the release (or one track of it); returns the paid item."""
        return self.order(buyer, release, track).items[0]

    def login(self, user: User) -> None:
        self.client.post("/logout")
        response = self.client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
        assert response.status_code == 302, response.data[:200]

    def token_headers(self, user: User) -> dict[str, str]:
        _, secret = issue_token(db.session, user, "library tests")
        db.session.commit()
        return {"Authorization": f"Bearer {secret}"}

    def finish_jobs(self) -> None:
        assert get_queue(self.app).wait_idle(JOB_WAIT_SECONDS)
        db.session.rollback()  # read what the jobs committed
        db.session.expire_all()


@pytest.fixture
def shop(app: Flask, client: FlaskClient, tmp_path: Path, pay: Any) -> Shop:
    return Shop(app, client, tmp_path, pay)


@pytest.fixture
def buyer(app: Flask) -> User:
    return UserFactory()


def request_format(
    client: FlaskClient,
    headers: dict[str, str],
    item: OrderItem,
    fmt: str,
    track: Track | None = None,
) -> Any:
    """POST a download request through the API; returns the response."""
    body: dict[str, Any] = {"format": fmt}
    if track is not None:
        body["track_id"] = track.id
    return client.post(f"/api/v1/library/items/{item.id}/downloads", json=body, headers=headers)


def downloads(client: FlaskClient, headers: dict[str, str], item: OrderItem, fmt: str) -> Any:
    url = f"/api/v1/library/items/{item.id}/downloads?format={fmt}"
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def fetch(client: FlaskClient, url: str, **kwargs: Any) -> Any:
    """GET an absolute URL the app made, through the test client."""
    return client.get(url.removeprefix("http://localhost"), **kwargs)
