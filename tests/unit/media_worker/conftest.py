"""Audio made once per test session: every accepted format and the broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_worker.ffmpeg import ffmpeg_path
from tests import audio_fixtures


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return ffmpeg_path()


@pytest.fixture(scope="session")
def formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 3-second tone in every accepted format, keyed like ``audio_fixtures.FORMATS``."""
    return audio_fixtures.every_format(tmp_path_factory.mktemp("formats"))


@pytest.fixture(scope="session")
def quiet_music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return audio_fixtures.music_like(tmp_path_factory.mktemp("quiet"), -24.0)


@pytest.fixture(scope="session")
def loud_music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return audio_fixtures.music_like(tmp_path_factory.mktemp("loud"), -6.0)
