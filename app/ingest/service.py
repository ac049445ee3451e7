"""The ingest rules: a completed upload becomes a playable track, or a clear rejection.

``process_upload(session, config, upload_id)`` is what the ingest job (``app.ingest.tasks``)
runs, in three phases:

1. a short read of the upload, after which the session's transaction is ended, so that no
   transaction stays open (and no row stays locked) while ffmpeg runs;
2. media work outside any transaction: one ffmpeg pass validates the master by content and
   measures loudness and the waveform; tags and cover are read; one ffmpeg command makes both
   loudness-normalised renditions while the master is encrypted into the vault (which also
   gives its SHA-256). The vault puts only add rows to the session: no SQL runs yet;
3. a short store: a compare-and-set moves the upload from ``processing`` to ``ready`` (so two
   runs of the job at once store one track), then duplicates and the storage quota are
   checked and the track, its media and cover are created. The caller commits.

Tags fill only what the artist has not typed. Progress is written on a connection of its own,
so pollers see it during phase 2. The spooled plaintext is removed after the commit whatever
the outcome (``fail_upload`` and a stored track both schedule it). A rollback removes the
vault objects the attempt wrote (see ``app.vault.service``), so a failure half-way leaves
nothing behind, and running the job again after it finished does nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import transactions
from app.catalog.models import MAX_TRACK_POSITION, PricingMode, Release, Track, TrackStatus
from app.catalog.service import next_position
from app.ingest.media import cover_path
from app.ingest.models import ReleaseCover, TrackMedia, Upload, UploadStatus
from app.ingest.uploads import lock_artist, spool_path, storage_used
from app.timestamps import utcnow
from app.vault import service as vault
from app.vault.errors import StorageUnavailable
from app.vault.models import VaultObject
from media_worker.analysis import MasterAnalysis, analyse_master
from media_worker.covers import thumbnails
from media_worker.errors import FFmpegTimeout, RejectedAudio, RejectedImage
from media_worker.ffmpeg import configure_concurrency, ffmpeg_path
from media_worker.renditions import Renditions, make_renditions
from media_worker.tags import Tags, read_tags

logger = logging.getLogger(__name__)

COVER_SIZES = (1200, 600, 300)
COVER_DISPLAY_SIZE = 600
MASTER_CONTENT_TYPES = {
    "wav": "audio/wav", "aiff": "audio/aiff", "flac": "audio/flac", "mp3": "audio/mpeg",
    "ogg": "audio/ogg", "mp4": "audio/mp4", "wavpack": "audio/x-wavpack", "ape": "audio/x-ape",
    "tak": "audio/x-tak", "dsf": "audio/x-dsf", "dff": "audio/x-dff", "asf": "audio/x-ms-wma",
    "aac": "audio/aac",
}  # fmt: skip
# Share of the progress bar each step takes (the encode is most of the work).
ANALYSIS_SPAN = (0, 30)
ENCODE_SPAN = (30, 92)


class ProgressReporter:
    """Writes an upload's stage and percentage on its own connection, at most so often."""

    def __init__(self, engine: Engine, upload_id: str, interval: float) -> None:
        # An engine, not the session: the encoding thread reports while no transaction is open.
        self.engine = engine
        self.upload_id = upload_id
        self.interval = interval
        self._last: tuple[str | None, int] = (None, -1)
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
                update(Upload)
                .where(Upload.id == self.upload_id, Upload.status == UploadStatus.PROCESSING)
                .values(stage=stage, progress=percent)
            )

    def span(self, stage: str, start: int, end: int) -> Callable[[float], None]:
        """A ``progress(fraction)`` callback that maps 0..1 onto ``start``..``end`` percent."""
        return lambda fraction: self.report(stage, start + int((end - start) * min(max(fraction, 0.0), 1.0)))


@dataclasses.dataclass(frozen=True)
class _Media:
    """What phase 2 made of a master: its vault objects and what was measured and read."""

    master: VaultObject
    opus: VaultObject
    mp3: VaultObject
    analysis: MasterAnalysis
    tags: Tags
    renditions: Renditions

    @property
    def objects(self) -> tuple[VaultObject, ...]:
        return (self.master, self.opus, self.mp3)


@dataclasses.dataclass(frozen=True)
class _Claim:
    """What the media work needs of an upload, read before the transaction ends."""

    upload_id: str
    artist_id: int
    spool: Path


def fail_upload(session: Session, config: Mapping[str, Any], upload_id: str, code: str, message: str) -> None:
    """Mark an upload failed with a reason, freeing its quota; its spool goes after the commit.

    An upload that is already ready, or gone, is left alone.
    """
    upload = session.get(Upload, upload_id)
    if upload is None or upload.status is UploadStatus.READY:
        return
    upload.status = UploadStatus.FAILED
    upload.error_code = code
    upload.error_message = message[:500]
    upload.stage = "failed"
    _remove_spool_after_commit(session, config, upload_id)


