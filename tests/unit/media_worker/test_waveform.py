from __future__ import annotations

import math
from array import array

import pytest

from media_worker.waveform import ENVELOPE_SAMPLE_RATE, EnvelopeReader

BUCKETS = 10


def envelope_bytes(powers: list[float]) -> bytes:
    return array("f", powers).tobytes()


def test_chunk_boundaries_do_not_change_the_peaks() -> None:
    powers = [((index % 97) / 97) ** 2 for index in range(ENVELOPE_SAMPLE_RATE * 3)]
    data = envelope_bytes(powers)
    whole, pieces = EnvelopeReader(BUCKETS, len(powers)), EnvelopeReader(BUCKETS, len(powers))
    whole.feed(data)
    for start in range(0, len(data), 7):  # 7 bytes: chunks split samples
        pieces.feed(data[start : start + 7])
    assert pieces.waveform() == whole.waveform()
    assert whole.duration_ms == 3000


def test_peaks_are_amplitudes_of_the_loudest_power_per_bucket() -> None:
    quiet, loud = 0.1**2, 0.8**2
    powers = [quiet] * ENVELOPE_SAMPLE_RATE + [loud] * ENVELOPE_SAMPLE_RATE
    reader = EnvelopeReader(BUCKETS, len(powers))
    reader.feed(envelope_bytes(powers))
    peaks = reader.waveform().peaks
    assert peaks[:4] == (0.1,) * 4
    assert peaks[-4:] == (0.8,) * 4


def test_a_stream_longer_than_declared_still_fills_the_buckets_evenly() -> None:
    powers = [0.25] * (ENVELOPE_SAMPLE_RATE * 4)
    reader = EnvelopeReader(BUCKETS, ENVELOPE_SAMPLE_RATE)  # declared 1 s, streamed 4 s
    reader.feed(envelope_bytes(powers))
    waveform = reader.waveform()
    assert waveform.peaks == (0.5,) * BUCKETS
    assert waveform.duration_ms == 4000


def test_overshoot_and_ringing_are_clamped_to_the_unit_range() -> None:
    half_second = ENVELOPE_SAMPLE_RATE // 2
    reader = EnvelopeReader(2, 2 * half_second)
    reader.feed(envelope_bytes([-0.001] * half_second + [1.7] * half_second))
    assert reader.waveform().peaks == (0.0, 1.0)


def test_nothing_streamed_gives_a_flat_line() -> None:
    assert EnvelopeReader(BUCKETS, 0).waveform().peaks == (0.0,) * BUCKETS


def test_a_waveform_needs_a_bucket() -> None:
    with pytest.raises(ValueError):
        EnvelopeReader(0, 100)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_value_anywhere_marks_the_envelope_invalid(bad: float) -> None:
    powers = [0.25] * ENVELOPE_SAMPLE_RATE
    powers[-1] = bad
    reader = EnvelopeReader(BUCKETS, len(powers))
    data = envelope_bytes(powers)
    reader.feed(data[: len(data) // 2])
    assert reader.finite
    reader.feed(data[len(data) // 2 :])
    assert not reader.finite
    reader.feed(envelope_bytes([0.25] * 10))  # later clean values do not clear it
    assert not reader.finite


def test_large_finite_powers_stay_valid() -> None:
    reader = EnvelopeReader(BUCKETS, ENVELOPE_SAMPLE_RATE)
    reader.feed(envelope_bytes([3e38] * ENVELOPE_SAMPLE_RATE))  # near float32's largest
    assert reader.finite
