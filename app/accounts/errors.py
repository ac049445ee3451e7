"""Account errors."""

from app.errors import Conflict, DomainError, InvalidInput, NotFound


class EmailTaken(Conflict):
    code = "email_taken"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status = 401


class TokenNotFound(NotFound):
    code = "token_not_found"


class UnusablePassword(InvalidInput):
    """A new password is too short, too long, or only whitespace and control characters."""

    code = "unusable_password"
