"""Run the real ``megabox`` script in a subprocess, on an instance folder of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from config import ENV_PREFIX

MEGABOX = Path(sys.executable).with_name("megabox")
COMMAND_TIMEOUT_SECONDS = 120

Megabox = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """A fresh instance folder: no database yet, so nothing has been upgraded."""
    return tmp_path / "instance"


@pytest.fixture
def command_env(instance: Path) -> dict[str, str]:
    """The environment of an operator's shell: no MEGABOX_* settings but the instance path."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    env[ENV_PREFIX + "INSTANCE_PATH"] = str(instance)
    return env


@pytest.fixture
def megabox(command_env: dict[str, str]) -> Megabox:
    """``megabox(*args, **env)`` runs the command and returns its completed process."""

    def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(MEGABOX), *args],
            env={**command_env, **env},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )

    return run
