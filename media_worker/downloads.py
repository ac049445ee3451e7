"""Download formats for buyers: the ten formats, what each makes of a master, and making one.

The formats (``DOWNLOAD_FORMATS``, in the order a page lists them):

- ``original``: the master's bytes as uploaded, whatever its format;
- lossless: ``flac``, ``alac`` (M4A), ``wav``, ``aiff``;
- lossy: ``mp3_320`` (CBR), ``mp3_v0`` (LAME VBR quality 0), ``aac_256`` (M4A),
  ``vorbis`` (Ogg Vorbis, quality 6) and ``opus`` (Ogg Opus, 160 kb/s VBR).

What ``plan_download`` decides:

- Lossless formats are made straight from the master's decoded PCM, never through a lossy
  step, at the master's own sample rate. A lossy master (MP3, AAC, Vorbis, Opus) gets no
  lossless format: ``FormatUnavailable`` with code ``lossy_master``.
- Bit depth. Masters of 16 bits or fewer become 16-bit, of 17 to 24 bits 24-bit (8-, 12- and
  20-bit samples are padded with zeros, which changes no sample value). WAV and AIFF also hold
  32-bit integer and 32- or 64-bit float masters exactly as they are. FLAC and ALAC hold at
  most 24 bits, so such a master is delivered in them as 24-bit, cut to 24 bits without
  dither (an error of at most one 24-bit step, -138 dBFS): 32-bit FLAC needs libFLAC 1.4 and most players and
  hardware cannot decode it, and ffmpeg's ALAC encoder stops at 24 bits.
- DSD masters are delivered as 24-bit PCM at the rate ffmpeg's DSD decoder gives
  (``AudioInfo.pcm_sample_rate``: 352.8 kHz for DSD64), the usual DSD-to-PCM delivery; that
  conversion is the decoder's, not a lossy codec's.
- Channels. FLAC and ALAC hold at most 8 channels, so a master with more offers WAV and AIFF
  only among the lossless formats (``FormatUnavailable``, ``format_unavailable``). Lossy
  formats are at most stereo, downmixed as the streaming renditions are: MP3 cannot hold more,
  and the others' multichannel layouts differ per codec (libopus refuses 2.1, Vorbis mislabels
  it), while a surround master stays whole in the lossless formats.
- Lossy sample rate: 44.1 kHz for masters in the 44.1 kHz family (multiples of 11025 Hz),
  48 kHz for every other rate (48, 96, 192 kHz, and 8, 16, 32 kHz, which divide 48 kHz).
  Opus is always 48 kHz: it codes at 48 kHz internally, and every Opus decoder outputs 48 kHz.

``make_download`` runs one ffmpeg process per download. Input comes from a path, or from a
readable binary stream (a vault reader) copied in chunks into a named pipe that ffmpeg reads,
so memory stays flat whatever the master's length. ``run_ffmpeg`` gives ffmpeg no stdin, which
is why a named pipe is used rather than ``pipe:0``. Only the containers checked to decode
identically from a pipe are piped (``PIPEABLE_CONTAINERS``). The others are first copied to a
temporary file beside the destination: read from a pipe, an MP4 whose ``moov`` atom follows the
audio stops short, WavPack trips over a trailing APE tag, and DSDIFF decodes to different
samples without a word.

Output goes to a private temporary file beside the destination and is renamed into place only
when ffmpeg succeeded; nothing is left behind on failure. Any error-level line in ffmpeg's log
fails the download, even when ffmpeg exits with 0: that is how ffmpeg reports a truncated or
damaged input, after writing what it could decode.

Delivered files carry no metadata from the master (``-map_metadata -1``, no chapters, only the
first audio stream, so no cover stream either): ``tagging.write_tags`` writes tags afterwards.
Encoders and muxers run with ``+bitexact``, so the same master gives the same bytes every time
(no random Ogg serial numbers, no encoder version strings), whether read from a path or a
stream. MP3s carry a Xing/LAME header and no ID3 tag; M4A files have their ``moov`` atom in
front (``+faststart``) so a player can start before the whole file has arrived.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from media_worker.analysis import downmix_filter
from media_worker.errors import FFmpegFailed, MediaError
from media_worker.ffmpeg import READ_CHUNK_BYTES, Progress, input_args, run_ffmpeg
from media_worker.probe import DSD_CODECS, AudioInfo
from media_worker.renditions import CD_RATE_FAMILY, LAME_TAG_ENCODER

# FormatUnavailable codes.
LOSSY_MASTER = "lossy_master"
FORMAT_UNAVAILABLE = "format_unavailable"

LOSSY_RATE_44K = 44_100
LOSSY_RATE_48K = 48_000
OPUS_SAMPLE_RATE = 48_000
MAX_LOSSY_CHANNELS = 2
# The FLAC format and ffmpeg's ALAC encoder both stop at 8 channels (ffmpeg's ALAC encoder
# silently drops the rest of a 10-channel input).
MAX_FLAC_ALAC_CHANNELS = 8
COPY_CHUNK_BYTES = 1024 * 1024
# How long stopping the pipe feeder may wait for a stream read that does not return.
FEEDER_STOP_SECONDS = 10.0
FEEDER_POLL_SECONDS = 0.05

# Containers ffmpeg reads correctly from a pipe, checked against a seekable read of the same
# file (decoded PCM identical, nothing logged). Anything else is spooled to disk first.
PIPEABLE_CONTAINERS = frozenset({"wav", "aiff", "flac", "ogg", "mp3", "aac", "dsf"})

# Every output: only the first audio stream, none of the master's tags or chapters, and no
# version strings or random serial numbers, so the bytes depend on the audio alone.
COMMON_OUTPUT_ARGS = (
    "-map", "0:a:0", "-map_metadata", "-1", "-map_chapters", "-1",
    "-fflags", "+bitexact", "-flags:a", "+bitexact",
)  # fmt: skip
MP3_OUTPUT_ARGS = (
    "-id3v2_version", "0", "-write_xing", "1", "-metadata:s:a:0", f"encoder={LAME_TAG_ENCODER}",
)  # fmt: skip
M4A_OUTPUT_ARGS = ("-movflags", "+faststart")


class FormatUnavailable(MediaError):
    """A download format this master cannot be delivered in.

    ``code`` is ``lossy_master`` (a lossless format asked of a lossy master) or
    ``format_unavailable`` (the format cannot hold the master: too many channels). The
    message is meant for the buyer's page.
    """


class ReadableStream(Protocol):
    """A binary stream read to its end: a file object or the vault's plaintext reader.

    A short read is fine; an empty one means the end.
    """

    def read(self, size: int = -1, /) -> bytes | None: ...


@dataclass(frozen=True)
class DownloadFormat:
    """One download format: how it is named, listed and served."""

    name: str  # stable key: in URLs, job arguments and cache keys
    label: str  # for people
    extension: str  # with its dot; empty for the original, whose extension is the master's
    mime_type: str  # empty for the original, whose type is the master's
    lossless: bool | None  # None for the original: as lossless as the master
    muxer: str  # ffmpeg's output format; empty for the original, which is copied


ORIGINAL = DownloadFormat("original", "Original master", "", "", None, "")
FLAC = DownloadFormat("flac", "FLAC", ".flac", "audio/flac", True, "flac")
ALAC = DownloadFormat("alac", "ALAC (Apple Lossless, M4A)", ".m4a", "audio/mp4", True, "ipod")
WAV = DownloadFormat("wav", "WAV", ".wav", "audio/wav", True, "wav")
AIFF = DownloadFormat("aiff", "AIFF", ".aiff", "audio/aiff", True, "aiff")
MP3_320 = DownloadFormat("mp3_320", "MP3 320 kb/s", ".mp3", "audio/mpeg", False, "mp3")
MP3_V0 = DownloadFormat("mp3_v0", "MP3 V0 (variable bit rate)", ".mp3", "audio/mpeg", False, "mp3")
AAC_256 = DownloadFormat("aac_256", "AAC 256 kb/s (M4A)", ".m4a", "audio/mp4", False, "ipod")
VORBIS = DownloadFormat("vorbis", "Ogg Vorbis (quality 6)", ".ogg", "audio/ogg", False, "ogg")
OPUS = DownloadFormat("opus", "Opus 160 kb/s", ".opus", "audio/ogg", False, "ogg")

DOWNLOAD_FORMATS: dict[str, DownloadFormat] = {
    fmt.name: fmt
    for fmt in (ORIGINAL, FLAC, ALAC, WAV, AIFF, MP3_320, MP3_V0, AAC_256, VORBIS, OPUS)
}

_LOSSY_ENCODERS: dict[str, tuple[str, ...]] = {
    MP3_320.name: ("-c:a", "libmp3lame", "-b:a", "320k", *MP3_OUTPUT_ARGS),
    MP3_V0.name: ("-c:a", "libmp3lame", "-q:a", "0", *MP3_OUTPUT_ARGS),
    AAC_256.name: ("-c:a", "aac", "-b:a", "256k", *M4A_OUTPUT_ARGS),
    VORBIS.name: ("-c:a", "libvorbis", "-q:a", "6"),
    OPUS.name: ("-c:a", "libopus", "-b:a", "160k"),
}


@dataclass(frozen=True)
class _SampleFormat:
    """How samples are stored: ``bits`` per sample, integer or float."""

    bits: int
    float_samples: bool = False


_S16 = _SampleFormat(16)
_S24 = _SampleFormat(24)
_S32 = _SampleFormat(32)
_F32 = _SampleFormat(32, float_samples=True)
_F64 = _SampleFormat(64, float_samples=True)
_FLOAT_CODECS = {"pcm_f32le": _F32, "pcm_f32be": _F32, "pcm_f64le": _F64, "pcm_f64be": _F64}

# ffmpeg's encoder options for each lossless format and sample format it can hold. FLAC and
# ALAC take 24-bit samples in 32-bit containers, so the encoder is told the real width.
_LOSSLESS_ENCODERS: dict[str, dict[_SampleFormat, tuple[str, ...]]] = {
    FLAC.name: {
        _S16: ("-c:a", "flac", "-sample_fmt", "s16"),
        _S24: ("-c:a", "flac", "-sample_fmt", "s32", "-bits_per_raw_sample", "24"),
    },
    ALAC.name: {
        _S16: ("-c:a", "alac", "-sample_fmt", "s16p", *M4A_OUTPUT_ARGS),
        _S24: ("-c:a", "alac", "-sample_fmt", "s32p", "-bits_per_raw_sample", "24",
              *M4A_OUTPUT_ARGS),
    },  # fmt: skip
    # RF64 takes over past 4 GiB, where a plain WAV's sizes overflow.
    WAV.name: {
        _S16: ("-c:a", "pcm_s16le", "-rf64", "auto"),
        _S24: ("-c:a", "pcm_s24le", "-rf64", "auto"),
        _S32: ("-c:a", "pcm_s32le", "-rf64", "auto"),
        _F32: ("-c:a", "pcm_f32le", "-rf64", "auto"),
        _F64: ("-c:a", "pcm_f64le", "-rf64", "auto"),
    },
    AIFF.name: {
        _S16: ("-c:a", "pcm_s16be"),
        _S24: ("-c:a", "pcm_s24be"),
        _S32: ("-c:a", "pcm_s32be"),
        _F32: ("-c:a", "pcm_f32be"),  # ffmpeg writes float as AIFF-C, as the format requires
        _F64: ("-c:a", "pcm_f64be"),
    },
}
_LOSSLESS_CHANNEL_LIMITS = {FLAC.name: MAX_FLAC_ALAC_CHANNELS, ALAC.name: MAX_FLAC_ALAC_CHANNELS}

# The original's extension and MIME type, by container (and by codec inside Ogg).
_ORIGINAL_TYPES: dict[str, tuple[str, str]] = {
    "wav": (".wav", "audio/wav"),
    "aiff": (".aiff", "audio/aiff"),
    "flac": (".flac", "audio/flac"),
    "mp3": (".mp3", "audio/mpeg"),
    "mp4": (".m4a", "audio/mp4"),
    "aac": (".aac", "audio/aac"),
    "wavpack": (".wv", "audio/x-wavpack"),
    "ape": (".ape", "audio/x-ape"),
    "tak": (".tak", "audio/x-tak"),
    "dsf": (".dsf", "audio/x-dsf"),
    "dff": (".dff", "audio/x-dff"),
    "asf": (".wma", "audio/x-ms-wma"),
}
_OGG_EXTENSIONS = {"vorbis": ".ogg", "opus": ".opus", "flac": ".oga"}
_LOSSY_NAMES = {"mp3": "MP3", "aac": "AAC", "vorbis": "Ogg Vorbis", "opus": "Opus"}


@dataclass(frozen=True)
class DownloadPlan:
    """What a download of one master in one format will be, and the ffmpeg options making it."""

    format: DownloadFormat
    extension: str  # with its dot: the format's, or for the original the master's
    mime_type: str
    lossless: bool
    sample_rate: int
    bit_depth: int | None  # None for lossy formats
    float_samples: bool  # True for a float WAV or AIFF
    channels: int
    # ffmpeg's output options, up to the output file; empty for the original, which is copied.
    output_args: tuple[str, ...]


def lossy_sample_rate(master_rate: int) -> int:
    """The rate of lossy downloads (Opus aside): 44.1 kHz for the 44.1 kHz family, else 48."""
    return LOSSY_RATE_44K if master_rate % CD_RATE_FAMILY == 0 else LOSSY_RATE_48K


def plan_download(fmt: DownloadFormat, info: AudioInfo) -> DownloadPlan:
    """Decide what ``fmt`` makes of the master ``info`` describes (see the module docstring).

    Raises FormatUnavailable: ``lossy_master`` for a lossless format of a lossy master,
    ``format_unavailable`` when the format cannot hold the master's channels.
    """
    if fmt.name == ORIGINAL.name:
        extension, mime_type = _original_type(info)
        return DownloadPlan(
            format=fmt,
            extension=extension,
            mime_type=mime_type,
            lossless=info.lossless,
            sample_rate=info.sample_rate,
            bit_depth=info.bit_depth,
            float_samples=info.codec in _FLOAT_CODECS,
            channels=info.channels,
            output_args=(),
        )
    if fmt.lossless:
        return _plan_lossless(fmt, info)
    return _plan_lossy(fmt, info)


def _original_type(info: AudioInfo) -> tuple[str, str]:
    if info.container == "ogg":
        return _OGG_EXTENSIONS.get(info.codec, ".ogg"), "audio/ogg"
    return _ORIGINAL_TYPES.get(info.container, ("", "application/octet-stream"))


def _plan_lossless(fmt: DownloadFormat, info: AudioInfo) -> DownloadPlan:
    if not info.lossless:
        codec = _LOSSY_NAMES.get(info.codec, info.codec.upper())
        raise FormatUnavailable(
            LOSSY_MASTER,
            f"This master is lossy ({codec}), so lossless formats are not offered: they"
            " would only be larger, not better.",
        )
    limit = _LOSSLESS_CHANNEL_LIMITS.get(fmt.name)
    if limit is not None and info.channels > limit:
        raise FormatUnavailable(
            FORMAT_UNAVAILABLE,
            f"{fmt.label} holds at most {limit} channels and this master has"
            f" {info.channels}; WAV and AIFF hold them all.",
        )
    encoders = _LOSSLESS_ENCODERS[fmt.name]
    wanted = _master_sample_format(info)
    # FLAC and ALAC hold no float and nothing wider than 24 bits.
    sample_format = wanted if wanted in encoders else _S24
    return DownloadPlan(
        format=fmt,
        extension=fmt.extension,
        mime_type=fmt.mime_type,
        lossless=True,
        sample_rate=info.pcm_sample_rate,
        bit_depth=sample_format.bits,
        float_samples=sample_format.float_samples,
        channels=info.channels,
        output_args=(*COMMON_OUTPUT_ARGS, *encoders[sample_format], "-f", fmt.muxer),
    )


def _master_sample_format(info: AudioInfo) -> _SampleFormat:
    """The sample format that holds every sample of a lossless master exactly."""
    if info.codec in _FLOAT_CODECS:
        return _FLOAT_CODECS[info.codec]
    if info.codec in DSD_CODECS:
        return _S24
    # A lossless codec whose header gave no width: 24 bits loses nothing of 16-bit audio.
    bits = info.bit_depth or _S24.bits
    if bits <= _S16.bits:
        return _S16
    return _S24 if bits <= _S24.bits else _S32


def _plan_lossy(fmt: DownloadFormat, info: AudioInfo) -> DownloadPlan:
    rate = OPUS_SAMPLE_RATE if fmt.name == OPUS.name else lossy_sample_rate(info.pcm_sample_rate)
    downmix = downmix_filter(info.channels).rstrip(",")
    return DownloadPlan(
        format=fmt,
        extension=fmt.extension,
        mime_type=fmt.mime_type,
        lossless=False,
        sample_rate=rate,
        bit_depth=None,
        float_samples=False,
        channels=min(info.channels, MAX_LOSSY_CHANNELS),
        output_args=(
            *COMMON_OUTPUT_ARGS,
            *(("-af", downmix) if downmix else ()),
            "-ar", str(rate),
            *_LOSSY_ENCODERS[fmt.name],
            "-f", fmt.muxer,
        ),
    )  # fmt: skip


def available_formats(info: AudioInfo) -> list[DownloadFormat]:
    """The formats the master ``info`` describes can be delivered in, in listing order."""
    available = []
    for fmt in DOWNLOAD_FORMATS.values():
        try:
            plan_download(fmt, info)
        except FormatUnavailable:
            continue
        available.append(fmt)
    return available


def make_download(
    source: Path | str | ReadableStream,
    destination: Path | str,
    fmt: DownloadFormat,
    info: AudioInfo,
    *,
    ffmpeg: str,
    timeout: float,
    progress: Progress | None = None,
) -> Path:
    """Make ``destination`` in ``fmt`` from the master at ``source`` (a path, or a binary
    stream read from where it stands to its end), which ``info`` describes.

    The file appears at ``destination`` only when complete (its directory must exist), with
    owner-only permissions, as it holds plaintext; it carries no tags (see
    ``tagging.write_tags``). The original is copied byte for byte. ``progress`` receives the
    fraction done, ending at 1.0. ``timeout`` bounds the ffmpeg process; copying a stream
    takes as long as the stream does.

    Raises FormatUnavailable (see ``plan_download``) before touching anything; FFmpegFailed
    when ffmpeg fails or logs an error (a damaged or truncated master); FFmpegTimeout past
    ``timeout`` seconds; OSError for the files; and whatever reading ``source`` raises.
    """
    plan = plan_download(fmt, info)
    destination = Path(destination)
    part = _private_temp_file(destination.parent, f".{destination.name}.", ".part")
    try:
        if not plan.output_args:
            _copy_source(source, part, progress)
        elif isinstance(source, (str, os.PathLike)):
            _encode(Path(source), part, plan, info, ffmpeg=ffmpeg, timeout=timeout,
                    progress=progress)  # fmt: skip
        elif info.container in PIPEABLE_CONTAINERS:
            _encode_piped(source, part, plan, info, ffmpeg=ffmpeg, timeout=timeout,
                          progress=progress)  # fmt: skip
        else:
            _encode_spooled(source, part, plan, info, ffmpeg=ffmpeg, timeout=timeout,
                            progress=progress)  # fmt: skip
        os.replace(part, destination)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return destination


def _private_temp_file(directory: Path, prefix: str, suffix: str) -> Path:
    """A new empty file only its owner can read, named uniquely so that two jobs making the
    same download at once never write into each other's file."""
    handle, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    os.close(handle)
    return Path(name)


