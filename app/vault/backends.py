"""Object stores for ciphertext, behind one ``Backend`` protocol.

``local`` keeps objects in a directory; ``s3`` in a bucket (AWS or any S3-compatible
endpoint). Provider errors are translated here, at the boundary: a missing object raises
``ObjectNotFound``, anything else the store does wrong ``StorageUnavailable``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
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


class ObjectReader(Protocol):
    """Bytes of one stored object from a starting offset; ``object_size`` is the whole object's."""

    object_size: int

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """Where ciphertext is kept. Keys are relative paths such as ``objects/ab/ab12…``."""

    def write(self, key: str, chunks: Iterable[bytes], size: int) -> None:
        """Store ``size`` bytes under ``key`` so that it appears whole or not at all.

        An exception from ``chunks`` leaves nothing stored and propagates unchanged.
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
def _local_errors(action: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(f"{action} local storage failed: {exc.strerror}.") from None


class _FileReader:
    def __init__(self, handle: Any, object_size: int, length: int | None) -> None:
        self._handle = handle
        self.object_size = object_size
        self._remaining = length

    def read(self, size: int, /) -> bytes:
        if self._remaining is not None:
            size = min(size, self._remaining)
        with _local_errors("Reading from"):
            data: bytes = self._handle.read(size)
        if self._remaining is not None:
            self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


class LocalBackend:
    """Objects as files under ``root``, written to a temporary file, fsynced, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def write(self, key: str, chunks: Iterable[bytes], size: int) -> None:
        path = self._path(key)
        with _local_errors("Writing to"):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb", buffering=0) as handle:
                for chunk in chunks:
                    view = memoryview(chunk)
                    with _local_errors("Writing to"):
                        while view:
                            view = view[handle.write(view) :]
                with _local_errors("Writing to"):
                    os.fsync(fd)
            with _local_errors("Writing to"):
                os.replace(temporary, path)
                fsync_directory(path.parent)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def open_range(self, key: str, offset: int = 0, length: int | None = None) -> ObjectReader:
        try:
            handle = open(self._path(key), "rb", buffering=0)  # noqa: SIM115 (the reader owns it)
        except FileNotFoundError:
            raise ObjectNotFound(f"No stored object has the key {key}.") from None
        except OSError as exc:
            raise StorageUnavailable(
                f"Reading from local storage failed: {exc.strerror}."
            ) from None
        try:
            with _local_errors("Reading from"):
                object_size = os.fstat(handle.fileno()).st_size
                handle.seek(offset)
        except StorageUnavailable:
            handle.close()
            raise
        return _FileReader(handle, object_size, length)

    def delete(self, key: str) -> None:
        with _local_errors("Deleting from"):
            self._path(key).unlink(missing_ok=True)


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
