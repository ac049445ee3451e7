"""The ingest job: a completed upload becomes a playable track, or a clear rejection.

``process_upload(upload_id)`` runs on the job queue (in-process threads, or RQ workers):

1. one ffmpeg pass validates the master by content and measures loudness and the waveform;
2. tags and cover are read (they fill only what the artist has not typed);
3. one ffmpeg command makes both loudness-normalised renditions while the master is
   encrypted into the vault, which also gives its SHA-256: a duplicate of one of the
   artist's masters is refused and rolled back;
4. renditions and cover thumbnails go into the vault, and the track is created, in the same
   transaction.

Progress is written to the upload row on a connection of its own, so pollers see it while
the job's transaction is open. The spooled plaintext is removed whatever the outcome: after
the commit on success, at once on a rejection, and by the failure hook after the last retry.
A rollback removes the vault objects the attempt wrote (see ``app.vault.service``), so a
failure half-way leaves nothing behind. Running the job again after it finished does nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.catalog.models import PricingMode, Release, Track, TrackStatus
from app.extensions import db
from app.ingest.models import ReleaseCover, TrackMedia, Upload, UploadStatus
from app.ingest.service import spool_path
from app.plays.views import cover_path
from app.vault import service as vault
from app.vault.errors import StorageUnavailable
from app.vault.models import VaultObject
from media_worker.analysis import MasterAnalysis, analyse_master
from media_worker.covers import thumbnails
from media_worker.errors import FFmpegTimeout, RejectedAudio, RejectedImage
from media_worker.ffmpeg import configure_concurrency, ffmpeg_path
from media_worker.queue import TransientJobError, on_failure
from media_worker.renditions import Renditions, make_renditions
from media_worker.tags import Tags, read_tags

logger = logging.getLogger(__name__)

COVER_SIZES = (1200, 600, 300)
COVER_DISPLAY_SIZE = 600
MASTER_CONTENT_TYPES = {
    "wav": "audio/wav", "aiff": "audio/aiff", "flac": "audio/flac", "mp3": "audio/mpeg",
    "ogg": "audio/ogg", "mp4": "audio/mp4",
}  # fmt: skip
# Share of the progress bar each step takes (the encode is most of the work).
ANALYSIS_SPAN = (0, 30)
ENCODE_SPAN = (30, 92)


class ProgressReporter:
    """Writes an upload's stage and percentage on its own connection, at most so often."""

    def __init__(self, upload_id: str, interval: float) -> None:
        # Kept here: the encoding thread reports progress outside the app context.
        self.engine = db.engine
        self.upload_id = upload_id
        self.interval = interval
        self._last = (None, -1)
        self._last_time = 0.0

    def report(self, stage: str, percent: int) -> None:
        now = time.monotonic()
        if (stage, percent) == self._last:
            return
        if stage == self._last[0] and now - self._last_time < self.interval:
            return
        self._last, self._last_time = (stage, percent), now
        with self.engine.begin() as connection:
            connection.execute(
                update(Upload).where(Upload.id == self.upload_id).values(stage=stage, progress=percent)
            )

    def span(self, stage: str, start: int, end: int):  # type: ignore[no-untyped-def]
        """A ``progress(fraction)`` callback that maps 0..1 onto ``start``..``end`` percent."""
        return lambda fraction: self.report(stage, start + int((end - start) * min(max(fraction, 0.0), 1.0)))


def _fail_upload(upload_id: str, code: str, message: str) -> None:
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status is UploadStatus.READY:
        return
    upload.status = UploadStatus.FAILED
    upload.error_code = code
    upload.error_message = message[:500]
    upload.stage = "failed"
    db.session.commit()
    spool_path(current_app.config, upload_id).unlink(missing_ok=True)


def record_failure(error: BaseException, upload_id: str) -> None:
    """Failure hook: the job will not be retried again."""
    if isinstance(error, FFmpegTimeout):
        code, message = "processing_timeout", "Processing took longer than the time limit."
    elif isinstance(error, StorageUnavailable | TransientJobError):
        code, message = "storage_unavailable", "Storage was unavailable; upload the file again."
    else:
        code, message = "processing_failed", "Processing failed on our side; try again later."
    _fail_upload(upload_id, code, message)


