"""``megabox vault`` and ``megabox keys``, run through Flask's CLI runner."""

from __future__ import annotations

import io
import os
import random
import re
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from app.extensions import db
from app.vault import service as vault
from app.vault.commands import keys_cli, vault_cli
from app.vault.errors import AuthenticationFailed
from app.vault.format import HEADER_SIZE
from app.vault.keys import Keyring, format_keks, new_kek, parse_keks, unwrap_dek
from app.vault.models import VaultObject
from tests.functional.vault.conftest import SEGMENT_LOG2

PS = 1 << SEGMENT_LOG2


def data_of(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def put_bytes(data: bytes) -> VaultObject:
    return vault.put_stream(db.session, io.BytesIO(data), kind="master", size=len(data))


def stored_file(app: Flask, stored: VaultObject) -> Path:
    return Path(app.instance_path) / "vault" / stored.backend_key


def assert_one_line_error(result: Any, text: str) -> None:
    assert result.exit_code == 1
    assert not isinstance(result.exception, (AssertionError, AuthenticationFailed))
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1
    assert text in result.stderr


def test_put_prints_the_object_id_of_a_committed_object(
    runner: Any, session: Any, tmp_path: Path
) -> None:
    source = tmp_path / "take.wav"
    source.write_bytes(data_of(3 * PS + 1))
    result = runner.invoke(vault_cli, ["put", str(source), "--kind", "master"])
    assert result.exit_code == 0, result.output
    object_id = result.stdout.strip()
    session.rollback()
    stored = vault.get_object(session, object_id)
    assert (stored.size, stored.kind) == (3 * PS + 1, "master")


def test_put_of_a_missing_file_is_a_usage_error(runner: Any, tmp_path: Path) -> None:
    result = runner.invoke(vault_cli, ["put", str(tmp_path / "absent.wav")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_get_writes_the_plaintext_or_a_range(runner: Any, tmp_path: Path) -> None:
    data = data_of(4 * PS + 33)
    object_id = put_bytes(data).id
    db.session.commit()
    whole, part = tmp_path / "whole.bin", tmp_path / "part.bin"
    assert runner.invoke(vault_cli, ["get", object_id, "-o", str(whole)]).exit_code == 0
    assert whole.read_bytes() == data
    result = runner.invoke(
        vault_cli, ["get", object_id, "--range", f"{PS - 3}-{3 * PS}", "-o", str(part)]
    )
    assert result.exit_code == 0, result.output
    assert part.read_bytes() == data[PS - 3 : 3 * PS + 1]


def test_get_to_standard_output(runner: Any) -> None:
    data = data_of(2 * PS + 7)
    object_id = put_bytes(data).id
    db.session.commit()
    result = runner.invoke(vault_cli, ["get", object_id, "--range", "0-9", "-o", "-"])
    assert (result.exit_code, result.stdout_bytes) == (0, data[:10])


GET_ARGUMENTS = {"whole": [], "a range": ["--range", f"{PS - 3}-{3 * PS}"]}


def expected_output(data: bytes, arguments: list[str]) -> bytes:
    return data[PS - 3 : 3 * PS + 1] if arguments else data


@pytest.mark.parametrize("arguments", GET_ARGUMENTS.values(), ids=GET_ARGUMENTS.keys())
def test_get_writes_into_a_fifo_in_place(runner: Any, tmp_path: Path, arguments: list[str]) -> None:
    data = data_of(4 * PS + 33)
    object_id = put_bytes(data).id
    db.session.commit()
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    fifo = outputs / "pipe"
    os.mkfifo(fifo)
    received = bytearray()

    def read_the_fifo() -> None:
        with open(fifo, "rb") as pipe:
            while chunk := pipe.read(PS):
                received.extend(chunk)

    # A daemon: should the command not open the FIFO, the reader must not hold up the run.
    reader = threading.Thread(target=read_the_fifo, daemon=True)
    reader.start()
    result = runner.invoke(vault_cli, ["get", object_id, *arguments, "-o", str(fifo)])
    reader.join(timeout=10)
    assert result.exit_code == 0, result.output
    assert bytes(received) == expected_output(data, arguments)
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [p.name for p in outputs.iterdir()] == ["pipe"]


@pytest.mark.parametrize("arguments", GET_ARGUMENTS.values(), ids=GET_ARGUMENTS.keys())
def test_get_writes_into_a_character_device_in_place(
    runner: Any, tmp_path: Path, arguments: list[str]
) -> None:
    object_id = put_bytes(data_of(4 * PS + 33)).id
    db.session.commit()
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    null = outputs / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("creating a device node needs root")
    result = runner.invoke(vault_cli, ["get", object_id, *arguments, "-o", str(null)])
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(null.stat().st_mode)
    assert null.stat().st_rdev == os.makedev(1, 3)
    assert [p.name for p in outputs.iterdir()] == ["null"]


def test_get_replaces_a_regular_file(runner: Any, tmp_path: Path) -> None:
    data = data_of(2 * PS)
    object_id = put_bytes(data).id
    db.session.commit()
    out = tmp_path / "out.bin"
    out.write_bytes(b"an older, longer file" * 100)
    assert runner.invoke(vault_cli, ["get", object_id, "-o", str(out)]).exit_code == 0
    assert out.read_bytes() == data


def test_get_of_an_unknown_object_is_a_one_line_error(runner: Any, tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    result = runner.invoke(vault_cli, ["get", "f" * 32, "-o", str(out)])
    assert_one_line_error(result, f"No vault object has the id {'f' * 32}.")
    assert not out.exists()


@pytest.mark.parametrize("byte_range", ["5", "9-3", "a-b", "-4", "1-2-3"])
def test_a_malformed_range_is_a_usage_error(runner: Any, byte_range: str) -> None:
    result = runner.invoke(vault_cli, ["get", "f" * 32, "--range", byte_range, "-o", "-"])
    assert result.exit_code == 2
    assert "A-B" in result.output


def test_a_range_past_the_end_is_a_one_line_error(runner: Any) -> None:
    object_id = put_bytes(data_of(PS)).id
    db.session.commit()
    result = runner.invoke(vault_cli, ["get", object_id, "--range", f"0-{PS}", "-o", "-"])
    assert_one_line_error(result, "outside the object's")


def test_get_of_a_damaged_object_leaves_no_output_file(
    app: Flask, runner: Any, tmp_path: Path
) -> None:
    stored = put_bytes(data_of(4 * PS))
    db.session.commit()
    path = stored_file(app, stored)
    raw = bytearray(path.read_bytes())
    raw[-PS] ^= 0x01
    path.write_bytes(raw)
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    result = runner.invoke(vault_cli, ["get", stored.id, "-o", str(outputs / "out.bin")])
    assert_one_line_error(result, "failed authentication")
    assert list(outputs.iterdir()) == []


def test_verify_passes_an_intact_object(runner: Any) -> None:
    object_id = put_bytes(data_of(2 * PS)).id
    db.session.commit()
    result = runner.invoke(vault_cli, ["verify", object_id])
    assert (result.exit_code, result.stdout) == (0, "1 checked, 0 bad.\n")


def test_verify_all_lists_every_bad_object_and_fails(app: Flask, runner: Any) -> None:
    intact, flipped, missing = (put_bytes(data_of(2 * PS + n)) for n in range(3))
    db.session.commit()
    raw = bytearray(stored_file(app, flipped).read_bytes())
    raw[HEADER_SIZE + 1] ^= 0x01
    stored_file(app, flipped).write_bytes(raw)
    stored_file(app, missing).unlink()
    result = runner.invoke(vault_cli, ["verify", "--all"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert sorted(line.split(":")[0] for line in lines[:-1]) == sorted(
        [f"BAD {flipped.id}", f"BAD {missing.id}"]
    )
    assert lines[-1] == "3 checked, 2 bad."
    assert intact.id not in result.stdout


@pytest.mark.parametrize("arguments", [[], ["f" * 32, "--all"]])
def test_verify_needs_an_id_or_all(runner: Any, arguments: list[str]) -> None:
    result = runner.invoke(vault_cli, ["verify", *arguments])
    assert result.exit_code == 2
    assert "Give an object id or --all" in result.output


def test_a_malformed_kek_is_a_one_line_error(make_app: Any, tmp_path: Path) -> None:
    source = tmp_path / "x.bin"
    source.write_bytes(b"x")
    broken = make_app(KEK="1:AAAA")
    with broken.app_context():
        result = broken.test_cli_runner().invoke(vault_cli, ["put", str(source)])
    assert_one_line_error(result, "MEGABOX_KEK: version 1 is not a 32-byte key")


# Rotation.


def kek_file_keys(app: Flask) -> dict[int, bytes]:
    return parse_keks((Path(app.instance_path) / "kek").read_text(), "kek")


def versions(session: Any) -> list[int]:
    return sorted(session.scalars(select(VaultObject.kek_version)))


def test_rotation_rewraps_every_key_and_leaves_the_objects_untouched(
    app: Flask, session: Any, runner: Any
) -> None:
    originals = {put_bytes(data_of(PS + n)).id: data_of(PS + n) for n in range(5)}
    session.commit()
    objects = {object_id: vault.get_object(session, object_id) for object_id in originals}
    stored_bytes = {oid: stored_file(app, obj).read_bytes() for oid, obj in objects.items()}
    retired = kek_file_keys(app)[1]

    result = runner.invoke(keys_cli, ["rotate", "--batch-size", "2"])

    assert result.exit_code == 0, result.output
    assert "Added KEK version 2" in result.stdout
    assert "Done: every data key is wrapped under KEK version 2." in result.stdout
    assert "KEK version(s) 1 no longer wrap anything" in result.stdout
    session.expire_all()
    assert versions(session) == [2] * 5
    kek_path = Path(app.instance_path) / "kek"
    assert stat.S_IMODE(kek_path.stat().st_mode) == 0o600
    assert sorted(kek_file_keys(app)) == [1, 2]
    for object_id, stored in objects.items():
        assert stored_file(app, stored).read_bytes() == stored_bytes[object_id]
        for version in (1, 2):
            with pytest.raises(AuthenticationFailed):
                unwrap_dek(retired, version, stored.wrapped_dek, bytes.fromhex(object_id))
    # Once version 1 is removed, every object still reads.
    vault.current_vault().keyring = Keyring({2: kek_file_keys(app)[2]}, "version 2 alone")
    for object_id, data in originals.items():
        assert b"".join(vault.iter_plaintext(session, object_id)) == data
        vault.verify(session, object_id)


def test_an_interrupted_rotation_resumes_without_adding_a_version(
    app: Flask, session: Any, runner: Any
) -> None:
    for n in range(4):
        put_bytes(data_of(n + 1))
    session.commit()
    keyring = vault.current_vault().keyring
    keyring.save(keyring.with_new_version())
    first = vault.rewrap_batch(session, after="", limit=1)
    session.commit()
    assert (first.rewrapped, versions(session)) == (1, [1, 1, 1, 2])

    result = runner.invoke(keys_cli, ["rotate"])

    assert result.exit_code == 0, result.output
    assert "Resuming: 3 data keys are not yet under KEK version 2." in result.stdout
    session.expire_all()
    assert versions(session) == [2, 2, 2, 2]
    assert sorted(kek_file_keys(app)) == [1, 2]


def test_rotating_a_finished_rotation_adds_the_next_version(
    app: Flask, session: Any, runner: Any
) -> None:
    put_bytes(b"one")
    session.commit()
    assert runner.invoke(keys_cli, ["rotate"]).exit_code == 0
    assert runner.invoke(keys_cli, ["rotate"]).exit_code == 0
    session.expire_all()
    assert versions(session) == [3]
    assert sorted(kek_file_keys(app)) == [1, 2, 3]


def test_a_key_that_does_not_unwrap_is_reported_and_the_rest_rotated(
    session: Any, runner: Any
) -> None:
    good, bad = put_bytes(b"good"), put_bytes(b"bad")
    bad.wrapped_dek = good.wrapped_dek
    session.commit()
    bad_id = bad.id
    result = runner.invoke(keys_cli, ["rotate"])
    assert result.exit_code == 1
    assert f"FAILED {bad_id}: The data key did not unwrap" in result.stdout
    assert "Not finished: 1 under version 1." in result.stdout
    session.expire_all()
    assert versions(session) == [1, 2]


def test_with_keys_from_the_environment_rotation_prints_what_to_set(make_app: Any) -> None:
    first_app = make_app(KEK=format_keks({1: new_kek()}), VAULT_SEGMENT_SIZE_LOG2=SEGMENT_LOG2)
    with first_app.app_context():
        object_id = put_bytes(b"sealed under version 1").id
        db.session.commit()
        result = first_app.test_cli_runner().invoke(keys_cli, ["rotate"])
        assert result.exit_code == 0, result.output
        assert versions(db.session) == [1]
    assert not (Path(first_app.instance_path) / "kek").exists()
    setting = re.search(r"MEGABOX_KEK=(\S+)", result.stdout)
    assert setting is not None
    assert sorted(parse_keks(setting.group(1), "printed")) == [1, 2]

    next_app = make_app(
        KEK=setting.group(1),
        STORAGE_URL=f"file://{first_app.instance_path}/vault",
        VAULT_SEGMENT_SIZE_LOG2=SEGMENT_LOG2,
    )
    with next_app.app_context():
        result = next_app.test_cli_runner().invoke(keys_cli, ["rotate"])
        assert result.exit_code == 0, result.output
        assert "remove them from MEGABOX_KEK" in result.stdout
        assert versions(db.session) == [2]
        assert vault.read_range(db.session, object_id, 0, 5) == b"sealed"
