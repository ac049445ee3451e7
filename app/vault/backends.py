"""Object stores for ciphertext, behind one ``Backend`` protocol.

``local`` keeps objects in a directory; ``s3`` in a bucket (AWS or any S3-compatible
endpoint). Provider errors are translated here, at the boundary: a missing object raises
``ObjectNotFound``, anything else the store does wrong ``StorageUnavailable``. Their messages
are the generic ones of ``app.vault.errors``; keys, paths and the provider's own words go to
the log only.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from app.vault.errors import ObjectNotFound, StorageUnavailable
from config import ConfigurationError

LOCAL_DIRNAME = "vault"
# S3 rejects parts below 5 MiB (except the last) and uploads of more than 10,000 parts.
S3_MIN_PART_BYTES = 5 * 1024 * 1024
S3_MAX_PARTS = 10_000
_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")

logger = logging.getLogger(__name__)


class ObjectReader(Protocol):
    """Bytes of one stored object from a starting offset; ``object_size`` is the whole object's."""

    object_size: int

    def readinto(self, buffer: memoryview, /) -> int:
        """Fill up to ``len(buffer)`` bytes; returns how many, 0 at the end of the range."""
        ...

    def close(self) -> None: ...


class Backend(Protocol):
    """Where ciphertext is kept. Keys are relative paths such as ``objects/ab/ab12…``."""

    def write(self, key: str, chunks: Iterable[bytes | memoryview], size: int) -> None:
        """Store ``size`` bytes under ``key`` so that it appears whole or not at all.

        A chunk is valid only until the next is requested (the vault reuses its buffers), so
        a backend copies what it keeps. An exception from ``chunks`` leaves nothing stored
        and propagates unchanged.
        """
        ...

    def open_range(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        """Read ``length`` bytes (to the end if None) from ``offset`` with one seek or ranged GET.

        Past the end of the object, the reader gives fewer bytes or none. Raises ObjectNotFound.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is already removed."""
        ...


def check_key(key: str) -> str:
    """Raises ValueError unless ``key`` is a plain relative path of safe names."""
    if not _KEY_PATTERN.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"not a valid object key: {key!r}")
    return key


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _local_errors(action: str, path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        logger.error("vault: %s %s failed: %s", action, path, exc.strerror)
        raise StorageUnavailable() from None


class _FileReader:
    def __init__(self, handle: Any, path: Path, object_size: int, length: int | None) -> None:
        self._handle = handle
        self._path = path
        self.object_size = object_size
        self._remaining = length

    def readinto(self, buffer: memoryview, /) -> int:
        if self._remaining is not None:
            buffer = buffer[: self._remaining]
        with _local_errors("reading", self._path):
            count: int = self._handle.readinto(buffer)
        if self._remaining is not None:
            self._remaining -= count
        return count

    def close(self) -> None:
        self._handle.close()


class LocalBackend:
    """Objects as files under ``root``, written to a temporary file, fsynced, then renamed.

    While an object is written, the kernel is asked to start writing out each batch as soon
    as it is handed over, so the disk works while the vault encrypts the next one, and the
    closing fsync waits for the last batches rather than for the whole object.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def write(self, key: str, chunks: Iterable[bytes | memoryview], size: int) -> None:
        path = self._path(key)
        with _local_errors("writing", path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb", buffering=0) as handle:
                written = 0
                for chunk in chunks:
                    view = memoryview(chunk)
                    with _local_errors("writing", path):
                        while view:
                            view = view[handle.write(view) :]
                    _start_writeback(fd, written, len(chunk))
                    written += len(chunk)
                with _local_errors("writing", path):
                    os.fsync(fd)
            with _local_errors("writing", path):
                os.replace(temporary, path)
                fsync_directory(path.parent)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def open_range(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        path = self._path(key)
        try:
            handle = open(path, "rb", buffering=0)  # noqa: SIM115 (the reader owns it)
        except FileNotFoundError:
            logger.error("vault: no stored object at %s", path)
            raise ObjectNotFound() from None
        except OSError as exc:
            logger.error("vault: opening %s failed: %s", path, exc.strerror)
            raise StorageUnavailable() from None
        try:
            with _local_errors("reading", path):
                object_size = os.fstat(handle.fileno()).st_size
                handle.seek(offset)
        except StorageUnavailable:
            handle.close()
            raise
        return _FileReader(handle, path, object_size, length)

    def delete(self, key: str) -> None:
        path = self._path(key)
        with _local_errors("deleting", path):
            path.unlink(missing_ok=True)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing out bytes already written, without waiting for them (where the OS can).

    On Linux, POSIX_FADV_DONTNEED starts the writeback of the range's dirty pages (and drops
    pages that are already clean). It is only advice, so a failure is ignored.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        with suppress(OSError):
            advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def backend_from_config(config: Mapping[str, Any]) -> Backend:
    """The backend that ``STORAGE_URL`` names.

    ``""`` is ``instance/vault``; ``file:///abs/path`` a directory; ``s3://bucket/prefix`` a
    bucket, at ``S3_ENDPOINT_URL`` if set. Raises ConfigurationError for any other URL.
    """
    url = config["STORAGE_URL"]
    if not url:
        return LocalBackend(Path(config["INSTANCE_PATH"]) / LOCAL_DIRNAME)
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        return LocalBackend(Path(unquote(parts.path)))
    if parts.scheme == "s3" and parts.netloc:
        # boto3 is imported only here: it costs a process tens of MiB it would not use.
        from app.vault.s3 import s3_backend

        return s3_backend(config, parts.netloc, unquote(parts.path))
    raise ConfigurationError(
        "MEGABOX_STORAGE_URL must be empty, file:///absolute/path or s3://bucket/prefix"
    )
