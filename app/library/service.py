"""The library's rules: what a listener owns, downloads made on demand, and signed links.

Ownership. An order item owns music while its order is paid or partly refunded
(``OWNING_STATUSES``): a release item owns every ready track of its release, a track item
its track. Free acquisitions are orders too. The buyer, the release's artist and an admin may
use an item (see its formats, ask for downloads, get links); anyone else is told it does not
exist, so item ids reveal nothing.

Formats (``media_worker.downloads.DOWNLOAD_FORMATS``). The original is the master object
itself, byte for byte, and needs no job. Any other format is cached as a ``DownloadFile`` per
track, format and ``tags_digest``:

1. a request inserts the row unless it exists (the unique key decides, so two requests at once
   make one row) and enqueues ``app.library.tasks.make_format`` after commit; a failed row is
   set pending again, which is the retry;
2. the job claims the row with a compare-and-set from ``pending`` to ``processing``, committed
   on a connection of its own, so a second job finds it claimed and encodes nothing;
3. it reads what it needs and ends its transaction, decrypts the master as a stream through
   ffmpeg (``make_download``) with progress written at most every
   ``PROGRESS_INTERVAL_SECONDS``, tags the file, encrypts it into the vault under a key of its
   own (kind ``download``), and marks the row ready with a compare-and-set from
   ``processing``; the caller commits;
4. the cache entries the new one supersedes (older tags) are deleted with their objects,
   unless a key-in-link still points at one.

A claim left in ``processing`` longer than ``JOB_TIMEOUT_SECONDS`` plus
``STALE_CLAIM_GRACE_SECONDS`` (its worker died) is handed to the next request.

Links. A download link is ``/downloads/<token>``, the token an HMAC-SHA256 over its claims (the
order item, the track, the format, the expiry) under a key derived from ``SECRET_KEY`` for
this purpose alone. Serving re-checks everything the link names: the item's order still owns,
the track is the item's, and the bytes served are that track's file in that format; so a link
for one purchase cannot reach any other object, and a refund stops it. A zip link names the
release item and the format.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
import hmac
import json
import logging
import re
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, selectinload
from zipstream import ZIP_STORED, ZipStream

from app.accounts.models import User
from app.catalog.models import Artist, Release, Track, TrackStatus
from app.commerce.models import OWNING_STATUSES, ItemKind, Order, OrderItem, OrderStatus
from app.database import insert_unless_exists
from app.ingest.models import ReleaseCover, TrackMedia
from app.jobs import enqueue_after_commit
from app.library.errors import (
    DownloadNotReady,
    FormatNotOffered,
    LibraryItemNotFound,
    LinkExpired,
    LinkInvalid,
    NotARelease,
    NotOwned,
    UnknownFormat,
)
from app.library.models import ERROR_MAX_LENGTH, DownloadFile, DownloadStatus, KeyLink
from app.timestamps import utcnow
from app.vault import service as vault
from app.vault.errors import StorageUnavailable
from media_worker.downloads import (
    DOWNLOAD_FORMATS,
    FLAC,
    MP3_320,
    ORIGINAL,
    DownloadFormat,
    DownloadPlan,
    FormatUnavailable,
    make_download,
    plan_download,
)
from media_worker.errors import FFmpegFailed, FFmpegTimeout, RejectedImage
from media_worker.ffmpeg import configure_concurrency, ffmpeg_path
from media_worker.probe import DSD_BITS_PER_PCM_SAMPLE, DSD_CODECS, AudioInfo
from media_worker.tagging import DELIVERY_COVER_SIZE, DeliveryTags, cover_for_delivery, write_tags

logger = logging.getLogger(__name__)

MAKE_FORMAT_JOB = "app.library.tasks.make_format"
DOWNLOAD_KIND = "download"
# Bumped when what a delivered file holds changes in a way its tags do not show (a new tag
# layout, say), so every cache entry is made afresh.
DIGEST_VERSION = 1
# How long past the job time limit a claim may sit in ``processing`` before it counts as
# abandoned: the vault put after ffmpeg writes no progress.
STALE_CLAIM_GRACE_SECONDS = 300
# The share of the progress bar the encode takes; tagging and encrypting take the rest.
ENCODE_SHARE = 0.9
# HMAC key derivation label for download links: no other use of SECRET_KEY shares this key.
LINK_KEY_LABEL = b"megabox/library/download-link/v1"
LINK_TRACK = "track"
LINK_ZIP = "zip"
ZIP_COVER_NAME = "cover.jpg"
ZIP_MIME_TYPE = "application/zip"
# File names: at most this many characters before the extension.
# The natural key of a cached download: one file per track, format and delivered tags.
CACHE_KEY = ("track_id", "format", "tags_digest")
FILENAME_MAX_CHARS = 120
# File systems allow 255 bytes per name; leave room for a zip's track number and extension.
FILENAME_MAX_BYTES = 200
FALLBACK_FILENAME = "download"
UNTITLED = "Untitled"
# What a file name keeps: characters that mean nothing to a shell or a file system.
_UNSAFE_IN_NAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
_ASCII_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()&+,!'\-\[\]]+")
_SPACES = re.compile(r"\s+")


# Ownership ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryEntry:
    """One release or single track a listener owns, by the newest item that owns it."""

    item: OrderItem
    acquired_at: datetime

    @property
    def release(self) -> Release:
        return self.item.release

    @property
    def track(self) -> Track | None:
        return self.item.track


def _like_pattern(query: str) -> str:
    escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def library_entries(
    session: Session, owner: User, *, query: str = "", limit: int, offset: int = 0
) -> list[LibraryEntry]:
    """What ``owner`` owns, newest acquisition first, one entry per release or track.

    ``query`` keeps entries whose release title, track title or artist name contains it,
    case-insensitively. Buying the same thing twice gives one entry, by the newer item.
    """
    acquired_at = func.max(Order.paid_at).label("acquired_at")
    newest_item = func.max(OrderItem.id).label("item_id")
    statement = (
        select(newest_item, acquired_at)
        .select_from(OrderItem)
        .join(Order, OrderItem.order_id == Order.id)
        .where(Order.buyer_id == owner.id, Order.status.in_(OWNING_STATUSES))
        .group_by(OrderItem.release_id, OrderItem.track_id)
        .order_by(acquired_at.desc(), newest_item.desc())
        .limit(limit)
        .offset(offset)
    )
    words = query.strip()
    if words:
        pattern = _like_pattern(words)
        statement = (
            statement.join(Release, OrderItem.release_id == Release.id)
            .join(Artist, Release.artist_id == Artist.id)
            .outerjoin(Track, OrderItem.track_id == Track.id)
            .where(
                or_(
                    func.lower(Release.title).like(pattern, escape="\\"),
                    func.lower(Artist.name).like(pattern, escape="\\"),
                    func.lower(Track.title).like(pattern, escape="\\"),
                )
            )
        )
    rows = session.execute(statement).all()
    items = {
        item.id: item
        for item in session.scalars(
            select(OrderItem)
            .where(OrderItem.id.in_([row.item_id for row in rows]))
            .options(
                selectinload(OrderItem.release).selectinload(Release.artist),
                selectinload(OrderItem.track),
            )
        )
    }
    return [LibraryEntry(items[row.item_id], row.acquired_at) for row in rows]


def may_use(viewer: User | None, item: OrderItem) -> bool:
    """Whether ``viewer`` may see an item's downloads and get links: its buyer, the release's
    artist, or an admin."""
    if viewer is None:
        return False
    return (
        viewer.is_admin
        or item.order.buyer_id == viewer.id
        or item.release.artist.owner_id == viewer.id
    )


def library_item(session: Session, item_id: int, viewer: User | None) -> OrderItem:
    """An order item ``viewer`` may use (see ``may_use``). Raises LibraryItemNotFound."""
    item = session.get(OrderItem, item_id)
    if item is None or not may_use(viewer, item):
        raise LibraryItemNotFound("No such purchase in your library.", {"item_id": item_id})
    return item


def require_owning(item: OrderItem) -> None:
    """Raises NotOwned unless the item's order owns what it bought."""
    status = item.order.status
    if status in OWNING_STATUSES:
        return
    if status in (OrderStatus.REFUNDED, OrderStatus.DISPUTED):
        raise NotOwned("This purchase was refunded or disputed, so its downloads have stopped.")
    raise NotOwned("This order is not paid, so there is nothing to download yet.")


