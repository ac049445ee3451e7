"""Deciding whether a file is an acceptable audio master, by its content alone.

Two independent readers must agree: ffmpeg (which will decode the file) names the container
and the codec, and mutagen (which will read the tags) must parse the same container and
give the declared duration. File names play no part: mutagen is handed a file object with
no name, because it would otherwise score candidates by extension, and ffmpeg probes
content. ``probe_audio`` only reads headers, so it is quick; the full decode that catches a
truncated or damaged stream is ``analysis.analyse_master``.

Accepted: WAV and AIFF holding PCM; FLAC, bare or in Ogg; MP4 (M4A) holding AAC or ALAC;
WavPack; Monkey's Audio (APE); TAK; DSD as DSF or DSDIFF (DFF, plain or DST-compressed);
WMA Lossless in ASF; and the lossy MP3, raw ADTS AAC, Ogg Vorbis and Ogg Opus.

DSD is one bit at 2.8224 MHz (DSD64) or a multiple. ffmpeg decodes it to float PCM at an
eighth of that rate (352.8 kHz for DSD64), and everything downstream works on that PCM:
``AudioInfo.sample_rate`` and ``bit_depth`` describe the master as it is (2822400 Hz,
1 bit), ``AudioInfo.pcm_sample_rate`` the audio the analysis and the renditions receive.

Hostile headers are the file's fault, with codes of their own: more channels than
``max_channels`` (``too_many_channels``), a decoded sample rate outside ``min_sample_rate``
..``max_sample_rate`` (``bad_sample_rate``). They are checked on what ffmpeg reports before
anything is decoded, so an absurd header never reaches a filter graph.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import mutagen
from mutagen.aac import AAC, AACInfo
from mutagen.aiff import AIFF
from mutagen.asf import ASF
from mutagen.dsdiff import DSDIFF
from mutagen.dsf import DSF
from mutagen.flac import FLAC
from mutagen.monkeysaudio import MonkeysAudio
from mutagen.mp3 import MP3, BitrateMode, MPEGInfo
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.tak import TAK
from mutagen.wave import WAVE
from mutagen.wavpack import WavPack

from media_worker.errors import (
    BAD_SAMPLE_RATE,
    CORRUPT_AUDIO,
    EMPTY_FILE,
    NOT_AUDIO,
    TOO_LONG,
    TOO_MANY_CHANNELS,
    UNSUPPORTED_CODEC,
    RejectedAudio,
)
from media_worker.ffmpeg import input_args, run_ffmpeg

PROBE_TIMEOUT_SECONDS = 30.0
MS_PER_SECOND = 1000
# Defaults of the limits on what a header may declare (the app passes MAX_AUDIO_CHANNELS,
# MIN_SAMPLE_RATE_HZ and MAX_SAMPLE_RATE_HZ). 768 kHz is the highest PCM rate in use
# (4 × 192 kHz); 8 kHz is telephone speech, below anything mastered.
DEFAULT_MAX_CHANNELS = 16
DEFAULT_MIN_SAMPLE_RATE = 8_000
DEFAULT_MAX_SAMPLE_RATE = 768_000
DSD_BIT_DEPTH = 1
# ffmpeg decodes each eight bits of a DSD channel to one PCM sample.
DSD_BITS_PER_PCM_SAMPLE = 8

PCM_CODECS = frozenset(
    {
        "pcm_u8",
        "pcm_s8",
        "pcm_s16le",
        "pcm_s16be",
        "pcm_s24le",
        "pcm_s24be",
        "pcm_s32le",
        "pcm_s32be",
        "pcm_f32le",
        "pcm_f32be",
        "pcm_f64le",
        "pcm_f64be",
    }
)
# ffmpeg's names for DSD: raw DSD in DSF (LSB first) and DSDIFF (MSB first), and DSDIFF's
# lossless DST compression.
DSD_CODECS = frozenset({"dsd_lsbf", "dsd_lsbf_planar", "dsd_msbf", "dsd_msbf_planar", "dst"})
LOSSLESS_CODECS = (
    PCM_CODECS | DSD_CODECS | {"flac", "alac", "wavpack", "ape", "tak", "wmalossless"}
)


@dataclass(frozen=True)
class _Family:
    container: str
    codecs: frozenset[str]
    reader: type[mutagen.FileType]


# ffmpeg demuxer name -> the accepted families it can hold.
ACCEPTED: dict[str, tuple[_Family, ...]] = {
    "wav": (_Family("wav", PCM_CODECS, WAVE),),
    "aiff": (_Family("aiff", PCM_CODECS, AIFF),),
    "flac": (_Family("flac", frozenset({"flac"}), FLAC),),
    "mp3": (_Family("mp3", frozenset({"mp3"}), MP3),),
    "ogg": (
        _Family("ogg", frozenset({"vorbis"}), OggVorbis),
        _Family("ogg", frozenset({"opus"}), OggOpus),
        _Family("ogg", frozenset({"flac"}), OggFLAC),
    ),
    "mov,mp4,m4a,3gp,3g2,mj2": (_Family("mp4", frozenset({"aac", "alac"}), MP4),),
    "aac": (_Family("aac", frozenset({"aac"}), AAC),),  # raw ADTS
    "wv": (_Family("wavpack", frozenset({"wavpack"}), WavPack),),
    "ape": (_Family("ape", frozenset({"ape"}), MonkeysAudio),),
    "tak": (_Family("tak", frozenset({"tak"}), TAK),),
    "dsf": (_Family("dsf", frozenset({"dsd_lsbf_planar", "dsd_lsbf"}), DSF),),
    # ffmpeg's "iff" demuxer also reads Amiga 8SVX; only its DSDIFF codecs are accepted.
    "iff": (_Family("dff", frozenset({"dsd_msbf", "dsd_msbf_planar", "dst"}), DSDIFF),),
    # WMA 1/2, Pro and Voice share the container and stay unsupported.
    "asf": (_Family("asf", frozenset({"wmalossless"}), ASF),),
}
ACCEPTED_FORMATS = (
    "Accepted uploads are WAV, AIFF, FLAC (also in Ogg), ALAC, WavPack, Monkey's Audio, TAK,"
    " DSD (DSF or DFF), WMA Lossless, MP3, AAC (M4A or ADTS), Ogg Vorbis and Opus."
)
_CONTAINER_NAMES = {"mov,mp4,m4a,3gp,3g2,mj2": "MP4", "asf": "ASF (WMA)"}
ACCEPTED_READERS = tuple(family.reader for families in ACCEPTED.values() for family in families)

_INPUT = re.compile(r"Input #0, (?P<format>.+?), from ")
_DURATION = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)")
_AUDIO = re.compile(
    r"Stream #0:\d+\S*: Audio: (?P<codec>[\w-]+)[^,]*, (?P<rate>\d+) Hz, (?P<layout>[^,]+),"
    r" (?P<format>[^,(]+)(?:\((?P<bits>\d+) bit\))?"
)
_CHANNELS = re.compile(r"(\d+) channels")
_NAMED_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2}
_SAMPLE_FORMAT_BITS = {"u8": 8, "s16": 16, "s32": 32, "flt": 32, "dbl": 64}


@dataclass(frozen=True)
class AudioInfo:
    """What an accepted master is, as its headers declare it."""

    # "wav", "aiff", "flac", "mp3", "ogg", "mp4", "aac" (ADTS), "wavpack", "ape", "tak",
    # "dsf", "dff" or "asf"
    container: str
    # ffmpeg's codec name: "pcm_s24le", "flac", "mp3", "vorbis", "opus", "aac", "alac",
    # "wavpack", "ape", "tak", "dsd_lsbf_planar", "dsd_msbf", "dst", "wmalossless"
    codec: str
    duration_ms: int
    sample_rate: int  # the master's own: 2822400 for DSD64
    bit_depth: int | None  # None for lossy codecs; 1 for DSD
    channels: int
    # The rate of the PCM ffmpeg decodes to: ``sample_rate`` except for DSD (an eighth).
    pcm_sample_rate: int
    # False when the length is an estimate (an MP3 without a Xing/Info/VBRI header, a FLAC
    # whose STREAMINFO leaves the sample count out), so a decode may rightly differ from it.
    exact_duration: bool = True

    @property
    def lossless(self) -> bool:
        return self.codec in LOSSLESS_CODECS


@dataclass(frozen=True)
class _FFmpegView:
    format: str | None
    codec: str | None
    sample_rate: int | None
    channels: int | None
    bits: int | None
    duration_ms: int | None


def open_nameless(path: Path | str) -> BinaryIO:
    """Open ``path`` for reading as a file object whose ``name`` carries no extension.

    mutagen scores formats partly by file name; a descriptor-backed file object is named by
    its descriptor number, so only the content counts.
    """
    return open(os.open(path, os.O_RDONLY), "rb")


def _identify_with_mutagen(path: Path | str) -> mutagen.FileType | None:
    """mutagen's guess from content alone, or None when it recognises nothing."""
    try:
        with open_nameless(path) as handle:
            return mutagen.File(handle)
    except (mutagen.MutagenError, OSError, ValueError, EOFError):
        return None