def _encode(
    master: Path,
    output: Path,
    plan: DownloadPlan,
    info: AudioInfo,
    *,
    ffmpeg: str,
    timeout: float,
    progress: Progress | None,
) -> None:
    """Run ffmpeg from ``master`` to ``output``; an error in its log fails the run."""
    args = ["-y", *input_args(master), *plan.output_args, f"file:{output}"]
    run = run_ffmpeg(
        args, ffmpeg=ffmpeg, timeout=timeout, duration_ms=info.duration_ms, progress=progress
    )
    if run.errors:
        raise FFmpegFailed(f"ffmpeg failed: {run.errors[0]}", run.tail_text())


def _encode_piped(
    stream: ReadableStream,
    output: Path,
    plan: DownloadPlan,
    info: AudioInfo,
    *,
    ffmpeg: str,
    timeout: float,
    progress: Progress | None,
) -> None:
    """Encode from ``stream`` fed through a named pipe while ffmpeg reads it."""
    # The pipe holds no data on disk, so it lives in the system's temporary directory, which
    # certainly supports named pipes, rather than beside the destination.
    with tempfile.TemporaryDirectory(prefix="megabox-download-") as directory:
        fifo = Path(directory) / "master"
        os.mkfifo(fifo, 0o600)
        feeder = _PipeFeeder(stream, fifo)
        feeder.start()
        try:
            _encode(fifo, output, plan, info, ffmpeg=ffmpeg, timeout=timeout, progress=progress)
        except BaseException as exc:
            feeder.stop()
            # A stream that failed (a vault segment that did not authenticate) is the cause of
            # whatever ffmpeg made of the input it cut short.
            if feeder.error is not None:
                raise feeder.error from exc
            raise
        feeder.stop()
        if feeder.error is not None:
            # ffmpeg took the early end of the input for the end of the audio.
            raise feeder.error


