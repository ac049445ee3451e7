"""Synthesised test audio: every accepted format, tagged files, broken files, and measurements.

Everything is made on the spot with the ffmpeg shipped by imageio-ffmpeg, mutagen and Pillow,
so no binary test data lives in the repository. Files are a few seconds long. Functions take
the directory to write into and return the path they wrote.

Signals:
- ``TONE``: a 440 Hz sine at half scale;
- ``music_like``: pink noise plus a chord, softly clipped like a mastered record, then set to
  an exact integrated loudness (e.g. -24 or -6 LUFS, far from the -14 LUFS target);
- ``silence_then_tone``: digital silence for the first half, the tone for the second.
"""

from __future__ import annotations

import base64
import random
import re
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import imageio_ffmpeg
from mutagen.aiff import AIFF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import (
    APIC,
    ID3,
    TALB,
    TBPM,
    TCOM,
    TCON,
    TCOP,
    TDRC,
    TIT2,
    TPE1,
    TPE2,
    TPOS,
    TPUB,
    TRCK,
    TSRC,
    TXXX,
    USLT,
)
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE
from PIL import Image, UnidentifiedImageError

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
DEFAULT_SECONDS = 3.0
TONE_HZ = 440
TONE = f"0.5*sin(2*PI*{TONE_HZ}*t)"
GARBAGE_SEED = 1234
GARBAGE_BYTES = 4096
FRONT_COVER = 3
BACK_COVER = 4


@dataclass(frozen=True)
class AudioFormat:
    """How to make one accepted format, and what probing it should report."""

    suffix: str
    encode: tuple[str, ...]
    container: str
    codec: str
    sample_rate: int
    bit_depth: int | None


FORMATS: dict[str, AudioFormat] = {
    "wav16": AudioFormat(".wav", ("-c:a", "pcm_s16le"), "wav", "pcm_s16le", 44100, 16),
    "wav24": AudioFormat(".wav", ("-c:a", "pcm_s24le"), "wav", "pcm_s24le", 48000, 24),
    "aiff": AudioFormat(".aiff", ("-c:a", "pcm_s16be"), "aiff", "pcm_s16be", 44100, 16),
    "flac": AudioFormat(".flac", ("-c:a", "flac", "-sample_fmt", "s16"), "flac", "flac", 44100, 16),
    "flac24_96k": AudioFormat(
        ".flac", ("-c:a", "flac", "-sample_fmt", "s32"), "flac", "flac", 96000, 24
    ),
    "mp3": AudioFormat(".mp3", ("-c:a", "libmp3lame", "-b:a", "192k"), "mp3", "mp3", 44100, None),
    "vorbis": AudioFormat(".ogg", ("-c:a", "libvorbis", "-q:a", "5"), "ogg", "vorbis", 44100, None),
    "opus": AudioFormat(".opus", ("-c:a", "libopus", "-b:a", "96k"), "ogg", "opus", 48000, None),
    "m4a_aac": AudioFormat(".m4a", ("-c:a", "aac", "-b:a", "192k"), "mp4", "aac", 44100, None),
    "m4a_alac": AudioFormat(
        ".m4a", ("-c:a", "alac", "-sample_fmt", "s16p"), "mp4", "alac", 44100, 16
    ),
}


