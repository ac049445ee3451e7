from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import pytest
from mutagen.mp3 import MP3, BitrateMode

from media_worker.downloads import (
    AAC_256,
    AIFF,
    ALAC,
    DOWNLOAD_FORMATS,
    FLAC,
    FORMAT_UNAVAILABLE,
    LOSSY_MASTER,
    MP3_320,
    MP3_V0,
    OPUS,
    ORIGINAL,
    VORBIS,
    WAV,
    DownloadFormat,
    FormatUnavailable,
    available_formats,
    lossy_sample_rate,
    make_download,
    plan_download,
)
from media_worker.errors import FFmpegFailed, FFmpegTimeout
from media_worker.probe import AudioInfo, probe_audio
from media_worker.tags import Tags, read_tags
from tests import audio_fixtures

SECONDS = 1.5
# Different in each channel (a swap would show), with noise so every bit of a 24-bit sample
# is in use and the lossless encoders have real work to do.
STEREO_SIGNAL = "0.5*sin(2*PI*440*t)+0.02*random(0)|0.3*sin(2*PI*660*t)-0.02*random(1)"
LOSSLESS = (FLAC, ALAC, WAV, AIFF)
LOSSY = (MP3_320, MP3_V0, AAC_256, VORBIS, OPUS)
LOSSY_CODECS = {
    MP3_320.name: ("mp3", "mp3"),
    MP3_V0.name: ("mp3", "mp3"),
    AAC_256.name: ("mp4", "aac"),
    VORBIS.name: ("ogg", "vorbis"),
    OPUS.name: ("ogg", "opus"),
}
LOSSLESS_CONTAINERS = {FLAC.name: "flac", ALAC.name: "mp4", WAV.name: "wav", AIFF.name: "aiff"}
# name -> (suffix, ffmpeg encoding options, sample rate, bit depth)
MASTERS = {
    "wav24_96k": (".wav", ("-c:a", "pcm_s24le"), 96_000, 24),
    "flac24_96k": (".flac", ("-c:a", "flac", "-sample_fmt", "s32"), 96_000, 24),
    "wav16_44k": (".wav", ("-c:a", "pcm_s16le"), 44_100, 16),
    "flac16_44k": (".flac", ("-c:a", "flac", "-sample_fmt", "s16"), 44_100, 16),
    "float32_48k": (".wav", ("-c:a", "pcm_f32le"), 48_000, 32),
    # ffmpeg writes the moov atom at the end, so this one cannot be read from a pipe.
    "alac16_44k": (".m4a", ("-c:a", "alac", "-sample_fmt", "s16p"), 44_100, 16),
}


def generate_master(directory: Path, name: str) -> Path:
    suffix, encode, rate, _ = MASTERS[name]
    path = directory / f"{name}{suffix}"
    source = f"aevalsrc={STEREO_SIGNAL}:s={rate}:d={SECONDS}"
    audio_fixtures.ffmpeg("-f", "lavfi", "-i", source, *encode, str(path))
    return path


def probe(path: Path, ffmpeg: str) -> AudioInfo:
    return probe_audio(path, ffmpeg=ffmpeg, max_seconds=600)


def pcm_md5(path: Path, codec: str = "pcm_s32le") -> str:
    """The MD5 of the decoded audio as ``codec`` samples; 32-bit holds 16 and 24 exactly."""
    result = audio_fixtures.ffmpeg("-i", str(path), "-map", "0:a", "-c:a", codec, "-f", "md5", "-")
    return result.stdout.decode().strip()


@pytest.fixture(scope="module")
def masters(
    tmp_path_factory: pytest.TempPathFactory, ffmpeg: str
) -> dict[str, tuple[Path, AudioInfo]]:
    directory = tmp_path_factory.mktemp("masters")
    made = {}
    for name in MASTERS:
        path = generate_master(directory, name)
        made[name] = (path, probe(path, ffmpeg))
    mp3 = audio_fixtures.synthesise(directory, "lossy", "mp3", seconds=SECONDS)
    made["mp3"] = (mp3, probe(mp3, ffmpeg))
    return made