def item_tracks(item: OrderItem) -> list[Track]:
    """The tracks an item owns that have audio, in release order."""
    tracks = [item.track] if item.track is not None else list(item.release.tracks)
    return [t for t in tracks if t.status is TrackStatus.READY and t.media is not None]


def owned_track(item: OrderItem, track_id: int) -> Track:
    """The item's track ``track_id``. Raises LibraryItemNotFound when the item does not own it."""
    for track in item_tracks(item):
        if track.id == track_id:
            return track
    raise LibraryItemNotFound(
        "This purchase does not include that track.", {"item_id": item.id, "track_id": track_id}
    )


# Formats ------------------------------------------------------------------------------------


def get_format(name: str) -> DownloadFormat:
    """The download format called ``name``. Raises UnknownFormat."""
    fmt = DOWNLOAD_FORMATS.get(name)
    if fmt is None:
        raise UnknownFormat(
            f"There is no download format {name[:40]!r}.", {"formats": list(DOWNLOAD_FORMATS)}
        )
    return fmt


def master_info(track: Track) -> AudioInfo:
    """What the track's master is, as ingest measured it. The track must have media."""
    media = track.media
    assert media is not None, "only tracks with audio have a master"
    dsd = media.codec in DSD_CODECS
    return AudioInfo(
        container=media.container,
        codec=media.codec,
        duration_ms=track.duration_ms or 0,
        sample_rate=media.sample_rate,
        bit_depth=media.bit_depth,
        channels=media.channels,
        pcm_sample_rate=media.sample_rate // DSD_BITS_PER_PCM_SAMPLE if dsd else media.sample_rate,
    )