def _encode_spooled(
    stream: ReadableStream,
    output: Path,
    plan: DownloadPlan,
    info: AudioInfo,
    *,
    ffmpeg: str,
    timeout: float,
    progress: Progress | None,
) -> None:
    """Copy ``stream`` to a private file beside ``output``, for a container ffmpeg must seek
    in, then encode from that file."""
    spool = _private_temp_file(output.parent, f"{output.name}.", ".master")
    try:
        _copy_source(stream, spool, None)
        _encode(spool, output, plan, info, ffmpeg=ffmpeg, timeout=timeout, progress=progress)
    finally:
        spool.unlink(missing_ok=True)


def _copy_source(
    source: Path | str | ReadableStream, output: Path, progress: Progress | None
) -> None:
    """Copy ``source`` to ``output`` in chunks, reporting the fraction copied when the size
    is known (a path) and only the end otherwise."""
    if isinstance(source, (str, os.PathLike)):
        total = os.path.getsize(source)
        with open(source, "rb") as stream:
            _copy_stream(stream, output, total, progress)
    else:
        _copy_stream(source, output, None, progress)
    if progress is not None:
        progress(1.0)


def _copy_stream(
    stream: ReadableStream, output: Path, total: int | None, progress: Progress | None
) -> None:
    copied = 0
    with open(output, "wb") as out:
        while chunk := stream.read(COPY_CHUNK_BYTES):
            out.write(chunk)
            copied += len(chunk)
            if progress is not None and total:
                progress(min(1.0, copied / total))


