from __future__ import annotations

import shutil
import subprocess
from functools import partial
from pathlib import Path

import pytest
from mutagen.asf import ASF
from mutagen.dsdiff import DSDIFF
from mutagen.monkeysaudio import MonkeysAudio
from mutagen.tak import TAK

from media_worker.errors import RejectedAudio
from media_worker.probe import ACCEPTED, DEFAULT_MAX_CHANNELS, LOSSLESS_CODECS, probe_audio
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


@pytest.mark.parametrize(("fmt", "codec"), [("dsf", "dsd_lsbf_planar"), ("dff", "dsd_msbf")])
def test_dsd_is_described_as_recorded_and_decoded_at_an_eighth_of_its_rate(
    fmt: str, codec: str, tmp_path: Path, ffmpeg: str
) -> None:
    path = audio_fixtures.dsd_tone(tmp_path, fmt, seconds=1.0)
    info = probe_audio(path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert (info.container, info.codec) == (fmt, codec)
    assert (info.sample_rate, info.bit_depth) == (audio_fixtures.DSD64_RATE, 1)
    assert info.pcm_sample_rate == audio_fixtures.DSD_PCM_RATE
    assert info.channels == 2
    assert info.lossless
    assert info.duration_ms == pytest.approx(1000, abs=DURATION_TOLERANCE_MS)


def test_raw_adts_aac_is_accepted_with_an_estimated_length(
    formats: dict[str, Path], ffmpeg: str
) -> None:
    info = probe_audio(formats["adts_aac"], ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert (info.container, info.codec, info.lossless) == ("aac", "aac", False)
    assert not info.exact_duration  # ADTS has no header that gives the length


# Formats ffmpeg decodes but no available tool encodes, so no file of theirs can be made:
# (ffmpeg demuxer, ffmpeg decoder, the mutagen class that must parse the same container).
WITHOUT_AN_ENCODER = [
    ("ape", "ape", MonkeysAudio),
    ("tak", "tak", TAK),
    ("asf", "wmalossless", ASF),
    ("iff", "dst", DSDIFF),  # DST-compressed DSDIFF
]


@pytest.mark.parametrize(("demuxer", "decoder", "reader"), WITHOUT_AN_ENCODER)
def test_formats_without_an_encoder_are_accepted_and_decodable(
    demuxer: str, decoder: str, reader: type, ffmpeg: str
) -> None:
    families = [f for f in ACCEPTED.get(demuxer, ()) if decoder in f.codecs]
    assert [family.reader for family in families] == [reader]
    assert decoder in LOSSLESS_CODECS
    listed = subprocess.run(
        [ffmpeg, "-hide_banner", "-decoders"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert decoder in listed
    demuxers = subprocess.run(
        [ffmpeg, "-hide_banner", "-demuxers"], check=True, capture_output=True, text=True
    ).stdout.split()
    assert demuxer in demuxers


def test_the_name_plays_no_part_for_the_new_formats(
    tmp_path: Path, formats: dict[str, Path], ffmpeg: str
) -> None:
    wavpack_named_flac = shutil.copy(formats["wavpack"], tmp_path / "song.flac")
    dsf_named_wav = shutil.copy(audio_fixtures.dsd_tone(tmp_path, "dsf"), tmp_path / "song.wav")
    probe = partial(probe_audio, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert probe(wavpack_named_flac).container == "wavpack"
    assert probe(dsf_named_wav).container == "dsf"


# Hostile headers: each is the file's fault, with its own code.


def test_a_wav_declaring_65535_channels_is_rejected_for_its_channels(
    tmp_path: Path, ffmpeg: str
) -> None:
    path = audio_fixtures.raw_wav(
        tmp_path / "wide.wav", channels=65535, sample_rate=44100, data=bytes(65535 * 2 * 4)
    )
    with pytest.raises(RejectedAudio) as caught:
        probe_audio(path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert caught.value.code == "too_many_channels"
    assert "65535" in caught.value.message


def test_the_channel_limit_is_a_parameter(tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.synthesise(tmp_path, "surround", "wav16", channels=6, seconds=0.5)
    probe = partial(probe_audio, path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert probe().channels == 6  # within the default of 16
    assert probe(max_channels=6).channels == 6
    with pytest.raises(RejectedAudio) as caught:
        probe(max_channels=5)
    assert caught.value.code == "too_many_channels"


def test_more_channels_than_the_default_limit_are_rejected(tmp_path: Path, ffmpeg: str) -> None:
    channels = DEFAULT_MAX_CHANNELS + 1
    path = audio_fixtures.raw_wav(
        tmp_path / "17.wav", channels=channels, sample_rate=44100, data=bytes(channels * 2 * 4410)
    )
    with pytest.raises(RejectedAudio) as caught:
        probe_audio(path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert caught.value.code == "too_many_channels"


@pytest.mark.parametrize("rate", [1, 7999, 768_001, 4_000_000_000])
def test_sample_rates_outside_the_limits_are_rejected(
    rate: int, tmp_path: Path, ffmpeg: str
) -> None:
    path = audio_fixtures.raw_wav(
        tmp_path / "odd-rate.wav", channels=2, sample_rate=rate, data=bytes(2 * 2 * 8000)
    )
    with pytest.raises(RejectedAudio) as caught:
        probe_audio(path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert caught.value.code == "bad_sample_rate"
    assert caught.value.message


@pytest.mark.parametrize("rate", [8000, 768_000])
def test_sample_rates_at_the_limits_are_accepted(rate: int, tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.raw_wav(
        tmp_path / "edge.wav", channels=1, sample_rate=rate, data=bytes(2 * rate // 10)
    )
    assert probe_audio(path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS).sample_rate == rate


def test_the_sample_rate_limits_are_parameters(tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.raw_wav(
        tmp_path / "slow.wav", channels=1, sample_rate=4000, data=bytes(2 * 4000)
    )
    probe = partial(probe_audio, path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert probe(min_sample_rate=4000).sample_rate == 4000
    with pytest.raises(RejectedAudio) as caught:
        probe(max_sample_rate=2000, min_sample_rate=1000)
    assert caught.value.code == "bad_sample_rate"


def test_the_dsd_rate_limit_applies_to_the_decoded_rate(tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.dsd_tone(tmp_path, "dsf", seconds=0.2)
    probe = partial(probe_audio, path, ffmpeg=ffmpeg, max_seconds=LIMIT_SECONDS)
    assert probe(max_sample_rate=audio_fixtures.DSD_PCM_RATE).codec == "dsd_lsbf_planar"
    with pytest.raises(RejectedAudio) as caught:
        probe(max_sample_rate=audio_fixtures.DSD_PCM_RATE - 1)
    assert caught.value.code == "bad_sample_rate"
