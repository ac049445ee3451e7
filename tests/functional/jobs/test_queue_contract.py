"""The contract every job queue backend keeps: in-process threads, and RQ on Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.accounts.models import User
from app.extensions import db
from app.jobs import enqueue_after_commit
from tests.factories import UserFactory
from tests.functional.jobs.sample_jobs import open_gate, runs_of

JOBS = "tests.functional.jobs.sample_jobs"


def _job_file(jobs: Any, name: str) -> Path:
    return Path(jobs.app.instance_path) / "jobs" / name


def test_a_job_runs_after_its_transaction_commits(start_jobs: Any) -> None:
    jobs = start_jobs()
    user = User(email="new@example.test", display_name="New", password_hash="x")
    db.session.add(user)
    db.session.flush()  # for the id; the job must still wait for the commit
    enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", user.id)
    enqueue_after_commit(db.session, f"{JOBS}.write_welcome", user.id)
    db.session.commit()

    jobs.drain()

    assert db.session.get(User, user.id).is_admin
    assert _job_file(jobs, f"welcome-{user.id}.txt").read_text() == "Welcome, New!\n"


def test_a_job_recorded_in_a_transaction_that_does_not_commit_never_runs(
    start_jobs: Any,
) -> None:
    jobs = start_jobs()
    kept, dropped = UserFactory(), UserFactory()
    kept_id, dropped_id = kept.id, dropped.id
    db.session.commit()  # so that no transaction is open yet when the job is recorded

    enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", dropped_id)
    db.session.rollback()
    enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", dropped_id)
    db.session.close()
    enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", kept_id)
    db.session.commit()
    jobs.drain()

    assert db.session.get(User, kept_id).is_admin
    assert not db.session.get(User, dropped_id).is_admin
    assert runs_of(jobs.app.instance_path, "promote_to_admin") == 1


def test_a_job_in_a_rolled_back_savepoint_is_dropped_and_the_rest_kept(start_jobs: Any) -> None:
    jobs = start_jobs()
    kept, dropped = UserFactory(), UserFactory()

    enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", kept.id)
    savepoint = db.session.begin_nested()
    enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", dropped.id)
    savepoint.rollback()
    db.session.commit()
    jobs.drain()

    assert db.session.get(User, kept.id).is_admin
    assert not db.session.get(User, dropped.id).is_admin


def test_a_job_raising_transient_errors_is_retried_until_it_succeeds(start_jobs: Any) -> None:
    jobs = start_jobs(JOB_MAX_RETRIES=3)
    user = UserFactory(display_name="Ada")

    enqueue_after_commit(db.session, f"{JOBS}.flaky_welcome", user.id, 2)
    db.session.commit()
    jobs.drain()

    assert runs_of(jobs.app.instance_path, "flaky_welcome") == 3
    assert _job_file(jobs, f"welcome-{user.id}.txt").read_text() == "Welcome, Ada!\n"
    assert not _job_file(jobs, f"failed-{user.id}.txt").exists()


def test_a_job_still_failing_after_its_last_retry_goes_to_its_failure_hook(
    start_jobs: Any,
) -> None:
    jobs = start_jobs(JOB_MAX_RETRIES=2)
    user = UserFactory()

    enqueue_after_commit(db.session, f"{JOBS}.flaky_welcome", user.id, 5)
    db.session.commit()
    jobs.drain()

    assert runs_of(jobs.app.instance_path, "flaky_welcome") == 3
    assert _job_file(jobs, f"failed-{user.id}.txt").read_text() == (
        "TransientJobError: the mail service is having a moment"
    )
    assert not _job_file(jobs, f"welcome-{user.id}.txt").exists()


def test_a_permanent_failure_is_rolled_back_not_retried_and_goes_to_its_hook(
    start_jobs: Any,
) -> None:
    jobs = start_jobs(JOB_MAX_RETRIES=3)
    user = UserFactory(display_name="Grace")

    enqueue_after_commit(db.session, f"{JOBS}.rename_then_fail", user.id)
    db.session.commit()
    jobs.drain()

    assert runs_of(jobs.app.instance_path, "rename_then_fail") == 1
    assert _job_file(jobs, f"failed-{user.id}.txt").read_text() == (
        "ValueError: the master is not audio"
    )
    assert db.session.get(User, user.id).display_name == "Grace"


def test_running_the_same_job_twice_does_no_harm(start_jobs: Any) -> None:
    jobs = start_jobs()
    user = UserFactory(display_name="Lin")

    for _ in range(2):
        enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", user.id)
        enqueue_after_commit(db.session, f"{JOBS}.write_welcome", user.id)
        db.session.commit()
    jobs.drain()

    assert runs_of(jobs.app.instance_path, "promote_to_admin") == 2
    assert runs_of(jobs.app.instance_path, "write_welcome") == 2
    assert db.session.get(User, user.id).is_admin
    assert _job_file(jobs, f"welcome-{user.id}.txt").read_text() == "Welcome, Lin!\n"
    assert not _job_file(jobs, f"failed-{user.id}.txt").exists()


def test_a_job_id_keeps_a_waiting_job_from_being_queued_twice(start_jobs: Any) -> None:
    jobs = start_jobs(WORKER_THREADS=1)
    user = UserFactory()
    jobs.queue.enqueue(f"{JOBS}.wait_for_gate")  # holds the only worker while we enqueue

    for _ in range(2):
        enqueue_after_commit(
            db.session, f"{JOBS}.write_welcome", user.id, job_id=f"welcome-{user.id}"
        )
        db.session.commit()
    open_gate(jobs.app.instance_path)
    jobs.drain()

    assert runs_of(jobs.app.instance_path, "write_welcome") == 1
    assert _job_file(jobs, f"welcome-{user.id}.txt").exists()


def test_a_job_id_can_be_queued_again_once_its_job_has_run(start_jobs: Any) -> None:
    jobs = start_jobs()
    user = UserFactory()

    for _ in range(2):
        jobs.queue.enqueue(f"{JOBS}.write_welcome", user.id, job_id=f"welcome-{user.id}")
        jobs.drain()

    assert runs_of(jobs.app.instance_path, "write_welcome") == 2


def test_waiting_until_idle_covers_running_jobs(start_jobs: Any) -> None:
    jobs = start_jobs()
    jobs.queue.enqueue(f"{JOBS}.wait_for_gate")

    assert not jobs.queue.wait_idle(0.05)
    open_gate(jobs.app.instance_path)
    jobs.drain()
    assert jobs.queue.wait_idle(0)


def test_a_shut_down_queue_refuses_jobs(start_jobs: Any) -> None:
    jobs = start_jobs()
    jobs.queue.shutdown()

    with pytest.raises(RuntimeError, match="shut down"):
        jobs.queue.enqueue(f"{JOBS}.write_welcome", 1)


def test_jobs_take_ids_not_objects(start_jobs: Any) -> None:
    jobs = start_jobs()
    user = UserFactory()

    with pytest.raises(TypeError, match="pass the id"):
        jobs.queue.enqueue(f"{JOBS}.promote_to_admin", user)
    with pytest.raises(TypeError, match="pass the id"):
        enqueue_after_commit(db.session, f"{JOBS}.promote_to_admin", user)


def test_a_job_that_could_never_run_fails_where_it_is_enqueued(start_jobs: Any) -> None:
    jobs = start_jobs()

    with pytest.raises(AttributeError):
        jobs.queue.enqueue(f"{JOBS}.no_such_job", 1)
    with pytest.raises(ImportError):
        enqueue_after_commit(db.session, "tests.functional.jobs.no_such_module.job", 1)
    with pytest.raises(ValueError, match="job id"):
        enqueue_after_commit(db.session, f"{JOBS}.write_welcome", 1, job_id="welcome:1")
