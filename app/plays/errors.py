"""Plays errors."""

from app.errors import DomainError, NotFound


class TrackHasNoAudio(NotFound):
    """The track exists but has nothing to stream yet, so nothing to play (as streaming says)."""

    code = "track_has_no_audio"


class PlayNotFound(NotFound):
    code = "play_not_found"


class PlayExpired(DomainError):
    """The play started longer ago than ``PLAY_SESSION_TTL_SECONDS``: start a new one."""

    code = "play_expired"
    status = 410
