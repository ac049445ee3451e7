"""The RQ worker as deployed: separate processes that share only Redis and the database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from app.accounts.models import User
from app.extensions import db
from app.jobs import enqueue_after_commit, queue_name
from app.jobs.worker import worker_command
from tests.factories import UserFactory
from tests.functional.jobs.sample_jobs import runs_of

JOBS = "tests.functional.jobs.sample_jobs"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
WORKER_TIMEOUT_SECONDS = 60.0


def _worker_command(app: Flask) -> list[str]:
    return [sys.executable, "-m", "app.jobs.worker", "--queue", queue_name(app)]


def _worker_env(app: Flask) -> dict[str, str]:
    """What a worker host is configured with: the same database, Redis and instance folder."""
    env = dict(os.environ)
    env.update(
        MEGABOX_ENV="testing",
        MEGABOX_DATABASE_URL=app.config["DATABASE_URL"],
        MEGABOX_REDIS_URL=app.config["REDIS_URL"],
        MEGABOX_INSTANCE_PATH=app.instance_path,
        MEGABOX_SECRET_KEY=app.config["SECRET_KEY"],
    )
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Any]:
    """Start ``python -m app.jobs.worker`` processes; they get SIGTERM afterwards."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(app: Flask) -> subprocess.Popen[bytes]:
        log = tmp_path / f"worker-{len(started)}.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                _worker_command(app),
                cwd=PROJECT_ROOT,
                env=_worker_env(app),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append((process, log))
        return process

    yield start
    for process, _ in started:
        process.send_signal(signal.SIGTERM)  # a warm shutdown, as on a deploy
    for process, _ in started:
        try:
            process.wait(WORKER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for process, log in started:
        assert process.returncode == 0, log.read_text()


@pytest.mark.redis
def test_workers_on_separate_processes_share_the_queue_and_the_database(
    start_rq_jobs: Any, start_worker: Any
) -> None:
    jobs = start_rq_jobs(JOB_MAX_RETRIES=2)
    for _ in range(2):
        start_worker(jobs.app)
    users = UserFactory.create_batch(6, display_name="Sam")

    for user in users:
        enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", user.id)
    enqueue_after_commit(db.session, f"{JOBS}.flaky_welcome", users[0].id, 1)
    enqueue_after_commit(db.session, f"{JOBS}.rename_then_fail", users[1].id)
    db.session.commit()

    assert jobs.queue.wait_idle(WORKER_TIMEOUT_SECONDS)
    db.session.rollback()
    assert all(db.session.get(User, user.id).is_admin for user in users)
    jobs_dir = Path(jobs.app.instance_path) / "jobs"
    assert (jobs_dir / f"welcome-{users[0].id}.txt").read_text() == "Welcome, Sam!\n"
    assert runs_of(jobs.app.instance_path, "flaky_welcome") == 2
    assert (jobs_dir / f"failed-{users[1].id}.txt").read_text() == (
        "ValueError: the master is not audio"
    )
    assert db.session.get(User, users[1].id).display_name == "Sam"


@pytest.mark.redis
def test_a_job_over_its_timeout_is_stopped_and_goes_to_its_failure_hook(
    start_rq_jobs: Any,
) -> None:
    jobs = start_rq_jobs(JOB_TIMEOUT_SECONDS=1)
    user = UserFactory()
    enqueue_after_commit(db.session, f"{JOBS}.sleep_too_long", user.id, 30.0)
    db.session.commit()

    jobs.drain()

    failure = Path(jobs.app.instance_path) / "jobs" / f"failed-{user.id}.txt"
    assert failure.read_text().startswith("JobTimeoutException")
    assert runs_of(jobs.app.instance_path, "sleep_too_long") == 1


def test_the_worker_command_needs_redis(app: Flask) -> None:
    result = app.test_cli_runner().invoke(worker_command, ["--burst"])

    assert result.exit_code == 2
    assert "MEGABOX_REDIS_URL" in result.output
