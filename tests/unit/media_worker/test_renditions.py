from __future__ import annotations

import math
from pathlib import Path

import pytest
from mutagen.mp3 import MP3, BitrateMode
from mutagen.oggopus import OggOpus

from media_worker.analysis import MasterAnalysis, analyse_master
from media_worker.errors import FFmpegTimeout
from media_worker.renditions import (
    CODEC_HEADROOM_DB,
    MAX_GAIN_DB,
    Renditions,
    make_renditions,
    mp3_sample_rate,
    plan_gain,
)
from tests import audio_fixtures
from tests.audio_fixtures import Cover

TARGET_LUFS = -14.0
TRUE_PEAK_LIMIT = -1.0
LOUDNESS_TOLERANCE_LU = 1.0
DURATION_TOLERANCE_MS = 50
MP3_FRAME_HEADER_BYTES = 4


def analyse(path: Path, ffmpeg: str) -> MasterAnalysis:
    return analyse_master(path, ffmpeg=ffmpeg, max_seconds=600, waveform_buckets=100, timeout=60)


def render(path: Path, ffmpeg: str, out: Path, **options) -> Renditions:
    return make_renditions(
        path, analyse(path, ffmpeg), opus_path=out / "stream.opus", mp3_path=out / "stream.mp3",
        ffmpeg=ffmpeg, timeout=60, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def rendered(
    quiet_music: Path, loud_music: Path, ffmpeg: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, Renditions]]:
    """Renditions of a master at -24 LUFS and of one at -6 LUFS."""
    made = {}
    for name, master in (("quiet", quiet_music), ("loud", loud_music)):
        made[name] = (master, render(master, ffmpeg, tmp_path_factory.mktemp(name)))
    return made


@pytest.mark.parametrize("master", ["quiet", "loud"])
@pytest.mark.parametrize("kind", ["opus", "mp3"])
def test_renditions_are_at_the_target_loudness_under_the_peak_limit(
    rendered: dict[str, tuple[Path, Renditions]], master: str, kind: str
) -> None:
    source, renditions = rendered[master]
    output = renditions.opus_path if kind == "opus" else renditions.mp3_path
    loudness, true_peak = audio_fixtures.measure_loudness(output)
    assert loudness == pytest.approx(TARGET_LUFS, abs=LOUDNESS_TOLERANCE_LU)
    assert true_peak <= TRUE_PEAK_LIMIT
    assert audio_fixtures.decoded_duration_ms(output) == pytest.approx(
        audio_fixtures.decoded_duration_ms(source), abs=DURATION_TOLERANCE_MS
    )


def test_the_gain_is_reported(rendered: dict[str, tuple[Path, Renditions]]) -> None:
    quiet, loud = rendered["quiet"][1], rendered["loud"][1]
    assert quiet.gain_db == pytest.approx(10.0, abs=0.2)
    assert loud.gain_db == pytest.approx(-8.0, abs=0.2)
    assert quiet.loudness_lufs == pytest.approx(TARGET_LUFS, abs=0.01)
    assert quiet.true_peak_dbtp is not None
    assert quiet.true_peak_dbtp <= TRUE_PEAK_LIMIT - CODEC_HEADROOM_DB


def test_the_mp3_is_constant_bitrate_with_a_xing_lame_header(
    rendered: dict[str, tuple[Path, Renditions]],
) -> None:
    path = rendered["quiet"][1].mp3_path
    data = path.read_bytes()
    assert data[:2] == b"\xff\xfb"  # an MPEG-1 Layer III frame first: no ID3 tag before it
    first_frame = data[: data.index(b"\xff\xfb", MP3_FRAME_HEADER_BYTES)]
    assert b"Info" in first_frame or b"Xing" in first_frame
    assert b"LAME" in first_frame
    info = MP3(path).info
    assert info.bitrate == 192_000
    assert info.bitrate_mode == BitrateMode.CBR
    assert info.sample_rate == 48_000


def test_the_opus_stream_is_128k_stereo_ogg(rendered: dict[str, tuple[Path, Renditions]]) -> None:
    path = rendered["quiet"][1].opus_path
    assert path.read_bytes()[:4] == b"OggS"
    opus = OggOpus(path)
    assert opus.info.channels == 2
    bitrate = path.stat().st_size * 8 / opus.info.length
    assert bitrate == pytest.approx(128_000, rel=0.15)


def test_tags_and_cover_stay_out_of_renditions(tmp_path: Path, ffmpeg: str) -> None:
    master = audio_fixtures.synthesise(tmp_path, "tagged", "mp3")
    audio_fixtures.write_tags(
        master, "mp3", {"TITLE": "Secret title", "ARTIST": "Someone"},
        [Cover(audio_fixtures.cover_image(300, 300))],
    )  # fmt: skip
    renditions = render(master, ffmpeg, tmp_path)
    assert MP3(renditions.mp3_path).tags is None
    opus_tags = OggOpus(renditions.opus_path).tags
    assert "title" not in opus_tags and "metadata_block_picture" not in opus_tags
    for path in (renditions.mp3_path, renditions.opus_path):
        assert b"Secret title" not in path.read_bytes()


def test_a_hi_res_master_gets_a_48k_mp3(
    formats: dict[str, Path], ffmpeg: str, tmp_path: Path
) -> None:
    renditions = render(formats["flac24_96k"], ffmpeg, tmp_path)
    assert MP3(renditions.mp3_path).info.sample_rate == 48_000
    assert OggOpus(renditions.opus_path).info.length == pytest.approx(3.0, abs=0.05)


