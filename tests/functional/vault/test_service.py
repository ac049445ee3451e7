"""The vault facade on a real database and store: storing, reading, verifying, deleting."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask
from sqlalchemy import select

from app.vault import service as vault
from app.vault.errors import (
    AuthenticationFailed,
    InvalidKind,
    InvalidRange,
    KekUnavailable,
    ObjectNotFound,
    SizeMismatch,
)
from app.vault.format import HEADER_SIZE, TAG_SIZE
from app.vault.keys import Keyring, new_dek, new_kek, parse_keks, wrap_dek
from app.vault.models import VaultObject
from tests.functional.vault.conftest import SEGMENT_LOG2

PS = 1 << SEGMENT_LOG2
SIZES = [0, 1, PS - 1, PS, PS + 1, 2 * PS, 3 * PS + 17]


def data_of(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def put_bytes(session: Any, data: bytes) -> VaultObject:
    return vault.put_stream(session, io.BytesIO(data), kind="master", size=len(data))


def stored_file(app: Flask, stored: VaultObject) -> Path:
    return Path(app.instance_path) / "vault" / stored.backend_key


def plaintext(session: Any, object_id: str) -> bytes:
    return b"".join(vault.iter_plaintext(session, object_id))


@pytest.mark.parametrize("size", SIZES)
def test_a_file_round_trips_with_its_size_and_sha256(
    session: Any, tmp_path: Path, size: int
) -> None:
    data = data_of(size)
    source = tmp_path / "master.flac"
    source.write_bytes(data)
    object_id = vault.put_path(session, source, kind="master", content_type="audio/flac").id
    session.commit()
    session.expunge_all()
    record = vault.get_object(session, object_id)
    assert (record.size, record.kind, record.content_type) == (size, "master", "audio/flac")
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert plaintext(session, object_id) == data


def test_a_stream_of_unknown_size_is_spooled_and_stored(session: Any) -> None:
    data = data_of(5 * PS + 3)
    stored = vault.put_stream(session, io.BytesIO(data), kind="rendition")
    session.commit()
    assert (stored.size, plaintext(session, stored.id)) == (len(data), data)


@pytest.mark.parametrize("declared", [PS - 1, PS + 1])
def test_a_stream_that_is_not_its_declared_size_stores_nothing(
    app: Flask, session: Any, declared: int
) -> None:
    with pytest.raises(SizeMismatch):
        vault.put_stream(session, io.BytesIO(data_of(PS)), kind="master", size=declared)
    session.commit()
    assert session.scalars(select(VaultObject)).all() == []
    assert [p for p in (Path(app.instance_path) / "vault").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("kind", ["", "k" * 33])
def test_a_kind_must_be_a_short_label(session: Any, kind: str) -> None:
    with pytest.raises(InvalidKind):
        vault.put_stream(session, io.BytesIO(b"x"), kind=kind, size=1)


def test_ranges_read_exactly_the_plaintext_slice(session: Any) -> None:
    data = data_of(7 * PS + 19)
    stored = put_bytes(session, data)
    session.commit()
    rng = random.Random(7)
    ranges = [(0, 0), (PS - 1, PS), (PS, 3 * PS - 1), (6 * PS + 3, len(data) - 1)]
    for _ in range(40):
        start = rng.randrange(len(data))
        ranges.append((start, rng.randrange(start, len(data))))
    for start, end in ranges:
        assert vault.read_range(session, stored.id, start, end) == data[start : end + 1]
        assert (
            b"".join(vault.open_range_stream(session, stored.id, start, end))
            == data[start : end + 1]
        )


@pytest.mark.parametrize(("start", "end"), [(5, 4), (0, 3 * PS), (-1, 0)])
def test_a_range_outside_the_object_is_refused_before_any_read(
    session: Any, start: int, end: int
) -> None:
    stored = put_bytes(session, data_of(3 * PS))
    with pytest.raises(InvalidRange):
        vault.open_range_stream(session, stored.id, start, end)


def test_the_plaintext_never_appears_in_the_stored_object(app: Flask, session: Any) -> None:
    marker = b"<<MEGABOX PLAINTEXT MARKER>>"
    stored = put_bytes(session, marker * 100)
    session.commit()
    raw = stored_file(app, stored).read_bytes()
    assert marker not in raw and marker[:10] not in raw
    assert len(raw) == HEADER_SIZE + stored.size + TAG_SIZE * -(-stored.size // PS)


def test_the_same_input_stored_twice_gives_different_objects(app: Flask, session: Any) -> None:
    data = data_of(2 * PS)
    first, second = put_bytes(session, data), put_bytes(session, data)
    assert first.id != second.id
    assert first.sha256 == second.sha256
    assert stored_file(app, first).read_bytes() != stored_file(app, second).read_bytes()
    assert first.wrapped_dek != second.wrapped_dek


def test_the_wrapped_dek_is_only_in_the_database(app: Flask, session: Any) -> None:
    stored = put_bytes(session, data_of(PS))
    assert stored.wrapped_dek not in stored_file(app, stored).read_bytes()


@pytest.mark.parametrize(
    "call",
    [
        lambda s: vault.get_object(s, "0" * 32),
        lambda s: vault.read_range(s, "0" * 32, 0, 0),
        lambda s: vault.iter_plaintext(s, "0" * 32),
        lambda s: vault.verify(s, "not-an-id"),
        lambda s: vault.delete(s, "0" * 32),
    ],
    ids=["get_object", "read_range", "iter_plaintext", "verify", "delete"],
)
def test_an_unknown_object_is_not_found(session: Any, call: Callable[[Any], Any]) -> None:
    with pytest.raises(ObjectNotFound):
        call(session)


# The ciphertext follows the transaction.


def test_a_committed_put_keeps_its_ciphertext(app: Flask, session: Any) -> None:
    stored = put_bytes(session, b"kept")
    object_id, path = stored.id, stored_file(app, stored)
    session.commit()
    session.close()
    assert path.exists()
    assert plaintext(session, object_id) == b"kept"


def test_a_rolled_back_put_leaves_no_ciphertext(app: Flask, session: Any) -> None:
    stored = put_bytes(session, b"rolled back")
    path = stored_file(app, stored)
    assert path.exists()
    session.rollback()
    assert not path.exists()


def test_a_put_after_a_flush_is_removed_by_the_rollback(app: Flask, session: Any) -> None:
    stored = put_bytes(session, b"flushed")
    session.flush()
    session.rollback()
    assert not stored_file(app, stored).exists()


def test_a_rolled_back_savepoint_removes_only_its_own_puts(app: Flask, session: Any) -> None:
    outer = put_bytes(session, b"outer")
    savepoint = session.begin_nested()
    inner = put_bytes(session, b"inner")
    savepoint.rollback()
    assert not stored_file(app, inner).exists()
    session.commit()
    assert plaintext(session, outer.id) == b"outer"


def test_a_released_savepoint_goes_with_the_outer_rollback(app: Flask, session: Any) -> None:
    outer = put_bytes(session, b"outer")
    # The outer transaction has written before its savepoint, as an ingest does (and as
    # pysqlite needs: there, a savepoint opened before any write commits on release).
    session.flush()
    with session.begin_nested():
        inner = put_bytes(session, b"inner")
    paths = [stored_file(app, outer), stored_file(app, inner)]
    assert all(path.exists() for path in paths)
    session.rollback()
    assert not any(path.exists() for path in paths)
    assert session.scalars(select(VaultObject)).all() == []


def test_a_session_closed_without_commit_removes_its_puts(app: Flask, session: Any) -> None:
    path = stored_file(app, put_bytes(session, b"abandoned"))
    session.close()
    assert not path.exists()


def test_delete_shreds_the_key_and_then_the_ciphertext_after_commit(
    app: Flask, session: Any
) -> None:
    stored = put_bytes(session, b"to be deleted")
    session.commit()
    object_id, path = stored.id, stored_file(app, stored)
    vault.delete(session, object_id)
    assert path.exists()
    session.commit()
    assert not path.exists()
    assert session.scalars(select(VaultObject.wrapped_dek)).all() == []
    with pytest.raises(ObjectNotFound):
        vault.read_range(session, object_id, 0, 0)


def test_a_delete_in_a_released_savepoint_goes_with_the_outer_rollback(
    app: Flask, session: Any
) -> None:
    stored = put_bytes(session, b"survivor")
    session.commit()
    object_id = stored.id
    put_bytes(session, b"written first")
    session.flush()
    with session.begin_nested():
        vault.delete(session, object_id)
    session.rollback()
    assert plaintext(session, object_id) == b"survivor"


def test_a_rolled_back_delete_keeps_the_object(app: Flask, session: Any) -> None:
    stored = put_bytes(session, b"survivor")
    session.commit()
    object_id = stored.id
    vault.delete(session, object_id)
    session.rollback()
    assert plaintext(session, object_id) == b"survivor"


# Failing closed.


def flip_body_byte(raw: bytearray) -> None:
    raw[HEADER_SIZE + PS + 5] ^= 0x01


def flip_header_byte(raw: bytearray) -> None:
    raw[40] ^= 0x01


def flip_final_tag(raw: bytearray) -> None:
    raw[-1] ^= 0x01


def truncate_at_segment_boundary(raw: bytearray) -> None:
    del raw[HEADER_SIZE + PS + TAG_SIZE :]


def truncate_mid_segment(raw: bytearray) -> None:
    del raw[-20:]


def truncate_to_header(raw: bytearray) -> None:
    del raw[HEADER_SIZE:]


def truncate_to_nothing(raw: bytearray) -> None:
    raw.clear()


def append_garbage(raw: bytearray) -> None:
    raw += b"\x00" * 16


DAMAGE = [
    flip_body_byte,
    flip_header_byte,
    flip_final_tag,
    truncate_at_segment_boundary,
    truncate_mid_segment,
    truncate_to_header,
    truncate_to_nothing,
    append_garbage,
]


def damage_stored(app: Flask, stored: VaultObject, damage: Callable[[bytearray], None]) -> None:
    path = stored_file(app, stored)
    raw = bytearray(path.read_bytes())
    damage(raw)
    path.write_bytes(raw)


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_object_fails_verify_and_a_full_read(
    app: Flask, session: Any, damage: Callable[[bytearray], None]
) -> None:
    stored = put_bytes(session, data_of(3 * PS + 17))
    session.commit()
    damage_stored(app, stored, damage)
    with pytest.raises(AuthenticationFailed):
        vault.verify(session, stored.id)
    with pytest.raises(AuthenticationFailed):
        plaintext(session, stored.id)


@pytest.mark.parametrize("damage", [d for d in DAMAGE if d is not flip_header_byte])
def test_a_range_over_damaged_segments_fails(
    app: Flask, session: Any, damage: Callable[[bytearray], None]
) -> None:
    stored = put_bytes(session, data_of(3 * PS + 17))
    damage_stored(app, stored, damage)
    with pytest.raises(AuthenticationFailed):
        vault.read_range(session, stored.id, 0, stored.size - 1)


def test_a_range_read_authenticates_against_the_recorded_header(app: Flask, session: Any) -> None:
    # A range read fetches only segments; their AAD is the header kept in the record, so
    # a damaged stored header cannot change what it returns (verify reports the damage).
    data = data_of(3 * PS + 17)
    stored = put_bytes(session, data)
    damage_stored(app, stored, flip_header_byte)
    assert vault.read_range(session, stored.id, 0, len(data) - 1) == data


@pytest.mark.parametrize(
    "damage", [truncate_at_segment_boundary, truncate_to_nothing, append_garbage]
)
def test_a_wrong_sized_object_fails_before_the_first_byte(
    app: Flask, session: Any, damage: Callable[[bytearray], None]
) -> None:
    stored = put_bytes(session, data_of(3 * PS))
    damage_stored(app, stored, damage)
    with pytest.raises(AuthenticationFailed):
        vault.iter_plaintext(session, stored.id)


def test_one_objects_header_on_anothers_body_fails(app: Flask, session: Any) -> None:
    first, second = put_bytes(session, data_of(2 * PS)), put_bytes(session, data_of(2 * PS))
    body = stored_file(app, second).read_bytes()[HEADER_SIZE:]
    stored_file(app, second).write_bytes(stored_file(app, first).read_bytes()[:HEADER_SIZE] + body)
    with pytest.raises(AuthenticationFailed):
        vault.verify(session, second.id)


def test_a_segment_spliced_from_another_object_fails(app: Flask, session: Any) -> None:
    first, second = put_bytes(session, data_of(2 * PS)), put_bytes(session, data_of(2 * PS))
    raw = bytearray(stored_file(app, second).read_bytes())
    segment = slice(HEADER_SIZE, HEADER_SIZE + PS + TAG_SIZE)
    raw[segment] = stored_file(app, first).read_bytes()[segment]
    stored_file(app, second).write_bytes(raw)
    with pytest.raises(AuthenticationFailed):
        vault.read_range(session, second.id, 0, 0)


def test_a_wrong_recorded_sha256_fails_verify(session: Any) -> None:
    stored = put_bytes(session, data_of(PS))
    stored.sha256 = "0" * 64
    with pytest.raises(AuthenticationFailed):
        vault.verify(session, stored.id)


def test_a_missing_ciphertext_is_not_found(app: Flask, session: Any) -> None:
    stored = put_bytes(session, data_of(PS))
    stored_file(app, stored).unlink()
    with pytest.raises(ObjectNotFound):
        vault.verify(session, stored.id)


def test_a_wrapped_dek_moved_to_another_object_fails(session: Any) -> None:
    first, second = put_bytes(session, data_of(PS)), put_bytes(session, data_of(PS))
    second.wrapped_dek = first.wrapped_dek
    with pytest.raises(AuthenticationFailed):
        vault.read_range(session, second.id, 0, 0)


def test_the_wrong_dek_fails(app: Flask, session: Any) -> None:
    stored = put_bytes(session, data_of(PS))
    kek = parse_keks((Path(app.instance_path) / "kek").read_text(), "kek")[stored.kek_version]
    stored.wrapped_dek = wrap_dek(kek, stored.kek_version, new_dek(), bytes.fromhex(stored.id))
    with pytest.raises(AuthenticationFailed):
        vault.read_range(session, stored.id, 0, 0)


def test_the_wrong_kek_fails(session: Any) -> None:
    stored = put_bytes(session, data_of(PS))
    vault.current_vault().keyring = Keyring({stored.kek_version: new_kek()}, "a test keyring")
    with pytest.raises(AuthenticationFailed):
        vault.read_range(session, stored.id, 0, 0)


def test_a_kek_version_that_is_not_configured_is_named(session: Any) -> None:
    stored = put_bytes(session, data_of(PS))
    vault.current_vault().keyring = Keyring({stored.kek_version + 1: new_kek()}, "a test keyring")
    with pytest.raises(KekUnavailable, match=f"version {stored.kek_version}"):
        vault.verify(session, stored.id)


def test_the_vault_is_built_once_per_app(app: Flask) -> None:
    assert vault.current_vault() is vault.current_vault() is app.extensions["vault"]
    assert (Path(app.instance_path) / "kek").exists()


def test_the_vault_works_on_s3(make_app: Any, s3_endpoint: str) -> None:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="vault-facade")
    s3_app = make_app(
        STORAGE_URL="s3://vault-facade/masters",
        S3_ENDPOINT_URL=s3_endpoint,
        VAULT_SEGMENT_SIZE_LOG2=SEGMENT_LOG2,
    )
    from app.extensions import db

    def stored_keys() -> list[str]:
        return [
            item["Key"]
            for item in client.list_objects_v2(Bucket="vault-facade").get("Contents", [])
        ]

    with s3_app.app_context():
        data = data_of(4 * PS + 9)
        kept = put_bytes(db.session, data)
        db.session.commit()
        dropped = put_bytes(db.session, data)
        db.session.rollback()
        assert stored_keys() == [f"masters/{kept.backend_key}"]
        assert dropped.backend_key not in stored_keys()
        assert (
            vault.read_range(db.session, kept.id, PS - 2, 2 * PS + 1) == data[PS - 2 : 2 * PS + 2]
        )
        vault.verify(db.session, kept.id)
        vault.delete(db.session, kept.id)
        db.session.commit()
        assert stored_keys() == []


# The seekable reader behind HTTP range requests.


def test_the_reader_reads_any_range_after_any_seek(session: Any) -> None:
    data = data_of(5 * PS + 41)
    stored = put_bytes(session, data)
    rng = random.Random(5)
    with vault.open_reader(session, stored.id) as reader:
        assert (reader.seekable(), reader.size) == (True, len(data))
        for _ in range(40):
            start = rng.randrange(0, len(data) + 5)
            length = rng.randrange(0, 3 * PS)
            assert reader.seek(start) == start
            got = bytearray()
            while len(got) < length and (chunk := reader.read(length - len(got))):
                got += chunk
            assert bytes(got) == data[start : start + length]
            assert reader.tell() == min(start + length, max(start, len(data)))
        reader.seek(-3, io.SEEK_END)
        assert reader.read() == data[-3:]


def flip_segment_1(raw: bytearray) -> None:
    raw[HEADER_SIZE + (PS + TAG_SIZE) + 5] ^= 0x01


def test_the_reader_never_returns_a_damaged_segment(app: Flask, session: Any) -> None:
    data = data_of(4 * PS)
    stored = put_bytes(session, data)
    session.commit()
    damage_stored(app, stored, flip_segment_1)
    with vault.open_reader(session, stored.id) as reader:
        assert reader.read(PS) == data[:PS]
        for _ in range(2):  # and again: a failed segment is not kept, nor skipped
            with pytest.raises(AuthenticationFailed):
                reader.read(PS)
        reader.seek(2 * PS + 3)
        assert reader.read(PS) == data[2 * PS + 3 : 3 * PS]


def test_the_reader_refuses_a_stored_object_of_the_wrong_size(app: Flask, session: Any) -> None:
    stored = put_bytes(session, data_of(3 * PS))
    session.commit()
    damage_stored(app, stored, append_garbage)
    with vault.open_reader(session, stored.id) as reader, pytest.raises(AuthenticationFailed):
        reader.prefetch()
