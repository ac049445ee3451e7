"""Ad fixtures: an admin signed in, real image bytes made on the spot, and a track that plays."""

from __future__ import annotations

import hashlib
import io
from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from app.catalog.models import Track, TrackStatus
from app.extensions import db
from app.ingest.models import TrackMedia
from app.vault import service as vault
from tests.factories import TrackFactory, UserFactory


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (8, 4), color: str = "teal") -> bytes:
    """A small real image in ``fmt`` (PNG, JPEG, WEBP or GIF)."""
    out = BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


@pytest.fixture
def admin(auth: Any) -> Any:
    user = UserFactory(is_admin=True)
    auth.login(user.email)
    return user


@pytest.fixture
def playable_track(app: Any) -> Track:
    """A published, ready track with (stand-in) audio in the vault, so it can be played."""
    track = TrackFactory(status=TrackStatus.READY, duration_ms=180_000)
    data = f"audio of track {track.id}".encode()
    stored = vault.put_stream(db.session, io.BytesIO(data), kind="rendition", size=len(data))
    db.session.add(
        TrackMedia(
            track_id=track.id, artist_id=track.release.artist_id,
            master_sha256=hashlib.sha256(data).hexdigest(), master_object_id=stored.id,
            opus_object_id=stored.id, mp3_object_id=stored.id, original_filename="take.wav",
            container="wav", codec="pcm_s16le", sample_rate=44100, channels=2,
            waveform={"buckets": 0, "peaks": []},
        )
    )  # fmt: skip
    db.session.commit()
    return track
