"""The v1 object format: round trips, byte ranges, a frozen vector, and failing closed."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from app.vault.errors import AuthenticationFailed, InvalidRange, SizeMismatch
from app.vault.format import HEADER_SIZE, TAG_SIZE, ObjectCipher

LOG2 = 6
PS = 1 << LOG2
SEGMENT = PS + TAG_SIZE
DEK = bytes(range(32))
OBJECT_ID = bytes.fromhex("00112233445566778899aabbccddeeff")

# Frozen known-answer vector. If this stops decrypting, stored objects stop decrypting.
KAT_KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
KAT_OBJECT_ID = "00112233445566778899aabbccddeeff"
KAT_SALT = "a0a1a2a3a4a5a6a7a8a9"
KAT_NONCE_PREFIX = "b0b1b2b3b4b5b6"
KAT_PLAINTEXT = (
    "4d656761626f78207661756c74207631206b6e6f776e2d616e7377657220766563746f722e204d656761626f"
    "78207661756c74207631206b6e6f776e2d616e7377657220766563746f722e204d656761626f78207661756c"
    "74207631206b6e6f776e2d616e7377657220766563746f722e204d656761626f78207661756c74207631206b"
    "6e6f776e2d616e7377657220766563746f72"
)
KAT_CIPHERTEXT = (
    "4d42585601010600112233445566778899aabbccddeeffa0a1a2a3a4a5a6a7a8a9b0b1b2b3b4b5b600000000"
    "00000096a21747cc616f19cd857d024c68f8bb89da6fa3004374196f7a130e1ef55088f55a4c17004502c21a"
    "a97ec69208eaca60149fdcc168640b88ef86ca8ce45a178e8adce8a03f8fdbdb26911bae309dcc9fd7bcc28a"
    "54a7ea31577c4c254a22674d7a16b5941105095c393e0751acbce82fdb3410728785b46a612018594dcc4d0e"
    "9476458154174943217a159dfcfe8d687299bcb8af8304716608681c2c9c3e0b4b975435d1694db03f96fb35"
    "83ad6204d2b8e7524b85065429c4770228aa9eec291d02064bdab47d33d1694877d04440c7603d4f196e"
)


def seal(
    plaintext: bytes,
    dek: bytes = DEK,
    object_id: bytes = OBJECT_ID,
    log2: int = LOG2,
    **fixed: bytes,
) -> bytes:
    cipher = ObjectCipher.create(dek, object_id, len(plaintext), log2, **fixed)
    # A chunk is valid only until the next is requested: keep a copy of each.
    chunks = cipher.encrypt(io.BytesIO(plaintext), hashlib.sha256())
    return b"".join(bytes(chunk) for chunk in chunks)


def decrypt(blob: bytes, dek: bytes = DEK, object_id: bytes = OBJECT_ID) -> Iterator[bytes]:
    """Decrypt a whole stored object, trusting nothing but the key and the object id."""
    cipher = ObjectCipher.open(dek, blob[:HEADER_SIZE], object_id)
    yield from cipher.decrypt_object(io.BytesIO(blob))


def open_all(blob: bytes, dek: bytes = DEK, object_id: bytes = OBJECT_ID) -> bytes:
    return b"".join(decrypt(blob, dek, object_id))


def segments(blob: bytes) -> list[bytes]:
    body = blob[HEADER_SIZE:]
    return [body[i : i + SEGMENT] for i in range(0, len(body), SEGMENT)]


def received_before_failure(blob: bytes, dek: bytes = DEK) -> bytes:
    """The plaintext handed out before the one exception type is raised."""
    received = bytearray()
    with pytest.raises(AuthenticationFailed):
        for chunk in decrypt(blob, dek):
            received += chunk
    return bytes(received)


def plaintext_of(size: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(size))


SIZES = [0, 1, PS - 1, PS, PS + 1, 2 * PS, 3 * PS + 17]


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int) -> None:
    plaintext = plaintext_of(size)
    blob = seal(plaintext)
    assert open_all(blob) == plaintext
    whole_segments = max(1, -(-size // PS))
    assert len(blob) == HEADER_SIZE + size + TAG_SIZE * whole_segments


@settings(deadline=None)
@given(plaintext=st.binary(max_size=6 * PS), log2=st.integers(min_value=6, max_value=8))
def test_round_trip_of_any_size(plaintext: bytes, log2: int) -> None:
    assert open_all(seal(plaintext, log2=log2)) == plaintext


def test_encrypt_feeds_the_plaintext_to_the_hasher() -> None:
    plaintext = plaintext_of(3 * PS + 17)
    cipher = ObjectCipher.create(DEK, OBJECT_ID, len(plaintext), LOG2)
    hasher = hashlib.sha256()
    for _ in cipher.encrypt(io.BytesIO(plaintext), hasher):
        pass
    assert hasher.hexdigest() == hashlib.sha256(plaintext).hexdigest()


def test_known_answer_vector_decrypts() -> None:
    blob = bytes.fromhex(KAT_CIPHERTEXT)
    plaintext = open_all(blob, bytes.fromhex(KAT_KEY), bytes.fromhex(KAT_OBJECT_ID))
    assert plaintext == bytes.fromhex(KAT_PLAINTEXT)


def test_known_answer_vector_is_reproduced_from_its_salt_and_nonce_prefix() -> None:
    blob = seal(
        bytes.fromhex(KAT_PLAINTEXT),
        dek=bytes.fromhex(KAT_KEY),
        object_id=bytes.fromhex(KAT_OBJECT_ID),
        salt=bytes.fromhex(KAT_SALT),
        nonce_prefix=bytes.fromhex(KAT_NONCE_PREFIX),
    )
    assert blob.hex() == KAT_CIPHERTEXT


def spec_segment(dek: bytes, header: bytes, index: int, final: bool, plaintext: bytes) -> bytes:
    """One segment, computed from FORMAT.md rather than from app.vault.format."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=48,
        salt=header[23:33],
        info=b"megabox-vault/v1" + header[:48],
    ).derive(dek)
    nonce = header[33:40] + index.to_bytes(4, "big") + (b"\x01" if final else b"\x00")
    return AESGCM(okm[:32]).encrypt(nonce, plaintext, header)


