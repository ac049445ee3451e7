"""The RQ worker: ``megabox worker`` runs queued jobs from Redis.

Start as many workers as the load needs, on as many hosts as share the database, Redis and
object storage. Each one makes the app once, then runs every job in its own work-horse process
inside a fresh app context of that app (see ``media_worker.queue`` for what a job may assume).
Every worker also offers to run RQ's scheduler, which moves retries back into the queue when
they are due; a lock in Redis lets only one of them do it at a time.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo, with_appcontext
from redis import Redis
from rq import Queue, Worker
from rq.executions import Execution
from rq.job import Job
from sqlalchemy.pool import Pool

from app.extensions import db
from config import ConfigurationError
from media_worker.queue import RQ_SERIALIZER, queue_name

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class MegaboxWorker(Worker):
    """An RQ worker that runs each job inside a fresh app context of one app."""

    def __init__(self, queues: Sequence[Queue], *, app: Flask, **kwargs: Any) -> None:
        super().__init__(queues, **kwargs)
        self.app = app
        self._parent_pools: list[Pool] = []

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # The horse is a fork, so pooled connections belong to the parent: give each engine a
        # new pool, and keep the old ones referenced so that garbage collection cannot close
        # the parent's connections from here (the horse ends with os._exit).
        with self.app.app_context():
            engines = list(db.engines.values())
            self._parent_pools = [engine.pool for engine in engines]
            for engine in engines:
                engine.dispose(close=False)
        super().main_work_horse(job, queue)

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        with self.app.app_context():
            return super().perform_job(job, queue, execution)


def build_worker(
    app: Flask,
    queue_names: Sequence[str] = (),
    *,
    worker_class: type[MegaboxWorker] = MegaboxWorker,
) -> MegaboxWorker:
    """A worker on ``app``'s Redis for ``queue_names`` (default: the app's queue)."""
    connection = Redis.from_url(app.config["REDIS_URL"])
    queues = [
        Queue(name, connection=connection, serializer=RQ_SERIALIZER)
        for name in (queue_names or [queue_name(app)])
    ]
    return worker_class(queues, connection=connection, serializer=RQ_SERIALIZER, app=app)


@click.command("worker")
@click.option(
    "--burst", is_flag=True, help="Exit once the queues are empty; retries due later stay queued."
)
@click.option(
    "--queue",
    "queue_names",
    multiple=True,
    metavar="NAME",
    help="A queue to take jobs from (repeatable). Default: the app's queue.",
)
@with_appcontext
def worker_command(burst: bool, queue_names: tuple[str, ...]) -> None:
    """Run background jobs from Redis (MEGABOX_REDIS_URL), on as many hosts as needed."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["REDIS_URL"]:
        raise click.UsageError(
            "megabox worker needs MEGABOX_REDIS_URL; without it jobs run inside the web process"
        )
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    build_worker(app, queue_names).work(burst=burst, with_scheduler=True)


def main() -> None:
    """``python -m media_worker.worker``: the worker command without the ``megabox`` script."""
    from app import create_app

    def load_app() -> Flask:
        try:
            return create_app()
        except ConfigurationError as exc:
            click.echo(f"megabox worker: {exc}", err=True)
            sys.exit(1)

    worker_command.main(
        prog_name="python -m media_worker.worker", obj=ScriptInfo(create_app=load_app)
    )


if __name__ == "__main__":
    main()