def failure_reason(error: BaseException) -> tuple[str, str]:
    """The code and message users see for a job that failed for good with ``error``."""
    if isinstance(error, FFmpegTimeout):
        return "processing_timeout", "Processing took longer than the time limit."
    if isinstance(error, StorageUnavailable) or isinstance(error.__cause__, StorageUnavailable):
        return "storage_unavailable", "Storage was unavailable; upload the file again."
    return "processing_failed", "Processing failed on our side; try again later."


def process_upload(session: Session, config: Mapping[str, Any], upload_id: str) -> Track | None:
    """Turn a completed upload into a track, or record why it was rejected (see the module
    docstring). Returns the track, or None when rejected or when there was nothing to do.

    Ends the session's transaction before the media work, so call it at the start of a unit
    of work; the caller commits. Raises FFmpegTimeout, StorageUnavailable and the errors of
    ``make_renditions`` for failures that are not the file's fault.
    """
    claim = _claim(session, config, upload_id)
    if claim is None:
        return None
    # Nothing is written yet: ending the read here keeps the transaction short.
    session.rollback()
    try:
        return _process_claimed(session, config, claim)
    except FileNotFoundError:
        # Another run of this job finished first and removed the spooled bytes while this one
        # was reading them: that run stored the track, and this one has nothing to do.
        session.rollback()
        upload = session.get(Upload, upload_id, populate_existing=True)
        if upload is None or upload.status is not UploadStatus.PROCESSING:
            return None
        raise


def _process_claimed(session: Session, config: Mapping[str, Any], claim: _Claim) -> Track | None:
    upload_id = claim.upload_id
    configure_concurrency(config["FFMPEG_CONCURRENCY"])
    ffmpeg = ffmpeg_path(config["FFMPEG"])
    reporter = ProgressReporter(session.get_bind(), upload_id, config["PROGRESS_INTERVAL_SECONDS"])
    reporter.report("analysing", ANALYSIS_SPAN[0])
    with tempfile.TemporaryDirectory(prefix="megabox-ingest-") as work:
        try:
            analysis = analyse_master(
                claim.spool,
                ffmpeg=ffmpeg,
                max_seconds=config["MAX_AUDIO_SECONDS"],
                waveform_buckets=config["WAVEFORM_BUCKETS"],
                timeout=config["JOB_TIMEOUT_SECONDS"],
                progress=reporter.span("analysing", *ANALYSIS_SPAN),
                max_channels=config["MAX_AUDIO_CHANNELS"],
                min_sample_rate=config["MIN_SAMPLE_RATE_HZ"],
                max_sample_rate=config["MAX_SAMPLE_RATE_HZ"],
            )
        except RejectedAudio as rejected:
            fail_upload(session, config, upload_id, rejected.code, rejected.message)
            return None
        tags = read_tags(claim.spool)
        master, renditions = _encode_while_storing(session, claim.spool, analysis, Path(work), ffmpeg, config, reporter)
        reporter.report("storing", ENCODE_SPAN[1])
        opus = vault.put_path(session, renditions.opus_path, kind="rendition", content_type="audio/ogg")
        mp3 = vault.put_path(session, renditions.mp3_path, kind="rendition", content_type="audio/mpeg")
        return _store_once(session, config, claim, _Media(master, opus, mp3, analysis, tags, renditions))


def _claim(session: Session, config: Mapping[str, Any], upload_id: str) -> _Claim | None:
    upload = session.get(Upload, upload_id)
    if upload is None or upload.status is not UploadStatus.PROCESSING:
        return None
    spool = spool_path(config, upload_id)
    if not spool.exists():
        fail_upload(session, config, upload_id, "upload_lost", "The uploaded bytes are gone; upload the file again.")
        return None
    return _Claim(upload_id, upload.artist_id, spool)


