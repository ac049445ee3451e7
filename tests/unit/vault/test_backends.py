"""One contract for every object store: local directory and S3 (moto's server, over HTTP)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig

from app.vault.backends import (
    S3_MIN_PART_BYTES,
    Backend,
    LocalBackend,
    ObjectReader,
    backend_from_config,
)
from app.vault.errors import ObjectNotFound, StorageUnavailable
from app.vault.s3 import S3Backend
from config import ConfigurationError
from tests.unit.vault.s3_server import REGION

KEY = "objects/ab/ab0123"


def settings(storage_url: str, tmp_path: Path, endpoint: str = "") -> dict[str, Any]:
    return {
        "STORAGE_URL": storage_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "S3_ENDPOINT_URL": endpoint,
        "S3_REGION": REGION,
        "S3_MULTIPART_THRESHOLD_BYTES": S3_MIN_PART_BYTES,
        "S3_MULTIPART_CHUNK_BYTES": S3_MIN_PART_BYTES,
    }


def new_bucket(endpoint: str) -> Any:
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    bucket = f"vault-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return backend_from_config(settings(f"file://{tmp_path}/store", tmp_path))
    endpoint = request.getfixturevalue("s3_endpoint")
    _, bucket = new_bucket(endpoint)
    return backend_from_config(settings(f"s3://{bucket}/tenant/vault", tmp_path, endpoint))


def read_some(reader: ObjectReader, size: int) -> bytes:
    buffer = bytearray(size)
    return bytes(buffer[: reader.readinto(memoryview(buffer))])


def read_all_of(reader: ObjectReader, size: int) -> bytes:
    """Up to ``size`` bytes, fewer only at the end: one readinto may give less."""
    parts = bytearray()
    while len(parts) < size and (chunk := read_some(reader, size - len(parts))):
        parts += chunk
    return bytes(parts)


def read_all(backend: Backend, key: str, offset: int = 0, length: int | None = None) -> bytes:
    reader = backend.open_range(key, offset, length)
    try:
        parts = []
        while chunk := read_all_of(reader, 1 << 20):
            parts.append(chunk)
        return b"".join(parts)
    finally:
        reader.close()


def in_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_an_object_reads_back_whole(backend: Backend) -> None:
    data = os.urandom(100_000)
    backend.write(KEY, in_chunks(data, 7_000), len(data))
    reader = backend.open_range(KEY)
    assert reader.object_size == len(data)
    reader.close()
    assert read_all(backend, KEY) == data


def test_an_empty_object_reads_back_empty(backend: Backend) -> None:
    backend.write(KEY, iter([]), 0)
    assert read_all(backend, KEY) == b""


def test_a_range_comes_back_from_one_read(backend: Backend) -> None:
    data = os.urandom(50_000)
    backend.write(KEY, in_chunks(data, 50_000), len(data))
    reader = backend.open_range(KEY, 1234, 20_000)
    try:
        assert reader.object_size == len(data)
        assert read_all_of(reader, 20_000) == data[1234:21234]
        assert read_some(reader, 1) == b""
    finally:
        reader.close()


def test_a_range_past_the_end_is_short_and_still_gives_the_size(backend: Backend) -> None:
    data = os.urandom(1000)
    backend.write(KEY, [data], len(data))
    assert read_all(backend, KEY, 900, 500) == data[900:]
    reader = backend.open_range(KEY, 5000, 10)
    try:
        assert (read_some(reader, 10), reader.object_size) == (b"", len(data))
    finally:
        reader.close()


def test_a_zero_length_range_is_empty(backend: Backend) -> None:
    backend.write(KEY, [b"abc"], 3)
    assert read_all(backend, KEY, 1, 0) == b""


def test_a_missing_object_is_not_found(backend: Backend) -> None:
    with pytest.raises(ObjectNotFound):
        backend.open_range("objects/00/missing")


def test_delete_removes_and_is_idempotent(backend: Backend) -> None:
    backend.write(KEY, [b"ciphertext"], 10)
    backend.delete(KEY)
    with pytest.raises(ObjectNotFound):
        backend.open_range(KEY)
    backend.delete(KEY)


class ProducerFailed(Exception):
    pass


@pytest.mark.parametrize("size", [10_000, 2 * S3_MIN_PART_BYTES + 1], ids=["small", "multipart"])
def test_a_failing_producer_leaves_nothing_stored(backend: Backend, size: int) -> None:
    def failing() -> Iterator[bytes]:
        yield os.urandom(S3_MIN_PART_BYTES + 1)
        raise ProducerFailed

    with pytest.raises(ProducerFailed):
        backend.write(KEY, failing(), size)
    with pytest.raises(ObjectNotFound):
        backend.open_range(KEY)


def test_a_large_object_round_trips_across_its_parts(backend: Backend) -> None:
    data = os.urandom(2 * S3_MIN_PART_BYTES + 12345)
    backend.write(KEY, in_chunks(data, 1 << 20), len(data))
    assert read_all(backend, KEY) == data
    boundary = S3_MIN_PART_BYTES
    assert read_all(backend, KEY, boundary - 10, 20) == data[boundary - 10 : boundary + 10]


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "objects/../../escape", "objects//x", ".hidden"]
)
def test_a_key_that_is_not_a_plain_relative_path_is_refused(backend: Backend, key: str) -> None:
    with pytest.raises(ValueError):
        backend.write(key, [b"x"], 1)


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    backend = LocalBackend(tmp_path)

    def failing() -> Iterator[bytes]:
        yield b"partial"
        raise ProducerFailed

    with pytest.raises(ProducerFailed):
        backend.write(KEY, failing(), 100)
    backend.write("objects/ab/kept", [b"kept"], 4)
    assert sorted(p.name for p in (tmp_path / "objects" / "ab").iterdir()) == ["kept"]


def test_s3_multipart_uploads_are_aborted_when_the_producer_fails(
    s3_endpoint: str, tmp_path: Path
) -> None:
    client, bucket = new_bucket(s3_endpoint)
    backend = backend_from_config(settings(f"s3://{bucket}", tmp_path, s3_endpoint))

    def failing() -> Iterator[bytes]:
        yield os.urandom(S3_MIN_PART_BYTES + 1)
        raise ProducerFailed

    with pytest.raises(ProducerFailed):
        backend.write(KEY, failing(), 3 * S3_MIN_PART_BYTES)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_s3_keys_live_under_the_prefix(s3_endpoint: str, tmp_path: Path) -> None:
    client, bucket = new_bucket(s3_endpoint)
    backend = backend_from_config(settings(f"s3://{bucket}/tenant/vault/", tmp_path, s3_endpoint))
    backend.write(KEY, [b"x"], 1)
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [item["Key"] for item in listed] == [f"tenant/vault/{KEY}"]


def assert_generic(error: pytest.ExceptionInfo[Exception], *internal: str) -> None:
    """The message a user may see names none of the internal details."""
    for detail in internal:
        assert detail not in str(error.value)


def test_s3_errors_are_normalised_at_the_boundary(
    s3_endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing_bucket = backend_from_config(settings("s3://no-such-bucket", tmp_path, s3_endpoint))
    with pytest.raises(StorageUnavailable, match="File storage is unavailable") as refused:
        missing_bucket.write(KEY, [b"x"], 1)
    assert_generic(refused, KEY, "NoSuchBucket", "S3")
    assert f"S3 refused the request for {KEY}: NoSuchBucket" in caplog.text
    unreachable = S3Backend(
        boto3.client(
            "s3",
            endpoint_url="http://127.0.0.1:9",
            region_name=REGION,
            config=BotoConfig(retries={"max_attempts": 1}, connect_timeout=1),
        ),
        "bucket",
        "",
        multipart_threshold=S3_MIN_PART_BYTES,
        part_size=S3_MIN_PART_BYTES,
    )
    with pytest.raises(StorageUnavailable, match="File storage is unavailable") as unreached:
        unreachable.open_range(KEY)
    assert_generic(unreached, KEY, "127.0.0.1")
    assert f"S3 could not be reached for {KEY}" in caplog.text


def test_a_missing_object_names_neither_its_key_nor_its_path(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ObjectNotFound) as missing:
        backend.open_range(KEY)
    assert_generic(missing, KEY, "/")
    assert KEY in caplog.text


def test_a_local_storage_failure_names_no_path(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "store"
    root.write_bytes(b"a file where the directory should be")
    with pytest.raises(StorageUnavailable) as failed:
        LocalBackend(root).write(KEY, [b"x"], 1)
    assert_generic(failed, str(root), KEY)
    assert str(root) in caplog.text


def test_the_default_store_is_the_instance_vault_directory(tmp_path: Path) -> None:
    backend = backend_from_config(settings("", tmp_path))
    assert isinstance(backend, LocalBackend)
    assert backend.root == tmp_path / "instance" / "vault"


def test_an_s3_url_names_the_bucket_and_prefix(tmp_path: Path) -> None:
    backend = backend_from_config(settings("s3://masters/eu/vault", tmp_path, "http://127.0.0.1:9"))
    assert isinstance(backend, S3Backend)
    assert (backend.bucket, backend.prefix) == ("masters", "eu/vault")


@pytest.mark.parametrize("url", ["file://relative/path", "ftp://host/x", "s3://", "/plain/path"])
def test_an_unknown_storage_url_is_a_configuration_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MEGABOX_STORAGE_URL"):
        backend_from_config(settings(url, tmp_path))


def test_parts_below_the_s3_minimum_are_a_configuration_error(tmp_path: Path) -> None:
    config = settings("s3://bucket", tmp_path) | {"S3_MULTIPART_CHUNK_BYTES": 1024}
    with pytest.raises(ConfigurationError, match="S3_MULTIPART_CHUNK_BYTES"):
        backend_from_config(config)