def download(
    master: tuple[Path, AudioInfo], fmt: DownloadFormat, directory: Path, ffmpeg: str, **options
) -> Path:
    path, info = master
    destination = directory / f"download{plan_download(fmt, info).extension}"
    return make_download(path, destination, fmt, info, ffmpeg=ffmpeg, timeout=60, **options)


def only_file_in(directory: Path) -> list[str]:
    return sorted(entry.name for entry in directory.iterdir())


def audio_info(**fields) -> AudioInfo:
    """A master's description as ``probe_audio`` gives it: a 24-bit 48 kHz stereo WAV unless
    ``fields`` say otherwise."""
    defaults = dict(
        container="wav", codec="pcm_s24le", duration_ms=1000, sample_rate=48_000,
        bit_depth=24, channels=2, pcm_sample_rate=48_000,
    )  # fmt: skip
    return AudioInfo(**{**defaults, **fields})


# Lossless: the master's PCM, rate and depth.


@pytest.mark.parametrize("master", ["wav24_96k", "flac24_96k", "wav16_44k", "flac16_44k"])
@pytest.mark.parametrize("fmt", LOSSLESS, ids=lambda fmt: fmt.name)
def test_lossless_downloads_decode_to_the_masters_pcm_at_its_rate_and_depth(
    masters: dict[str, tuple[Path, AudioInfo]],
    master: str,
    fmt: DownloadFormat,
    tmp_path: Path,
    ffmpeg: str,
) -> None:
    source, info = masters[master]
    _, _, rate, depth = MASTERS[master]
    output = download(masters[master], fmt, tmp_path, ffmpeg)
    assert pcm_md5(output) == pcm_md5(source)
    made = probe(output, ffmpeg)
    assert (made.container, made.sample_rate, made.bit_depth) == (
        LOSSLESS_CONTAINERS[fmt.name], rate, depth,
    )  # fmt: skip
    assert made.channels == info.channels == 2
    assert only_file_in(tmp_path) == [output.name]


@pytest.mark.parametrize("fmt", [WAV, AIFF], ids=lambda fmt: fmt.name)
def test_wav_and_aiff_keep_a_float_master_exactly(
    masters: dict[str, tuple[Path, AudioInfo]], fmt: DownloadFormat, tmp_path: Path, ffmpeg: str
) -> None:
    source, _ = masters["float32_48k"]
    output = download(masters["float32_48k"], fmt, tmp_path, ffmpeg)
    assert pcm_md5(output, "pcm_f32le") == pcm_md5(source, "pcm_f32le")
    assert probe(output, ffmpeg).codec in ("pcm_f32le", "pcm_f32be")


@pytest.mark.parametrize("fmt", [FLAC, ALAC], ids=lambda fmt: fmt.name)
def test_flac_and_alac_hold_a_float_master_at_24_bits(
    masters: dict[str, tuple[Path, AudioInfo]], fmt: DownloadFormat, tmp_path: Path, ffmpeg: str
) -> None:
    source, _ = masters["float32_48k"]
    output = download(masters["float32_48k"], fmt, tmp_path, ffmpeg)
    assert pcm_md5(output, "pcm_s24le") == pcm_md5(source, "pcm_s24le")
    assert probe(output, ffmpeg).bit_depth == 24


# Lossy: codec, rate, channels.


