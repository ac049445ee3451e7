from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from media_worker.analysis import analyse_master
from media_worker.errors import RejectedAudio
from tests import audio_fixtures
from tests.audio_fixtures import FORMATS

LIMIT_SECONDS = 600
BUCKETS = 1500
DURATION_TOLERANCE_MS = 50
# ebur128 prints one decimal; both sides round.
LOUDNESS_TOLERANCE_LU = 0.15
# Our meter and ebur128's use different interpolators and both print one decimal.
TRUE_PEAK_TOLERANCE_DB = 0.15
SILENCE_CEILING = 0.01
TONE_FLOOR = 0.3


def analyse(path: Path, ffmpeg: str, **overrides):
    options = {"max_seconds": LIMIT_SECONDS, "waveform_buckets": BUCKETS, "timeout": 60}
    options.update(overrides)
    return analyse_master(path, ffmpeg=ffmpeg, **options)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_decodes_to_its_length_and_loudness(
    fmt: str, formats: dict[str, Path], ffmpeg: str
) -> None:
    analysis = analyse(formats[fmt], ffmpeg)
    loudness, true_peak = audio_fixtures.measure_loudness(formats[fmt])
    expected_ms = audio_fixtures.DEFAULT_SECONDS * 1000
    assert analysis.duration_ms == pytest.approx(expected_ms, abs=DURATION_TOLERANCE_MS)
    assert analysis.loudness.integrated_lufs == pytest.approx(loudness, abs=LOUDNESS_TOLERANCE_LU)
    assert analysis.loudness.true_peak_dbtp == pytest.approx(true_peak, abs=TRUE_PEAK_TOLERANCE_DB)


def test_the_true_peak_is_found_between_samples(tmp_path: Path, ffmpeg: str) -> None:
    # A quarter-rate sine at 45°: every sample sits 3 dB under the waveform's crests. A Hann
    # window over the 3 s keeps the spectrum narrow, so nothing rings past the crest.
    crest = 0.5
    expression = f"{crest}*sin(2*PI*11025*t+PI/4)*pow(sin(PI*t/3)\\,2)"
    path = audio_fixtures.synthesise(
        tmp_path, "quarter-rate", "wav24", expression=expression, sample_rate=44100
    )
    true_peak = analyse(path, ffmpeg).loudness.true_peak_dbtp
    assert true_peak == pytest.approx(20 * math.log10(crest), abs=TRUE_PEAK_TOLERANCE_DB)
    assert true_peak == pytest.approx(audio_fixtures.measure_loudness(path)[1], abs=0.2)


@pytest.mark.parametrize("make", [audio_fixtures.truncated_flac, audio_fixtures.truncated_wav])
def test_truncated_masters_are_corrupt(make, tmp_path: Path, ffmpeg: str) -> None:
    with pytest.raises(RejectedAudio) as caught:
        analyse(make(tmp_path), ffmpeg)
    assert caught.value.code == "corrupt_audio"


def test_a_flac_with_headers_and_no_frames_is_corrupt(
    tmp_path: Path, formats: dict[str, Path], ffmpeg: str
) -> None:
    whole = formats["flac"].read_bytes()
    headers_only = tmp_path / "headers-only.flac"
    headers_only.write_bytes(whole[: whole.index(b"\xff\xf8")])  # the first frame's sync code
    with pytest.raises(RejectedAudio) as caught:
        analyse(headers_only, ffmpeg)
    assert caught.value.code == "corrupt_audio"


def test_probe_rejections_come_through(tmp_path: Path, ffmpeg: str) -> None:
    with pytest.raises(RejectedAudio) as caught:
        analyse(audio_fixtures.zip_named_wav(tmp_path), ffmpeg)
    assert caught.value.code == "not_audio"


def test_the_waveform_follows_the_signal(tmp_path: Path, ffmpeg: str) -> None:
    waveform = analyse(audio_fixtures.silence_then_tone(tmp_path, seconds=4.0), ffmpeg).waveform
    first_half = waveform.peaks[: int(BUCKETS * 0.48)]
    second_half = waveform.peaks[int(BUCKETS * 0.52) :]
    assert waveform.buckets == BUCKETS
    assert max(first_half) <= SILENCE_CEILING
    assert min(second_half) >= TONE_FLOOR
    assert max(second_half) <= 0.5  # the tone's amplitude


