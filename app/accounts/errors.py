"""Account errors."""

from app.errors import Conflict, DomainError, InvalidInput, NotFound


class EmailTaken(Conflict):
    code = "email_taken"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status = 401


class WrongPassword(InvalidInput):
    """The password given to confirm a change to the account is not the account's."""

    code = "wrong_password"


class TokenNotFound(NotFound):
    code = "token_not_found"


class UnusablePassword(InvalidInput):
    """A new password is too short, too long, or only whitespace and control characters."""

    code = "unusable_password"