@pytest.mark.parametrize(
    ("master", "rate"), [("wav24_96k", 48_000), ("wav16_44k", 44_100)], ids=["96k", "44k"]
)
@pytest.mark.parametrize("fmt", LOSSY, ids=lambda fmt: fmt.name)
def test_lossy_downloads_have_their_codec_at_44_1_or_48_khz(
    masters: dict[str, tuple[Path, AudioInfo]],
    master: str,
    rate: int,
    fmt: DownloadFormat,
    tmp_path: Path,
    ffmpeg: str,
) -> None:
    output = download(masters[master], fmt, tmp_path, ffmpeg)
    made = probe(output, ffmpeg)
    assert (made.container, made.codec) == LOSSY_CODECS[fmt.name]
    assert made.sample_rate == (48_000 if fmt is OPUS else rate)
    assert made.channels == 2
    assert made.duration_ms == pytest.approx(SECONDS * 1000, abs=30)
    if fmt is MP3_320:
        assert MP3(output).info.bitrate == 320_000
        assert MP3(output).info.bitrate_mode == BitrateMode.CBR
    if fmt is MP3_V0:
        assert MP3(output).info.bitrate_mode == BitrateMode.VBR


def test_downloads_carry_none_of_the_masters_tags(
    masters: dict[str, tuple[Path, AudioInfo]], tmp_path: Path, ffmpeg: str
) -> None:
    path, info = masters["flac16_44k"]
    tagged = tmp_path / "tagged.flac"
    tagged.write_bytes(path.read_bytes())
    cover = audio_fixtures.Cover(audio_fixtures.cover_image(64, 64))
    audio_fixtures.write_tags(tagged, "flac", {"TITLE": "From the master"}, [cover])
    for fmt in (FLAC, MP3_320, AAC_256, OPUS):
        output = make_download(
            tagged, tmp_path / f"out{fmt.extension}", fmt, info, ffmpeg=ffmpeg, timeout=60
        )
        assert read_tags(output) == Tags()
        assert b"From the master" not in output.read_bytes()


# The original.