def format_plan(track: Track, fmt: DownloadFormat) -> DownloadPlan:
    """What ``fmt`` makes of the track's master. Raises FormatNotOffered with the reason."""
    try:
        return plan_download(fmt, master_info(track))
    except FormatUnavailable as exc:
        raise FormatNotOffered(exc.message, {"format": fmt.name, "reason": exc.code}) from None


@dataclass(frozen=True)
class FormatOption:
    """A format as a page lists it for some tracks: offered for all of them, or why not."""

    format: DownloadFormat
    unavailable: str | None  # the reason, for people; None when every track has it


def format_options(tracks: Sequence[Track]) -> list[FormatOption]:
    """Every format in listing order, each offered only when all ``tracks`` can have it; the
    reason names the track when there are several."""
    options = []
    for fmt in DOWNLOAD_FORMATS.values():
        reason = None
        for track in tracks:
            try:
                format_plan(track, fmt)
            except FormatNotOffered as exc:
                reason = exc.message if len(tracks) == 1 else f"{track.title}: {exc.message}"
                break
        options.append(FormatOption(fmt, reason))
    return options


_CONTAINER_NAMES = {
    "wav": "WAV", "aiff": "AIFF", "flac": "FLAC", "mp3": "MP3", "aac": "AAC",
    "wavpack": "WavPack", "ape": "Monkey's Audio", "tak": "TAK", "dsf": "DSD (DSF)",
    "dff": "DSD (DFF)", "asf": "WMA Lossless",
}  # fmt: skip
_CODEC_NAMES = {
    "vorbis": "Ogg Vorbis", "opus": "Opus", "flac": "FLAC", "alac": "ALAC", "aac": "AAC",
}  # fmt: skip


def master_summary(track: Track) -> str:
    """The master as people read it: "FLAC, 24-bit, 96 kHz, lossless". The track must have media."""
    info = master_info(track)
    name = _CODEC_NAMES.get(info.codec, info.codec.upper())
    if info.container not in ("ogg", "mp4"):
        name = _CONTAINER_NAMES.get(info.container, name)
    parts = [name]
    if info.lossless and info.bit_depth and info.codec not in DSD_CODECS:
        parts.append(f"{info.bit_depth}-bit")
    parts.append(f"{info.sample_rate / 1000:g} kHz")
    parts.append("lossless" if info.lossless else "lossy")
    return ", ".join(parts)


def default_format(tracks: Sequence[Track]) -> DownloadFormat:
    """FLAC when every master is lossless, else MP3 320."""
    offered = {option.format.name for option in format_options(tracks) if not option.unavailable}
    return FLAC if FLAC.name in offered else MP3_320


# Delivered tags -----------------------------------------------------------------------------