def test_the_waveform_document_has_the_players_shape(tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.silence_then_tone(tmp_path, seconds=2.0)
    waveform = analyse(path, ffmpeg, waveform_buckets=200).waveform
    document = json.loads(json.dumps(waveform.as_json()))
    assert set(document) == {"version", "buckets", "duration_ms", "peaks"}
    assert document["version"] == 1
    assert document["buckets"] == len(document["peaks"]) == 200
    assert document["duration_ms"] == pytest.approx(2000, abs=DURATION_TOLERANCE_MS)
    assert all(0 <= peak <= 1 and round(peak, 3) == peak for peak in document["peaks"])


def test_a_clip_shorter_than_its_buckets_still_fills_them(tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.synthesise(tmp_path, "blip", "wav16", seconds=0.2)
    waveform = analyse(path, ffmpeg).waveform
    assert waveform.buckets == BUCKETS
    assert min(waveform.peaks[10:-10]) >= TONE_FLOOR


def test_silence_has_no_loudness_and_no_peak(tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.synthesise(tmp_path, "silence", "flac", expression="0")
    analysis = analyse(path, ffmpeg)
    assert analysis.loudness.integrated_lufs is None
    assert analysis.loudness.true_peak_dbtp is None
    assert max(analysis.waveform.peaks) == 0


def test_progress_rises_to_one(quiet_music: Path, ffmpeg: str) -> None:
    fractions: list[float] = []
    analyse(quiet_music, ffmpeg, progress=fractions.append)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


# DSD: a 1-bit stream with its noise pushed above the audio band. The noise is real content
# of the decoded PCM, and our meter and ebur128's see its peaks through different
# interpolators, so the true peak is compared more loosely.
DSD_TRUE_PEAK_TOLERANCE_DB = 0.5


@pytest.mark.parametrize("fmt", ["dsf", "dff"])
def test_dsd_decodes_to_its_length_loudness_and_waveform(
    fmt: str, tmp_path: Path, ffmpeg: str
) -> None:
    path = audio_fixtures.dsd_tone(tmp_path, fmt, seconds=1.0)
    analysis = analyse(path, ffmpeg, waveform_buckets=100)
    loudness, true_peak = audio_fixtures.measure_loudness(path)
    assert analysis.info.pcm_sample_rate == audio_fixtures.DSD_PCM_RATE
    assert analysis.duration_ms == pytest.approx(1000, abs=DURATION_TOLERANCE_MS)
    assert analysis.loudness.integrated_lufs == pytest.approx(loudness, abs=LOUDNESS_TOLERANCE_LU)
    assert analysis.loudness.true_peak_dbtp == pytest.approx(
        true_peak, abs=DSD_TRUE_PEAK_TOLERANCE_DB
    )
    # The tone's amplitude, with no trace of the ultrasonic noise in the picture.
    peaks = analysis.waveform.peaks[5:-5]
    assert min(peaks) >= TONE_FLOOR
    assert max(peaks) <= audio_fixtures.DSD_TONE_AMPLITUDE + 0.05


# Hostile samples: NaN and infinities in float PCM are the file's fault.

SAMPLE_SECONDS = 0.5


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", [0.0, 0.5, 1.0])  # the first, a middle, the last sample
def test_nan_or_infinite_float_samples_are_invalid(
    bad: float, where: float, tmp_path: Path, ffmpeg: str
) -> None:
    frames = audio_fixtures.sine_frames(SAMPLE_SECONDS)
    index = min(len(frames) - 1, int(where * len(frames)))
    frames[index][1] = bad  # one sample of one channel
    path = audio_fixtures.float_wav(tmp_path / "hostile.wav", frames)
    with pytest.raises(RejectedAudio) as caught:
        analyse(path, ffmpeg)
    assert caught.value.code == "invalid_samples"
    assert caught.value.message


def test_nan_in_double_precision_samples_is_invalid(tmp_path: Path, ffmpeg: str) -> None:
    frames = audio_fixtures.sine_frames(SAMPLE_SECONDS, channels=1)
    frames[len(frames) // 3][0] = math.nan
    path = audio_fixtures.float_wav(tmp_path / "hostile64.wav", frames, bits=64)
    with pytest.raises(RejectedAudio) as caught:
        analyse(path, ffmpeg)
    assert caught.value.code == "invalid_samples"


def test_finite_float_samples_are_accepted(tmp_path: Path, ffmpeg: str) -> None:
    frames = audio_fixtures.sine_frames(SAMPLE_SECONDS)
    frames[len(frames) // 2][1] = 1.0  # full scale, the largest ordinary value
    path = audio_fixtures.float_wav(tmp_path / "clean.wav", frames)
    analysis = analyse(path, ffmpeg)
    assert analysis.info.codec == "pcm_f32le"
    assert analysis.duration_ms == pytest.approx(SAMPLE_SECONDS * 1000, abs=DURATION_TOLERANCE_MS)


def test_hostile_headers_are_rejected_before_any_decoding(tmp_path: Path, ffmpeg: str) -> None:
    wide = audio_fixtures.raw_wav(
        tmp_path / "wide.wav", channels=65535, sample_rate=44100, data=bytes(65535 * 2 * 4)
    )
    slow = audio_fixtures.raw_wav(tmp_path / "slow.wav", channels=2, sample_rate=1, data=bytes(40))
    codes = {}
    for path in (wide, slow):
        with pytest.raises(RejectedAudio) as caught:
            analyse(path, ffmpeg)
        codes[path.name] = caught.value.code
    assert codes == {"wide.wav": "too_many_channels", "slow.wav": "bad_sample_rate"}


def test_the_limits_are_passed_to_the_probe(tmp_path: Path, ffmpeg: str) -> None:
    path = audio_fixtures.synthesise(tmp_path, "quad", "wav16", channels=4, seconds=0.5)
    assert analyse(path, ffmpeg, max_channels=4).info.channels == 4
    with pytest.raises(RejectedAudio) as caught:
        analyse(path, ffmpeg, max_channels=2)
    assert caught.value.code == "too_many_channels"
    with pytest.raises(RejectedAudio) as caught:
        analyse(path, ffmpeg, min_sample_rate=48000)
    assert caught.value.code == "bad_sample_rate"


def test_float_samples_too_large_to_be_sound_are_invalid(tmp_path: Path, ffmpeg: str) -> None:
    frames = audio_fixtures.sine_frames(SAMPLE_SECONDS)
    frames[100][0] = 1e30  # finite, but its power overflows
    path = audio_fixtures.float_wav(tmp_path / "huge.wav", frames)
    with pytest.raises(RejectedAudio) as caught:
        analyse(path, ffmpeg)
    assert caught.value.code == "invalid_samples"