@dataclass(frozen=True)
class _Limits:
    max_channels: int
    min_sample_rate: int
    max_sample_rate: int

    def check(self, channels: int | None, pcm_sample_rate: int | None) -> None:
        """Raises RejectedAudio (``too_many_channels``, ``bad_sample_rate``) past a limit."""
        if channels is not None and channels > self.max_channels:
            raise RejectedAudio(
                TOO_MANY_CHANNELS,
                f"The file declares {channels} channels; at most {self.max_channels} are"
                " accepted.",
            )
        if pcm_sample_rate is not None and not (
            self.min_sample_rate <= pcm_sample_rate <= self.max_sample_rate
        ):
            raise RejectedAudio(
                BAD_SAMPLE_RATE,
                f"The file declares a sample rate of {pcm_sample_rate} Hz; accepted rates are"
                f" {self.min_sample_rate} to {self.max_sample_rate} Hz.",
            )


def probe_audio(
    path: Path | str,
    *,
    ffmpeg: str,
    max_seconds: float,
    max_channels: int = DEFAULT_MAX_CHANNELS,
    min_sample_rate: int = DEFAULT_MIN_SAMPLE_RATE,
    max_sample_rate: int = DEFAULT_MAX_SAMPLE_RATE,
) -> AudioInfo:
    """Check that ``path`` holds an accepted audio format no longer than ``max_seconds``,
    with at most ``max_channels`` channels, decoding to PCM at ``min_sample_rate`` to
    ``max_sample_rate`` Hz (for DSD that is an eighth of its bit rate: 352800 for DSD64).

    Reads headers only; pair it with ``analysis.analyse_master`` to decode the whole stream.
    Raises RejectedAudio with code ``empty_file``, ``not_audio``, ``corrupt_audio``,
    ``unsupported_codec``, ``too_many_channels``, ``bad_sample_rate`` or ``too_long``;
    FFmpegTimeout if ffmpeg hangs on the headers.
    """
    limits = _Limits(max_channels, min_sample_rate, max_sample_rate)
    if os.path.getsize(path) == 0:
        raise RejectedAudio(EMPTY_FILE, "The file is empty.")
    view = _ffmpeg_view(path, ffmpeg)
    if view.format is None or view.codec is None:
        raise _unreadable(path, limits)
    # Before anything else reads the stream: a header declaring 65535 channels would
    # otherwise reach the filter graphs, whose size grows with the channel count.
    limits.check(view.channels, view.sample_rate)
    family = _family(view.format, view.codec)
    if family is None:
        container = _CONTAINER_NAMES.get(view.format, view.format.split(",")[0].upper())
        message = f"This file holds {view.codec} audio (container: {container})."
        raise RejectedAudio(UNSUPPORTED_CODEC, f"{message} {ACCEPTED_FORMATS}")
    try:
        with open_nameless(path) as handle:
            parsed = family.reader(handle)
    except (mutagen.MutagenError, OSError, ValueError, EOFError) as exc:
        raise RejectedAudio(
            CORRUPT_AUDIO, f"The {family.container} headers are damaged: {exc}"
        ) from None
    info = _audio_info(family, view, parsed.info)
    limits.check(info.channels, info.pcm_sample_rate)
    if info.duration_ms <= 0 or info.channels < 1 or info.pcm_sample_rate < 1:
        raise RejectedAudio(CORRUPT_AUDIO, "The file declares no audio at all.")
    if info.duration_ms > max_seconds * MS_PER_SECOND:
        raise RejectedAudio(
            TOO_LONG,
            f"The audio lasts {info.duration_ms / MS_PER_SECOND:.0f} s; the limit is"
            f" {max_seconds:.0f} s.",
        )
    return info


