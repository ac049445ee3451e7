"""Waveform peaks for the player, computed from a low-rate envelope stream.

The analysis pass has ffmpeg square each channel, average the channels and resample the
result to ``ENVELOPE_SAMPLE_RATE`` (so it is low-passed: a smoothed power envelope). Squaring
before resampling keeps high-frequency content visible; resampling the signal itself would
filter a hi-hat out of the picture. Here the envelope is read as it streams, reduced to block
maxima whose number is bounded by the bucket count (memory stays flat whatever the length),
and finally to ``buckets`` peaks: the square root of the largest power in each bucket, from 0
(silence) to 1 (full scale of the master). A sine reads as its amplitude below about
``ENVELOPE_SAMPLE_RATE / 4`` and as its RMS (-3 dB) above; that is plenty for a picture.

The envelope also tells whether the master held any NaN or infinite sample: either one,
squared, averaged and resampled, spreads to every envelope value near it, so
``EnvelopeReader.finite`` answers for the whole master at no extra decoding cost. (A float
sample too large for its square to fit a float32, above about 1.8e19, reads as infinite.)
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from typing import Any

WAVEFORM_VERSION = 1
ENVELOPE_SAMPLE_RATE = 2000  # Hz, of the power envelope ffmpeg streams
ENVELOPE_SAMPLE_BYTES = 4  # float32
BLOCKS_PER_BUCKET = 4  # resolution kept while streaming, so a length surprise still reduces well
# Squaring a tone of frequency f leaves a ripple at 2f in the envelope; a peak is taken over
# at least this long, a full ripple period for any tone down to 20 Hz, so short clips with
# many buckets per second do not show the ripple as a jagged outline.
MIN_PEAK_WINDOW_MS = 25
PEAK_DECIMALS = 3
MS_PER_SECOND = 1000


@dataclass(frozen=True)
class Waveform:
    """``buckets`` peaks in 0..1 over ``duration_ms`` of audio."""

    duration_ms: int
    peaks: tuple[float, ...]

    @property
    def buckets(self) -> int:
        return len(self.peaks)

    def as_json(self) -> dict[str, Any]:
        """The document the player reads."""
        return {
            "version": WAVEFORM_VERSION,
            "buckets": self.buckets,
            "duration_ms": self.duration_ms,
            "peaks": list(self.peaks),
        }


class EnvelopeReader:
    """Consumes the float32 power envelope in arbitrary chunks and yields waveform peaks.

    ``expected_samples`` (from the declared duration) sets the block size; if the stream turns
    out longer or shorter the reduction still spreads it over exactly ``buckets`` peaks.
    """

    def __init__(self, buckets: int, expected_samples: int) -> None:
        if buckets < 1:
            raise ValueError(f"a waveform needs at least one bucket, not {buckets}")
        self._buckets = buckets
        self._block = max(1, expected_samples // (buckets * BLOCKS_PER_BUCKET))
        self._maxima: array[float] = array("f")
        self._partial: array[float] = array("f")
        self._leftover = b""
        self.samples = 0
        self.finite = True  # False once a NaN or infinite value has come through

    def feed(self, data: bytes) -> None:
        data = self._leftover + data
        usable = len(data) - len(data) % ENVELOPE_SAMPLE_BYTES
        self._leftover = data[usable:]
        values = array("f")
        values.frombytes(data[:usable])
        self.samples += len(values)
        # One C-level sum: NaN or inf in any value makes it non-finite, and float32 powers
        # cannot add up to an overflow in a double.
        if self.finite and not math.isfinite(sum(values)):
            self.finite = False
        if self._partial:
            values = self._partial + values
        block = self._block
        whole = len(values) - len(values) % block
        maxima = self._maxima
        for start in range(0, whole, block):
            maxima.append(max(values[start : start + block]))
        self._partial = values[whole:]

    @property
    def duration_ms(self) -> int:
        return round(self.samples * MS_PER_SECOND / ENVELOPE_SAMPLE_RATE)

    def waveform(self) -> Waveform:
        """The peaks of everything fed so far."""
        maxima = self._maxima + (array("f", [max(self._partial)]) if self._partial else array("f"))
        window_samples = MIN_PEAK_WINDOW_MS * ENVELOPE_SAMPLE_RATE / MS_PER_SECOND
        min_blocks = max(1, math.ceil(window_samples / self._block))
        return Waveform(self.duration_ms, _reduce_peaks(maxima, self._buckets, min_blocks))


def _reduce_peaks(
    power_maxima: array[float], buckets: int, min_blocks: int = 1
) -> tuple[float, ...]:
    """Spread block maxima of power over ``buckets`` peaks (amplitudes, 0..1).

    Each bucket looks at its share of the blocks, widened about its centre to at least
    ``min_blocks``; so a very short file still gets ``buckets`` values.
    """
    count = len(power_maxima)
    if count == 0:
        return (0.0,) * buckets
    powers = []
    for index in range(buckets):
        start = index * count // buckets
        end = max(start + 1, (index + 1) * count // buckets)
        if end - start < min_blocks:
            centre = (start + end) // 2
            start = max(0, centre - min_blocks // 2)
            end = min(count, start + min_blocks)
        powers.append(max(power_maxima[start:end]))
    return tuple(_amplitude(power) for power in powers)


def _amplitude(power: float) -> float:
    # The resampler's ringing can dip a smoothed power just below zero.
    return round(min(1.0, math.sqrt(max(0.0, power))), PEAK_DECIMALS)