@on_failure(record_failure)
def process_upload(upload_id: str) -> None:
    """Process a completed upload. Idempotent: an upload not in ``processing`` is left alone."""
    config = current_app.config
    upload = db.session.get(Upload, upload_id)
    if upload is None or upload.status is not UploadStatus.PROCESSING:
        return
    spool = spool_path(config, upload_id)
    if not spool.exists():
        _fail_upload(upload_id, "upload_lost", "The uploaded bytes are gone; upload the file again.")
        return
    configure_concurrency(config["FFMPEG_CONCURRENCY"])
    ffmpeg = ffmpeg_path(config["FFMPEG"])
    reporter = ProgressReporter(upload_id, config["PROGRESS_INTERVAL_SECONDS"])

    reporter.report("analysing", ANALYSIS_SPAN[0])
    artist_id = upload.artist_id
    with tempfile.TemporaryDirectory(prefix="megabox-ingest-") as work:
        try:
            analysis = analyse_master(
                spool,
                ffmpeg=ffmpeg,
                max_seconds=config["MAX_AUDIO_SECONDS"],
                waveform_buckets=config["WAVEFORM_BUCKETS"],
                timeout=config["JOB_TIMEOUT_SECONDS"],
                progress=reporter.span("analysing", *ANALYSIS_SPAN),
            )
        except RejectedAudio as rejected:
            _fail_upload(upload_id, rejected.code, rejected.message)
            return
        tags = read_tags(spool)
        try:
            master, renditions = _encode_while_storing(spool, analysis, Path(work), ffmpeg, config, reporter)
            reporter.report("storing", ENCODE_SPAN[1])
            sha256 = master.sha256
            if (existing := _duplicate_of(artist_id, sha256)) is not None:
                db.session.rollback()  # the vault deletes the master it has just stored
                _fail_upload(upload_id, "duplicate", f"This master is already uploaded as “{existing.title}”.")
                return
            track = _store(upload, master, analysis, tags, renditions, config)
            upload.status = UploadStatus.READY
            upload.track = track
            upload.stage = "done"
            upload.progress = 100
            db.session.commit()
        except StorageUnavailable as exc:
            raise TransientJobError(str(exc)) from exc
        except IntegrityError:
            db.session.rollback()
            if (existing := _duplicate_of(artist_id, sha256)) is None:
                raise
            # Another upload of the same master won the race for the unique key.
            _fail_upload(upload_id, "duplicate", f"This master is already uploaded as “{existing.title}”.")
            return
    spool.unlink(missing_ok=True)


