"""Errors raised by the media library.

Every error carries a stable ``code`` (for the API's ``{"error": code, ...}`` shape and for
tests) and a message a person can read. ``RejectedAudio`` and ``RejectedImage`` are the
uploader's problem and are shown to them; ``FFmpegFailed`` and ``FFmpegTimeout`` are ours and
are worth a retry.
"""

from __future__ import annotations

# RejectedAudio codes.
EMPTY_FILE = "empty_file"
NOT_AUDIO = "not_audio"
CORRUPT_AUDIO = "corrupt_audio"
TOO_LONG = "too_long"
UNSUPPORTED_CODEC = "unsupported_codec"
TOO_MANY_CHANNELS = "too_many_channels"
BAD_SAMPLE_RATE = "bad_sample_rate"
INVALID_SAMPLES = "invalid_samples"

# RejectedImage codes.
NOT_IMAGE = "not_image"
IMAGE_TOO_LARGE = "image_too_large"

# FFmpegFailed codes.
FFMPEG_FAILED = "ffmpeg_failed"
FFMPEG_TIMEOUT = "ffmpeg_timeout"


class MediaError(Exception):
    """Base class: a stable ``code`` and a readable ``message``."""

    code: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class RejectedAudio(MediaError):
    """An upload that is not an acceptable audio master.

    ``code`` is one of ``empty_file``, ``not_audio``, ``corrupt_audio``, ``too_long``,
    ``unsupported_codec``, ``too_many_channels``, ``bad_sample_rate`` (outside the accepted
    range) or ``invalid_samples`` (NaN, infinite or overflowing float samples).
    """


class RejectedImage(MediaError):
    """Cover art that cannot be used: ``not_image`` or ``image_too_large``."""


class FFmpegFailed(MediaError):
    """ffmpeg exited with an error on input we had accepted (``ffmpeg_failed``).

    ``stderr_tail`` holds the last lines ffmpeg logged, for the job log.
    """

    def __init__(self, message: str, stderr_tail: str = "", code: str = FFMPEG_FAILED) -> None:
        super().__init__(code, message)
        self.stderr_tail = stderr_tail


class FFmpegTimeout(FFmpegFailed):
    """ffmpeg ran past its time limit and was killed (``ffmpeg_timeout``).

    ``returncode`` is how the killed process ended, as ``subprocess`` reports it
    (``-signal.SIGKILL``), for the job log.
    """

    def __init__(self, message: str, stderr_tail: str = "", returncode: int | None = None) -> None:
        super().__init__(message, stderr_tail, code=FFMPEG_TIMEOUT)
        self.returncode = returncode
