"""The ``megabox`` group itself, run in-process on the test's app and its upgraded database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from flask import Flask

from app.cli import CLI_LOG_NAME, MegaboxGroup
from app.errors import Conflict


def fail_with(error: Exception) -> click.Command:
    def callback() -> None:
        raise error

    return click.Command("fail", callback=callback)


@pytest.fixture
def megabox(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``megabox(*args)``: the real group, with the test's app and commands that fail."""
    monkeypatch.setenv("MEGABOX_INSTANCE_PATH", str(tmp_path))
    group = MegaboxGroup(create_app=lambda: app)
    group.add_command(fail_with(Conflict("That address is taken.")), "conflict")
    group.add_command(fail_with(RuntimeError("the flux capacitor broke\nsecond line")), "crash")

    def run(*args: str) -> Result:
        return CliRunner().invoke(group, args, prog_name="megabox")

    return run


def test_usage_errors_keep_clicks_usage_message(megabox):
    result = megabox("users", "token")
    assert result.exit_code == 2
    assert "Usage: megabox users token" in result.stderr and "Missing argument 'EMAIL'" in result.stderr


def test_a_domain_error_is_its_message(megabox):
    result = megabox("conflict")
    assert result.exit_code == 1 and result.stderr == "megabox: That address is taken.\n"


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_the_log(megabox, tmp_path):
    result = megabox("crash")
    log = tmp_path / CLI_LOG_NAME
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"megabox: unexpected error: RuntimeError: the flux capacitor broke (details in {log})\n"
    )
    logged = log.read_text()
    assert "megabox" in logged and "Traceback" in logged and "second line" in logged
