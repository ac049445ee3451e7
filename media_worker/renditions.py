"""Streaming renditions: Opus 128 kb/s in Ogg and MP3 192 kb/s CBR, loudness-normalised.

One ffmpeg command decodes the master once and feeds one small filter graph per encoder
(libopus, libmp3lame), each applying the normalisation gain with ``volume`` on its own thread.
Two graphs rather than one graph split in two: with a shared graph thread the encoders wait on
each other, which measured 10-30% slower than the plain two-output ffmpeg command.

Loudness policy. The gain brings the integrated loudness to ``target_lufs`` (-14 LUFS) unless
that would push the true peak above ``true_peak_limit_dbtp - CODEC_HEADROOM_DB``; then the
gain is lowered until the peak fits, and the rendition is quieter than the target. This is the
choice Spotify makes in its normal mode: nothing is limited or compressed, so the artist's
dynamics survive, and the rule is exact. Masters whose true peak sits up to 12 dB above their
loudness (most mastered music) land on the target; more dynamic ones play a little quieter.
``CODEC_HEADROOM_DB`` exists because lossy encoders overshoot their input's peaks, and it is
the decoded rendition that must stay under the limit. Loudness and true peak come from
``analysis.analyse_master``, measured on the same stereo downmix the renditions get.

Renditions keep no tags, chapters or cover streams: only the audio stream is mapped, and the
MP3 carries just its Xing/LAME frame (seek table, gapless delay and padding).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from media_worker.analysis import MasterAnalysis, downmix_filter
from media_worker.ffmpeg import Progress, ffmpeg_decimal, input_args, run_ffmpeg

DEFAULT_TARGET_LUFS = -14.0
DEFAULT_TRUE_PEAK_LIMIT_DBTP = -1.0
# Lossy encoding adds up to about a decibel to the true peak of its input.
CODEC_HEADROOM_DB = 1.0
# Never amplify a near-silent master by more than this.
MAX_GAIN_DB = 20.0

OPUS_BITRATE = "128k"
OPUS_SAMPLE_RATE = 48_000
MP3_BITRATE = "192k"
MP3_SAMPLE_RATES = (32_000, 44_100, 48_000)
CD_RATE_FAMILY = 11_025
# ffmpeg writes the encoder's name into the LAME tag of the Info frame. Most readers (mutagen,
# browsers, hardware) only trust the gapless delay and padding in it when that name starts
# with "LAME"; libmp3lame 3.100 is the encoder.
LAME_TAG_ENCODER = "LAME3.100"


@dataclass(frozen=True)
class Renditions:
    opus_path: Path
    mp3_path: Path
    gain_db: float
    source_true_peak_dbtp: float | None  # the master's, which may have capped the gain
    loudness_lufs: float | None  # integrated loudness after the gain (None if silent)
    true_peak_dbtp: float | None  # true peak after the gain, before lossy encoding


def plan_gain(
    integrated_lufs: float | None,
    true_peak_dbtp: float | None,
    *,
    target_lufs: float = DEFAULT_TARGET_LUFS,
    true_peak_limit_dbtp: float = DEFAULT_TRUE_PEAK_LIMIT_DBTP,
) -> float:
    """The gain (dB) that takes a master to ``target_lufs`` without its true peak rising
    above ``true_peak_limit_dbtp - CODEC_HEADROOM_DB``. A silent master gets 0 dB."""
    if integrated_lufs is None:
        return 0.0
    gain = min(target_lufs - integrated_lufs, MAX_GAIN_DB)
    if true_peak_dbtp is not None:
        gain = min(gain, true_peak_limit_dbtp - CODEC_HEADROOM_DB - true_peak_dbtp)
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

    Files appear at ``opus_path`` and ``mp3_path`` only when complete; ``progress`` gets the
    fraction done.

    Raises FFmpegTimeout when encoding outlasts ``timeout`` seconds, FFmpegFailed when
    ffmpeg fails.
    """
    loudness = analysis.loudness
    gain_db = plan_gain(
        loudness.integrated_lufs,
        loudness.true_peak_dbtp,
        target_lufs=target_lufs,
        true_peak_limit_dbtp=true_peak_limit_dbtp,
    )
    info = analysis.info
    gain = f"{downmix_filter(info.channels)}volume={ffmpeg_decimal(gain_db)}dB"
    outputs = (Path(opus_path), Path(mp3_path))
    opus_part, mp3_part = (path.with_name(path.name + ".part") for path in outputs)
    args = [
        "-y",
        *input_args(master),
        "-map", "0:a:0", "-af", gain, "-c:a", "libopus", "-b:a", OPUS_BITRATE,
        "-ar", str(OPUS_SAMPLE_RATE),
        "-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact",
        "-f", "ogg", f"file:{opus_part}",
        "-map", "0:a:0", "-af", gain, "-c:a", "libmp3lame", "-b:a", MP3_BITRATE,
        "-ar", str(mp3_sample_rate(info.pcm_sample_rate)),
        "-map_metadata", "-1", "-map_chapters", "-1", "-fflags", "+bitexact",
        "-id3v2_version", "0", "-write_xing", "1",
        "-metadata:s:a:0", f"encoder={LAME_TAG_ENCODER}",
        "-f", "mp3", f"file:{mp3_part}",
    ]  # fmt: skip
    try:
        run_ffmpeg(
            args,
            ffmpeg=ffmpeg,
            timeout=timeout,
            duration_ms=analysis.duration_ms,
            progress=progress,
        )
    except BaseException:
        for part in (opus_part, mp3_part):
            part.unlink(missing_ok=True)
        raise
    for part, final in zip((opus_part, mp3_part), outputs):
        os.replace(part, final)
    lufs, true_peak = loudness.integrated_lufs, loudness.true_peak_dbtp
    return Renditions(
        opus_path=outputs[0],
        mp3_path=outputs[1],
        gain_db=gain_db,
        source_true_peak_dbtp=true_peak,
        loudness_lufs=None if lufs is None else lufs + gain_db,
        true_peak_dbtp=None if true_peak is None else true_peak + gain_db,
    )
