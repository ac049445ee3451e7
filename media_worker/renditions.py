"""Streaming renditions: Opus 128 kb/s in Ogg and MP3 192 kb/s CBR, loudness-normalised.

One ffmpeg command decodes the master once and feeds two filter graphs:

- ``volume`` applies the normalisation gain and ``asplit`` hands the result to both encoders
  (libopus and libmp3lame, each on its own thread);
- a second graph, on a thread of its own, oversamples the master to about 192 kHz and takes
  its peak: the BS.1770 true peak. The interpolator is ffmpeg's resampler with 32 taps per
  phase, longer than the 12-tap reference filter of BS.1770-4 Annex 2 (ffmpeg's ebur128 meter
  uses 64, which costs a quarter more here and reads the same to a few hundredths of a dB).

Loudness policy. The gain brings the integrated loudness to ``target_lufs`` (-14 LUFS) unless
that would push the true peak above ``true_peak_limit_dbtp - CODEC_HEADROOM_DB``; then the gain
is lowered until the peak fits, and the rendition is quieter than the target. This is the
choice Spotify makes in its normal mode: nothing is limited or compressed, so the artist's
dynamics survive, and the rule is exact. Masters with a peak-to-loudness ratio up to 12 dB
(most mastered music) land on the target; very dynamic ones play a little quieter. The extra
``CODEC_HEADROOM_DB`` exists because lossy encoders overshoot their input's peaks, and it is
the decoded rendition that must stay under the limit.

Why the true peak is measured here and not in the analysis pass: oversampling 4× costs about
as much CPU as the rest of the analysis (ebur128's own true-peak mode costs twice that). In
the analysis it would lengthen a step that must finish before encoding starts; here it runs on
its own thread beside the two encoders and reuses their decode, so it costs at most half its
CPU time in wall time when both cores are busy, and nothing when the MP3 encoder alone is the
bottleneck. The first encode uses the sample peak from the analysis plus
``INTERSAMPLE_ALLOWANCE_DB`` in place of the true peak. Only when the measured true peak shows
that this gain was too high (a quiet master with unusually high intersample peaks) is the
master encoded a second time, with the exact gain.

Renditions keep no tags, chapters or cover streams: only the audio stream is mapped, and the
MP3 carries just its Xing/LAME frame (seek table, gapless delay and padding).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from media_worker.analysis import MasterAnalysis, downmix_filter
from media_worker.errors import FFmpegFailed
from media_worker.ffmpeg import FIRST_FRAME_ONLY, Progress, ffmpeg_decimal, input_args, run_ffmpeg

DEFAULT_TARGET_LUFS = -14.0
DEFAULT_TRUE_PEAK_LIMIT_DBTP = -1.0
# Lossy encoding adds up to about a decibel to the true peak of its input.
CODEC_HEADROOM_DB = 1.0
# Assumed excess of the true peak over the sample peak for the first encode.
INTERSAMPLE_ALLOWANCE_DB = 0.5
# A measured peak within this of the plan does not justify a second encode.
GAIN_TOLERANCE_DB = 0.05
# Never amplify a near-silent master by more than this.
MAX_GAIN_DB = 20.0
TRUE_PEAK_SAMPLE_RATE = 192_000
TRUE_PEAK_FILTER_SIZE = 16  # swr's filter_size: 2 × 16 taps per phase
# The oversampled peak is read by volumedetect, which costs a third of what astats does at
# 192 kHz. It counts 16-bit values, so the signal is first lowered by PEAK_METER_HEADROOM_DB:
# peaks that far above full scale still read correctly, and the 16-bit steps stay far finer
# than the meter's one-decimal print-out, which is read as an upper bound.
PEAK_METER_HEADROOM_DB = 24.0
PEAK_METER_ROUNDING_DB = 0.05
PEAK_METER_FLOOR_DB = -90.0  # what a 16-bit meter shows for nothing at all

OPUS_BITRATE = "128k"
OPUS_SAMPLE_RATE = 48_000
MP3_BITRATE = "192k"
# ffmpeg writes the encoder's name into the LAME tag of the Info frame. Most readers (mutagen,
# browsers, hardware) only trust the gapless delay and padding in it when that name starts
# with "LAME"; libmp3lame 3.100 is the encoder.
LAME_TAG_ENCODER = "LAME3.100"
MP3_SAMPLE_RATES = (32_000, 44_100, 48_000)
CD_RATE_FAMILY = 11_025

_TRUE_PEAK = re.compile(r"max_volume: (-?\d+(?:\.\d+)?|-inf) dB")


@dataclass(frozen=True)
class Renditions:
    opus_path: Path
    mp3_path: Path
    gain_db: float
    source_true_peak_dbtp: float | None  # None for digital silence
    loudness_lufs: float | None  # integrated loudness after the gain (None if silent)
    true_peak_dbtp: float | None  # true peak after the gain, before lossy encoding
    encodes: int  # 1, or 2 when the measured true peak forced a lower gain


def plan_gain(
    integrated_lufs: float | None,
    peak_dbtp: float | None,
    *,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    true_peak_limit_dbtp: float = DEFAULT_TRUE_PEAK_LIMIT_DBTP,
) -> float:
    """The gain (dB) that takes a master to ``target_lufs`` without its peak passing the limit.

    ``peak_dbtp`` is the master's true peak, or an estimate of it; the ceiling for it after
    the gain is ``true_peak_limit_dbtp - CODEC_HEADROOM_DB``. A silent master gets 0 dB.
    """
    if integrated_lufs is None:
        return 0.0
    gain = min(target_lufs - integrated_lufs, MAX_GAIN_DB)
    if peak_dbtp is not None:
        gain = min(gain, true_peak_limit_dbtp - CODEC_HEADROOM_DB - peak_dbtp)
    return round(gain, 2)


def mp3_sample_rate(source_rate: int) -> int:
    """The MP3 rate for a master: its own if MPEG-1 allows it, else 44.1 or 48 kHz by family."""
    if source_rate in MP3_SAMPLE_RATES:
        return source_rate
    return 44_100 if source_rate % CD_RATE_FAMILY == 0 else 48_000


def make_renditions(
    master: Path | str,
    analysis: MasterAnalysis,
    *,
    opus_path: Path | str,
    mp3_path: Path | str,
    ffmpeg: str,
    timeout: float,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    true_peak_limit_dbtp: float = DEFAULT_TRUE_PEAK_LIMIT_DBTP,
    progress: Progress | None = None,
) -> Renditions:
    """Encode both streaming renditions of ``master`` in one ffmpeg command.

    Files appear at ``opus_path`` and ``mp3_path`` only when complete. ``progress`` gets
    the fraction done; it starts again from 0 if a second encode is needed. ``timeout`` is
    for the whole call.

    Raises FFmpegTimeout when encoding outlasts ``timeout`` seconds, FFmpegFailed when
    ffmpeg fails.
    """
    deadline = time.monotonic() + timeout
    loudness = analysis.loudness
    sample_peak = loudness.sample_peak_dbfs
    estimate = None if sample_peak is None else sample_peak + INTERSAMPLE_ALLOWANCE_DB
    limits = {"target_lufs": target_lufs, "true_peak_limit_dbtp": true_peak_limit_dbtp}
    gain = plan_gain(loudness.integrated_lufs, estimate, **limits)
    outputs = (Path(opus_path), Path(mp3_path))
    true_peak = _encode(master, analysis, outputs, gain, ffmpeg, deadline, progress, True)
    encodes = 1
    exact_gain = plan_gain(loudness.integrated_lufs, true_peak, **limits)
    if exact_gain < gain - GAIN_TOLERANCE_DB:
        gain = exact_gain
        _encode(master, analysis, outputs, gain, ffmpeg, deadline, progress, False)
        encodes = 2
    return Renditions(
        opus_path=outputs[0],
        mp3_path=outputs[1],
        gain_db=gain,
        source_true_peak_dbtp=true_peak,
        loudness_lufs=None if loudness.integrated_lufs is None else loudness.integrated_lufs + gain,
        true_peak_dbtp=None if true_peak is None else true_peak + gain,
        encodes=encodes,
    )


def _encode(
    master: Path | str,
    analysis: MasterAnalysis,
    outputs: tuple[Path, Path],
    gain_db: float,
    ffmpeg: str,
    deadline: float,
    progress: Progress | None,
    measure_true_peak: bool,
) -> float | None:
    """Write both renditions at ``gain_db``; return the master's true peak if measured."""
    info = analysis.info
    downmix = downmix_filter(info.channels)
    opus_part, mp3_part = (path.with_name(path.name + ".part") for path in outputs)
    args = [
        "-y",
        *input_args(master),
        "-filter_complex",
        f"[0:a:0]{downmix}volume={ffmpeg_decimal(gain_db)}dB,asplit=2[opus][mp3]",
        "-map", "[opus]", "-c:a", "libopus", "-b:a", OPUS_BITRATE,
        "-ar", str(OPUS_SAMPLE_RATE),
        "-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact",
        "-f", "ogg", f"file:{opus_part}",
        "-map", "[mp3]", "-c:a", "libmp3lame", "-b:a", MP3_BITRATE,
        "-ar", str(mp3_sample_rate(info.sample_rate)),
        "-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact",
        "-id3v2_version", "0", "-write_xing", "1",
        "-metadata:s:a:0", f"encoder={LAME_TAG_ENCODER}",
        "-f", "mp3", f"file:{mp3_part}",
    ]  # fmt: skip
    if measure_true_peak:
        factor = max(1, round(TRUE_PEAK_SAMPLE_RATE / info.sample_rate))
        args += [
            "-filter_complex",
            f"[0:a:0]{downmix}volume=-{PEAK_METER_HEADROOM_DB}dB,aformat=sample_fmts=fltp,"
            f"aresample={info.sample_rate * factor}:filter_size={TRUE_PEAK_FILTER_SIZE},"
            "aformat=sample_fmts=s16,volumedetect,"
            f"{FIRST_FRAME_ONLY}[peak]",
            "-map", "[peak]", "-f", "null", "-",
        ]  # fmt: skip
    peak_lines: list[str] = []

    def on_log(line: str) -> None:
        if _TRUE_PEAK.search(line):
            peak_lines.append(line)

    try:
        run_ffmpeg(
            args,
            ffmpeg=ffmpeg,
            timeout=max(0.0, deadline - time.monotonic()),
            duration_ms=analysis.duration_ms,
            progress=progress,
            on_log=on_log,
        )
        true_peak = _true_peak(peak_lines) if measure_true_peak else None
    except BaseException:
        for part in (opus_part, mp3_part):
            part.unlink(missing_ok=True)
        raise
    for part, final in zip((opus_part, mp3_part), outputs):
        os.replace(part, final)
    return true_peak


def _true_peak(lines: list[str]) -> float | None:
    """Read volumedetect's peak as a true peak in dBTP (None below the meter's floor).

    Raises FFmpegFailed if it is missing.
    """
    if not lines:
        raise FFmpegFailed("ffmpeg's volumedetect filter printed no peak")
    match = _TRUE_PEAK.search(lines[-1])
    assert match is not None
    reading = float(match.group(1))
    if reading <= PEAK_METER_FLOOR_DB:
        return None
    return reading + PEAK_METER_HEADROOM_DB + PEAK_METER_ROUNDING_DB
