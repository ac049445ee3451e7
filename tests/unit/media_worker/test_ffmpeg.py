from __future__ import annotations

import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import pytest

from media_worker.errors import FFmpegFailed, FFmpegTimeout
from media_worker.ffmpeg import (
    PROCESS_CAP,
    ConcurrencyCap,
    configure_concurrency,
    ffmpeg_path,
    run_ffmpeg,
)

SINE_SECONDS = 2
SAMPLE_RATE = 8000

# Stands in for ffmpeg: logs its start and end (with its pid) and sleeps in between. It
# ignores SIGTERM and SIGINT, so only SIGKILL can stop it early.
FAKE_FFMPEG = """\
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
log, seconds = sys.argv[-2], float(sys.argv[-1])
with open(log, "a") as f:
    f.write(f"start {time.time()} {os.getpid()}\\n")
time.sleep(seconds)
with open(log, "a") as f:
    f.write(f"end {time.time()} {os.getpid()}\\n")
"""


@pytest.fixture
def fake_ffmpeg(tmp_path: Path) -> str:
    script = tmp_path / "fake-ffmpeg"
    script.write_text(f"#!{sys.executable}\n{FAKE_FFMPEG}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def most_at_once(log: Path) -> int:
    events = []
    for line in log.read_text().splitlines():
        kind, moment, _ = line.split()
        events.append((float(moment), 1 if kind == "start" else -1))
    running = peak = 0
    for _, change in sorted(events, key=lambda event: (event[0], event[1])):
        running += change
        peak = max(peak, running)
    return peak


def run_in_threads(count: int, target) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_ffmpeg_path_defaults_to_the_bundled_binary() -> None:
    path = ffmpeg_path()
    assert os.access(path, os.X_OK)


def test_a_configured_ffmpeg_must_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ffmpeg_path(str(tmp_path / "no-such-ffmpeg"))
    assert ffmpeg_path(sys.executable) == sys.executable


def test_stdout_streams_to_the_callback_and_progress_reaches_one(ffmpeg: str) -> None:
    received = bytearray()
    fractions: list[float] = []
    run_ffmpeg(
        ["-f", "lavfi", "-i", f"sine=sample_rate={SAMPLE_RATE}:duration={SINE_SECONDS}",
         "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1"],
        ffmpeg=ffmpeg, timeout=30, duration_ms=SINE_SECONDS * 1000,
        progress=fractions.append, on_stdout=received.extend,
    )  # fmt: skip
    assert len(received) == SINE_SECONDS * SAMPLE_RATE * 2
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)


def test_a_failing_command_raises_with_ffmpegs_reason(ffmpeg: str, tmp_path: Path) -> None:
    with pytest.raises(FFmpegFailed) as caught:
        run_ffmpeg(
            ["-i", str(tmp_path / "missing.wav"), "-f", "null", "-"], ffmpeg=ffmpeg, timeout=30
        )
    assert "No such file" in caught.value.message
    assert caught.value.code == "ffmpeg_failed"


def test_the_timeout_kills_a_real_ffmpeg(ffmpeg: str) -> None:
    started = time.monotonic()
    with pytest.raises(FFmpegTimeout) as caught:
        run_ffmpeg(
            ["-re", "-f", "lavfi", "-i", "anullsrc", "-t", "60", "-f", "null", "-"],
            ffmpeg=ffmpeg, timeout=0.5,
        )  # fmt: skip
    assert time.monotonic() - started < 5
    assert caught.value.code == "ffmpeg_timeout"
    assert caught.value.returncode == -signal.SIGKILL


def test_the_timeout_kills_the_process_and_leaves_none_behind(
    fake_ffmpeg: str, tmp_path: Path
) -> None:
    log = tmp_path / "runs.log"
    started = time.monotonic()
    with pytest.raises(FFmpegTimeout) as caught:
        run_ffmpeg([str(log), "30"], ffmpeg=fake_ffmpeg, timeout=1.0)
    # Ended by SIGKILL (the fake ignores gentler signals), not by finishing its sleep:
    # a run that merely waited for it would last 30 s and log an "end".
    assert caught.value.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10
    events = log.read_text().split()
    assert events[0] == "start" and "end" not in events
    with pytest.raises(ProcessLookupError):
        os.kill(int(events[2]), 0)


def test_a_cap_never_lets_more_processes_run_at_once(fake_ffmpeg: str, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    cap = ConcurrencyCap(2)
    run_in_threads(
        6, lambda: run_ffmpeg([str(log), "0.3"], ffmpeg=fake_ffmpeg, timeout=30, cap=cap)
    )
    assert len(log.read_text().splitlines()) == 12
    assert most_at_once(log) == 2


def test_configure_concurrency_sets_the_process_wide_cap(fake_ffmpeg: str, tmp_path: Path) -> None:
    log = tmp_path / "runs.log"
    previous = PROCESS_CAP.limit
    configure_concurrency(1)
    try:
        run_in_threads(3, lambda: run_ffmpeg([str(log), "0.2"], ffmpeg=fake_ffmpeg, timeout=30))
    finally:
        configure_concurrency(previous)
    assert most_at_once(log) == 1


def test_a_cap_needs_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        ConcurrencyCap(0)
    with pytest.raises(ValueError):
        configure_concurrency(0)