@pytest.mark.parametrize("master", ["wav24_96k", "mp3"])
@pytest.mark.parametrize("as_stream", [False, True], ids=["path", "stream"])
def test_the_original_is_the_masters_bytes(
    masters: dict[str, tuple[Path, AudioInfo]],
    master: str,
    as_stream: bool,
    tmp_path: Path,
    ffmpeg: str,
) -> None:
    path, info = masters[master]
    reports: list[float] = []
    destination = tmp_path / "original"
    with open(path, "rb") as stream:
        source = stream if as_stream else path
        make_download(source, destination, ORIGINAL, info, ffmpeg=ffmpeg, timeout=60,
                      progress=reports.append)  # fmt: skip
    digest = hashlib.sha256(destination.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert reports[-1] == 1.0
    assert only_file_in(tmp_path) == ["original"]


@pytest.mark.parametrize(
    ("master", "extension", "mime_type", "lossless"),
    [("wav24_96k", ".wav", "audio/wav", True), ("mp3", ".mp3", "audio/mpeg", False),
     ("alac16_44k", ".m4a", "audio/mp4", True)],
)  # fmt: skip
def test_the_originals_type_is_the_masters(
    masters: dict[str, tuple[Path, AudioInfo]],
    master: str,
    extension: str,
    mime_type: str,
    lossless: bool,
) -> None:
    plan = plan_download(ORIGINAL, masters[master][1])
    assert (plan.extension, plan.mime_type, plan.lossless) == (extension, mime_type, lossless)
    assert plan.output_args == ()


# Which formats a master offers.


def test_a_lossless_master_offers_every_format(
    masters: dict[str, tuple[Path, AudioInfo]],
) -> None:
    assert available_formats(masters["flac24_96k"][1]) == list(DOWNLOAD_FORMATS.values())


def test_a_lossy_master_offers_only_the_original_and_lossy_formats(
    masters: dict[str, tuple[Path, AudioInfo]], tmp_path: Path, ffmpeg: str
) -> None:
    path, info = masters["mp3"]
    assert available_formats(info) == [ORIGINAL, *LOSSY]
    for fmt in LOSSLESS:
        with pytest.raises(FormatUnavailable) as refused:
            make_download(path, tmp_path / "x", fmt, info, ffmpeg=ffmpeg, timeout=60)
        assert refused.value.code == LOSSY_MASTER
        assert refused.value.message.startswith(
            "This master is lossy (MP3), so lossless formats are not offered"
        )
    assert only_file_in(tmp_path) == []


def test_a_lossy_master_still_makes_lossy_formats(
    masters: dict[str, tuple[Path, AudioInfo]], tmp_path: Path, ffmpeg: str
) -> None:
    output = download(masters["mp3"], OPUS, tmp_path, ffmpeg)
    assert probe(output, ffmpeg).codec == "opus"


@pytest.mark.parametrize(
    ("master_rate", "expected"),
    [(44_100, 44_100), (88_200, 44_100), (176_400, 44_100), (22_050, 44_100),
     (48_000, 48_000), (96_000, 48_000), (192_000, 48_000), (32_000, 48_000), (8_000, 48_000)],
)  # fmt: skip
def test_lossy_rates_follow_the_masters_rate_family(master_rate: int, expected: int) -> None:
    assert lossy_sample_rate(master_rate) == expected
    info = audio_info(sample_rate=master_rate, pcm_sample_rate=master_rate)
    assert plan_download(VORBIS, info).sample_rate == expected
    assert plan_download(OPUS, info).sample_rate == 48_000


@pytest.mark.parametrize(
    ("codec", "bit_depth", "wav", "flac"),
    [
        ("pcm_u8", 8, (16, False), (16, False)),
        ("pcm_s16le", 16, (16, False), (16, False)),
        ("pcm_s24le", 24, (24, False), (24, False)),
        ("pcm_s32le", 32, (32, False), (24, False)),
        ("pcm_f32le", 32, (32, True), (24, False)),
        ("pcm_f64le", 64, (64, True), (24, False)),
    ],
)
def test_lossless_depth_keeps_the_master_where_the_format_can(
    codec: str, bit_depth: int, wav: tuple[int, bool], flac: tuple[int, bool]
) -> None:
    info = audio_info(codec=codec, bit_depth=bit_depth)
    for fmt, expected in ((WAV, wav), (AIFF, wav), (FLAC, flac), (ALAC, flac)):
        plan = plan_download(fmt, info)
        assert (plan.bit_depth, plan.float_samples) == expected, fmt.name
        assert plan.sample_rate == 48_000


def test_a_dsd_master_is_delivered_as_24_bit_pcm_at_the_decoded_rate() -> None:
    info = audio_info(container="dsf", codec="dsd_lsbf_planar", sample_rate=2_822_400,
                      bit_depth=1, pcm_sample_rate=352_800)  # fmt: skip
    for fmt in LOSSLESS:
        plan = plan_download(fmt, info)
        assert (plan.sample_rate, plan.bit_depth) == (352_800, 24)
    assert plan_download(MP3_320, info).sample_rate == 44_100


def test_a_master_with_more_than_eight_channels_offers_no_flac_or_alac() -> None:
    info = audio_info(channels=10)
    with pytest.raises(FormatUnavailable) as refused:
        plan_download(FLAC, info)
    assert refused.value.code == FORMAT_UNAVAILABLE
    assert "at most 8 channels" in refused.value.message
    assert FLAC not in available_formats(info)
    assert ALAC not in available_formats(info)
    assert plan_download(WAV, info).channels == 10
    assert all(plan_download(fmt, info).channels == 2 for fmt in LOSSY)


def test_lossy_formats_downmix_surround_to_stereo(tmp_path: Path, ffmpeg: str) -> None:
    master = tmp_path / "surround.wav"
    audio_fixtures.ffmpeg("-f", "lavfi", "-i", f"aevalsrc={'|'.join(['0.2*sin(2*PI*440*t)'] * 6)}"
                          ":s=48000:d=0.5:c=5.1", "-c:a", "pcm_s16le", str(master))  # fmt: skip
    info = probe(master, ffmpeg)
    assert info.channels == 6
    output = tmp_path / "surround.opus"
    make_download(master, output, OPUS, info, ffmpeg=ffmpeg, timeout=60)
    assert probe(output, ffmpeg).channels == 2
    wav = tmp_path / "surround-out.wav"
    make_download(master, wav, WAV, info, ffmpeg=ffmpeg, timeout=60)
    assert pcm_md5(wav) == pcm_md5(master)


# Streams.


@pytest.mark.parametrize(
    ("master", "fmt"),
    [("wav24_96k", FLAC), ("wav24_96k", MP3_320), ("wav24_96k", OPUS), ("wav24_96k", AAC_256),
     ("flac16_44k", ALAC), ("mp3", VORBIS),
     # ffmpeg cannot read this MP4 from a pipe (its moov atom is at the end): spooled first.
     ("alac16_44k", FLAC), ("alac16_44k", WAV)],
    ids=lambda value: value if isinstance(value, str) else value.name,
)  # fmt: skip
def test_a_stream_source_gives_the_same_bytes_as_a_path(
    masters: dict[str, tuple[Path, AudioInfo]],
    master: str,
    fmt: DownloadFormat,
    tmp_path: Path,
    ffmpeg: str,
) -> None:
    path, info = masters[master]
    from_path = make_download(path, tmp_path / "from-path", fmt, info, ffmpeg=ffmpeg, timeout=60)
    with open(path, "rb") as stream:
        from_stream = make_download(
            stream, tmp_path / "from-stream", fmt, info, ffmpeg=ffmpeg, timeout=60
        )
    assert from_stream.read_bytes() == from_path.read_bytes()
    if fmt.lossless:
        assert pcm_md5(from_stream) == pcm_md5(path)
    assert only_file_in(tmp_path) == ["from-path", "from-stream"]


class FailingStream(io.RawIOBase):
    """A master that stops with an error part-way, as a vault reader does on a damaged
    segment."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        self._data = data
        self._position = 0
        self._fail_at = fail_at

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._position >= self._fail_at:
            raise OSError("segment 3 failed authentication")
        count = min(len(buffer), self._fail_at - self._position)
        buffer[:count] = self._data[self._position : self._position + count]
        self._position += count
        return count


def leftover_pipes() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if "megabox-download-" in name}


@pytest.mark.parametrize(
    "cut",
    # On a sample boundary ffmpeg takes the early end for the end of the audio and succeeds;
    # inside a sample it also logs an error.
    ["between_samples", "inside_a_sample"],
)
@pytest.mark.parametrize("fmt", [WAV, FLAC, OPUS], ids=lambda fmt: fmt.name)
def test_a_stream_that_fails_part_way_raises_its_error_and_leaves_nothing(
    masters: dict[str, tuple[Path, AudioInfo]],
    cut: str,
    fmt: DownloadFormat,
    tmp_path: Path,
    ffmpeg: str,
) -> None:
    path, info = masters["wav24_96k"]
    data = path.read_bytes()
    # The audio data runs to the end of the file, in frames of 2 channels × 3 bytes.
    frames_kept_off = info.pcm_sample_rate // 2
    fail_at = len(data) - frames_kept_off * 6 + (0 if cut == "between_samples" else 1)
    pipes_before = leftover_pipes()
    with pytest.raises(OSError, match="failed authentication"):
        make_download(FailingStream(data, fail_at), tmp_path / f"out{fmt.extension}",
                      fmt, info, ffmpeg=ffmpeg, timeout=60)  # fmt: skip
    assert only_file_in(tmp_path) == []
    assert leftover_pipes() == pipes_before


# Failures.


def garbage(directory: Path) -> Path:
    path = directory / "garbage.wav"
    path.write_bytes(os.urandom(audio_fixtures.GARBAGE_BYTES))
    return path


def truncated_flac(directory: Path, masters: dict[str, tuple[Path, AudioInfo]]) -> Path:
    data = masters["flac24_96k"][0].read_bytes()
    path = directory / "truncated.flac"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("broken", ["garbage", "truncated"])
@pytest.mark.parametrize("as_stream", [False, True], ids=["path", "stream"])
def test_a_broken_master_raises_and_leaves_no_file(
    masters: dict[str, tuple[Path, AudioInfo]],
    broken: str,
    as_stream: bool,
    tmp_path: Path,
    ffmpeg: str,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    path = garbage(tmp_path) if broken == "garbage" else truncated_flac(tmp_path, masters)
    info = masters["flac24_96k"][1]
    with open(path, "rb") as stream:
        with pytest.raises(FFmpegFailed):
            make_download(stream if as_stream else path, work / "out.flac", FLAC, info,
                          ffmpeg=ffmpeg, timeout=60)  # fmt: skip
    assert only_file_in(work) == []


def test_a_failed_download_leaves_an_earlier_file_in_place(
    masters: dict[str, tuple[Path, AudioInfo]], tmp_path: Path, ffmpeg: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    earlier = download(masters["wav16_44k"], FLAC, work, ffmpeg)
    before = earlier.read_bytes()
    with pytest.raises(FFmpegFailed):
        make_download(garbage(tmp_path), earlier, FLAC, masters["wav16_44k"][1],
                      ffmpeg=ffmpeg, timeout=60)  # fmt: skip
    assert earlier.read_bytes() == before
    assert only_file_in(work) == [earlier.name]


@pytest.mark.parametrize("as_stream", [False, True], ids=["path", "stream"])
def test_a_timeout_kills_ffmpeg_and_leaves_no_file(
    masters: dict[str, tuple[Path, AudioInfo]], as_stream: bool, tmp_path: Path, ffmpeg: str
) -> None:
    path, info = masters["wav24_96k"]
    with open(path, "rb") as stream:
        with pytest.raises(FFmpegTimeout):
            make_download(stream if as_stream else path, tmp_path / "out.flac", FLAC, info,
                          ffmpeg=ffmpeg, timeout=0.001)  # fmt: skip
    assert only_file_in(tmp_path) == []


# Progress.


@pytest.mark.parametrize("as_stream", [False, True], ids=["path", "stream"])
@pytest.mark.parametrize("fmt", [FLAC, MP3_V0], ids=lambda fmt: fmt.name)
def test_progress_ends_at_one(
    masters: dict[str, tuple[Path, AudioInfo]],
    as_stream: bool,
    fmt: DownloadFormat,
    tmp_path: Path,
    ffmpeg: str,
) -> None:
    path, info = masters["wav24_96k"]
    reports: list[float] = []
    with open(path, "rb") as stream:
        make_download(stream if as_stream else path, tmp_path / "out", fmt, info,
                      ffmpeg=ffmpeg, timeout=60, progress=reports.append)  # fmt: skip
    assert reports == sorted(reports)
    assert all(0.0 <= fraction <= 1.0 for fraction in reports)
    assert reports[-1] == 1.0


def test_every_format_has_a_name_label_and_type() -> None:
    for name, fmt in DOWNLOAD_FORMATS.items():
        assert fmt.name == name and fmt.label
        if fmt is not ORIGINAL:
            assert fmt.extension.startswith(".") and fmt.mime_type.startswith("audio/")
            assert fmt.lossless is not None
    assert [fmt.name for fmt in DOWNLOAD_FORMATS.values()] == [
        "original", "flac", "alac", "wav", "aiff",
        "mp3_320", "mp3_v0", "aac_256", "vorbis", "opus",
    ]  # fmt: skip


def test_a_plan_says_what_the_download_will_be(
    masters: dict[str, tuple[Path, AudioInfo]],
) -> None:
    info = masters["wav24_96k"][1]
    plan = plan_download(ALAC, info)
    assert (plan.extension, plan.mime_type, plan.lossless) == (".m4a", "audio/mp4", True)
    assert (plan.sample_rate, plan.bit_depth, plan.channels) == (96_000, 24, 2)
