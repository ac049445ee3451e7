"""Running ffmpeg: which binary, how many at once, streaming output, progress and time limits.

Audio never passes through Python memory whole: ffmpeg reads the file itself, and anything it
writes to stdout is handed to a callback chunk by chunk. Progress comes from ffmpeg's
``-progress`` key=value stream on a pipe of its own, so stdout stays free for data.

A process-wide ``ConcurrencyCap`` bounds how many ffmpeg processes this Python process runs at
once (``FFMPEG_CONCURRENCY``); every run takes a slot for as long as its process lives.
"""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from media_worker.errors import FFmpegFailed, FFmpegTimeout

DEFAULT_CONCURRENCY = 2
READ_CHUNK_BYTES = 64 * 1024
MICROSECONDS_PER_MS = 1000
STDERR_TAIL_LINES = 60
MAX_ERROR_LINES = 20

# Every run: no stdin, no banner, no interactive stats line, and each log line tagged with
# its level ("[error] ...") so decoder errors can be told apart from chatter.
COMMON_ARGS = ("-nostdin", "-hide_banner", "-nostats", "-loglevel", "repeat+level+info")

# A measuring branch of a filter graph (ebur128, astats) must still end in an output. It passes
# on only its first frame, so the null output it feeds costs nothing; passing none at all
# would leave that output's encoder unopened, which ffmpeg treats as an error.
FIRST_FRAME_ONLY = r"aselect=eq(n\,0)"

_LEVEL = re.compile(r"\[(panic|fatal|error|warning|info|verbose|debug|trace)\] ")
_ERROR_LEVELS = frozenset({"panic", "fatal", "error"})

Progress = Callable[[float], None]


class _DeadlinePassed(Exception):
    """Internal: the run's deadline passed while ffmpeg was still going."""


def ffmpeg_path(configured: str = "") -> str:
    """The ffmpeg binary to run: ``configured`` (``MEGABOX_FFMPEG``) or the imageio-ffmpeg one.

    Raises FileNotFoundError when a configured path is not an executable file.
    """
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise FileNotFoundError(f"ffmpeg not found or not executable: {configured}")
        return configured
    return imageio_ffmpeg.get_ffmpeg_exe()


class ConcurrencyCap:
    """At most ``limit`` holders at once; the limit can change while slots are held.

    Threads of one process share it; separate worker processes (RQ) each have their own, so
    ``FFMPEG_CONCURRENCY`` is per worker process.
    """

    def __init__(self, limit: int) -> None:
        self._condition = threading.Condition()
        self._active = 0
        self._limit = self._checked(limit)

    @staticmethod
    def _checked(limit: int) -> int:
        if limit < 1:
            raise ValueError(f"ffmpeg concurrency must be at least 1, not {limit}")
        return limit

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, limit: int) -> None:
        """Change the limit; holders above a lowered limit finish undisturbed.

        Raises ValueError for a limit below 1.
        """
        with self._condition:
            self._limit = self._checked(limit)
            self._condition.notify_all()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a free slot and hold it for the ``with`` block."""
        with self._condition:
            self._condition.wait_for(lambda: self._active < self._limit)
            self._active += 1
        try:
            yield
        finally:
            with self._condition:
                self._active -= 1
                self._condition.notify()


PROCESS_CAP = ConcurrencyCap(DEFAULT_CONCURRENCY)


def configure_concurrency(limit: int) -> None:
    """Set how many ffmpeg processes may run at once in this process (``FFMPEG_CONCURRENCY``).

    Raises ValueError for a limit below 1.
    """
    PROCESS_CAP.set_limit(limit)


@dataclass(frozen=True)
class FFmpegRun:
    """What a finished ffmpeg process left behind."""

    returncode: int
    errors: tuple[str, ...]  # the first error-level log lines
    tail: tuple[str, ...]  # the last log lines

    def tail_text(self) -> str:
        return "\n".join(self.tail)


def log_level(line: str) -> str:
    """The level tag of a ``repeat+level`` log line (``"info"`` when it has none)."""
    match = _LEVEL.search(line)
    return match.group(1) if match else "info"


class _LineSplitter:
    """Turns a byte stream into text lines, keeping the unfinished last line for later."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._pending = b""
        self._on_line = on_line

    def feed(self, data: bytes) -> None:
        *lines, self._pending = (self._pending + data).split(b"\n")
        for line in lines:
            self._on_line(line.rstrip(b"\r").decode("utf-8", "replace"))

    def close(self) -> None:
        if self._pending:
            self._on_line(self._pending.rstrip(b"\r").decode("utf-8", "replace"))
            self._pending = b""