def _encode_while_storing(
    spool: Path,
    analysis: MasterAnalysis,
    work: Path,
    ffmpeg: str,
    config: Mapping[str, Any],
    reporter: ProgressReporter,
) -> tuple[VaultObject, Renditions]:
    """Encrypt the master into the vault on this thread while ffmpeg encodes the renditions.

    ffmpeg runs in a process of its own and the vault's hashing and AES release the GIL, so
    the two overlap; the session is only touched from this thread. Duplicates are found from
    the SHA-256 the vault computes, so the master is read once. Raises what
    ``make_renditions`` and ``vault.put_path`` raise.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="renditions") as pool:
        encoding = pool.submit(
            make_renditions,
            spool,
            analysis,
            opus_path=work / "stream.opus",
            mp3_path=work / "stream.mp3",
            ffmpeg=ffmpeg,
            timeout=config["JOB_TIMEOUT_SECONDS"],
            target_lufs=config["LOUDNESS_TARGET_LUFS"],
            true_peak_limit_dbtp=config["TRUE_PEAK_LIMIT_DBTP"],
            progress=reporter.span("encoding", *ENCODE_SPAN),
        )
        content_type = MASTER_CONTENT_TYPES.get(analysis.info.container)
        master = vault.put_path(db.session, spool, kind="master", content_type=content_type)
        return master, encoding.result()


def _duplicate_of(artist_id: int, sha256: str) -> Track | None:
    # No autoflush: on SQLite a flush takes the write lock, and progress is still written on
    # another connection until the job commits.
    with db.session.no_autoflush:
        media = db.session.scalar(
            select(TrackMedia).where(
                TrackMedia.artist_id == artist_id, TrackMedia.master_sha256 == sha256
            )
        )
    return None if media is None else media.track


def _store(
    upload: Upload,
    master: VaultObject,
    analysis: MasterAnalysis,
    tags: Tags,
    renditions: Renditions,
    config: Mapping[str, Any],
) -> Track:
    release = upload.release
    info = analysis.info
    opus = vault.put_path(db.session, renditions.opus_path, kind="rendition", content_type="audio/ogg")
    mp3 = vault.put_path(db.session, renditions.mp3_path, kind="rendition", content_type="audio/mpeg")
    track = Track(
        title=tags.title or Path(upload.filename).stem or "Untitled",
        position=_position(release, tags.track_number),
        duration_ms=analysis.duration_ms,
        isrc=tags.isrc,
        explicit=bool(tags.explicit),
        price_minor=0 if release.pricing_mode is PricingMode.FREE else config["DEFAULT_TRACK_PRICE_MINOR"],
        status=TrackStatus.READY,
        locked_fields=[],
    )
    release.tracks.append(track)
    track.media = TrackMedia(
        artist_id=upload.artist_id,
        master_sha256=master.sha256,
        master_object=master,
        opus_object=opus,
        mp3_object=mp3,
        original_filename=upload.filename,
        container=info.container,
        codec=info.codec,
        sample_rate=info.sample_rate,
        bit_depth=info.bit_depth,
        channels=info.channels,
        loudness_lufs=analysis.loudness.integrated_lufs,
        true_peak_dbtp=analysis.loudness.true_peak_dbtp,
        gain_db=renditions.gain_db,
        waveform=analysis.waveform.as_json(),
        tags=_tags_json(tags),
    )
    _prefill_release(release, tags)
    return track


def _tags_json(tags: Tags) -> dict[str, Any]:
    """The tags as read, for reference (the cover is stored as thumbnails instead)."""
    found = {k: v for k, v in dataclasses.asdict(tags).items() if k != "cover" and v not in (None, ())}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in found.items()}


def _full_date(text: str | None) -> date | None:
    """A tag's date when it names a day; "2021" alone is not a release date."""
    try:
        return date.fromisoformat(text) if text and len(text) == len("2021-03-04") else None
    except ValueError:
        return None


def _position(release: Release, tagged: int | None) -> int:
    taken = {t.position for t in release.tracks}
    if tagged is not None and tagged not in taken:
        return tagged
    return max(taken, default=0) + 1


def _prefill_release(release: Release, tags: Tags) -> None:
    """Fill the release's empty fields from tags, never the ones the artist typed."""
    locked = set(release.locked_fields or ())
    if tags.album and "title" not in locked:
        release.title = tags.album
    if release.release_date is None and "release_date" not in locked:
        release.release_date = _full_date(tags.date)
    has_cover = db.session.scalar(select(ReleaseCover.size).where(ReleaseCover.release_id == release.id).limit(1))
    if tags.cover is None or has_cover is not None or "cover_url" in locked or release.cover_url:
        return
    try:
        sized = thumbnails(tags.cover.data, COVER_SIZES)
    except RejectedImage as exc:
        logger.info("cover of release %s not used: %s", release.id, exc)
        return
    for size, jpeg in sized.items():
        with tempfile.TemporaryFile() as spool:
            spool.write(jpeg)
            spool.seek(0)
            stored = vault.put_stream(db.session, spool, kind="cover", content_type="image/jpeg", size=len(jpeg))
        db.session.add(ReleaseCover(release_id=release.id, size=size, vault_object=stored))
    release.cover_url = cover_path(release.id, COVER_DISPLAY_SIZE)

