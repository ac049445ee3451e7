"""Synthesised test audio: every accepted format, tagged files, broken files, and measurements.

Everything is made on the spot with the ffmpeg shipped by imageio-ffmpeg, mutagen and Pillow,
so no binary test data lives in the repository. Files are a few seconds long. Functions take
the directory to write into and return the path they wrote.

ffmpeg has no DSD encoder, so DSF and DSDIFF files are written here byte by byte (``dsd_tone``)
from a sigma-delta modulated tone. Monkey's Audio, TAK and WMA Lossless have no encoder in
ffmpeg or in any package the tests could install, so no such file is made.

Signals:
- ``TONE``: a 440 Hz sine at half scale;
- ``music_like``: pink noise plus a chord, softly clipped like a mastered record, then set to
  an exact integrated loudness (e.g. -24 or -6 LUFS, far from the -14 LUFS target);
- ``silence_then_tone``: digital silence for the first half, the tone for the second.
"""

from __future__ import annotations

import base64
import math
import random
import re
import struct
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import imageio_ffmpeg
from mutagen.aiff import AIFF
from mutagen.apev2 import BINARY, APEValue
from mutagen.asf import ASF, ASFByteArrayAttribute, ASFUnicodeAttribute
from mutagen.dsdiff import DSDIFF
from mutagen.dsf import DSF
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
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE
from mutagen.wavpack import WavPack
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
    "wavpack": AudioFormat(
        ".wv", ("-c:a", "wavpack", "-sample_fmt", "s16p"), "wavpack", "wavpack", 44100, 16
    ),
    "ogg_flac": AudioFormat(
        ".oga", ("-c:a", "flac", "-sample_fmt", "s16", "-f", "ogg"), "ogg", "flac", 48000, 16
    ),
    "adts_aac": AudioFormat(
        ".aac", ("-c:a", "aac", "-b:a", "192k", "-f", "adts"), "aac", "aac", 44100, None
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
    ``covers`` into ``path`` the way the format's usual tools do. ``fmt`` is a key of
    ``FORMATS``, or "dsf", "dff" or "asf"."""
    container = FORMATS[fmt].container if fmt in FORMATS else fmt
    if container in ("wav", "aiff", "mp3", "dsf", "dff", "aac"):
        _write_id3(path, container, tags, covers)
    elif container == "mp4":
        _write_mp4(path, tags, covers)
    elif container == "wavpack":
        _write_ape(path, tags, covers)
    elif container == "asf":
        _write_asf(path, tags, covers)
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
    if container == "aac":
        # Raw ADTS has no tag support of its own; taggers put an ID3v2 block in front.
        audio = frames = ID3()
    else:
        audio = {"wav": WAVE, "aiff": AIFF, "mp3": MP3, "dsf": DSF, "dff": DSDIFF}[container](path)
        if audio.tags is None:
            audio.add_tags()
        frames = audio.tags
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
    if container == "aac":
        frames.save(path)
    else:
        audio.save()


def _write_vorbis(path: Path, fmt: str, tags: dict[str, str], covers: Sequence[Cover]) -> None:
    readers = {
        "flac": FLAC, "flac24_96k": FLAC, "vorbis": OggVorbis, "opus": OggOpus,
        "ogg_flac": OggFLAC,
    }  # fmt: skip
    audio = readers[fmt](path)
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


# APEv2 (WavPack, Monkey's Audio, TAK) as foobar2000 and Mp3tag write it.
_APE_KEYS = {
    "TITLE": "Title",
    "ARTIST": "Artist",
    "ALBUMARTIST": "Album Artist",
    "ALBUM": "Album",
    "TRACKNUMBER": "Track",
    "DISCNUMBER": "Disc",
    "DATE": "Year",
    "GENRE": "Genre",
    "COMPOSER": "Composer",
    "LABEL": "Publisher",
    "COPYRIGHT": "Copyright",
    "LYRICS": "Lyrics",
}
_APE_COVER_KEYS = {FRONT_COVER: "Cover Art (Front)", BACK_COVER: "Cover Art (Back)"}


def _write_ape(path: Path, tags: dict[str, str], covers: Sequence[Cover]) -> None:
    """APEv2 holds one item per key, so a second front cover replaces the first."""
    audio = WavPack(path)
    if audio.tags is None:
        audio.add_tags()
    for key, value in tags.items():
        values = value.split(";") if key == "ARTIST" else [value]
        audio.tags[_APE_KEYS.get(key, key)] = values
    for cover in covers:
        extension = "png" if cover.mime == "image/png" else "jpg"
        blob = f"cover.{extension}".encode("ascii") + b"\x00" + cover.data
        audio.tags[_APE_COVER_KEYS[cover.picture_type]] = APEValue(blob, BINARY)
    audio.save()


# ASF (WMA) attribute names as Windows Media Player writes them.
_ASF_KEYS = {
    "TITLE": "Title",
    "ARTIST": "Author",
    "ALBUMARTIST": "WM/AlbumArtist",
    "ALBUM": "WM/AlbumTitle",
    "TRACKNUMBER": "WM/TrackNumber",
    "DISCNUMBER": "WM/PartOfSet",
    "DATE": "WM/Year",
    "GENRE": "WM/Genre",
    "ISRC": "WM/ISRC",
    "COMPOSER": "WM/Composer",
    "LABEL": "WM/Publisher",
    "COPYRIGHT": "Copyright",
    "BPM": "WM/BeatsPerMinute",
    "LYRICS": "WM/Lyrics",
}


def _write_asf(path: Path, tags: dict[str, str], covers: Sequence[Cover]) -> None:
    audio = ASF(path)
    for key, value in tags.items():
        values = value.split(";") if key == "ARTIST" else [value]
        audio[_ASF_KEYS.get(key, key)] = [ASFUnicodeAttribute(v) for v in values]
    audio["WM/Picture"] = [ASFByteArrayAttribute(_wm_picture(cover)) for cover in covers]
    audio.save()


def _wm_picture(cover: Cover) -> bytes:
    """The WM/Picture blob: type, data length, MIME and description as NUL-ended UTF-16."""
    return (
        struct.pack("<BI", cover.picture_type, len(cover.data))
        + (cover.mime + "\x00").encode("utf-16-le")
        + "cover\x00".encode("utf-16-le")
        + cover.data
    )


def wma(directory: Path, seconds: float = 0.5) -> Path:
    """WMA 2 in ASF: not an accepted master, but its tags are read like WMA Lossless's,
    which ffmpeg cannot encode."""
    path = directory / "song.wma"
    ffmpeg("-f", "lavfi", "-i", f"aevalsrc={TONE}:s=44100:d={seconds}", "-c:a", "wmav2", str(path))
    return path


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


WAVE_FORMAT_PCM = 1
WAVE_FORMAT_IEEE_FLOAT = 3


def raw_wav(
    path: Path,
    *,
    channels: int,
    sample_rate: int,
    bits: int = 16,
    format_tag: int = WAVE_FORMAT_PCM,
    data: bytes = b"",
) -> Path:
    """A WAV written field by field, so its header may declare anything a 16- or 32-bit field
    holds (65535 channels, 1 Hz); derived fields wrap as they would in a hand-made file."""
    block_align = channels * bits // 8
    fmt = struct.pack(
        "<HHIIHH",
        format_tag, channels, sample_rate, (sample_rate * block_align) & 0xFFFFFFFF,
        block_align & 0xFFFF, bits,
    )  # fmt: skip
    body = b"WAVE" + _riff_chunk(b"fmt ", fmt) + _riff_chunk(b"data", data)
    path.write_bytes(_riff_chunk(b"RIFF", body))
    return path


def _riff_chunk(chunk_id: bytes, body: bytes) -> bytes:
    return struct.pack("<4sI", chunk_id, len(body)) + body + b"\x00" * (len(body) & 1)


def float_wav(
    path: Path, frames: list[list[float]], *, sample_rate: int = 44100, bits: int = 32
) -> Path:
    """An IEEE float WAV of ``frames`` (one list of channel values per frame), written as
    given: NaN and infinities included."""
    code = {32: "f", 64: "d"}[bits]
    data = b"".join(struct.pack(f"<{len(frame)}{code}", *frame) for frame in frames)
    return raw_wav(
        path, channels=len(frames[0]), sample_rate=sample_rate, bits=bits,
        format_tag=WAVE_FORMAT_IEEE_FLOAT, data=data,
    )  # fmt: skip


def sine_frames(
    seconds: float, *, channels: int = 2, sample_rate: int = 44100
) -> list[list[float]]:
    """The ``TONE`` (440 Hz at half scale) as float frames, for ``float_wav``."""
    count = round(seconds * sample_rate)
    return [
        [0.5 * math.sin(2 * math.pi * TONE_HZ * index / sample_rate)] * channels
        for index in range(count)
    ]


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


# DSD, written by hand: ffmpeg decodes DSF and DSDIFF but cannot encode them.

DSD64_RATE = 2_822_400
# ffmpeg decodes DSD to PCM at an eighth of the bit rate.
DSD_PCM_RATE = DSD64_RATE // 8
# A tone whose period is a whole number of bytes, so one period of modulated bits can be
# repeated: 2822400 / 6400 = 441 Hz, 800 bytes a period.
DSD_TONE_PERIOD_BITS = 6400
DSD_TONE_HZ = DSD64_RATE / DSD_TONE_PERIOD_BITS
DSD_TONE_AMPLITUDE = 0.5
# Periods the modulator runs before the one kept, so its state has settled.
DSD_SETTLE_PERIODS = 3
DSF_BLOCK_BYTES = 4096  # per channel, fixed by the DSF specification
DSF_HEADER_BYTES = 28 + 52 + 12  # the "DSD ", "fmt " and "data" chunk headers


def dsd_tone_period(amplitude: float = DSD_TONE_AMPLITUDE) -> list[int]:
    """One period of a 441 Hz sine as DSD64 bits (0 or 1), by a second-order sigma-delta
    modulator: the noise it makes is pushed far above the audio band, as in real DSD."""
    first = second = 0.0
    bits: list[int] = []
    for index in range(DSD_TONE_PERIOD_BITS * (DSD_SETTLE_PERIODS + 1)):
        wanted = amplitude * math.sin(2 * math.pi * index / DSD_TONE_PERIOD_BITS)
        out = 1.0 if second >= 0 else -1.0
        first += wanted - out
        second += first - out
        bits.append(1 if out > 0 else 0)
    return bits[-DSD_TONE_PERIOD_BITS:]


def _pack_bits(bits: list[int], *, lsb_first: bool) -> bytes:
    packed = bytearray()
    for start in range(0, len(bits), 8):
        byte = 0
        for offset, bit in enumerate(bits[start : start + 8]):
            byte |= bit << (offset if lsb_first else 7 - offset)
        packed.append(byte)
    return bytes(packed)


def dsd_tone(directory: Path, fmt: str, *, seconds: float = 1.0, channels: int = 2) -> Path:
    """``seconds`` of the 441 Hz tone as DSD64 in ``fmt``: "dsf" or "dff" (DSDIFF)."""
    period_bytes = len(dsd_tone_period()) // 8
    byte_count = round(seconds * DSD64_RATE / 8)
    repeats = -(-byte_count // period_bytes)
    if fmt == "dsf":
        one_channel = (_pack_bits(dsd_tone_period(), lsb_first=True) * repeats)[:byte_count]
        return _write_dsf(directory / "tone.dsf", [one_channel] * channels)
    if fmt == "dff":
        one_channel = (_pack_bits(dsd_tone_period(), lsb_first=False) * repeats)[:byte_count]
        return _write_dff(directory / "tone.dff", [one_channel] * channels)
    raise ValueError(f"not a DSD format: {fmt}")


def _write_dsf(path: Path, channel_data: list[bytes]) -> Path:
    """A DSF file: each channel in 4096-byte blocks, the blocks of the channels taking turns,
    the last block padded with zeros as the specification asks (readers stop at
    the sample count)."""
    channels = len(channel_data)
    length = len(channel_data[0])
    blocks = -(-length // DSF_BLOCK_BYTES)
    padded = [data.ljust(blocks * DSF_BLOCK_BYTES, b"\x00") for data in channel_data]
    data = b"".join(
        padded[channel][block * DSF_BLOCK_BYTES : (block + 1) * DSF_BLOCK_BYTES]
        for block in range(blocks)
        for channel in range(channels)
    )
    channel_type = {1: 1, 2: 2}[channels]  # mono, stereo
    fmt = struct.pack(
        "<4sQIIIIIIQII",
        b"fmt ", 52, 1, 0, channel_type, channels, DSD64_RATE, 1, length * 8,
        DSF_BLOCK_BYTES, 0,
    )  # fmt: skip
    total = DSF_HEADER_BYTES + len(data)
    head = struct.pack("<4sQQQ", b"DSD ", 28, total, 0)
    path.write_bytes(head + fmt + struct.pack("<4sQ", b"data", 12 + len(data)) + data)
    return path


def _dff_chunk(chunk_id: bytes, body: bytes) -> bytes:
    return struct.pack(">4sQ", chunk_id, len(body)) + body + b"\x00" * (len(body) & 1)


def _write_dff(path: Path, channel_data: list[bytes]) -> Path:
    """A DSDIFF file holding uncompressed DSD, the channels' bytes interleaved."""
    channels = len(channel_data)
    speaker_ids = {1: [b"C   "], 2: [b"SLFT", b"SRGT"]}[channels]
    compression_name = b"not compressed"
    properties = b"SND " + b"".join(
        [
            _dff_chunk(b"FS  ", struct.pack(">I", DSD64_RATE)),
            _dff_chunk(b"CHNL", struct.pack(">H", channels) + b"".join(speaker_ids)),
            _dff_chunk(
                b"CMPR", b"DSD " + bytes([len(compression_name)]) + compression_name
            ),
        ]
    )
    interleaved = bytes(byte for frame in zip(*channel_data) for byte in frame)
    body = b"DSD " + b"".join(
        [
            _dff_chunk(b"FVER", struct.pack(">I", 0x01050000)),
            _dff_chunk(b"PROP", properties),
            _dff_chunk(b"DSD ", interleaved),
        ]
    )
    path.write_bytes(_dff_chunk(b"FRM8", body))
    return path
