"""Vault errors.

Every way an object or its key can fail to authenticate (a flipped bit, truncation,
reordering, splicing, trailing bytes, the wrong key) raises the one type
``AuthenticationFailed``; callers never have to tell those cases apart.

A message may reach a user, so it never names a storage key, a path, a KEK file or the
provider: whoever raises logs those. The errors of the store and the keyring have a generic
default message for that reason.
"""

from typing import Any

from app.errors import DomainError, InvalidInput, NotFound


class VaultError(DomainError):
    """A stored object or its keys could not be used. The platform, not the caller, is at fault."""

    code = "vault_error"
    status = 500
    default_message = "A stored file could not be read."

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None) -> None:
        super().__init__(message or self.default_message, details)


class AuthenticationFailed(VaultError):
    """An object, its header or its wrapped data key failed authentication."""

    code = "vault_authentication_failed"


class KekUnavailable(VaultError):
    """A data key is wrapped under a KEK version that is not configured."""

    code = "vault_kek_unavailable"
    default_message = "A key needed to read a stored file is not configured."


class StorageUnavailable(VaultError):
    """The object store failed. ``provider_code`` is the store's own error code, if any; it
    is for the vault's code and the log, never for the message."""

    code = "vault_storage_unavailable"
    status = 503
    default_message = "File storage is unavailable. Try again later."

    def __init__(self, message: str | None = None, *, provider_code: str = "") -> None:
        super().__init__(message)
        self.provider_code = provider_code


class ObjectNotFound(NotFound):
    code = "vault_object_not_found"

    def __init__(
        self, message: str = "The stored file is missing.", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, details)


class InvalidRange(InvalidInput):
    code = "range_not_satisfiable"
    status = 416


class SizeMismatch(InvalidInput):
    """The input held more or fewer bytes than the size it was declared with."""

    code = "vault_size_mismatch"


class InvalidKind(InvalidInput):
    code = "vault_invalid_kind"