def test_the_format_is_the_one_format_md_describes() -> None:
    plaintext = plaintext_of(2 * PS + 5)
    blob = seal(plaintext)
    header = blob[:HEADER_SIZE]
    expected = [
        spec_segment(DEK, header, 0, False, plaintext[:PS]),
        spec_segment(DEK, header, 1, False, plaintext[PS : 2 * PS]),
        spec_segment(DEK, header, 2, True, plaintext[2 * PS :]),
    ]
    assert segments(blob) == expected


def test_encrypting_the_same_input_twice_differs() -> None:
    plaintext = plaintext_of(2 * PS)
    first, second = seal(plaintext), seal(plaintext)
    assert first != second
    assert set(segments(first)).isdisjoint(segments(second))


def test_the_plaintext_never_appears_in_the_ciphertext() -> None:
    marker = b"MEGABOX-PLAINTEXT-MARKER"
    blob = seal(marker * 40)
    assert marker not in blob
    assert marker[:8] not in blob


# A 4-segment object: three whole segments and a final one of 17 bytes.
PLAINTEXT = plaintext_of(3 * PS + 17)
HEADER_FIELDS = {
    "magic": 0,
    "version": 4,
    "algorithm": 5,
    "segment_log2": 6,
    "object_id": 7,
    "salt": 23,
    "nonce_prefix": 33,
    "plaintext_length": 40,
    "key_commitment": 48,
}


@pytest.mark.parametrize("offset", HEADER_FIELDS.values(), ids=HEADER_FIELDS.keys())
def test_a_flipped_bit_in_any_header_field_fails_before_any_plaintext(offset: int) -> None:
    blob = bytearray(seal(PLAINTEXT))
    blob[offset] ^= 0x01
    assert received_before_failure(bytes(blob)) == b""


