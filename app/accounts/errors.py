"""Account errors."""

from app.errors import Conflict, DomainError, NotFound


class EmailTaken(Conflict):
    code = "email_taken"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"
    status = 401


class TokenNotFound(NotFound):
    code = "token_not_found"
