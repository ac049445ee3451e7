"""The one decode pass over a master: validation, loudness, true peak and waveform envelope.

``analyse_master`` runs ``probe.probe_audio`` (headers only) and then a single ffmpeg process
that decodes the whole master once and feeds three filter graphs, each on its own thread:

- ``ebur128`` (BS.1770 K-weighting and gating) for the integrated loudness;
- the true peak: the master oversampled to about 192 kHz, then its peak;
- the waveform's power envelope, streamed to Python at a few kHz on stdout.

Any decoder or demuxer error, or a decode that ends well short of the declared length, makes
the master ``corrupt_audio``. NaN or infinite samples (only float PCM can hold them, and a
hostile file can) make it ``invalid_samples``, and so do float samples above about 1.8e19,
whose power overflows. They are found in the waveform's envelope (see ``waveform``), since
``astats``, which counts them, would more than triple the pass (2.7 s more on the
10-minute master below).

Cost, measured on a 10-minute 48 kHz 24-bit stereo master on two cores: about 0.9 s, a
seventh of the time the two encoders take (about 0.5 s of it loudness and waveform, 0.4 s the
true peak). ``ebur128=peak=true`` would take 1.8 s, so the true peak is measured apart:

- the interpolator is ffmpeg's resampler with 32 taps per phase, longer than the 12-tap
  reference filter of BS.1770-4 Annex 2 (ebur128 uses 64, a quarter slower here, and reads
  the same to a few hundredths of a dB on music);
- the peak of the oversampled stream is read by ``volumedetect`` (a third of the cost of
  ``astats`` at 192 kHz). It counts 16-bit values, so the stream is first lowered by
  ``PEAK_METER_HEADROOM_DB``: peaks that far above full scale still read correctly, and the
  16-bit steps stay far finer than the meter's one-decimal print-out, read as an upper bound.

Measuring the true peak here rather than while encoding: the two encoders keep both cores
busy, so the same graph added to that pass cost 0.6-0.7 s, against 0.4 s here where the
second core has room. It also lets the renditions be made in one go with the exact gain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from media_worker.errors import (
    CORRUPT_AUDIO,
    INVALID_SAMPLES,
    TOO_LONG,
    FFmpegFailed,
    RejectedAudio,
)
from media_worker.ffmpeg import (
    FIRST_FRAME_ONLY,
    Progress,
    ffmpeg_decimal,
    input_args,
    log_level,
    run_ffmpeg,
)
from media_worker.probe import (
    DEFAULT_MAX_CHANNELS,
    DEFAULT_MAX_SAMPLE_RATE,
    DEFAULT_MIN_SAMPLE_RATE,
    AudioInfo,
    probe_audio,
)
from media_worker.waveform import ENVELOPE_SAMPLE_RATE, EnvelopeReader, Waveform

MS_PER_SECOND = 1000
# Decode a little past the limit, so a header that understates the length is still caught
# without decoding an arbitrarily long stream.
OVERRUN_SECONDS = 1.0
# How far a decode may fall short of the declared length before the file counts as truncated:
# lossless streams must match to within this; lossy ones also get LOSSY_SLACK_SAMPLES for
# encoder delay, padding and a partial last frame.
TRUNCATION_TOLERANCE_MS = 50
LOSSY_SLACK_SAMPLES = 4096
# ebur128 reports silence (everything gated out) at the absolute gate.
ABSOLUTE_GATE_LUFS = -70.0
MAX_STEREO_CHANNELS = 2
# The envelope's resampler needs no audio-grade filter: a short one costs a third less.
ENVELOPE_FILTER_SIZE = 8
TRUE_PEAK_SAMPLE_RATE = 192_000
TRUE_PEAK_FILTER_SIZE = 16  # the resampler's filter_size: 2 × 16 taps per phase
PEAK_METER_HEADROOM_DB = 24.0
PEAK_METER_ROUNDING_DB = 0.05  # half the last digit volumedetect prints
PEAK_METER_FLOOR_DB = -90.0  # what a 16-bit meter shows for nothing at all

# Log contexts that belong to our side of the command (filters, outputs, encoders). An error
# from anywhere else came from reading or decoding the master.
_OUR_CONTEXTS = re.compile(r"^\[(Parsed_|fc#|af#|out#|aost#|enc:)")
_INTEGRATED = re.compile(r"\bI:\s+(-?\d+(?:\.\d+)?|-inf) LUFS")
_PEAK_METER = re.compile(r"max_volume: (-?\d+(?:\.\d+)?|-inf) dB")


@dataclass(frozen=True)
class Loudness:
    """EBU R128 measurements of a master (after the stereo downmix renditions get)."""

    integrated_lufs: float | None  # None when everything is below the absolute gate
    true_peak_dbtp: float | None  # None for digital silence


@dataclass(frozen=True)
class MasterAnalysis:
    info: AudioInfo
    duration_ms: int  # as decoded
    loudness: Loudness
    waveform: Waveform


def downmix_filter(channels: int) -> str:
    """The filter (with its trailing comma) that folds more than two channels to stereo.

    Renditions are at most stereo, so loudness is measured on the same downmix.
    """
    return "aformat=channel_layouts=stereo," if channels > MAX_STEREO_CHANNELS else ""


def analyse_master(
    path: Path | str,
    *,
    ffmpeg: str,
    max_seconds: float,
    waveform_buckets: int,
    timeout: float,
    progress: Progress | None = None,
    max_channels: int = DEFAULT_MAX_CHANNELS,
    min_sample_rate: int = DEFAULT_MIN_SAMPLE_RATE,
    max_sample_rate: int = DEFAULT_MAX_SAMPLE_RATE,
) -> MasterAnalysis:
    """Validate ``path`` completely and measure it in one decode.

    ``max_channels``, ``min_sample_rate`` and ``max_sample_rate`` bound what the master may
    declare (see ``probe_audio``).

    Raises RejectedAudio (any code of ``probe_audio``; ``corrupt_audio`` for decode errors or
    truncation; ``invalid_samples`` for NaN or infinite samples; ``too_long`` when the decode
    outlasts ``max_seconds``), FFmpegTimeout when the pass takes longer than ``timeout``
    seconds, FFmpegFailed when ffmpeg fails for a reason that is not the master's fault.
    """
    info = probe_audio(
        path,
        ffmpeg=ffmpeg,
        max_seconds=max_seconds,
        max_channels=max_channels,
        min_sample_rate=min_sample_rate,
        max_sample_rate=max_sample_rate,
    )
    envelope = EnvelopeReader(
        waveform_buckets, info.duration_ms * ENVELOPE_SAMPLE_RATE // MS_PER_SECOND
    )
    summary: list[str] = []

    def on_log(line: str) -> None:
        if log_level(line) in {"error", "fatal", "panic"} and not _OUR_CONTEXTS.match(line):
            raise RejectedAudio(CORRUPT_AUDIO, f"The audio is damaged: {_message(line)}")
        if _INTEGRATED.search(line) or _PEAK_METER.search(line):
            summary.append(line)

    downmix = downmix_filter(info.channels)
    oversampling = max(1, round(TRUE_PEAK_SAMPLE_RATE / info.pcm_sample_rate))
    channel_mix = "+".join(f"{1 / info.channels:.6f}*c{index}" for index in range(info.channels))
    args = [
        "-t", ffmpeg_decimal(max_seconds + OVERRUN_SECONDS),
        *input_args(path),
        "-filter_complex",
        f"[0:a:0]{downmix}ebur128=framelog=quiet,{FIRST_FRAME_ONLY}[loudness]",
        "-map", "[loudness]", "-f", "null", "-",
        "-filter_complex",
        f"[0:a:0]{downmix}volume=-{PEAK_METER_HEADROOM_DB}dB,aformat=sample_fmts=fltp,"
        f"aresample={info.pcm_sample_rate * oversampling}:filter_size={TRUE_PEAK_FILTER_SIZE},"
        f"aformat=sample_fmts=s16,volumedetect,{FIRST_FRAME_ONLY}[peak]",
        "-map", "[peak]", "-f", "null", "-",
        "-filter_complex",
        "[0:a:0]aformat=sample_fmts=flt,asplit[x][y];[x][y]amultiply,"
        f"pan=mono|c0={channel_mix},"
        f"aresample={ENVELOPE_SAMPLE_RATE}:filter_size={ENVELOPE_FILTER_SIZE}[envelope]",
        "-map", "[envelope]", "-c:a", "pcm_f32le", "-f", "f32le", "pipe:1",
    ]  # fmt: skip
    run = run_ffmpeg(
        args,
        ffmpeg=ffmpeg,
        timeout=timeout,
        duration_ms=info.duration_ms,
        progress=progress,
        on_stdout=envelope.feed,
        on_log=on_log,
        check=False,
    )
    # Before the exit status: NaN can upset a filter, and it is still the file's fault.
    if not envelope.finite:
        raise RejectedAudio(
            INVALID_SAMPLES,
            "The audio holds samples that are not valid numbers (NaN, infinite, or float"
            " values too large to be sound).",
        )
    if run.returncode != 0:
        raise FFmpegFailed("the analysis pass failed", run.tail_text())
    decoded_ms = envelope.duration_ms
    if decoded_ms > max_seconds * MS_PER_SECOND:
        raise RejectedAudio(TOO_LONG, f"The audio lasts more than the {max_seconds:.0f} s limit.")
    if info.exact_duration and decoded_ms < info.duration_ms - _tolerance_ms(info):
        raise RejectedAudio(
            CORRUPT_AUDIO,
            f"The audio stops after {decoded_ms / MS_PER_SECOND:.1f} s of the"
            f" {info.duration_ms / MS_PER_SECOND:.1f} s it declares; the file is truncated.",
        )
    return MasterAnalysis(
        info=info,
        duration_ms=decoded_ms,
        loudness=_loudness(summary),
        waveform=envelope.waveform(),
    )


def _tolerance_ms(info: AudioInfo) -> int:
    if info.lossless:
        return TRUNCATION_TOLERANCE_MS
    slack_ms = LOSSY_SLACK_SAMPLES * MS_PER_SECOND // max(1, info.pcm_sample_rate)
    return TRUNCATION_TOLERANCE_MS + slack_ms


def _loudness(summary: list[str]) -> Loudness:
    """Read ebur128's summary and the peak meter. Raises FFmpegFailed if either is missing."""
    text = "\n".join(summary)
    integrated = _INTEGRATED.search(text)
    peak = _PEAK_METER.search(text)
    if integrated is None or peak is None:
        raise FFmpegFailed("ffmpeg printed no loudness summary or peak", text)
    lufs = float(integrated.group(1))
    reading = float(peak.group(1))
    return Loudness(
        integrated_lufs=lufs if lufs > ABSOLUTE_GATE_LUFS else None,
        true_peak_dbtp=(
            round(reading + PEAK_METER_HEADROOM_DB + PEAK_METER_ROUNDING_DB, 2)
            if reading > PEAK_METER_FLOOR_DB
            else None
        ),
    )


def _message(line: str) -> str:
    """A log line without its ``[context @ 0x...] [level]`` prefixes."""
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()
