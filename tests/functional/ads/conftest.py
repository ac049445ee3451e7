"""Ad fixtures: an admin signed in, and real image bytes made on the spot."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from PIL import Image

from tests.factories import UserFactory


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