def _body_offsets() -> dict[str, tuple[int, int]]:
    """Byte offset to flip, and the index of the segment it lies in."""
    last_ciphertext = HEADER_SIZE + 3 * SEGMENT + 17 - 1
    offsets = {
        "first ciphertext byte": (HEADER_SIZE, 0),
        "middle ciphertext byte": (HEADER_SIZE + SEGMENT + PS // 2, 1),
        "last ciphertext byte": (last_ciphertext, 3),
    }
    for index in range(3):
        offsets[f"tag of segment {index}"] = (HEADER_SIZE + index * SEGMENT + PS, index)
    offsets["tag of the final segment"] = (last_ciphertext + 1, 3)
    return offsets


@pytest.mark.parametrize(
    ("offset", "segment"), _body_offsets().values(), ids=_body_offsets().keys()
)
def test_a_flipped_bit_in_the_body_fails_at_its_segment(offset: int, segment: int) -> None:
    blob = bytearray(seal(PLAINTEXT))
    blob[offset] ^= 0x80
    received = received_before_failure(bytes(blob))
    # Only the segments before the damaged one were authenticated and handed out.
    assert received == PLAINTEXT[: segment * PS]


TRUNCATIONS = {
    "at a segment boundary": HEADER_SIZE + 2 * SEGMENT,
    "before the final segment": HEADER_SIZE + 3 * SEGMENT,
    "mid-segment": HEADER_SIZE + SEGMENT + 10,
    "inside the final tag": HEADER_SIZE + 3 * SEGMENT + 17 + 8,
    "to the header alone": HEADER_SIZE,
    "inside the header": HEADER_SIZE // 2,
    "to 0 bytes": 0,
}


@pytest.mark.parametrize("length", TRUNCATIONS.values(), ids=TRUNCATIONS.keys())
def test_truncation_fails(length: int) -> None:
    received = received_before_failure(seal(PLAINTEXT)[:length])
    assert PLAINTEXT.startswith(received)
    assert len(received) < len(PLAINTEXT)


def test_trailing_bytes_fail() -> None:
    received_before_failure(seal(PLAINTEXT) + b"\x00")


def test_a_duplicated_segment_fails() -> None:
    blob = seal(PLAINTEXT)
    parts = segments(blob)
    received = received_before_failure(blob[:HEADER_SIZE] + b"".join(parts[:2] + parts[1:]))
    assert received == PLAINTEXT[: 2 * PS]


def test_reordered_segments_fail() -> None:
    blob = seal(PLAINTEXT)
    first, second, *rest = segments(blob)
    assert received_before_failure(blob[:HEADER_SIZE] + b"".join([second, first, *rest])) == b""


def test_a_segment_spliced_from_another_object_under_the_same_key_fails() -> None:
    blob, other = seal(PLAINTEXT), seal(PLAINTEXT)
    parts = segments(blob)
    parts[1] = segments(other)[1]
    received = received_before_failure(blob[:HEADER_SIZE] + b"".join(parts))
    assert received == PLAINTEXT[:PS]


def test_one_objects_header_with_anothers_body_fails() -> None:
    blob, other = seal(PLAINTEXT), seal(PLAINTEXT)
    assert received_before_failure(blob[:HEADER_SIZE] + other[HEADER_SIZE:]) == b""


def test_a_final_flag_in_the_middle_fails() -> None:
    blob = seal(PLAINTEXT)
    header = blob[:HEADER_SIZE]
    parts = segments(blob)
    assert spec_segment(DEK, header, 1, False, PLAINTEXT[PS : 2 * PS]) == parts[1]
    parts[1] = spec_segment(DEK, header, 1, True, PLAINTEXT[PS : 2 * PS])
    assert received_before_failure(header + b"".join(parts)) == PLAINTEXT[:PS]


def test_a_truncated_object_resealed_as_final_still_fails() -> None:
    blob = seal(PLAINTEXT)
    header = blob[:HEADER_SIZE]
    parts = segments(blob)[:2]
    parts[1] = spec_segment(DEK, header, 1, True, PLAINTEXT[PS : 2 * PS])
    received_before_failure(header + b"".join(parts))


def test_the_wrong_dek_fails_before_any_plaintext() -> None:
    assert received_before_failure(seal(PLAINTEXT), dek=os.urandom(32)) == b""


def test_another_objects_id_fails() -> None:
    with pytest.raises(AuthenticationFailed):
        open_all(seal(PLAINTEXT), object_id=os.urandom(16))


def read_range(blob: bytes, start: int, end: int) -> bytes:
    """Decrypt [start, end] from the one contiguous run of ciphertext the span names."""
    cipher = ObjectCipher.open(DEK, blob[:HEADER_SIZE], OBJECT_ID)
    span = cipher.span(start, end)
    run = blob[span.offset : span.offset + span.length]
    assert len(run) == span.length
    return b"".join(cipher.decrypt_span(io.BytesIO(run), span))


RANGES = [
    (0, 0),
    (0, PS - 1),
    (PS - 1, PS),
    (PS - 5, 2 * PS + 5),
    (3 * PS, 3 * PS + 16),
    (3 * PS - 1, 3 * PS + 16),
    (3 * PS + 16, 3 * PS + 16),
    (0, 3 * PS + 16),
]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_a_range_read_gives_exactly_the_plaintext_slice(start: int, end: int) -> None:
    assert read_range(seal(PLAINTEXT), start, end) == PLAINTEXT[start : end + 1]


@settings(deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=6 * PS))
def test_any_range_read_gives_exactly_the_plaintext_slice(data: st.DataObject, size: int) -> None:
    plaintext = plaintext_of(size)
    start = data.draw(st.integers(min_value=0, max_value=size - 1))
    end = data.draw(st.integers(min_value=start, max_value=size - 1))
    assert read_range(seal(plaintext), start, end) == plaintext[start : end + 1]


