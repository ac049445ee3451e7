"""Helpers for the upload protocol tests (no tests here): a real HTTP server for the app, and a
stand-in for the processing job.

The protocol tests stop at "processing was queued": the stand-in records that it ran and
leaves the spool file alone, so a test can still read the bytes that arrived.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import current_app
from werkzeug.serving import make_server

from app.ingest import uploads

PROCESSING_STAND_IN = f"{__name__}.record_processing"


def record_processing(upload_id: str) -> None:
    """The processing job's stand-in: notes that it ran for ``upload_id``."""
    (processed_dir(current_app.instance_path) / upload_id).touch()


def processed_dir(instance_path: str) -> Path:
    folder = Path(instance_path) / "processed"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def stand_in_processing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uploads, "PROCESS_JOB", PROCESSING_STAND_IN)


@pytest.fixture
def live_server(app: Any, stand_in_processing: None) -> Iterator[str]:
    """The ``app`` fixture's app served over HTTP; yields its base URL."""
    with serving(app) as base_url:
        yield base_url


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app behind a threaded WSGI server on a free port; yields its base URL.

    Each request runs on the server's own thread with its own app context and session, as in
    production (the test thread keeps the ``app`` fixture's context to itself).
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
