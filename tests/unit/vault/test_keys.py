"""KEK configuration, DEK wrapping and the keyring."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from app.vault.errors import AuthenticationFailed, KekUnavailable
from app.vault.keys import (
    EMBEDDED_KEK_FILENAME,
    Keyring,
    format_keks,
    load_keyring,
    new_dek,
    new_kek,
    parse_keks,
    unwrap_dek,
    wrap_dek,
)
from config import ConfigurationError

KEK_1 = bytes(range(32))
KEK_2 = bytes(range(32, 64))
OBJECT_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
OTHER_ID = bytes.fromhex("ffeeddccbbaa99887766554433221100")


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_several_versions_parse_from_one_line() -> None:
    text = f"2:{b64(KEK_2)},1:{base64.urlsafe_b64encode(KEK_1).decode()}"
    assert parse_keks(text, "MEGABOX_KEK") == {1: KEK_1, 2: KEK_2}


def test_a_file_holds_one_version_a_line_with_comments() -> None:
    text = f"# rotated in May\n2:{b64(KEK_2)}\n\n1:{b64(KEK_1)}  # retire after rotation\n"
    assert parse_keks(text, "KEK file") == {1: KEK_1, 2: KEK_2}


def test_formatted_keys_parse_back() -> None:
    keks = {1: KEK_1, 7: KEK_2}
    assert parse_keks(format_keks(keks), "x") == keks
    assert parse_keks(format_keks(keks, "\n"), "x") == keks
    assert format_keks(keks).startswith("7:")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "no key is configured"),
        (b64(KEK_1), "VERSION:BASE64"),
        (f"v1:{b64(KEK_1)}", "VERSION:BASE64"),
        (f"0:{b64(KEK_1)}", "out of range"),
        (f"1:{b64(KEK_1)},1:{b64(KEK_2)}", "appears twice"),
        (f"1:{b64(KEK_1[:16])}", "not a 32-byte key"),
        ("1:not*base64", "not base64"),
    ],
)
def test_a_malformed_keyring_is_refused_without_echoing_keys(text: str, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint) as raised:
        parse_keks(text, "MEGABOX_KEK")
    assert str(raised.value).startswith("MEGABOX_KEK: ")
    assert b64(KEK_1) not in str(raised.value)


def test_a_wrapped_dek_unwraps_for_its_object_and_version() -> None:
    dek = new_dek()
    assert unwrap_dek(KEK_1, 1, wrap_dek(KEK_1, 1, dek, OBJECT_ID), OBJECT_ID) == dek


def test_wrapping_the_same_dek_twice_differs() -> None:
    dek = new_dek()
    assert wrap_dek(KEK_1, 1, dek, OBJECT_ID) != wrap_dek(KEK_1, 1, dek, OBJECT_ID)


def test_the_wrong_kek_does_not_unwrap() -> None:
    wrapped = wrap_dek(KEK_1, 1, new_dek(), OBJECT_ID)
    with pytest.raises(AuthenticationFailed):
        unwrap_dek(KEK_2, 1, wrapped, OBJECT_ID)


def test_a_wrapped_dek_moved_to_another_object_does_not_unwrap() -> None:
    wrapped = wrap_dek(KEK_1, 1, new_dek(), OBJECT_ID)
    with pytest.raises(AuthenticationFailed):
        unwrap_dek(KEK_1, 1, wrapped, OTHER_ID)


def test_a_wrapped_dek_relabelled_with_another_version_does_not_unwrap() -> None:
    wrapped = wrap_dek(KEK_1, 1, new_dek(), OBJECT_ID)
    with pytest.raises(AuthenticationFailed):
        unwrap_dek(KEK_1, 2, wrapped, OBJECT_ID)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_wrapped_dek_does_not_unwrap(damage: str) -> None:
    wrapped = bytearray(wrap_dek(KEK_1, 1, new_dek(), OBJECT_ID))
    if damage == "flip":
        wrapped[-1] ^= 0x01
    else:
        del wrapped[-1]
    with pytest.raises(AuthenticationFailed):
        unwrap_dek(KEK_1, 1, bytes(wrapped), OBJECT_ID)


def test_the_keyring_wraps_under_its_highest_version() -> None:
    keyring = Keyring({1: KEK_1, 2: KEK_2}, "MEGABOX_KEK")
    dek = new_dek()
    wrapped, version = keyring.wrap(dek, OBJECT_ID)
    assert version == 2
    assert unwrap_dek(KEK_2, 2, wrapped, OBJECT_ID) == dek
    assert keyring.unwrap(wrap_dek(KEK_1, 1, dek, OBJECT_ID), OBJECT_ID, 1) == dek


def test_a_version_that_is_not_configured_is_named_and_its_origin_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keyring = Keyring({2: KEK_2}, "KEK file /etc/megabox/kek")
    with pytest.raises(KekUnavailable, match="KEK version 1 is not configured.") as missing:
        keyring.unwrap(wrap_dek(KEK_1, 1, new_dek(), OBJECT_ID), OBJECT_ID, 1)
    assert "/etc/megabox/kek" not in str(missing.value)
    assert "KEK version 1 is not configured in KEK file /etc/megabox/kek" in caplog.text


def test_the_embedded_kek_is_generated_once_with_mode_0600(tmp_path: Path) -> None:
    first = load_keyring("", "", str(tmp_path))
    path = tmp_path / EMBEDDED_KEK_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.versions == [1]
    again = load_keyring("", "", str(tmp_path))
    dek = new_dek()
    wrapped, version = first.wrap(dek, OBJECT_ID)
    assert again.unwrap(wrapped, OBJECT_ID, version) == dek
    assert [p.name for p in tmp_path.iterdir()] == [EMBEDDED_KEK_FILENAME]


def test_megabox_kek_wins_over_a_kek_file(tmp_path: Path) -> None:
    kek_file = tmp_path / "keks"
    kek_file.write_text(f"1:{b64(KEK_1)}\n")
    keyring = load_keyring(f"3:{b64(KEK_2)}", str(kek_file), str(tmp_path))
    assert (keyring.versions, keyring.writable) == ([3], False)
    from_file = load_keyring("", str(kek_file), str(tmp_path))
    assert (from_file.versions, from_file.path) == ([1], kek_file)
    assert not (tmp_path / EMBEDDED_KEK_FILENAME).exists()


def test_a_missing_kek_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="KEK file"):
        load_keyring("", str(tmp_path / "absent"), str(tmp_path))


def test_a_saved_version_reaches_keyrings_already_loaded(tmp_path: Path) -> None:
    rotating = load_keyring("", "", str(tmp_path))
    serving = load_keyring("", "", str(tmp_path))
    keks = rotating.with_new_version()
    assert sorted(keks) == [1, 2]
    rotating.save(keks)
    path = tmp_path / EMBEDDED_KEK_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    dek = new_dek()
    wrapped, version = serving.wrap(dek, OBJECT_ID)
    assert version == 2
    assert unwrap_dek(keks[2], 2, wrapped, OBJECT_ID) == dek


def test_a_keyring_from_the_environment_cannot_be_saved() -> None:
    keyring = Keyring({1: KEK_1}, "MEGABOX_KEK")
    with pytest.raises(ConfigurationError):
        keyring.save(keyring.with_new_version())


def test_new_keys_are_random_and_full_length() -> None:
    keys = {new_kek() for _ in range(4)} | {new_dek() for _ in range(4)}
    assert len(keys) == 8
    assert {len(key) for key in keys} == {32}