def _unreadable(path: Path | str, limits: _Limits) -> RejectedAudio:
    """The rejection for a file ffmpeg cannot open as audio, refined by mutagen's opinion.

    Raises (rather than returns) ``too_many_channels`` or ``bad_sample_rate`` when mutagen
    reads a header past the limits: ffmpeg refusing such a header (a rate over 2^31 Hz, say)
    is the header's fault, not damage.
    """
    guess = _identify_with_mutagen(path)
    # A bare tag block (an ID3 or APE tag before garbage) is no audio format at all.
    if guess is None or not getattr(guess.info, "length", 0):
        return RejectedAudio(NOT_AUDIO, "This file is not audio.")
    rate = getattr(guess.info, "sample_rate", None)
    if rate and isinstance(guess, (DSF, DSDIFF)):
        rate //= DSD_BITS_PER_PCM_SAMPLE
    limits.check(getattr(guess.info, "channels", None), rate or None)
    kind = type(guess).__name__
    if isinstance(guess, ACCEPTED_READERS):
        return RejectedAudio(CORRUPT_AUDIO, f"This looks like {kind} audio but cannot be decoded.")
    return RejectedAudio(UNSUPPORTED_CODEC, f"This file holds {kind} audio. {ACCEPTED_FORMATS}")


def _family(ffmpeg_format: str, codec: str) -> _Family | None:
    for family in ACCEPTED.get(ffmpeg_format, ()):
        if codec in family.codecs:
            return family
    return None