class _PipeFeeder:
    """Copies a stream into a named pipe on a thread of its own, for ffmpeg to read.

    ``error`` holds what reading the stream raised, for the caller's thread to raise.
    """

    def __init__(self, stream: ReadableStream, fifo: Path) -> None:
        self._stream = stream
        self._fifo = fifo
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        # A daemon, so that a stream whose read never returns cannot keep the process alive.
        self._thread = threading.Thread(target=self._run, name="download-feeder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            # Blocks until ffmpeg (or ``stop``) opens the other end.
            fd = os.open(self._fifo, os.O_WRONLY)
        except OSError as exc:
            self.error = exc
            return
        try:
            while not self._stopping.is_set():
                chunk = self._stream.read(READ_CHUNK_BYTES)
                if not chunk:
                    break
                _write_all(fd, chunk)
        except BrokenPipeError:
            pass  # ffmpeg stopped reading; its exit status and log say whether that was wrong
        except BaseException as exc:  # handed to the caller's thread, which raises it
            self.error = exc
        finally:
            os.close(fd)

    def stop(self) -> None:
        """End the copy once ffmpeg is gone, whatever state it left the pipe in.

        Opening the read end releases a feeder still waiting in ``open`` (ffmpeg never got
        to its input); draining it releases one blocked on a full pipe.
        """
        self._stopping.set()
        reader = os.open(self._fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            deadline = time.monotonic() + FEEDER_STOP_SECONDS
            while self._thread.is_alive() and time.monotonic() < deadline:
                try:
                    os.read(reader, READ_CHUNK_BYTES)
                except BlockingIOError:
                    pass
                self._thread.join(FEEDER_POLL_SECONDS)
        finally:
            os.close(reader)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]

