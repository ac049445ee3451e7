"""tus over a real HTTP server: an unmodified tus client, dropped connections, and requests
that race each other (each thread on its own connection, the server on its own threads).

These run on the suite's database: SQLite by default, PostgreSQL with
MEGABOX_TEST_DATABASE_URL (as .ci/run does).
"""

from __future__ import annotations

import http.client
import io
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select
from tusclient.client import TusClient

from app.extensions import db
from app.ingest import uploads as service
from app.ingest.models import Upload, UploadStatus
from tests.functional.ingest.conftest import Studio, spool_files
from tests.functional.ingest.test_upload_support import (  # noqa: F401
    live_server,
    processed_dir,
    serving,
    stand_in_processing,
)

TUS = {"Tus-Resumable": "1.0.0"}
WAIT_SECONDS = 10


def master(size: int) -> bytes:
    return os.urandom(size)


def open_upload(base: str, studio: Studio, size: int) -> str:
    response = requests.post(
        f"{base}/api/v1/releases/{studio.release.id}/uploads",
        headers={**studio.headers, **TUS, "Upload-Length": str(size)},
        timeout=WAIT_SECONDS,
    )
    assert response.status_code == 201, response.text
    return base + response.headers["Location"]


def offset_of(url: str, studio: Studio) -> int:
    response = requests.head(url, headers={**studio.headers, **TUS}, timeout=WAIT_SECONDS)
    return int(response.headers["Upload-Offset"])


def stored(upload_id: str) -> Upload:
    db.session.rollback()  # read what the server's threads committed
    db.session.expire_all()
    return db.session.get(Upload, upload_id)


def wait_for_processing(app, upload_id: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (processed_dir(app.instance_path) / upload_id).exists():
        assert time.monotonic() < deadline, "processing was never queued"
        time.sleep(0.05)


def test_an_unmodified_tus_client_uploads_a_master(app, client, live_server):
    studio = Studio(app, client)
    data = master(200_000)
    tus = TusClient(f"{live_server}/api/v1/releases/{studio.release.id}/uploads", headers=studio.headers)
    uploader = tus.uploader(
        file_stream=io.BytesIO(data), chunk_size=64 * 1024, metadata={"filename": "Première.flac"},
        upload_checksum=True,
    )  # fmt: skip
    uploader.upload()
    upload_id = uploader.url.rsplit("/", 1)[1]
    upload = stored(upload_id)
    assert upload.filename == "Première.flac" and upload.received == len(data)
    assert upload.status is UploadStatus.PROCESSING
    assert service.spool_path(app.config, upload_id).read_bytes() == data
    wait_for_processing(app, upload_id)


def test_the_tus_client_resumes_after_a_connection_drops_mid_chunk(app, client, live_server):
    studio = Studio(app, client)
    data = master(300_000)
    url = open_upload(live_server, studio, len(data))
    arrived = 120_000
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT_SECONDS)
    connection.putrequest("PATCH", parts.path)
    for name, value in {**studio.headers, **TUS, "Upload-Offset": "0", "Content-Length": str(len(data)),
                        "Content-Type": "application/offset+octet-stream"}.items():  # fmt: skip
        connection.putheader(name, value)
    connection.endheaders()
    connection.send(data[:arrived])
    connection.close()  # half-way through the chunk

    deadline = time.monotonic() + WAIT_SECONDS
    while offset_of(url, studio) != arrived:
        assert time.monotonic() < deadline, "the bytes that arrived were not kept"
        time.sleep(0.05)
    upload_id = parts.path.rsplit("/", 1)[1]
    assert service.spool_path(app.config, upload_id).read_bytes() == data[:arrived]

    tus = TusClient(live_server, headers=studio.headers)
    uploader = tus.uploader(file_stream=io.BytesIO(data), url=url, chunk_size=100_000)
    assert uploader.offset == arrived  # resumed from HEAD
    uploader.upload()
    assert stored(upload_id).received == len(data)
    assert service.spool_path(app.config, upload_id).read_bytes() == data