@pytest.mark.parametrize(
    ("start", "end"), [(-1, 3), (5, 4), (0, len(PLAINTEXT)), (len(PLAINTEXT), len(PLAINTEXT))]
)
def test_a_range_outside_the_object_is_refused(start: int, end: int) -> None:
    cipher = ObjectCipher.open(DEK, seal(PLAINTEXT)[:HEADER_SIZE], OBJECT_ID)
    with pytest.raises(InvalidRange):
        cipher.span(start, end)


def test_an_empty_object_has_no_range() -> None:
    cipher = ObjectCipher.open(DEK, seal(b"")[:HEADER_SIZE], OBJECT_ID)
    with pytest.raises(InvalidRange):
        cipher.span(0, 0)


def test_a_range_read_of_damaged_segments_fails() -> None:
    blob = bytearray(seal(PLAINTEXT))
    blob[HEADER_SIZE + SEGMENT + 3] ^= 0x01
    with pytest.raises(AuthenticationFailed):
        read_range(bytes(blob), PS + 1, PS + 2)


def test_a_range_read_past_a_truncation_fails() -> None:
    blob = seal(PLAINTEXT)[: HEADER_SIZE + 2 * SEGMENT]
    cipher = ObjectCipher.open(DEK, blob[:HEADER_SIZE], OBJECT_ID)
    span = cipher.span(3 * PS, 3 * PS + 1)
    with pytest.raises(AuthenticationFailed):
        b"".join(cipher.decrypt_span(io.BytesIO(blob[span.offset :]), span))


@pytest.mark.parametrize("actual", [PS - 1, PS + 1])
def test_a_source_of_another_size_than_declared_is_refused(actual: int) -> None:
    cipher = ObjectCipher.create(DEK, OBJECT_ID, PS, LOG2)
    with pytest.raises(SizeMismatch):
        for _ in cipher.encrypt(io.BytesIO(plaintext_of(actual)), hashlib.sha256()):
            pass


@pytest.mark.parametrize(
    "wrong",
    [{"salt": bytes(9)}, {"nonce_prefix": bytes(8)}, {"log2": 5}, {"log2": 25}],
    ids=["salt", "nonce_prefix", "small_segments", "large_segments"],
)
def test_parameters_the_header_cannot_hold_are_refused(wrong: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"salt": bytes(10), "nonce_prefix": bytes(7), "log2": LOG2}
    arguments.update(wrong)
    log2 = arguments.pop("log2")
    with pytest.raises(ValueError):
        ObjectCipher.create(DEK, OBJECT_ID, PS, log2, **arguments)
