"""Data keys (DEKs) and the versioned key-encryption keys (KEKs) that wrap them.

A keyring is written as ``VERSION:BASE64`` entries, separated by commas or newlines, e.g.
``MEGABOX_KEK="2:q1…=,1:Zm…="``. Each key is 32 bytes in standard or URL-safe base64, a
version is a positive integer, and the highest version wraps new data keys. In a file
(``MEGABOX_KEK_FILE`` or the embedded ``instance/kek``) ``#`` starts a comment.

A keyring read from a file follows that file: when another process (``megabox keys rotate``)
rewrites it, the next wrap or the first unknown version reloads it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.vault.backends import fsync_directory
from app.vault.errors import AuthenticationFailed, KekUnavailable
from app.vault.format import DEK_SIZE
from config import ConfigurationError

KEK_SIZE = 32
MAX_KEK_VERSION = 2**32 - 1
WRAP_AAD_LABEL = b"dek-wrap/v1"
WRAP_NONCE_SIZE = 12
WRAPPED_DEK_SIZE = WRAP_NONCE_SIZE + DEK_SIZE + 16
EMBEDDED_KEK_FILENAME = "kek"
ENV_ORIGIN = "MEGABOX_KEK"
_FILE_HEADER = (
    "# Megabox key-encryption keys, one VERSION:BASE64 per line; the highest version is current.\n"
    "# Keep every version that `megabox keys rotate` has not finished moving objects off.\n"
)
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")

logger = logging.getLogger(__name__)


def new_dek() -> bytes:
    return os.urandom(DEK_SIZE)


def new_kek() -> bytes:
    return os.urandom(KEK_SIZE)


def _wrap_aad(object_id: bytes, version: int) -> bytes:
    return WRAP_AAD_LABEL + object_id + version.to_bytes(4, "big")


def wrap_dek(kek: bytes, version: int, dek: bytes, object_id: bytes) -> bytes:
    """Wrap a DEK for one object: ``nonce ‖ AES-256-GCM(kek, dek, aad)``."""
    nonce = os.urandom(WRAP_NONCE_SIZE)
    return nonce + AESGCM(kek).encrypt(nonce, dek, _wrap_aad(object_id, version))


def unwrap_dek(kek: bytes, version: int, wrapped: bytes, object_id: bytes) -> bytes:
    """Unwrap an object's DEK.

    Raises AuthenticationFailed for the wrong KEK, another object's wrapped key or an
    altered one.
    """
    if len(wrapped) != WRAPPED_DEK_SIZE:
        raise AuthenticationFailed("The wrapped data key has the wrong length.")
    nonce, sealed = wrapped[:WRAP_NONCE_SIZE], wrapped[WRAP_NONCE_SIZE:]
    try:
        return AESGCM(kek).decrypt(nonce, sealed, _wrap_aad(object_id, version))
    except InvalidTag:
        raise AuthenticationFailed(
            "The data key did not unwrap: the wrong KEK, or a key that belongs to another object."
        ) from None


def parse_keks(text: str, origin: str) -> dict[int, bytes]:
    """Parse ``VERSION:BASE64`` entries.

    Raises ConfigurationError naming ``origin`` (and never a key) for a malformed entry.
    """
    keks: dict[int, bytes] = {}
    for line in text.splitlines():
        for entry in line.split("#", 1)[0].split(","):
            entry = entry.strip()
            if not entry:
                continue
            version_text, separator, key_text = entry.partition(":")
            version_text = version_text.strip()
            if not separator or not version_text.isdigit():
                raise ConfigurationError(f"{origin}: each key must be written VERSION:BASE64")
            version = int(version_text)
            if not 1 <= version <= MAX_KEK_VERSION:
                raise ConfigurationError(f"{origin}: version {version} is out of range")
            if version in keks:
                raise ConfigurationError(f"{origin}: version {version} appears twice")
            try:
                key = base64.b64decode(
                    key_text.strip().translate(_URLSAFE_TO_STANDARD), validate=True
                )
            except binascii.Error:
                raise ConfigurationError(f"{origin}: version {version} is not base64") from None
            if len(key) != KEK_SIZE:
                raise ConfigurationError(f"{origin}: version {version} is not a 32-byte key")
            keks[version] = key
    if not keks:
        raise ConfigurationError(f"{origin}: no key is configured")
    return keks


def format_keks(keks: Mapping[int, bytes], separator: str = ",") -> str:
    """Write keys as ``parse_keks`` reads them, newest first."""
    return separator.join(
        f"{version}:{base64.urlsafe_b64encode(keks[version]).decode()}"
        for version in sorted(keks, reverse=True)
    )


class Keyring:
    """The configured KEK versions. The highest version wraps; any configured version unwraps."""

    def __init__(self, keks: Mapping[int, bytes], origin: str, path: Path | None = None) -> None:
        self._keks = dict(keks)
        self.origin = origin
        self.path = path
        self._stamp = _file_stamp(path) if path is not None else None

    @classmethod
    def from_file(cls, path: Path) -> Keyring:
        """Read a keyring file. Raises ConfigurationError if it is missing or malformed."""
        origin = f"KEK file {path}"
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigurationError(f"{origin}: {exc.strerror}") from None
        return cls(parse_keks(text, origin), origin, path)

    @property
    def current_version(self) -> int:
        self._refresh()
        return max(self._keks)

    @property
    def versions(self) -> list[int]:
        return sorted(self._keks, reverse=True)

    @property
    def writable(self) -> bool:
        """Whether new versions can be saved here (a file), rather than set by an operator."""
        return self.path is not None

    def wrap(self, dek: bytes, object_id: bytes) -> tuple[bytes, int]:
        """Wrap a DEK under the current version; returns the wrapped key and that version."""
        version = self.current_version
        return wrap_dek(self._keks[version], version, dek, object_id), version

    def unwrap(self, wrapped: bytes, object_id: bytes, version: int) -> bytes:
        """Unwrap an object's DEK.

        Raises KekUnavailable if ``version`` is not configured, AuthenticationFailed if the
        wrapped key does not authenticate.
        """
        if version not in self._keks:
            self._refresh()
        kek = self._keks.get(version)
        if kek is None:
            # The origin may name a file: the log gets it, the message does not.
            logger.error("vault: KEK version %d is not configured in %s", version, self.origin)
            raise KekUnavailable(f"KEK version {version} is not configured.")
        return unwrap_dek(kek, version, wrapped, object_id)

    def with_new_version(self) -> dict[int, bytes]:
        """These keys plus a fresh one, one version above the current; nothing is saved."""
        keks = dict(self._keks)
        keks[self.current_version + 1] = new_kek()
        return keks

    def save(self, keks: Mapping[int, bytes]) -> None:
        """Replace this keyring's file with ``keks`` atomically (mode 0600) and use them.

        Raises ConfigurationError for a keyring set by the environment, OSError if the file
        cannot be written.
        """
        if self.path is None:
            raise ConfigurationError(f"{self.origin} is set by the operator and cannot be saved")
        _write_private(self.path, _FILE_HEADER + format_keks(keks, "\n") + "\n", replace=True)
        self._keks = dict(keks)
        self._stamp = _file_stamp(self.path)

    def _refresh(self) -> None:
        if self.path is None:
            return
        stamp = _file_stamp(self.path)
        if stamp is not None and stamp != self._stamp:
            fresh = Keyring.from_file(self.path)
            self._keks, self._stamp = fresh._keks, fresh._stamp


def load_keyring(kek: str, kek_file: str, instance_path: str) -> Keyring:
    """The keyring from ``MEGABOX_KEK``, else ``MEGABOX_KEK_FILE``, else ``instance/kek``.

    The embedded ``instance/kek`` is generated (mode 0600, version 1) on first use.
    Raises ConfigurationError for a malformed or unreadable keyring.
    """
    if kek:
        return Keyring(parse_keks(kek, ENV_ORIGIN), ENV_ORIGIN)
    if kek_file:
        return Keyring.from_file(Path(kek_file).expanduser())
    path = Path(instance_path) / EMBEDDED_KEK_FILENAME
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_private(path, _FILE_HEADER + format_keks({1: new_kek()}, "\n") + "\n", replace=False)
    return Keyring.from_file(path)


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def _write_private(path: Path, text: str, *, replace: bool) -> None:
    """Write ``text`` to ``path`` (mode 0600) so that readers see the old file or the new one.

    With ``replace=False`` an existing file wins, which settles a race between two first runs.
    """
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            with suppress(FileExistsError):
                os.link(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    fsync_directory(path.parent)
