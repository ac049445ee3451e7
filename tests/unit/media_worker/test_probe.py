from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from media_worker.errors import RejectedAudio
from media_worker.probe import probe_audio
from tests import audio_fixtures
from tests.audio_fixtures import FORMATS

LIMIT_SECONDS = 600
# MP3 and AAC headers count the encoder's delay and padding as well.
DURATION_TOLERANCE_MS = 50


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_accepted_format_is_described_correctly(
    fmt: str, formats: dict[str, Path], ffmpeg: str
) -> None:
    info = probe_audio(formats[fmt], ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    expected = FORMATS[fmt]
    assert info.container == expected.container
    assert info.codec == expected.codec
    assert info.sample_rate == expected.sample_rate
    assert info.bit_depth == expected.bit_depth
    assert info.channels == 2
    assert abs(info.duration_ms - audio_fixtures.DEFAULT_SECONDS * 1000) <= DURATION_TOLERANCE_MS


def test_mono_is_reported_as_one_channel(tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.synthesise(tmp_path, "mono", "flac", channels=1)
    assert probe_audio(path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS).channels == 1


def test_the_name_plays_no_part(tmp_path: Path, formats: dict[str, Path], ffmpeg: str) -> None:
    flac_named_mp3 = shutil.copy(formats["flac"], tmp_path / "song.mp3")
    wav_named_txt = shutil.copy(formats["wav24"], tmp_path / "notes.txt")
    assert probe_audio(flac_named_mp3, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS).codec == "flac"
    assert probe_audio(wav_named_txt, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS).codec == "pcm_s24le"


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (audio_fixtures.empty_file, "empty_file"),
        (audio_fixtures.garbage_named_mp3, "not_audio"),
        (audio_fixtures.text_named_mp3, "not_audio"),
        (audio_fixtures.zip_named_wav, "not_audio"),
    ],
)
def test_files_that_are_not_audio_are_rejected(
    make, code: str, tmp_path: Path, ffmpeg: str
) -> None:
    with pytest.raises(RejectedAudio) as caught:
        probe_audio(make(tmp_path), ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert caught.value.code == code
    assert caught.value.message


def test_audio_in_other_codecs_is_unsupported(tmp_path: Path, ffmpeg: str) -> None:
    made = audio_fixtures.unsupported_codecs(tmp_path)
    codes = {}
    for name, path in made.items():
        with pytest.raises(RejectedAudio) as caught:
            probe_audio(path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
        codes[name] = caught.value.code
    assert codes == dict.fromkeys(made, "unsupported_codec")


def test_audio_over_the_limit_is_too_long(formats: dict[str, Path], ffmpeg: str) -> None:
    with pytest.raises(RejectedAudio) as caught:
        probe_audio(formats["flac"], ffmpeg=ffmpeg, max_seconds=2)
    assert caught.value.code == "too_long"
    assert probe_audio(formats["flac"], ffmpeg=ffmpeg, max_seconds=3).codec == "flac"


def test_a_wav_whose_header_ffmpeg_refuses_is_corrupt(
    tmp_path: Path, formats: dict[str, Path], ffmpeg: str
) -> None:
    data = bytearray(formats["wav16"].read_bytes())
    channels_at = data.index(b"fmt ") + 10
    data[channels_at : channels_at + 2] = b"\x00\x00"
    no_channels = tmp_path / "no-channels.wav"
    no_channels.write_bytes(bytes(data))
    with pytest.raises(RejectedAudio) as caught:
        probe_audio(no_channels, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert caught.value.code == "corrupt_audio"
