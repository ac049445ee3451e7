"""Jobs that the queue tests run, written the way real jobs must be: safe to run twice.

They set state instead of incrementing it (``promote_to_admin``), and write their output under
a name derived from their arguments, replacing it atomically (``write_welcome``). Every run is
also appended to ``runs.log`` in the instance folder, so that tests can count runs; that log
is instrumentation, not an outcome.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import current_app

from app.accounts.models import User
from app.extensions import db
from app.jobs import TransientJobError, on_failure

GATE_TIMEOUT_SECONDS = 10.0


def job_dir() -> Path:
    path = Path(current_app.instance_path) / "jobs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_of(instance_path: str, name: str) -> int:
    """How many times the job ``name`` has run for the app with ``instance_path``."""
    log = Path(instance_path) / "jobs" / "runs.log"
    return log.read_text().split().count(name) if log.exists() else 0


def _count_run(name: str) -> int:
    with open(job_dir() / "runs.log", "a") as log:  # O_APPEND: whole lines, even across processes
        log.write(name + "\n")
    return runs_of(current_app.instance_path, name)


def _replace_file(path: Path, text: str) -> None:
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def _record_failure(error: BaseException, user_id: int, *rest: object) -> None:
    _replace_file(job_dir() / f"failed-{user_id}.txt", f"{type(error).__name__}: {error}")


def promote_to_admin(user_id: int) -> None:
    _count_run("promote_to_admin")
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}: the job ran before its transaction committed")
    user.is_admin = True


def write_welcome(user_id: int) -> None:
    _count_run("write_welcome")
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}: the job ran before its transaction committed")
    _replace_file(job_dir() / f"welcome-{user_id}.txt", f"Welcome, {user.display_name}!\n")


@on_failure(_record_failure)
def flaky_welcome(user_id: int, failures: int) -> None:
    """Fails transiently on its first ``failures`` runs, then writes the welcome file."""
    if _count_run("flaky_welcome") <= failures:
        raise TransientJobError("the mail service is having a moment")
    write_welcome(user_id)


@on_failure(_record_failure)
def rename_then_fail(user_id: int) -> None:
    _count_run("rename_then_fail")
    user = db.session.get(User, user_id)
    assert user is not None
    user.display_name = "half-done"
    raise ValueError("the master is not audio")


@on_failure(_record_failure)
def sleep_too_long(user_id: int, seconds: float) -> None:
    _count_run("sleep_too_long")
    time.sleep(seconds)


def wait_for_gate() -> None:
    """Holds its worker until the test creates ``jobs/gate``."""
    _count_run("wait_for_gate")
    deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
    while not (job_dir() / "gate").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        time.sleep(0.01)


def open_gate(instance_path: str) -> None:
    gate = Path(instance_path) / "jobs" / "gate"
    gate.parent.mkdir(parents=True, exist_ok=True)
    gate.touch()
