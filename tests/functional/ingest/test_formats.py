"""Every lossless format a musician masters in, through the whole pipeline, with its tags."""

from __future__ import annotations

import pytest

from app.extensions import db
from app.ingest import uploads
from app.ingest.models import Upload, UploadStatus
from app.ingest.service import MASTER_CONTENT_TYPES
from app.ingest.uploads import PROCESS_JOB
from app.jobs.runner import perform_job
from app.vault import service as vault
from tests import audio_fixtures as audio

# (how to make it, the container and codec the pipeline records)
MASTERS = {
    "wavpack": ("wavpack", "wavpack"),
    "ogg_flac": ("ogg", "flac"),
    "adts_aac": ("aac", "aac"),
    "dsf": ("dsf", "dsd_lsbf_planar"),
    "dff": ("dff", "dsd_msbf"),
}


@pytest.mark.parametrize("fmt", sorted(MASTERS))
def test_each_master_format_becomes_a_track_with_its_tags(studio, app, tmp_path, fmt):
    if fmt in ("dsf", "dff"):
        master = audio.dsd_tone(tmp_path, fmt, seconds=2.0)
    else:
        master = audio.synthesise(tmp_path, f"master-{fmt}", fmt, seconds=2.0)
    audio.write_tags(master, fmt, {"TITLE": f"Song in {fmt}", "TRACKNUMBER": "4/9"})
    upload = uploads.spool_local_file(db.session, app.config, studio.artist.owner, studio.release, master)
    db.session.commit()
    upload_id, master_bytes = upload.id, master.read_bytes()

    perform_job(PROCESS_JOB, (upload_id,), final_attempt=True)

    done = db.session.get(Upload, upload_id)
    assert done.status is UploadStatus.READY, (done.error_code, done.error_message)
    track, media = done.track, done.track.media
    assert (track.title, track.position) == (f"Song in {fmt}", 4)
    assert (media.container, media.codec) == MASTERS[fmt]
    assert abs(track.duration_ms - 2000) <= 60
    # The master is kept exactly as uploaded, with a content type of its own.
    stored = vault.get_object(db.session, media.master_object_id)
    assert b"".join(vault.iter_plaintext(db.session, stored.id)) == master_bytes
    assert stored.content_type == MASTER_CONTENT_TYPES[media.container]
    assert media.waveform["buckets"] > 0
