"""The embedded mode's job queue: daemon threads of this process."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from flask import Flask

from app.jobs.runner import TRANSIENT_ERRORS, JobArg, check_job, perform_job, retry_delays

logger = logging.getLogger(__name__)


@dataclass
class _Entry:
    job_path: str
    args: tuple[JobArg, ...]
    job_id: str | None
    attempt: int = 0


@dataclass(order=True)
class _Scheduled:
    due: float
    sequence: int
    entry: _Entry = field(compare=False)


class InProcessJobQueue:
    """Runs jobs on a pool of daemon threads of this process: the embedded mode's queue.

    Threads start with the first job. Each job runs in a fresh app context of ``app`` with its
    own session. Retries wait ``retry_delays`` without holding a thread. Jobs still waiting
    when the process exits are lost, and ``JOB_TIMEOUT_SECONDS`` is not enforced here (a
    thread cannot be stopped from outside).
    """

    def __init__(
        self, app: Flask, *, threads: int, max_retries: int, backoff_seconds: float
    ) -> None:
        if threads < 1:
            raise ValueError("WORKER_THREADS must be at least 1")
        self._app = app
        self._thread_count = threads
        self._max_retries = max_retries
        self._delays = retry_delays(max_retries, backoff_seconds)
        self._changed = threading.Condition()
        self._ready: deque[_Entry] = deque()
        self._scheduled: list[_Scheduled] = []
        self._waiting_ids: set[str] = set()
        self._unfinished = 0
        self._sequence = itertools.count()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def enqueue(self, job_path: str, *args: JobArg, job_id: str | None = None) -> None:
        check_job(job_path, args, job_id)
        with self._changed:
            if self._closed:
                raise RuntimeError("the job queue is shut down")
            if job_id is not None:
                if job_id in self._waiting_ids:
                    return
                self._waiting_ids.add(job_id)
            self._ready.append(_Entry(job_path, tuple(args), job_id))
            self._unfinished += 1
            self._start_threads()
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._unfinished == 0, timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the threads once their current jobs end; jobs still waiting are dropped."""
        with self._changed:
            self._closed = True
            dropped = len(self._ready) + len(self._scheduled)
            self._ready.clear()
            self._scheduled.clear()
            self._waiting_ids.clear()
            self._unfinished -= dropped
            self._changed.notify_all()
        if dropped:
            logger.warning("job queue shut down with %d jobs not run", dropped)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _start_threads(self) -> None:
        while len(self._threads) < self._thread_count:
            thread = threading.Thread(
                target=self._work, name=f"megabox-jobs-{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while (entry := self._next_entry()) is not None:
            delay = None
            try:
                delay = self._attempt(entry)
            finally:
                with self._changed:
                    if delay is not None and not self._closed:
                        self._schedule_retry(entry, delay)
                    else:
                        self._unfinished -= 1
                    self._changed.notify_all()

    def _next_entry(self) -> _Entry | None:
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                while self._scheduled and self._scheduled[0].due <= now:
                    self._ready.append(heapq.heappop(self._scheduled).entry)
                if self._ready:
                    entry = self._ready.popleft()
                    if entry.job_id is not None:
                        self._waiting_ids.discard(entry.job_id)
                    return entry
                next_due = self._scheduled[0].due - now if self._scheduled else None
                self._changed.wait(next_due)
            return None

    def _attempt(self, entry: _Entry) -> float | None:
        """Run one attempt; return the delay before the next one, or None when it is done."""
        final = entry.attempt >= self._max_retries
        with self._app.app_context():
            try:
                perform_job(entry.job_path, entry.args, final_attempt=final)
            except TRANSIENT_ERRORS:
                return None if final else self._delays[entry.attempt]
            except Exception:  # perform_job has logged it and run the failure hook
                return None
        return None

    def _schedule_retry(self, entry: _Entry, delay: float) -> None:
        if entry.job_id is not None:
            if entry.job_id in self._waiting_ids:
                # The same job was enqueued again meanwhile; that run covers this retry.
                self._unfinished -= 1
                return
            self._waiting_ids.add(entry.job_id)
        entry.attempt += 1
        heapq.heappush(
            self._scheduled, _Scheduled(time.monotonic() + delay, next(self._sequence), entry)
        )
