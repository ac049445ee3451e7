"""The resumable chunk protocol of /api/v1 uploads, and its limits."""

import io

from app.extensions import db
from app.ingest import uploads as service
from app.ingest.models import Upload, UploadStatus
from tests.factories import UserFactory
from tests.functional.ingest.conftest import spool_files
from tests.functional.ingest.test_upload_support import stand_in_processing  # noqa: F401


def test_opening_an_empty_file_is_refused_and_creates_nothing(studio, app):
    response = studio.open("silence.wav", 0)
    assert response.status_code == 422 and response.json["error"] == "empty_file"
    assert db.session.query(Upload).count() == 0 and spool_files(app) == []


def test_a_file_over_the_size_limit_is_refused(make_app):
    app = make_app(MAX_UPLOAD_BYTES=1000)
    with app.app_context():
        from tests.functional.ingest.conftest import Studio

        studio = Studio(app, app.test_client())
        response = studio.open("huge.wav", 1001)
        assert response.status_code == 413 and response.json["error"] == "file_too_large"
        assert response.json["details"] == {"size": 1001, "limit": 1000}


def test_the_artists_storage_quota_counts_unfinished_uploads(make_app):
    app = make_app(ARTIST_STORAGE_QUOTA_BYTES=1500)
    with app.app_context():
        from tests.functional.ingest.conftest import Studio

        studio = Studio(app, app.test_client())
        assert studio.open("a.wav", 1000).status_code == 201
        refused = studio.open("b.wav", 600)
        assert refused.status_code == 413 and refused.json["error"] == "quota_exceeded"
        assert refused.json["details"]["used"] == 1000


def test_only_the_artist_can_upload_into_a_release(studio, client):
    from app.accounts.service import issue_token

    studio.release.published = True
    _, secret = issue_token(db.session, UserFactory(), "other")
    db.session.commit()
    response = client.post(
        f"/api/v1/releases/{studio.release.id}/uploads",
        json={"filename": "x.wav", "size": 10},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 403


def test_a_chunk_at_the_wrong_offset_is_refused_with_the_right_one(studio):
    upload_id = studio.open("x.wav", 10).json["id"]
    sent = studio.send(upload_id, 0, b"12345")
    assert sent.status_code == 204 and sent.headers["Upload-Offset"] == "5"
    wrong = studio.send(upload_id, 0, b"12345")
    assert wrong.status_code == 409
    assert wrong.json["error"] == "offset_mismatch" and wrong.json["details"] == {"offset": 5}
    past = studio.send(upload_id, 5, b"1234567")
    assert past.status_code == 413 and past.json["error"] == "chunk_too_large"
    state = studio.client.get(f"/api/v1/uploads/{upload_id}", headers=studio.headers)
    assert state.json["received"] == 5 and state.headers["Upload-Offset"] == "5"


class _DroppedConnection(io.RawIOBase):
    """A request body whose client goes away after ``keep`` bytes."""

    def __init__(self, data: bytes, keep: int) -> None:
        self.data, self.keep, self.sent = data, keep, 0

    def read(self, size: int = -1) -> bytes:
        if self.sent >= self.keep:
            raise OSError("connection reset by peer")
        block = self.data[self.sent : min(self.keep, self.sent + (size if size > 0 else len(self.data)))]
        self.sent += len(block)
        return block


def test_bytes_before_a_dropped_connection_are_kept_and_the_upload_resumes(studio, app, stand_in_processing):
    data = bytes(range(256)) * 40
    upload = service.start_upload(db.session, app.config, studio.artist.owner, studio.release, "m.wav", len(data))
    db.session.commit()
    received = service.append_chunk(db.session, app.config, upload, 0, _DroppedConnection(data, 3000), len(data))
    db.session.commit()
    assert received == 3000 and upload.received == 3000 and upload.status is UploadStatus.UPLOADING
    assert service.spool_path(app.config, upload.id).read_bytes() == data[:3000]
    resumed = studio.send(upload.id, 3000, data[3000:])
    assert resumed.status_code == 204 and resumed.headers["Upload-Offset"] == str(len(data))
    state = studio.client.get(f"/api/v1/uploads/{upload.id}", headers=studio.headers)
    assert state.json["status"] == "processing" and state.json["received"] == len(data)
    assert service.spool_path(app.config, upload.id).read_bytes() == data


def test_cancelling_removes_the_spooled_bytes(studio, app):
    upload_id = studio.open("x.wav", 10).json["id"]
    studio.send(upload_id, 0, b"123")
    assert studio.client.delete(f"/api/v1/uploads/{upload_id}", headers=studio.headers).status_code == 204
    assert db.session.get(Upload, upload_id) is None and spool_files(app) == []


def test_uploads_are_private_to_their_uploader(studio, client):
    upload_id = studio.open("x.wav", 10).json["id"]
    from app.accounts.service import issue_token

    _, secret = issue_token(db.session, UserFactory(), "other")
    db.session.commit()
    other = client.get(f"/api/v1/uploads/{upload_id}", headers={"Authorization": f"Bearer {secret}"})
    assert other.status_code == 404