def _store_once(session: Session, config: Mapping[str, Any], claim: _Claim, media: _Media) -> Track | None:
    """Phase 3: store the track unless another run did, or the upload went meanwhile."""
    # Compare-and-set: of two runs at once, one moves the upload on; the other stores nothing.
    moved = session.execute(
        update(Upload)
        .where(Upload.id == claim.upload_id, Upload.status == UploadStatus.PROCESSING)
        .values(status=UploadStatus.READY, stage="done", progress=100)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        session.rollback()  # removes the objects this run put into the vault
        return None
    upload = session.get(Upload, claim.upload_id, populate_existing=True)
    if upload is None or upload.release is None:  # the release was deleted while we worked
        session.rollback()
        return None
    lock_artist(session, claim.artist_id)
    rejection = (
        _duplicate_rejection(session, claim.artist_id, media.master.sha256)
        or _quota_rejection(session, config, claim.artist_id, media.objects)
        or _full_release_rejection(upload.release)
    )
    if rejection is None:
        try:
            with session.begin_nested():
                track = _store(session, config, upload, media)
        except IntegrityError:
            # Another upload of the same master won the race for the unique key.
            rejection = _duplicate_rejection(session, claim.artist_id, media.master.sha256)
            if rejection is None:
                raise
    if rejection is not None:
        session.rollback()  # removes the objects this run put into the vault
        fail_upload(session, config, claim.upload_id, *rejection)
        return None
    upload.track = track
    _remove_spool_after_commit(session, config, claim.upload_id)
    return track


def _full_release_rejection(release: Release) -> tuple[str, str] | None:
    if next_position(release) <= MAX_TRACK_POSITION:
        return None
    return "release_full", f"A release holds at most {MAX_TRACK_POSITION} tracks."


def _duplicate_rejection(session: Session, artist_id: int, sha256: str) -> tuple[str, str] | None:
    existing = _duplicate_of(session, artist_id, sha256)
    if existing is None:
        return None
    return "duplicate", f"This master is already uploaded as “{existing.title}”."


def _quota_rejection(
    session: Session, config: Mapping[str, Any], artist_id: int, objects: tuple[VaultObject, ...]
) -> tuple[str, str] | None:
    """Masters and their renditions count against the quota: a long silent master compresses
    to little but its renditions do not."""
    quota = config["ARTIST_STORAGE_QUOTA_BYTES"]
    with session.no_autoflush:
        used = storage_used(session, artist_id)
    if used + sum(stored.size for stored in objects) <= quota:
        return None
    return "quota_exceeded", "This master and its streaming copies would take the artist over their storage quota."


def _remove_spool_after_commit(session: Session, config: Mapping[str, Any], upload_id: str) -> None:
    spool = spool_path(config, upload_id)
    transactions.after_commit(session, lambda: spool.unlink(missing_ok=True))


@dataclasses.dataclass(frozen=True)
class StuckUploads:
    requeued: list[str]
    failed: int


def recover_stuck(session: Session, config: Mapping[str, Any]) -> StuckUploads:
    """Uploads stuck in ``processing`` for longer than ``UPLOAD_PROCESSING_TIMEOUT_MINUTES``
    (their job was lost with its process, or it keeps dying): the ids to enqueue again.

    Their progress is reset, so that the next sweep waits as long again for the new job. An
    upload whose spooled bytes are gone is failed instead, which frees its quota.
    """
    cutoff = utcnow() - timedelta(minutes=config["UPLOAD_PROCESSING_TIMEOUT_MINUTES"])
    stuck = list(
        session.scalars(
            select(Upload).where(Upload.status == UploadStatus.PROCESSING, Upload.updated_at < cutoff)
        )
    )
    requeued = []
    for upload in stuck:
        if spool_path(config, upload.id).exists():
            upload.stage = "queued"
            upload.progress = 0
            upload.updated_at = utcnow()
            requeued.append(upload.id)
        else:
            fail_upload(session, config, upload.id, "upload_lost", "The uploaded bytes are gone; upload the file again.")
    return StuckUploads(requeued, len(stuck) - len(requeued))


def _encode_while_storing(
    session: Session,
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
        master = vault.put_path(session, spool, kind="master", content_type=content_type)
        return master, encoding.result()


def _duplicate_of(session: Session, artist_id: int, sha256: str) -> Track | None:
    with session.no_autoflush:  # the new track's rows are not in the database yet
        media = session.scalar(
            select(TrackMedia).where(TrackMedia.artist_id == artist_id, TrackMedia.master_sha256 == sha256)
        )
    return None if media is None else media.track


def _store(session: Session, config: Mapping[str, Any], upload: Upload, media: _Media) -> Track:
    release, analysis, tags = upload.release, media.analysis, media.tags
    info = analysis.info
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
        master_sha256=media.master.sha256,
        master_object=media.master,
        opus_object=media.opus,
        mp3_object=media.mp3,
        original_filename=upload.filename,
        container=info.container,
        codec=info.codec,
        sample_rate=info.sample_rate,
        bit_depth=info.bit_depth,
        channels=info.channels,
        loudness_lufs=analysis.loudness.integrated_lufs,
        true_peak_dbtp=analysis.loudness.true_peak_dbtp,
        gain_db=media.renditions.gain_db,
        waveform=analysis.waveform.as_json(),
        tags=_tags_json(tags),
    )
    _prefill_release(session, release, tags)
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
    if tagged is not None and tagged not in taken and tagged <= MAX_TRACK_POSITION:
        return tagged
    return next_position(release)


def _prefill_release(session: Session, release: Release, tags: Tags) -> None:
    """Fill the release's empty fields from tags, never the ones the artist typed."""
    locked = set(release.locked_fields or ())
    if tags.album and "title" not in locked:
        release.title = tags.album
    if release.release_date is None and "release_date" not in locked:
        release.release_date = _full_date(tags.date)
    has_cover = session.scalar(select(ReleaseCover.size).where(ReleaseCover.release_id == release.id).limit(1))
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
            stored = vault.put_stream(session, spool, kind="cover", content_type="image/jpeg", size=len(jpeg))
        session.add(ReleaseCover(release_id=release.id, size=size, vault_object=stored))
    release.cover_url = cover_path(release.id, COVER_DISPLAY_SIZE)