def ffmpeg(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run the test ffmpeg quietly; raise CalledProcessError (with its log) on failure."""
    return subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-y", "-loglevel", "error", *args],
        check=True,
        capture_output=True,
    )


def synthesise(
    directory: Path,
    name: str,
    fmt: str,
    *,
    expression: str = TONE,
    seconds: float = DEFAULT_SECONDS,
    channels: int = 2,
    sample_rate: int | None = None,
) -> Path:
    """``seconds`` of ``expression`` (an aevalsrc expression of ``t``) in format ``fmt``."""
    spec = FORMATS[fmt]
    rate = sample_rate or spec.sample_rate
    path = directory / f"{name}{spec.suffix}"
    every_channel = "|".join([expression] * channels)  # full level in each, not an upmix
    source = f"aevalsrc={every_channel}:s={rate}:d={seconds}"
    ffmpeg("-f", "lavfi", "-i", source, *spec.encode, str(path))
    return path


def every_format(directory: Path, *, seconds: float = DEFAULT_SECONDS) -> dict[str, Path]:
    """The tone in every accepted format, keyed like ``FORMATS``."""
    return {fmt: synthesise(directory, f"tone-{fmt}", fmt, seconds=seconds) for fmt in FORMATS}


def silence_then_tone(directory: Path, fmt: str = "wav16", seconds: float = 4.0) -> Path:
    half = seconds / 2
    expression = f"if(lt(t\\,{half})\\,0\\,{TONE})"
    return synthesise(directory, "silence-then-tone", fmt, expression=expression, seconds=seconds)


def music_like(
    directory: Path,
    lufs: float,
    fmt: str = "wav24",
    *,
    seconds: float = 6.0,
    drive_db: float = 12.0,
) -> Path:
    """Pink noise and an A-major chord with a slow swell, soft-clipped after ``drive_db`` of
    gain (more drive, denser and louder), then scaled so its integrated loudness is ``lufs``.
    """
    spec = FORMATS[fmt]
    rate = spec.sample_rate
    raw = directory / f"music-raw-{lufs:+.0f}.wav"
    chord = "+".join(f"0.08*sin(2*PI*{hz}*t)" for hz in (110, 220, 277.18, 329.63, 440))
    swell = "(0.75+0.25*sin(2*PI*0.5*t))"
    noise = f"anoisesrc=color=pink:amplitude=0.3:r={rate}:d={seconds}"
    ffmpeg(
        "-f", "lavfi", "-i", f"{noise}:seed=7",
        "-f", "lavfi", "-i", f"{noise}:seed=8",
        "-f", "lavfi", "-i", f"aevalsrc=({chord})*{swell}|({chord})*{swell}:s={rate}:d={seconds}",
        "-filter_complex",
        "[0][1]join=inputs=2:channel_layout=stereo[noise];"
        f"[noise][2]amix=inputs=2:normalize=0,volume={drive_db}dB,asoftclip=type=tanh",
        "-c:a", "pcm_f32le", str(raw),
    )  # fmt: skip
    measured, _ = measure_loudness(raw)
    path = directory / f"music{lufs:+.0f}{spec.suffix}"
    ffmpeg("-i", str(raw), "-af", f"volume={lufs - measured:.3f}dB", *spec.encode, str(path))
    raw.unlink()
    return path


# Measurements, independent of media_worker.


def measure_loudness(path: Path) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) from ffmpeg's ebur128 filter."""
    result = subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-nostats", "-i", str(path),
         "-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    summary = result.stderr[result.stderr.rindex("Summary:") :]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert integrated and peak, summary
    return float(integrated.group(1)), float(peak.group(1))


def decoded_duration_ms(path: Path, sample_rate: int = 48000) -> float:
    """Length of the decoded audio, counted in samples (ffmpeg applies gapless trimming)."""
    result = subprocess.run(
        [FFMPEG, "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(sample_rate),
         "-c:a", "pcm_s16le", "-f", "s16le", "-"],
        check=True, capture_output=True,
    )  # fmt: skip
    return len(result.stdout) / 2 / sample_rate * 1000


# Cover art.


def cover_image(width: int, height: int, color: str = "crimson", fmt: str = "JPEG") -> bytes:
    """A plain image with a white square in the middle (so a centre crop can be checked)."""
    image = Image.new("RGB", (width, height), color)
    side = min(width, height) // 4
    left, top = (width - side) // 2, (height - side) // 2
    image.paste("white", (left, top, left + side, top + side))
    out = BytesIO()
    image.save(out, fmt)
    return out.getvalue()


@dataclass(frozen=True)
class Cover:
    data: bytes
    picture_type: int = FRONT_COVER
    mime: str = "image/jpeg"


# Tags: values are written as given, so odd ones ("1/4", NULs, junk dates) reach the reader.


def write_tags(path: Path, fmt: str, tags: dict[str, str], covers: Sequence[Cover] = ()) -> None:
    """Write ``tags`` (Vorbis-comment names: TITLE, ARTIST, TRACKNUMBER, DATE, ...) and
    ``covers`` into ``path`` the way the format's usual tools do."""
    container = FORMATS[fmt].container
    if container in ("wav", "aiff", "mp3"):
        _write_id3(path, container, tags, covers)
    elif container == "mp4":
        _write_mp4(path, tags, covers)
    else:
        _write_vorbis(path, fmt, tags, covers)


_ID3_FRAMES = {
    "TITLE": TIT2,
    "ALBUMARTIST": TPE2,
    "ALBUM": TALB,
    "TRACKNUMBER": TRCK,
    "DISCNUMBER": TPOS,
    "DATE": TDRC,
    "GENRE": TCON,
    "ISRC": TSRC,
    "COMPOSER": TCOM,
    "LABEL": TPUB,
    "COPYRIGHT": TCOP,
    "BPM": TBPM,
}


def _write_id3(path: Path, container: str, tags: dict[str, str], covers: Sequence[Cover]) -> None:
    audio = {"wav": WAVE, "aiff": AIFF, "mp3": MP3}[container](path)
    if audio.tags is None:
        audio.add_tags()
    frames: ID3 = audio.tags
    for key, value in tags.items():
        if key == "ARTIST":
            frames.add(TPE1(encoding=3, text=value.split(";")))
        elif key == "LYRICS":
            frames.add(USLT(encoding=3, lang="eng", desc="", text=value))
        elif key in _ID3_FRAMES:
            frames.add(_ID3_FRAMES[key](encoding=3, text=[value]))
        else:
            frames.add(TXXX(encoding=3, desc=key, text=[value]))
    for index, cover in enumerate(covers):
        frames.add(
            APIC(
                encoding=3,
                mime=cover.mime,
                type=cover.picture_type,
                desc=f"cover {index}",
                data=cover.data,
            )
        )
    audio.save()


def _write_vorbis(path: Path, fmt: str, tags: dict[str, str], covers: Sequence[Cover]) -> None:
    audio = {"flac": FLAC, "flac24_96k": FLAC, "vorbis": OggVorbis, "opus": OggOpus}[fmt](path)
    for key, value in tags.items():
        audio[key] = value.split(";") if key == "ARTIST" else [value]
    pictures = [_flac_picture(cover) for cover in covers]
    if isinstance(audio, FLAC):
        for picture in pictures:
            audio.add_picture(picture)
    elif pictures:
        audio["METADATA_BLOCK_PICTURE"] = [
            base64.b64encode(picture.write()).decode("ascii") for picture in pictures
        ]
    audio.save()


def _flac_picture(cover: Cover) -> Picture:
    try:
        with Image.open(BytesIO(cover.data)) as image:
            width, height = image.size
    except UnidentifiedImageError:  # a deliberately broken picture
        width = height = 0
    picture = Picture()
    picture.type = cover.picture_type
    picture.mime = cover.mime
    picture.width, picture.height, picture.depth = width, height, 24
    picture.data = cover.data
    return picture


_MP4_ATOMS = {
    "TITLE": "©nam",
    "ARTIST": "©ART",
    "ALBUMARTIST": "aART",
    "ALBUM": "©alb",
    "DATE": "©day",
    "GENRE": "©gen",
    "COMPOSER": "©wrt",
    "COPYRIGHT": "cprt",
    "LYRICS": "©lyr",
}


def _write_mp4(path: Path, tags: dict[str, str], covers: Sequence[Cover]) -> None:
    audio = MP4(path)
    for key, value in tags.items():
        if key in ("TRACKNUMBER", "DISCNUMBER"):
            number, _, total = value.partition("/")
            atom = "trkn" if key == "TRACKNUMBER" else "disk"
            audio[atom] = [(int(number or 0), int(total or 0))]
        elif key == "BPM":
            audio["tmpo"] = [round(float(value))]
        elif key == "EXPLICIT":
            audio["rtng"] = [1 if value == "1" else 2]
        elif key in _MP4_ATOMS:
            audio[_MP4_ATOMS[key]] = value.split(";") if key == "ARTIST" else [value]
        else:
            audio[f"----:com.apple.iTunes:{key}"] = [MP4FreeForm(value.encode("utf-8"))]
    if covers:
        audio["covr"] = [MP4Cover(cover.data, _mp4_image_format(cover)) for cover in covers]
    audio.save()


def _mp4_image_format(cover: Cover) -> int:
    return MP4Cover.FORMAT_PNG if cover.mime == "image/png" else MP4Cover.FORMAT_JPEG


# Files that must be rejected.


def empty_file(directory: Path) -> Path:
    path = directory / "empty.wav"
    path.write_bytes(b"")
    return path


def garbage_named_mp3(directory: Path) -> Path:
    path = directory / "garbage.mp3"
    path.write_bytes(random.Random(GARBAGE_SEED).randbytes(GARBAGE_BYTES))
    return path


def text_named_mp3(directory: Path) -> Path:
    path = directory / "notes.mp3"
    path.write_text("These are my lyrics, not a song.\n" * 40, encoding="utf-8")
    return path


def zip_named_wav(directory: Path) -> Path:
    path = directory / "archive.wav"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("song.txt", "la la la\n" * 100)
    return path


def truncated_flac(directory: Path) -> Path:
    """A FLAC cut at 60% of its bytes: STREAMINFO still declares the full length."""
    whole = synthesise(directory, "whole", "flac", seconds=4.0)
    data = whole.read_bytes()
    path = directory / "truncated.flac"
    path.write_bytes(data[: len(data) * 6 // 10])
    whole.unlink()
    return path


def truncated_wav(directory: Path) -> Path:
    """A WAV whose header declares 4 s but whose data stops cleanly, between two samples,
    after 1 s: nothing fails to decode, the audio is just missing."""
    whole = synthesise(directory, "whole", "wav16", seconds=4.0)
    data = whole.read_bytes()
    audio_start = data.index(b"data") + 8
    frame_bytes = 4  # 16-bit stereo
    path = directory / "truncated.wav"
    path.write_bytes(data[: audio_start + 44100 * frame_bytes])
    whole.unlink()
    return path


def unsupported_codecs(directory: Path) -> dict[str, Path]:
    """Audio that decodes but is not accepted: AC-3 in an M4A, WMA, AMR, MP2 named .mp3."""
    source = ("-f", "lavfi", "-i", f"aevalsrc={TONE}:s=44100:d=2")
    made = {
        "ac3_in_m4a": (directory / "ac3.m4a", ("-ac", "2", "-c:a", "ac3")),
        "wma": (directory / "song.wma", ("-ac", "2", "-c:a", "wmav2")),
        "amr": (directory / "voice.amr", ("-ar", "8000", "-ac", "1", "-c:a", "libopencore_amrnb")),
        "mp2_named_mp3": (directory / "layer2.mp3", ("-ac", "2", "-c:a", "mp2", "-f", "mp2")),
    }
    for path, encode in made.values():
        ffmpeg(*source, *encode, str(path))
    return {name: path for name, (path, _) in made.items()}
