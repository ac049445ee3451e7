"""Vault errors.

Every way an object or its key can fail to authenticate (a flipped bit, truncation,
reordering, splicing, trailing bytes, the wrong key) raises the one type
``AuthenticationFailed``; callers never have to tell those cases apart.
"""

from app.errors import DomainError, InvalidInput, NotFound


class VaultError(DomainError):
    """A stored object or its keys could not be used. The platform, not the caller, is at fault."""

    code = "vault_error"
    status = 500


class AuthenticationFailed(VaultError):
    """An object, its header or its wrapped data key failed authentication."""

    code = "vault_authentication_failed"


class KekUnavailable(VaultError):
    """A data key is wrapped under a KEK version that is not configured."""

    code = "vault_kek_unavailable"


class StorageUnavailable(VaultError):
    """The object store failed; the provider's own error is named in the message."""

    code = "vault_storage_unavailable"
    status = 503


class ObjectNotFound(NotFound):
    code = "vault_object_not_found"


class InvalidRange(InvalidInput):
    code = "range_not_satisfiable"
    status = 416


class SizeMismatch(InvalidInput):
    """The input held more or fewer bytes than the size it was declared with."""

    code = "vault_size_mismatch"


class InvalidKind(InvalidInput):
    code = "vault_invalid_kind"