def test_a_cd_rate_master_keeps_44k_in_the_mp3(
    formats: dict[str, Path], ffmpeg: str, tmp_path: Path
) -> None:
    renditions = render(formats["flac"], ffmpeg, tmp_path)
    assert MP3(renditions.mp3_path).info.sample_rate == 44_100


def test_mono_stays_mono_and_surround_folds_to_stereo(tmp_path: Path, ffmpeg: str) -> None:
    mono = audio_fixtures.synthesise(tmp_path, "mono", "wav16", channels=1)
    surround = audio_fixtures.synthesise(tmp_path, "surround", "wav24", channels=6)
    mono_out, surround_out = tmp_path / "mono-out", tmp_path / "surround-out"
    mono_out.mkdir()
    surround_out.mkdir()
    assert MP3(render(mono, ffmpeg, mono_out).mp3_path).info.channels == 1
    folded = render(surround, ffmpeg, surround_out)
    assert OggOpus(folded.opus_path).info.channels == 2
    loudness, true_peak = audio_fixtures.measure_loudness(folded.mp3_path)
    assert loudness == pytest.approx(TARGET_LUFS, abs=LOUDNESS_TOLERANCE_LU)
    assert true_peak <= TRUE_PEAK_LIMIT


def test_intersample_peaks_cap_the_gain(tmp_path: Path, ffmpeg: str) -> None:
    # A quiet bed (about -33 LUFS) with a Hann-windowed 50 ms burst of a quarter-rate sine
    # whose samples all fall 3 dB under its crests: only the true peak shows the limit.
    bed = "0.03*sin(2*PI*220*t)"
    window = "pow(sin(PI*(t-1)/0.05)\\,2)"
    burst = f"if(between(t\\,1\\,1.05)\\,0.3*sin(2*PI*11025*t+PI/4)*{window}\\,0)"
    master = audio_fixtures.synthesise(
        tmp_path, "peaky", "wav24", expression=f"{bed}+{burst}", sample_rate=44100
    )
    renditions = render(master, ffmpeg, tmp_path)
    crests = 0.3 + 0.03  # the burst's and the bed's, at worst in phase
    assert renditions.source_true_peak_dbtp == pytest.approx(20 * math.log10(crests), abs=0.2)
    assert renditions.true_peak_dbtp == pytest.approx(TRUE_PEAK_LIMIT - CODEC_HEADROOM_DB, abs=0.01)
    assert renditions.loudness_lufs is not None and renditions.loudness_lufs < TARGET_LUFS - 1
    for output in (renditions.opus_path, renditions.mp3_path):
        loudness, true_peak = audio_fixtures.measure_loudness(output)
        assert true_peak <= TRUE_PEAK_LIMIT
        assert loudness == pytest.approx(renditions.loudness_lufs, abs=LOUDNESS_TOLERANCE_LU)


def test_a_timeout_leaves_no_files(quiet_music: Path, ffmpeg: str, tmp_path: Path) -> None:
    analysis = analyse(quiet_music, ffmpeg)
    with pytest.raises(FFmpegTimeout):
        make_renditions(
            quiet_music, analysis, opus_path=tmp_path / "a.opus", mp3_path=tmp_path / "a.mp3",
            ffmpeg=ffmpeg, timeout=0.01,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_progress_rises_to_one(quiet_music: Path, ffmpeg: str, tmp_path: Path) -> None:
    fractions: list[float] = []
    render(quiet_music, ffmpeg, tmp_path, progress=fractions.append)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0


@pytest.mark.parametrize(
    ("integrated", "peak", "gain"),
    [
        (-24.0, -15.0, 10.0),  # quiet and dense: the full gain fits under the peak ceiling
        (-6.0, -0.1, -8.0),  # loud: turned down
        (-30.0, -6.0, 4.0),  # quiet but peaky: the peak caps the gain at -2 - (-6)
        (-60.0, -50.0, MAX_GAIN_DB),  # near silence is not blown up by 46 dB
        (None, None, 0.0),  # silence
    ],
)
def test_plan_gain(integrated: float | None, peak: float | None, gain: float) -> None:
    assert plan_gain(integrated, peak) == pytest.approx(gain)


def test_plan_gain_takes_other_targets() -> None:
    assert plan_gain(-20.0, -10.0, target_lufs=-16.0, true_peak_limit_dbtp=-2.0) == 4.0


@pytest.mark.parametrize(
    ("source", "mp3"),
    [(44_100, 44_100), (48_000, 48_000), (32_000, 32_000), (96_000, 48_000), (88_200, 44_100),
     (22_050, 44_100), (8_000, 48_000)],
)  # fmt: skip
def test_mp3_sample_rate(source: int, mp3: int) -> None:
    assert mp3_sample_rate(source) == mp3


@pytest.mark.parametrize("fmt", ["dsf", "dff"])
def test_dsd_masters_are_rendered_from_their_pcm(fmt: str, tmp_path: Path, ffmpeg: str) -> None:
    master = audio_fixtures.dsd_tone(tmp_path, fmt, seconds=1.0)
    renditions = render(master, ffmpeg, tmp_path)
    # DSD64 decodes at 352.8 kHz, of the 44.1 kHz family.
    assert MP3(renditions.mp3_path).info.sample_rate == 44_100
    for output in (renditions.opus_path, renditions.mp3_path):
        loudness, true_peak = audio_fixtures.measure_loudness(output)
        assert loudness == pytest.approx(TARGET_LUFS, abs=LOUDNESS_TOLERANCE_LU)
        assert true_peak <= TRUE_PEAK_LIMIT
        assert audio_fixtures.decoded_duration_ms(output) == pytest.approx(
            1000, abs=DURATION_TOLERANCE_MS
        )
