"""The RQ worker: ``megabox worker`` runs queued jobs from Redis.

Start as many workers as the load needs, on as many hosts as share the database, Redis and
object storage. Each one makes the app once, then runs every job in its own work-horse process
inside a fresh app context of that app (see ``app.jobs.runner`` for what a job may assume).
Every worker also offers to run RQ's scheduler, which moves retries back into the queue when
they are due; a lock in Redis lets only one of them do it at a time.
"""

from __future__ import annotations

import logging
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.jobs import queue_name

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    from app.jobs.rq_queue import build_worker  # redis and rq only where they are used

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    build_worker(app, queue_names).work(burst=burst, with_scheduler=True)


def main() -> None:
    """``python -m app.jobs.worker``: ``megabox worker`` without the script, with its checks."""
    from app.cli import main as megabox

    sys.argv[1:1] = ["worker"]
    megabox()


if __name__ == "__main__":
    main()
