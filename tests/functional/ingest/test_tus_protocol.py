"""tus 1.0.0 on /api/v1 uploads: discovery, creation, offsets, checksums, termination, and the
spool file's life."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import stat

import pytest

from app.extensions import db
from app.ingest import uploads as service
from app.ingest.models import Upload
from tests.functional.ingest.conftest import spool_files
from tests.functional.ingest.test_upload_support import stand_in_processing  # noqa: F401

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK_TYPE = {"Content-Type": "application/offset+octet-stream"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def tus_open(studio, size: int, metadata: str | None = None, **headers: str):
    extra = {"Upload-Length": str(size), **headers}
    if metadata is not None:
        extra["Upload-Metadata"] = metadata
    return studio.client.post(
        f"/api/v1/releases/{studio.release.id}/uploads", headers={**studio.headers, **TUS, **extra}
    )


def patch(studio, upload_id: str, offset: int | str, data: bytes, **headers: str):
    return studio.client.patch(
        f"/api/v1/uploads/{upload_id}",
        data=data,
        headers={**studio.headers, **TUS, **CHUNK_TYPE, "Upload-Offset": str(offset), **headers},
    )


def head(studio, upload_id: str):
    return studio.client.head(f"/api/v1/uploads/{upload_id}", headers={**studio.headers, **TUS})


def sha256_header(data: bytes) -> str:
    return "sha256 " + b64(hashlib.sha256(data).digest())


@pytest.mark.parametrize("path", ["/api/v1/uploads", "/api/v1/releases/1/uploads"])
def test_options_tells_what_the_server_speaks(client, app, path):
    response = client.options(path)
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {"creation", "termination", "checksum"}
    assert response.headers["Tus-Max-Size"] == str(app.config["MAX_UPLOAD_BYTES"])
    assert "sha256" in response.headers["Tus-Checksum-Algorithm"].split(",")


def test_tus_creation_answers_201_with_the_uploads_location(studio, app):
    response = tus_open(studio, 10, f"filename {b64('Dès vu.flac'.encode())},filetype {b64(b'audio/flac')},is_confidential")
    assert response.status_code == 201
    upload_id = response.json["id"]
    assert response.headers["Location"] == f"/api/v1/uploads/{upload_id}"
    assert response.headers["Tus-Resumable"] == "1.0.0"
    upload = db.session.get(Upload, upload_id)
    assert upload.filename == "Dès vu.flac" and upload.size == 10 and upload.received == 0


def test_tus_creation_without_a_filename_names_the_upload(studio):
    response = tus_open(studio, 10)
    assert response.status_code == 201 and response.json["filename"] == "upload"


def test_head_gives_the_offset_and_length_uncached(studio):
    upload_id = tus_open(studio, 10).json["id"]
    patch(studio, upload_id, 0, b"1234")
    response = head(studio, upload_id)
    assert response.status_code == 200 and response.data == b""
    assert response.headers["Upload-Offset"] == "4" and response.headers["Upload-Length"] == "10"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Tus-Resumable"] == "1.0.0"


def test_patch_answers_204_with_the_new_offset_and_get_keeps_the_json_status(studio):
    upload_id = tus_open(studio, 10).json["id"]
    response = patch(studio, upload_id, 0, b"12345")
    assert response.status_code == 204 and response.data == b""
    assert response.headers["Upload-Offset"] == "5"
    state = studio.client.get(f"/api/v1/uploads/{upload_id}", headers=studio.headers)
    assert state.json["received"] == 5 and state.json["status"] == "uploading"


def test_the_last_chunk_queues_processing(studio, app, stand_in_processing):
    upload_id = tus_open(studio, 6).json["id"]
    assert patch(studio, upload_id, 0, b"abc").status_code == 204
    assert patch(studio, upload_id, 3, b"def").headers["Upload-Offset"] == "6"
    state = studio.client.get(f"/api/v1/uploads/{upload_id}", headers=studio.headers).json
    assert state["status"] == "processing" and state["stage"] == "queued"
    assert service.spool_path(app.config, upload_id).read_bytes() == b"abcdef"


@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/json", None])
def test_a_chunk_of_another_content_type_is_refused_with_415(studio, content_type):
    upload_id = tus_open(studio, 10).json["id"]
    headers = {**studio.headers, **TUS, "Upload-Offset": "0"}
    if content_type:
        headers["Content-Type"] = content_type
    response = studio.client.patch(f"/api/v1/uploads/{upload_id}", data=b"12345", headers=headers)
    assert response.status_code == 415
    assert response.json["error"] == "unsupported_media_type" and set(response.json) == {"error", "message", "details"}
    assert head(studio, upload_id).headers["Upload-Offset"] == "0"


def test_a_chunk_whose_checksum_differs_is_discarded_with_460(studio, app):
    upload_id = tus_open(studio, 10).json["id"]
    assert patch(studio, upload_id, 0, b"1234", **{"Upload-Checksum": sha256_header(b"1234")}).status_code == 204
    bad = patch(studio, upload_id, 4, b"5678", **{"Upload-Checksum": sha256_header(b"5679")})
    assert bad.status_code == 460 and bad.json["error"] == "checksum_mismatch"
    assert head(studio, upload_id).headers["Upload-Offset"] == "4"
    assert service.spool_path(app.config, upload_id).read_bytes() == b"1234"
    sha1 = "sha1 " + b64(hashlib.sha1(b"5678").digest())
    assert patch(studio, upload_id, 4, b"5678", **{"Upload-Checksum": sha1}).headers["Upload-Offset"] == "8"


@pytest.mark.parametrize("checksum", ["md5 " + b64(hashlib.md5(b"1234").digest()), "sha256 not*base64", "sha256"])
def test_an_unusable_checksum_header_is_refused_with_400(studio, checksum):
    upload_id = tus_open(studio, 10).json["id"]
    response = patch(studio, upload_id, 0, b"1234", **{"Upload-Checksum": checksum})
    assert response.status_code == 400 and response.json["error"] == "invalid_body"
    assert head(studio, upload_id).headers["Upload-Offset"] == "0"


@pytest.mark.parametrize("method", ["post", "patch", "head", "delete", "get"])
def test_another_tus_version_gets_412(studio, method):
    upload_id = tus_open(studio, 10).json["id"]
    url = f"/api/v1/releases/{studio.release.id}/uploads" if method == "post" else f"/api/v1/uploads/{upload_id}"
    headers = {**studio.headers, **CHUNK_TYPE, "Tus-Resumable": "0.2.2", "Upload-Offset": "0", "Upload-Length": "5"}
    response = getattr(studio.client, method)(url, headers=headers, data=b"12345" if method == "patch" else None)
    assert response.status_code == 412 and response.headers["Tus-Version"] == "1.0.0"
    if method != "head":
        assert response.json["error"] == "tus_version_unsupported"
    assert db.session.query(Upload).count() == 1
    assert head(studio, upload_id).headers["Upload-Offset"] == "0"


BAD_COUNTS = ["-1", "+5", "1.0", "1e3", "0x10", "", " ", "²", "٣", "12a", str(2**63), "9" * 40]


@pytest.mark.parametrize("offset", BAD_COUNTS)
def test_an_offset_that_is_not_a_plain_byte_count_is_refused_with_400(studio, offset):
    upload_id = tus_open(studio, 10).json["id"]
    response = patch(studio, upload_id, offset, b"12345")
    assert response.status_code == 400 and response.json["error"] == "invalid_body"
    assert "Upload-Offset" in response.json["details"]


@pytest.mark.parametrize("length", BAD_COUNTS)
def test_a_length_that_is_not_a_plain_byte_count_is_refused_with_400(studio, app, length):
    response = tus_open(studio, 0, **{"Upload-Length": length})
    assert response.status_code == 400 and response.json["error"] == "invalid_body"
    assert db.session.query(Upload).count() == 0 and spool_files(app) == []


def test_a_huge_json_size_is_refused_without_overflow(studio):
    response = studio.open("x.wav", 2**64)
    assert response.status_code == 422 and response.json["error"] == "invalid_input"


@pytest.mark.parametrize("metadata", ["filename not*base64", "fi\tle " + b64(b"x"), "filename " + b64(b"\xff\xfe")])
def test_unreadable_metadata_is_refused_with_400(studio, metadata):
    response = tus_open(studio, 10, metadata)
    assert response.status_code == 400 and response.json["error"] == "invalid_body"


def test_a_length_over_the_limit_is_refused_with_413(studio, app):
    response = tus_open(studio, app.config["MAX_UPLOAD_BYTES"] + 1)
    assert response.status_code == 413 and response.json["error"] == "file_too_large"


def test_a_chunk_while_another_request_holds_the_upload_is_refused_as_busy(studio, app):
    upload_id = tus_open(studio, 10).json["id"]
    with open(service.spool_path(app.config, upload_id), "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        busy = patch(studio, upload_id, 0, b"12345")
    assert busy.status_code == 409 and busy.json["error"] == "upload_busy"
    assert head(studio, upload_id).headers["Upload-Offset"] == "0"
    assert patch(studio, upload_id, 0, b"12345").status_code == 204


def test_spool_files_are_private_to_the_server(studio, app):
    old = os.umask(0)
    try:
        upload_id = tus_open(studio, 10).json["id"]
    finally:
        os.umask(old)
    mode = os.stat(service.spool_path(app.config, upload_id)).st_mode
    assert stat.S_IMODE(mode) == 0o600


def test_a_spool_file_whose_upload_rolls_back_is_removed(studio, app):
    upload = service.start_upload(db.session, app.config, studio.artist.owner, studio.release, "x.wav", 10)
    assert service.spool_path(app.config, upload.id).exists()
    db.session.rollback()
    assert spool_files(app) == [] and db.session.query(Upload).count() == 0


def test_termination_removes_the_spool_only_once_committed(studio, app):
    upload_id = tus_open(studio, 10).json["id"]
    patch(studio, upload_id, 0, b"123")
    upload = service.get_upload(db.session, studio.artist.owner, upload_id)
    service.cancel_upload(db.session, app.config, upload)
    assert service.spool_path(app.config, upload_id).exists()
    db.session.rollback()
    assert service.spool_path(app.config, upload_id).read_bytes() == b"123"
    response = studio.client.delete(f"/api/v1/uploads/{upload_id}", headers={**studio.headers, **TUS})
    assert response.status_code == 204 and response.headers["Tus-Resumable"] == "1.0.0"
    assert spool_files(app) == [] and db.session.get(Upload, upload_id) is None
    assert head(studio, upload_id).status_code == 404


def test_a_processing_upload_cannot_be_terminated(studio, app, stand_in_processing):
    upload_id = tus_open(studio, 3).json["id"]
    patch(studio, upload_id, 0, b"abc")
    response = studio.client.delete(f"/api/v1/uploads/{upload_id}", headers=studio.headers)
    assert response.status_code == 409 and response.json["error"] == "upload_not_open"
    assert service.spool_path(app.config, upload_id).exists()


def test_discarded_spools_go_only_when_the_deletion_commits(studio, app):
    ids = [tus_open(studio, 10).json["id"] for _ in range(2)]
    service.discard_spools(db.session, app.config, ids)
    db.session.rollback()
    assert len(spool_files(app)) == 2
    service.discard_spools(db.session, app.config, ids)
    db.session.commit()
    assert spool_files(app) == []


def test_the_openapi_document_describes_the_tus_requests(client):
    spec = client.get("/api/v1/openapi.json").json
    chunk = spec["paths"]["/api/v1/uploads/{upload_id}"]["patch"]
    assert "204" in chunk["responses"]
    assert "application/offset+octet-stream" in chunk["requestBody"]["content"]
    assert "options" not in spec["paths"]["/api/v1/uploads/{upload_id}"]