class _SlowBody:
    """A request body sent in small pieces with pauses, so that racing requests overlap."""

    def __init__(self, data: bytes, piece: int = 4096, pause: float = 0.002) -> None:
        self._stream, self._piece, self._pause = io.BytesIO(data), piece, pause
        self.len = len(data)

    def read(self, size: int = -1) -> bytes:
        time.sleep(self._pause)
        return self._stream.read(min(self._piece, size if size > 0 else self._piece))


@pytest.mark.parametrize("writers", [2, 6])
def test_of_chunks_racing_at_one_offset_one_wins_and_the_spool_holds_its_bytes(app, client, live_server, writers):
    studio = Studio(app, client)
    size = 64 * 1024
    url = open_upload(live_server, studio, size * 2)
    headers = {**studio.headers, **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    chunks = [bytes([index + 1]) * size for index in range(writers)]
    start = threading.Barrier(writers)

    def send(chunk: bytes) -> requests.Response:
        with requests.Session() as session:  # a connection of its own
            start.wait()
            return session.patch(url, data=_SlowBody(chunk), headers=headers, timeout=WAIT_SECONDS)

    with ThreadPoolExecutor(writers) as pool:
        replies = list(pool.map(send, chunks))

    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [204] + [409] * (writers - 1), [r.text for r in replies]
    assert {r.json()["error"] for r in replies if r.status_code == 409} <= {"upload_busy", "offset_mismatch"}
    winner = chunks[[r.status_code for r in replies].index(204)]
    upload_id = url.rsplit("/", 1)[1]
    assert stored(upload_id).received == size
    assert service.spool_path(app.config, upload_id).read_bytes() == winner


def test_parallel_openings_admit_only_what_fits_the_quota(make_app, stand_in_processing):
    app = make_app(ARTIST_STORAGE_QUOTA_BYTES=5_500)
    openings, size = 16, 1_000
    with app.app_context():
        studio = Studio(app, app.test_client())
        endpoint = f"/api/v1/releases/{studio.release.id}/uploads"
        headers = {**studio.headers, **TUS, "Upload-Length": str(size)}
        start = threading.Barrier(openings)
        with serving(app) as base_url:

            def open_one(_: int) -> requests.Response:
                with requests.Session() as session:
                    start.wait()
                    return session.post(base_url + endpoint, headers=headers, timeout=30)

            with ThreadPoolExecutor(openings) as pool:
                replies = list(pool.map(open_one, range(openings)))
        created = [r for r in replies if r.status_code == 201]
        refused = [r for r in replies if r.status_code == 413]
        assert len(created) == 5 and len(refused) == openings - 5, [r.text for r in replies]
        assert {r.json()["error"] for r in refused} == {"quota_exceeded"}
        db.session.rollback()
        rows = db.session.scalar(select(func.count()).select_from(Upload).where(Upload.artist_id == studio.artist.id))
        assert rows == 5
        assert len(spool_files(app)) == 5


def test_an_opening_waits_for_another_one_of_the_same_artist_and_counts_it(make_app):
    app = make_app(ARTIST_STORAGE_QUOTA_BYTES=1_500)
    with app.app_context():
        studio = Studio(app, app.test_client())
        owner_id, release_id = studio.artist.owner.id, studio.release.id
        first = service.start_upload(db.session, app.config, studio.artist.owner, studio.release, "a.wav", 1_000)
        outcome: list[BaseException | Upload] = []

        def open_second() -> None:
            with app.app_context():  # a session and connection of its own
                from app.accounts.models import User
                from app.catalog.models import Release

                user, release = db.session.get(User, owner_id), db.session.get(Release, release_id)
                try:
                    outcome.append(service.start_upload(db.session, app.config, user, release, "b.wav", 600))
                    db.session.commit()
                except Exception as error:  # noqa: BLE001 - the outcome is what is asserted
                    outcome.append(error)
                    db.session.rollback()

        second = threading.Thread(target=open_second)
        second.start()
        second.join(0.5)
        assert second.is_alive(), "the second opening did not wait for the first"
        db.session.commit()
        second.join(WAIT_SECONDS)
        assert len(outcome) == 1 and getattr(outcome[0], "code", None) == "quota_exceeded"
        assert outcome[0].details == {"used": 1_000, "quota": 1_500, "size": 600}
        assert stored(first.id) is not None