_DATE = re.compile(r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$")


def _text(value: Any) -> str | None:
    """A tag value as text, with NUL characters (tag separators) removed; None when empty."""
    if value is None:
        return None
    text = str(value).replace("\x00", "").strip()
    return text or None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def delivery_tags(track: Track) -> DeliveryTags:
    """The tags written into the track's downloads, without the cover.

    The catalogue's values (the track's title, position and ISRC, the release's title and
    date, the artist's name) win over the master's tags, which fill only what the catalogue
    has no field for (disc numbers, genre, label, copyright) or left empty.
    """
    release = track.release
    master = track.media.tags if track.media is not None else {}
    artist = _text(release.artist.name)
    track_total = len(release.tracks)
    date = release.release_date.isoformat() if release.release_date else _text(master.get("date"))
    disc_number = _number(master.get("disc_number"))
    return DeliveryTags(
        title=_text(track.title) or UNTITLED,
        artist=artist,
        album_artist=artist,
        album=_text(release.title),
        track_number=track.position,
        track_total=track_total if track_total >= track.position else None,
        disc_number=disc_number,
        disc_total=_number(master.get("disc_total")) if disc_number else None,
        date=date if date and _DATE.match(date) else None,
        genre=_text(master.get("genre")),
        isrc=_text(track.isrc) or _text(master.get("isrc")),
        label=_text(master.get("label")),
        copyright=_text(master.get("copyright")),
    )


def delivery_cover(session: Session, release_id: int) -> ReleaseCover | None:
    """The release's largest stored cover, which downloads carry at DELIVERY_COVER_SIZE."""
    return session.scalar(
        select(ReleaseCover)
        .where(ReleaseCover.release_id == release_id)
        .order_by(ReleaseCover.size.desc())
        .limit(1)
    )


def cover_bytes(session: Session, cover: ReleaseCover) -> bytes | None:
    """The cover as delivered: a DELIVERY_COVER_SIZE square JPEG, or None if unreadable.

    Raises the vault's errors.
    """
    stored = cover.vault_object
    with vault.iter_plaintext(session, stored.id) as stream:
        data = b"".join(stream)
    if cover.size == DELIVERY_COVER_SIZE:
        return data  # made by the same thumbnailer at this size already
    try:
        return cover_for_delivery(data)
    except RejectedImage as exc:
        logger.warning("cover of release %s not delivered: %s", cover.release_id, exc)
        return None


def tags_digest(session: Session, track: Track) -> str:
    """SHA-256 of what a download of ``track`` holds besides its audio format: the tags, the
    cover and the master. The track must have media."""
    assert track.media is not None
    cover = delivery_cover(session, track.release_id)
    tags = dataclasses.asdict(delivery_tags(track))
    tags.pop("cover")
    described = {
        "version": DIGEST_VERSION,
        "tags": tags,
        "cover": cover.vault_object.sha256 if cover is not None else None,
        "cover_size": DELIVERY_COVER_SIZE,
        "master": track.media.master_object_id,
    }
    encoded = json.dumps(described, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


# The download cache -------------------------------------------------------------------------


@dataclass(frozen=True)
class FormatState:
    """Where one track's download in one format stands.

    ``status`` is None when nobody has asked for it yet; ``object_id`` is set when ready.
    """

    track: Track
    format: DownloadFormat
    status: DownloadStatus | None
    progress: float
    error: str | None
    object_id: str | None

    @property
    def ready(self) -> bool:
        return self.status is DownloadStatus.READY

    @property
    def in_progress(self) -> bool:
        return self.status in (DownloadStatus.PENDING, DownloadStatus.PROCESSING)


def _state(track: Track, fmt: DownloadFormat, row: DownloadFile | None) -> FormatState:
    if fmt.name == ORIGINAL.name:
        assert track.media is not None
        master = track.media.master_object_id
        return FormatState(track, fmt, DownloadStatus.READY, 1.0, None, master)
    if row is None:
        return FormatState(track, fmt, None, 0.0, None, None)
    return FormatState(track, fmt, row.status, row.progress, row.error, row.object_id)


def _cache_row(session: Session, track_id: int, fmt: str, digest: str) -> DownloadFile | None:
    return session.scalar(
        select(DownloadFile)
        .where(
            DownloadFile.track_id == track_id,
            DownloadFile.format == fmt,
            DownloadFile.tags_digest == digest,
        )
        .execution_options(populate_existing=True)
    )


def download_state(
    session: Session, item: OrderItem, track: Track, fmt: DownloadFormat
) -> FormatState:
    """Where the item's ``track`` in ``fmt`` stands, for the tags it would carry now.

    Raises FormatNotOffered.
    """
    format_plan(track, fmt)
    if fmt.name == ORIGINAL.name:
        return _state(track, fmt, None)
    return _state(track, fmt, _cache_row(session, track.id, fmt.name, tags_digest(session, track)))


def request_download(
    session: Session, config: Mapping[str, Any], item: OrderItem, track: Track, fmt: DownloadFormat
) -> FormatState:
    """Ask for the item's ``track`` in ``fmt``: served from the cache when made, else made by
    a job enqueued after commit (a failed one is retried). The original needs no job.

    Raises NotOwned, FormatNotOffered.
    """
    require_owning(item)
    format_plan(track, fmt)
    if fmt.name == ORIGINAL.name:
        return _state(track, fmt, None)
    digest = tags_digest(session, track)
    now = utcnow()
    session.execute(
        insert_unless_exists(session, DownloadFile, CACHE_KEY).values(
            track_id=track.id,
            format=fmt.name,
            tags_digest=digest,
            status=DownloadStatus.PENDING,
            progress=0.0,
            created_at=now,
            updated_at=now,
        )
    )
    row = _cache_row(session, track.id, fmt.name, digest)
    assert row is not None  # inserted just now, or by the request that won the race
    if row.status is DownloadStatus.FAILED:
        _reset(session, row, DownloadStatus.FAILED)
    elif row.status is DownloadStatus.PROCESSING and row.updated_at < _stale_before(config):
        logger.warning("download %s: claim abandoned, handing it to a new job", row.id)
        _reset(session, row, DownloadStatus.PROCESSING)
    if row.status is DownloadStatus.PENDING:
        # A job id: while one waits in the queue, asking again adds no second one.
        enqueue_after_commit(session, MAKE_FORMAT_JOB, row.id, job_id=f"download-{row.id}")
    return _state(track, fmt, row)


def _stale_before(config: Mapping[str, Any]) -> datetime:
    seconds = int(config["JOB_TIMEOUT_SECONDS"]) + STALE_CLAIM_GRACE_SECONDS
    return utcnow() - timedelta(seconds=seconds)


def _reset(session: Session, row: DownloadFile, expected: DownloadStatus) -> None:
    """Compare-and-set the row from ``expected`` back to pending; a racing request may have
    done it first, which is as good."""
    session.execute(
        update(DownloadFile)
        .where(DownloadFile.id == row.id, DownloadFile.status == expected)
        .values(status=DownloadStatus.PENDING, progress=0.0, error=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(row)


def request_item(
    session: Session, config: Mapping[str, Any], item: OrderItem, fmt: DownloadFormat
) -> list[FormatState]:
    """Ask for every track the item owns in ``fmt`` (see ``request_download``), as a release's
    zip needs. Raises NotOwned, and FormatNotOffered when any track cannot have ``fmt``.
    """
    return [request_download(session, config, item, track, fmt) for track in item_tracks(item)]


def item_states(session: Session, item: OrderItem, fmt: DownloadFormat) -> list[FormatState]:
    """Where each of the item's tracks stands in ``fmt``; a track whose master cannot have
    the format is left out. Raises NotOwned."""
    require_owning(item)
    states = []
    for track in item_tracks(item):
        try:
            states.append(download_state(session, item, track, fmt))
        except FormatNotOffered:
            continue
    return states


def _require_release(item: OrderItem) -> None:
    if item.kind is not ItemKind.RELEASE:
        raise NotARelease("A zip holds a release you bought; this purchase is a single track.")


# Making a format (the job) ------------------------------------------------------------------


class _ProgressWriter:
    """Writes a download's progress on a connection of its own, at most every ``interval``."""

    def __init__(self, engine: Engine, download_id: int, interval: float) -> None:
        # An engine, not the session: the encode reports while no transaction is open.
        self.engine = engine
        self.download_id = download_id
        self.interval = interval
        self._last_time = float("-inf")

    def report(self, fraction: float) -> None:
        now = time.monotonic()
        if now - self._last_time < self.interval:
            return
        self._last_time = now
        fraction = min(max(fraction, 0.0), 1.0)
        _update_claimed(self.engine, self.download_id, progress=fraction, updated_at=utcnow())

    def encoding(self, fraction: float) -> None:
        self.report(fraction * ENCODE_SHARE)


def _update_claimed(engine: Engine, download_id: int, **values: Any) -> bool:
    """Update a claimed (processing) row in a transaction of its own; True if it was claimed."""
    with engine.begin() as connection:
        result = connection.execute(
            update(DownloadFile)
            .where(DownloadFile.id == download_id, DownloadFile.status == DownloadStatus.PROCESSING)
            .values(**values)
        )
    return result.rowcount == 1


def _claim(engine: Engine, download_id: int) -> bool:
    """Compare-and-set pending to processing, committed at once so other jobs see the claim."""
    with engine.begin() as connection:
        result = connection.execute(
            update(DownloadFile)
            .where(DownloadFile.id == download_id, DownloadFile.status == DownloadStatus.PENDING)
            .values(status=DownloadStatus.PROCESSING, progress=0.0, error=None, updated_at=utcnow())
        )
    return result.rowcount == 1


@dataclass(frozen=True)
class _Work:
    """What making one download needs, read before the transaction ends."""

    download_id: int
    track_id: int
    format: DownloadFormat
    info: AudioInfo
    plan: DownloadPlan
    tags: DeliveryTags


class _CannotMake(Exception):
    """This row cannot be made as it stands (its track lost its audio, or the release's
    details changed after it was asked for); the message is for people."""


class MakeOutcome(enum.StrEnum):
    """What one run of ``make_format`` did."""

    MADE = "made"  # this run made the file and marked the row ready
    NOT_CLAIMED = "not_claimed"  # the row was not pending (another run has it, or it is made)
    GONE = "gone"  # the row was deleted meanwhile
    FAILED = "failed"  # the row cannot be made; its error says why
    LOST = "lost"  # made, but another run marked the row ready first: this one was dropped


def make_format(session: Session, config: Mapping[str, Any], download_id: int) -> MakeOutcome:
    """Make the cached download ``download_id`` (see the module docstring); the caller commits.

    Only a run that claims the row (pending to processing) encodes. Ends the session's
    transaction before ffmpeg runs, so call it at the start of a unit of work. A failure that
    is the master's (it cannot have this format) or the catalogue's (its details changed
    meanwhile) is recorded on the row. Any other error gives the claim back (pending) and is
    raised: FFmpegFailed, FFmpegTimeout, StorageUnavailable and the vault's other errors.
    """
    engine = session.get_bind()
    if not _claim(engine, download_id):
        return MakeOutcome.NOT_CLAIMED
    try:
        work = _read_work(session, download_id)
        if work is None:
            return MakeOutcome.GONE
        reader = vault.open_reader(session, _master_object_id(session, work.track_id))
        # Everything is read: no transaction (and no lock) stays open while ffmpeg runs.
        session.rollback()
        progress = _ProgressWriter(engine, download_id, float(config["PROGRESS_INTERVAL_SECONDS"]))
        configure_concurrency(int(config["FFMPEG_CONCURRENCY"]))
        with reader, tempfile.TemporaryDirectory(prefix="megabox-download-") as directory:
            made = make_download(
                reader,
                Path(directory) / f"download{work.plan.extension}",
                work.format,
                work.info,
                ffmpeg=ffmpeg_path(config["FFMPEG"]),
                timeout=float(config["JOB_TIMEOUT_SECONDS"]),
                progress=progress.encoding,
            )
            write_tags(made, work.format, work.tags)
            progress.report(ENCODE_SHARE)
            stored = vault.put_path(
                session, made, kind=DOWNLOAD_KIND, content_type=work.plan.mime_type
            )
        stored_now = _store(session, download_id, stored.id, stored.size)
        return MakeOutcome.MADE if stored_now else MakeOutcome.LOST
    except (FormatUnavailable, _CannotMake) as exc:
        session.rollback()
        message = exc.message if isinstance(exc, FormatUnavailable) else str(exc)
        _update_claimed(engine, download_id, status=DownloadStatus.FAILED, error=message,
                        progress=0.0, updated_at=utcnow())  # fmt: skip
        return MakeOutcome.FAILED
    except BaseException:
        # Undo the vault put first: on SQLite the session may hold the write lock.
        session.rollback()
        _update_claimed(engine, download_id, status=DownloadStatus.PENDING, progress=0.0,
                        updated_at=utcnow())  # fmt: skip
        raise


def _master_object_id(session: Session, track_id: int) -> str:
    media = session.get(TrackMedia, track_id)
    assert media is not None  # checked by _read_work in this transaction
    return media.master_object_id


def _read_work(session: Session, download_id: int) -> _Work | None:
    """What the job needs, with the cover read; None when the row has gone.

    Raises _CannotMake when the track has no audio or the row's tags are no longer the
    track's.
    """
    row = session.get(DownloadFile, download_id)
    if row is None:
        return None
    track = row.track
    if track.media is None:
        raise _CannotMake("This track has no audio any more.")
    if tags_digest(session, track) != row.tags_digest:
        raise _CannotMake(
            "The release's details changed after this download was asked for; ask again."
        )
    fmt = get_format(row.format)
    info = master_info(track)
    tags = delivery_tags(track)
    cover = delivery_cover(session, track.release_id)
    if cover is not None:
        tags = dataclasses.replace(tags, cover=cover_bytes(session, cover))
    return _Work(download_id, track.id, fmt, info, plan_download(fmt, info), tags)


def _store(session: Session, download_id: int, object_id: str, size: int) -> bool:
    """Mark the row ready with its object, unless another job did (then drop ours)."""
    # The vault row must be in the database before the cache row points at it.
    session.flush()
    moved = session.execute(
        update(DownloadFile)
        .where(DownloadFile.id == download_id, DownloadFile.status == DownloadStatus.PROCESSING)
        .values(status=DownloadStatus.READY, object_id=object_id, size=size, progress=1.0,
                error=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    if moved.rowcount != 1:
        session.rollback()  # removes the object this run put into the vault
        return False
    row = session.get(DownloadFile, download_id, populate_existing=True)
    assert row is not None
    _prune_superseded(session, row)
    return True


def _prune_superseded(session: Session, made: DownloadFile) -> None:
    """Delete the track's finished entries in this format whose tags are no longer current,
    with their objects, unless a key-in-link still serves the object."""
    current = tags_digest(session, made.track)
    if made.tags_digest != current:
        return  # this one is out of date itself: newer entries stay
    stale = session.scalars(
        select(DownloadFile).where(
            DownloadFile.track_id == made.track_id,
            DownloadFile.format == made.format,
            DownloadFile.tags_digest != current,
            DownloadFile.status.in_([DownloadStatus.READY, DownloadStatus.FAILED]),
            ~exists().where(KeyLink.object_id == DownloadFile.object_id),
        )
    ).all()
    object_ids = [row.object_id for row in stale if row.object_id is not None]
    for row in stale:
        session.delete(row)
    # The cache rows point at the vault rows: their deletes must reach the database first.
    session.flush()
    for object_id in object_ids:
        vault.delete(session, object_id)


def fail_download(session: Session, download_id: int, message: str) -> None:
    """Record that making a download failed for good, with a message for people.

    A row that is ready, already failed, or gone is left alone.
    """
    session.execute(
        update(DownloadFile)
        .where(
            DownloadFile.id == download_id,
            DownloadFile.status.in_([DownloadStatus.PENDING, DownloadStatus.PROCESSING]),
        )
        .values(status=DownloadStatus.FAILED, error=message[:ERROR_MAX_LENGTH], progress=0.0,
                updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )  # fmt: skip


def failure_message(error: BaseException) -> str:
    """What the listener reads about a download job that failed for good with ``error``."""
    if isinstance(error, FFmpegTimeout):
        return "Making this format took longer than the time limit. Try again later."
    if isinstance(error, StorageUnavailable) or isinstance(error.__cause__, StorageUnavailable):
        return "Storage was unavailable. Try again in a moment."
    if isinstance(error, FFmpegFailed):
        return "This format could not be made from the master. Try another format."
    return "Making this format failed on our side. Try again later."


def download_object_ids(session: Session, track_ids: Iterable[int]) -> list[str]:
    """The vault objects of these tracks' cached downloads, to shred with the tracks."""
    ids = list(track_ids)
    if not ids:
        return []
    return list(
        session.scalars(
            select(DownloadFile.object_id).where(
                DownloadFile.track_id.in_(ids), DownloadFile.object_id.is_not(None)
            )
        )
    )


# Serving ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """A file to send: the vault object, its type, and the name it is saved under."""

    object_id: str
    mime_type: str
    filename: str


def _ready_object(session: Session, track: Track, fmt: DownloadFormat) -> str:
    """The object of the track's download in ``fmt``: for the current tags if made, else the
    newest made one. Raises DownloadNotReady."""
    if fmt.name == ORIGINAL.name:
        assert track.media is not None
        return track.media.master_object_id
    current = tags_digest(session, track)
    rows = session.scalars(
        select(DownloadFile).where(
            DownloadFile.track_id == track.id,
            DownloadFile.format == fmt.name,
            DownloadFile.status == DownloadStatus.READY,
        )
    ).all()
    if not rows:
        raise DownloadNotReady(
            "This download is not made yet; ask for it in your library.",
            {"track_id": track.id, "format": fmt.name},
        )
    best = max(rows, key=lambda row: (row.tags_digest == current, row.updated_at, row.id))
    assert best.object_id is not None  # ready rows have their object
    return best.object_id


def track_delivery(
    session: Session, item: OrderItem, track: Track, fmt: DownloadFormat
) -> Delivery:
    """What a download of the item's ``track`` in ``fmt`` sends.

    Raises NotOwned, FormatNotOffered, DownloadNotReady.
    """
    require_owning(item)
    plan = format_plan(track, fmt)
    name = download_filename(f"{track.release.artist.name} - {track.title}", plan.extension)
    return Delivery(_ready_object(session, track, fmt), plan.mime_type, name)


# File names

def _clean_name(text: str) -> str:
    """``text`` safe as a file name: no path separators, control or reserved characters, no
    leading dots, single spaces, at most FILENAME_MAX_CHARS characters."""
    text = unicodedata.normalize("NFC", text)
    # Format characters (bidirectional overrides, zero-width spaces) can make
    # "evil\u202eexe.mp3" look like another file type: they go.
    text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    text = _SPACES.sub(" ", _UNSAFE_IN_NAME.sub("_", text)).strip()
    text = text[:FILENAME_MAX_CHARS]
    while len(text.encode("utf-8")) > FILENAME_MAX_BYTES:
        text = text[:-1]
    return text.strip().lstrip(".").strip()


def download_filename(stem: str, extension: str) -> str:
    """A file name of ``stem`` (e.g. "Artist - Title") and ``extension`` (with its dot)."""
    return (_clean_name(stem) or FALLBACK_FILENAME) + extension


def ascii_filename(name: str) -> str:
    """An ASCII stand-in for ``name``, for clients that do not read ``filename*``: accents
    dropped ("Ü" is "U"), and "_" for a character with no ASCII form."""
    decomposed = "".join(_ascii_form(char) for char in name)
    cleaned = _SPACES.sub(" ", _ASCII_UNSAFE.sub("_", decomposed)).strip().lstrip(".")
    stem, dot, extension = cleaned.rpartition(".")
    if not dot:
        return cleaned or FALLBACK_FILENAME
    return f"{stem.strip() or FALLBACK_FILENAME}.{extension}"


def _ascii_form(char: str) -> str:
    ascii_part = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
    return ascii_part if ascii_part or unicodedata.combining(char) else "_"


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII ``filename`` and the UTF-8 ``filename*`` (RFC 6266)."""
    encoded = quote(name, safe="")
    return f"attachment; filename=\"{ascii_filename(name)}\"; filename*=UTF-8''{encoded}"


# Release zips


@dataclass(frozen=True)
class ZipEntry:
    name: str
    object_id: str
    size: int


@dataclass(frozen=True)
class ReleaseZip:
    """What a release's zip holds: each track's download in order, then the cover."""

    filename: str
    entries: list[ZipEntry]
    cover: bytes | None


def release_zip(session: Session, item: OrderItem, fmt: DownloadFormat) -> ReleaseZip:
    """The zip of a release item's tracks in ``fmt``.

    Raises NotARelease, NotOwned, FormatNotOffered, and DownloadNotReady (listing the tracks
    not made yet in ``details["tracks"]``) unless every track is ready.
    """
    _require_release(item)
    require_owning(item)
    tracks = item_tracks(item)
    # Entries are numbered by their place in the zip, not by position: two tracks an artist
    # left at one position must not become one name (an unzip keeps only one of them).
    width = max(2, len(str(len(tracks))))
    entries, missing = [], []
    for number, track in enumerate(tracks, start=1):
        plan = format_plan(track, fmt)
        try:
            object_id = _ready_object(session, track, fmt)
        except DownloadNotReady:
            missing.append(track.id)
            continue
        stem = f"{number:0{width}d} {track.title}"
        name = download_filename(stem, plan.extension)
        entries.append(ZipEntry(name, object_id, vault.get_object(session, object_id).size))
    if missing:
        raise DownloadNotReady(
            "Some tracks are still being made in this format; the zip is offered once all are.",
            {"tracks": missing, "format": fmt.name},
        )
    cover = delivery_cover(session, item.release_id)
    release = item.release
    label = "Original" if fmt.name == ORIGINAL.name else fmt.name.replace("_", " ").upper()
    return ReleaseZip(
        filename=download_filename(f"{release.artist.name} - {release.title} ({label})", ".zip"),
        entries=entries,
        cover=cover_bytes(session, cover) if cover is not None else None,
    )


def zip_stream(plan: ReleaseZip, read: Callable[[str], Iterable[bytes]]) -> ZipStream:
    """A zip of ``plan``, built as it is sent; ``read(object_id)`` gives an object's bytes and
    is called only when its entry is reached. Audio is stored, not deflated: it is compressed
    already. ``len()`` of the result is its size."""
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    for entry in plan.entries:
        archive.add(_deferred(read, entry.object_id), entry.name, size=entry.size)
    if plan.cover is not None:
        archive.add(plan.cover, ZIP_COVER_NAME)
    return archive


def _deferred(read: Callable[[str], Iterable[bytes]], object_id: str) -> Iterable[bytes]:
    yield from read(object_id)


# Signed links -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkClaims:
    """What a signed link names: a track's file (``kind`` "track") or a release's zip
    ("zip", ``track_id`` None), for an order item, in a format, until ``expires_at``."""

    kind: str
    item_id: int
    track_id: int | None
    format: str
    expires_at: int  # Unix seconds


def _link_key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode("utf-8"), LINK_KEY_LABEL, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(secret_key: str, claims: LinkClaims) -> str:
    """The token of a link: its claims in base64url JSON, a dot, and their HMAC-SHA256."""
    body = json.dumps(
        {"k": claims.kind, "i": claims.item_id, "t": claims.track_id, "f": claims.format,
         "e": claims.expires_at},
        separators=(",", ":"),
    ).encode("ascii")  # fmt: skip
    payload = _b64(body)
    signature = hmac.new(_link_key(secret_key), payload.encode("ascii"), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def read_link(secret_key: str, token: str, kind: str, *, now: float | None = None) -> LinkClaims:
    """The claims of a link token of ``kind``. Raises LinkInvalid for a token that was not
    signed with this key for this kind, LinkExpired for one past its expiry."""
    invalid = LinkInvalid("This download link is not valid. Get a new one from your library.")
    payload, dot, signature = token.partition(".")
    if not dot:
        raise invalid
    expected = hmac.new(_link_key(secret_key), payload.encode("ascii", "replace"), hashlib.sha256)
    try:
        given = _unb64(signature)
        if not hmac.compare_digest(given, expected.digest()):
            raise invalid
        fields = json.loads(_unb64(payload))
        claims = LinkClaims(fields["k"], fields["i"], fields["t"], fields["f"], fields["e"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid from None
    # Only this key signs tokens, so a verified one has this shape; checked all the same.
    if (
        claims.kind != kind
        or not all(isinstance(value, int) for value in (claims.item_id, claims.expires_at))
        or not isinstance(claims.track_id, int | None)
        or not isinstance(claims.format, str)
    ):
        raise invalid
    if claims.expires_at <= (time.time() if now is None else now):
        raise LinkExpired("This download link has expired. Get a new one from your library.")
    return claims


def track_link(
    config: Mapping[str, Any],
    item: OrderItem,
    track: Track,
    fmt: DownloadFormat,
    *,
    now: float | None = None,
) -> str:
    """A signed link token for the item's ``track`` in ``fmt``, valid for
    ``DOWNLOAD_LINK_TTL_SECONDS``. Callers check the viewer may use the item."""
    expires = int(time.time() if now is None else now) + int(config["DOWNLOAD_LINK_TTL_SECONDS"])
    claims = LinkClaims(LINK_TRACK, item.id, track.id, fmt.name, expires)
    return sign_link(config["SECRET_KEY"], claims)


def zip_link(
    config: Mapping[str, Any], item: OrderItem, fmt: DownloadFormat, *, now: float | None = None
) -> str:
    """A signed link token for the release item's zip in ``fmt`` (see ``track_link``)."""
    expires = int(time.time() if now is None else now) + int(config["DOWNLOAD_LINK_TTL_SECONDS"])
    return sign_link(config["SECRET_KEY"], LinkClaims(LINK_ZIP, item.id, None, fmt.name, expires))


def linked_item(session: Session, claims: LinkClaims) -> OrderItem:
    """The order item a verified link names. Raises LibraryItemNotFound."""
    item = session.get(OrderItem, claims.item_id)
    if item is None:
        raise LibraryItemNotFound("This download link names no purchase.")
    return item


def link_delivery(session: Session, claims: LinkClaims) -> Delivery:
    """What a verified track link sends, re-checked against the purchase now.

    Raises LibraryItemNotFound, UnknownFormat, NotOwned, FormatNotOffered, DownloadNotReady.
    """
    item = linked_item(session, claims)
    require_owning(item)
    if claims.track_id is None:
        raise LibraryItemNotFound("This download link names no track.")
    track = owned_track(item, claims.track_id)
    return track_delivery(session, item, track, get_format(claims.format))


def link_zip(session: Session, claims: LinkClaims) -> ReleaseZip:
    """What a verified zip link sends (see ``release_zip``).

    Raises LibraryItemNotFound, UnknownFormat, NotARelease, NotOwned, FormatNotOffered,
    DownloadNotReady.
    """
    item = linked_item(session, claims)
    require_owning(item)
    return release_zip(session, item, get_format(claims.format))
