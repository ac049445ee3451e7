"""Statement errors."""

from app.errors import InvalidInput, NotFound


class StatementNotFound(NotFound):
    """No such artist, period or currency, or not the viewer's to read: one answer for all,
    so a guessed URL tells nothing about whose statements exist."""

    code = "statement_not_found"


class UnknownFormat(InvalidInput):
    code = "unknown_format"


class CurrencyRequired(InvalidInput):
    """The artist has statements in several currencies and the request named none."""

    code = "currency_required"
