"""Account rules: sign-up, credentials, e-mail and password changes, sessions and API tokens.
Callers own the transaction.

E-mail addresses are stored normalised (trimmed, lower-case), so the unique key on
``users.email`` makes them unique whatever their case; it, not a look-up first, decides who
gets an address two people ask for at once.

Sessions: a session (and a remember-me cookie) names ``"<user id>:<session epoch>[:nonce]"``.
``end_sessions`` bumps the epoch, which signs the user out everywhere; ``user_for_session``
accepts only the current epoch.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.errors import (
    EmailTaken,
    InvalidCredentials,
    TokenNotFound,
    UnusablePassword,
    WrongPassword,
)
from app.accounts.models import ApiToken, User
from app.timestamps import utcnow

TOKEN_PREFIX = "mbx_"
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024
EMAIL_TAKEN = "An account with that e-mail address already exists."
WRONG_PASSWORD = "That is not your current password."
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so both failures take the same time.

    Made on first use, not at import: argon2 takes 64 MiB while hashing, which every worker
    process would otherwise carry as peak memory.
    """
    return _hasher.hash("megabox-timing-equaliser")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def password_problem(password: str) -> str | None:
    """Why ``password`` cannot be used, or None when it can."""
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        return f"Use {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters."
    if all(char.isspace() or unicodedata.category(char).startswith("C") for char in password):
        return "Use letters, digits or symbols, not only spaces or control characters."
    return None


def check_password(password: str) -> None:
    """Raises UnusablePassword if ``password`` cannot be a new password."""
    problem = password_problem(password)
    if problem is not None:
        raise UnusablePassword(problem, {"password": [problem]})


def create_user(
    session: Session, email: str, password: str, display_name: str, is_admin: bool = False
) -> User:
    """Create a user with an argon2 password hash. Raises EmailTaken, UnusablePassword.

    The unique key on ``users.email`` decides: a sign-up that loses a race to another with
    the same address gets EmailTaken, like one that finds it already taken.
    """
    check_password(password)
    taken = EmailTaken(EMAIL_TAKEN, {"email": [EMAIL_TAKEN]})
    if find_user_by_email(session, email) is not None:
        raise taken
    user = User(
        email=normalise_email(email),
        display_name=display_name.strip(),
        password_hash=_hasher.hash(password),
        is_admin=is_admin,
    )
    try:
        # A savepoint, flushed on exit, so a duplicate fails here and the caller's
        # transaction stays usable.
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise taken from None
    return user


def authenticate(session: Session, email: str, password: str) -> User:
    """Return the user whose credentials these are. Raises InvalidCredentials."""
    user = find_user_by_email(session, email)
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        user = None
    if user is None:
        raise InvalidCredentials("That e-mail and password do not match an account.")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def set_password(user: User, password: str) -> None:
    user.password_hash = _hasher.hash(password)


def change_password(session: Session, user: User, current_password: str, new_password: str) -> None:
    """Replace the password and end every session of the user (the caller signs the current
    one in again). Raises WrongPassword if ``current_password`` is wrong, UnusablePassword."""
    _confirm_password(user, current_password, "current_password")
    check_password(new_password)
    set_password(user, new_password)
    end_sessions(session, user)


def change_email(session: Session, user: User, new_email: str, password: str) -> None:
    """Give the user the address ``new_email`` (normalised), confirmed by their ``password``.

    Raises WrongPassword, or EmailTaken if another account has the address. The unique key
    finds it: of two changes to one address at once, the later waits for the earlier and gets
    EmailTaken once that commits. Sessions go on: the password, not the address, proves who
    signs in.
    """
    _confirm_password(user, password, "password")
    email = normalise_email(new_email)
    if email == user.email:
        return
    try:
        # A savepoint, flushed on exit, so a taken address fails here (after waiting for a
        # change to it that is not yet committed) and the caller's transaction stays usable;
        # rolling it back restores the user's old address.
        with session.begin_nested():
            user.email = email
    except IntegrityError:
        raise EmailTaken(EMAIL_TAKEN, {"email": [EMAIL_TAKEN]}) from None


def _confirm_password(user: User, password: str, field: str) -> None:
    """Raises WrongPassword, naming ``field``, unless ``password`` is the user's."""
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise WrongPassword(WRONG_PASSWORD, {field: [WRONG_PASSWORD]}) from None


def end_sessions(session: Session, user: User) -> None:
    """Sign the user out everywhere: every session and remember-me cookie stops working."""
    user.session_epoch = User.session_epoch + 1
    # Flushed now so the increment happens in the database (two sign-outs at once both
    # count) and ``user.session_epoch`` reads back the new value for the caller's new session.
    session.flush()


def user_for_session(session: Session, session_id: str) -> User | None:
    """The user a session or remember-me cookie names, if it names their current epoch."""
    user_id, _, rest = session_id.partition(":")
    epoch, _, _nonce = rest.partition(":")
    if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in (user_id, epoch)):
        return None
    user = session.get(User, int(user_id))
    if user is None or user.session_epoch != int(epoch):
        return None
    return user


def _hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(session: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a personal API token; returns the row and the secret, which is shown once."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name.strip(), prefix=secret[:10], token_hash=_hash_token(secret))
    session.add(token)
    return token, secret


def user_for_token(session: Session, secret: str) -> User | None:
    """The user behind an active token, or None. Records when the token was last used."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(secret)))
    if token is None or not token.active:
        return None
    token.last_used_at = utcnow()
    return token.user


def revoke_token(session: Session, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens. Raises TokenNotFound."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise TokenNotFound("No such token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token