class _ProgressReader:
    """Parses ``-progress`` output and reports the fraction of ``duration_us`` done."""

    def __init__(self, duration_us: int, progress: Progress | None) -> None:
        self._duration_us = duration_us
        self._progress = progress
        self._last = -1.0

    def line(self, text: str) -> None:
        key, _, value = text.partition("=")
        if key == "out_time_us" and value.strip().lstrip("-").isdigit():
            self._report(int(value) / self._duration_us if self._duration_us > 0 else 0.0)
        elif key == "progress" and value.strip() == "end":
            self._report(1.0)

    def _report(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if self._progress is not None and fraction > self._last:
            self._last = fraction
            self._progress(fraction)


def run_ffmpeg(
    args: Sequence[str],
    *,
    ffmpeg: str,
    timeout: float,
    duration_ms: int = 0,
    progress: Progress | None = None,
    on_stdout: Callable[[bytes], None] | None = None,
    on_log: Callable[[str], None] | None = None,
    check: bool = True,
    cap: ConcurrencyCap | None = None,
) -> FFmpegRun:
    """Run ``ffmpeg <common options> <args>`` and stream everything it writes.

    ``on_stdout`` receives stdout in chunks (pass ``pipe:1`` as an output); ``on_log``
    receives every log line; ``progress`` receives the fraction of ``duration_ms`` done.
    An exception raised by a callback stops ffmpeg and propagates. Waiting for a slot of
    ``cap`` (the process-wide cap by default) does not count towards ``timeout``.

    Raises FFmpegTimeout (after killing and reaping ffmpeg; its ``returncode`` is
    ``-SIGKILL``) when it runs longer than ``timeout`` seconds, and FFmpegFailed when it
    exits non-zero and ``check`` is true.
    """
    cap = PROCESS_CAP if cap is None else cap
    errors: list[str] = []
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)

    def log_line(line: str) -> None:
        tail.append(line)
        if log_level(line) in _ERROR_LEVELS and len(errors) < MAX_ERROR_LINES:
            errors.append(line)
        if on_log is not None:
            on_log(line)

    progress_reader = _ProgressReader(duration_ms * MICROSECONDS_PER_MS, progress)
    with cap.slot():
        progress_read, progress_write = os.pipe()
        try:
            command = [ffmpeg, *COMMON_ARGS, "-progress", f"pipe:{progress_write}", *args]
            deadline = time.monotonic() + timeout
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if on_stdout is not None else subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(progress_write,),
            )
        except BaseException:
            os.close(progress_read)
            raise
        finally:
            os.close(progress_write)
        try:
            _pump(
                process,
                progress_read,
                deadline=deadline,
                on_stdout=on_stdout,
                stderr_lines=_LineSplitter(log_line),
                progress_lines=_LineSplitter(progress_reader.line),
            )
        except _DeadlinePassed:
            process.kill()
            # Reaped at once, so the error records how ffmpeg ended: killed by SIGKILL.
            process.wait()
            raise FFmpegTimeout(
                f"ffmpeg ran longer than {timeout:g} s and was killed",
                "\n".join(tail),
                returncode=process.returncode,
            ) from None
        finally:
            os.close(progress_read)
            if process.poll() is None:
                process.kill()
            process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
    run = FFmpegRun(process.returncode, tuple(errors), tuple(tail))
    if check and run.returncode != 0:
        reason = errors[-1] if errors else f"exit status {run.returncode}"
        raise FFmpegFailed(f"ffmpeg failed: {reason}", run.tail_text())
    return run


def _pump(
    process: subprocess.Popen[bytes],
    progress_fd: int,
    *,
    deadline: float,
    on_stdout: Callable[[bytes], None] | None,
    stderr_lines: _LineSplitter,
    progress_lines: _LineSplitter,
) -> None:
    """Read stdout, stderr and the progress pipe until all close or the deadline passes."""
    assert process.stderr is not None
    handlers: dict[int, Callable[[bytes], None]] = {
        process.stderr.fileno(): stderr_lines.feed,
        progress_fd: progress_lines.feed,
    }
    if on_stdout is not None and process.stdout is not None:
        handlers[process.stdout.fileno()] = on_stdout
    with selectors.DefaultSelector() as selector:
        for fd in handlers:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _DeadlinePassed
            for key, _ in selector.select(timeout=remaining):
                data = os.read(key.fd, READ_CHUNK_BYTES)
                if data:
                    handlers[key.fd](data)
                else:
                    selector.unregister(key.fd)
    stderr_lines.close()
    progress_lines.close()
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise _DeadlinePassed from None


def ffmpeg_decimal(value: float) -> str:
    """A number written the way ffmpeg's option parser reads it (no exponent)."""
    return f"{value:.6f}"


def input_args(path: Path | str) -> list[str]:
    """``-i`` for a local file, with ``file:`` so a name starting with ``-`` or holding ``:``
    is never read as an option or a protocol."""
    return ["-i", f"file:{os.fspath(path)}"]
