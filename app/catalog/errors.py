"""Catalogue errors."""

from app.errors import Conflict, Forbidden, InvalidInput, NotFound


class ArtistNotFound(NotFound):
    code = "artist_not_found"


class ReleaseNotFound(NotFound):
    code = "release_not_found"


class TrackNotFound(NotFound):
    code = "track_not_found"


class NotOwner(Forbidden):
    code = "not_owner"


class SlugTaken(Conflict):
    code = "slug_taken"


class HasBuyers(Conflict):
    """Bought music stays for its buyers: it can be unpublished, not deleted."""

    code = "has_buyers"


class InvalidPricing(InvalidInput):
    code = "invalid_pricing"


class ReleaseFull(InvalidInput):
    code = "release_full"


class NothingToPlay(InvalidInput):
    """A release is published only once listeners can play something on it."""

    code = "nothing_to_play"
