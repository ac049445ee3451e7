"""Account rules: sign-up, credentials and API tokens. Callers own the transaction."""

from __future__ import annotations

import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.errors import EmailTaken, InvalidCredentials, TokenNotFound
from app.accounts.models import ApiToken, User
from app.timestamps import utcnow

TOKEN_PREFIX = "mbx_"
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


def create_user(
    session: Session, email: str, password: str, display_name: str, is_admin: bool = False
) -> User:
    """Create a user with an argon2 password hash. Raises EmailTaken."""
    if find_user_by_email(session, email) is not None:
        raise EmailTaken("An account with that e-mail address already exists.", {"email": email})
    user = User(
        email=normalise_email(email),
        display_name=display_name.strip(),
        password_hash=_hasher.hash(password),
        is_admin=is_admin,
    )
    session.add(user)
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