def _ffmpeg_view(path: Path | str, ffmpeg: str) -> _FFmpegView:
    """Container, first audio stream and duration as ffmpeg reports them on opening."""
    found: dict[str, Any] = {}

    def on_log(line: str) -> None:
        if "format" not in found and (match := _INPUT.search(line)):
            found["format"] = match.group("format")
        elif "duration" not in found and (match := _DURATION.search(line)):
            hours, minutes, seconds = match.group("h", "m", "s")
            total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            found["duration"] = round(total * MS_PER_SECOND)
        elif "audio" not in found and (match := _AUDIO.search(line)):
            found["audio"] = match

    # With no output named, ffmpeg opens the input, logs what it found and exits non-zero.
    run_ffmpeg(
        input_args(path), ffmpeg=ffmpeg, timeout=PROBE_TIMEOUT_SECONDS, on_log=on_log, check=False
    )
    audio = found.get("audio")
    if audio is None:
        return _FFmpegView(found.get("format"), None, None, None, None, None)
    layout = audio.group("layout").strip()
    channels_match = _CHANNELS.fullmatch(layout)
    channels = (
        int(channels_match.group(1)) if channels_match else _NAMED_LAYOUT_CHANNELS.get(layout)
    )
    bits = audio.group("bits")
    return _FFmpegView(
        format=found.get("format"),
        codec=audio.group("codec"),
        sample_rate=int(audio.group("rate")),
        channels=channels,
        bits=int(bits) if bits else _SAMPLE_FORMAT_BITS.get(audio.group("format").strip()),
        duration_ms=found.get("duration"),
    )


def _audio_info(family: _Family, view: _FFmpegView, stream: Any) -> AudioInfo:
    assert view.codec is not None
    length = getattr(stream, "length", 0) or 0
    duration_ms = round(length * MS_PER_SECOND) if length > 0 else (view.duration_ms or 0)
    # Lengths read off the bit rate: an MP3 without a Xing/Info/VBRI header, and raw ADTS,
    # which has no header for the length at all.
    estimated = isinstance(stream, AACInfo) or (
        isinstance(stream, MPEGInfo) and stream.bitrate_mode == BitrateMode.UNKNOWN
    )
    declared_rate = getattr(stream, "sample_rate", 0) or 0
    pcm_sample_rate = view.sample_rate or declared_rate
    channels = getattr(stream, "channels", 0) or view.channels or 0
    bit_depth = None
    if view.codec in DSD_CODECS:
        # ffmpeg reports the decoded PCM; the master itself is one bit at the full rate.
        sample_rate, bit_depth = declared_rate or pcm_sample_rate, DSD_BIT_DEPTH
    else:
        sample_rate = pcm_sample_rate
        if view.codec in LOSSLESS_CODECS:
            bit_depth = getattr(stream, "bits_per_sample", 0) or view.bits
    return AudioInfo(
        container=family.container,
        codec=view.codec,
        duration_ms=duration_ms,
        sample_rate=sample_rate,
        bit_depth=bit_depth,
        channels=channels,
        pcm_sample_rate=pcm_sample_rate,
        exact_duration=length > 0 and not estimated,
    )
