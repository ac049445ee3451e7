"""Library errors."""

from app.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound


class LibraryItemNotFound(NotFound):
    """No such purchase, or not one the viewer may see (the same answer, so ids leak nothing)."""

    code = "library_item_not_found"


class UnknownFormat(NotFound):
    code = "unknown_format"


class FormatNotOffered(InvalidInput):
    """The master cannot be delivered in this format (a lossless format of a lossy master)."""

    code = "format_not_offered"


class NotOwned(Forbidden):
    """The purchase no longer owns its music: the order was refunded or charged back."""

    code = "not_owned"


class DownloadNotReady(Conflict):
    code = "download_not_ready"


class LinkInvalid(Forbidden):
    """A download link whose signature does not verify: altered, or made with another key."""

    code = "link_invalid"


class LinkExpired(Forbidden):
    code = "link_expired"


class NotARelease(InvalidInput):
    code = "not_a_release"


class LinkGone(DomainError):
    """The link was revoked, or its purchase no longer owns the file."""

    code = "link_gone"
    status = 410
