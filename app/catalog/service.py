"""Catalogue rules: ownership, pricing, publishing, browse and search. Callers commit.

Prices are checked here whoever calls: 0 <= price <= ``MAX_PRICE_MINOR`` (the setting, in
minor units of the release's currency), a fixed price above zero, and a name-your-price
minimum no higher than the suggested price. The functions that set prices take the settings
as ``config``; without it they read the running app's settings, so older callers stay guarded.

A release is published (``update_release``) only once one of its tracks is ready to play.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from flask import current_app
from sqlalchemy import Select, bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload

from app.accounts.models import User
from app.catalog.errors import (
    HasBuyers,
    ArtistNotFound,
    InvalidPricing,
    NothingToPlay,
    NotOwner,
    ReleaseFull,
    ReleaseNotFound,
    SlugTaken,
    TrackNotFound,
)
from app.catalog.models import (
    MAX_TRACK_POSITION,
    Artist,
    ArtistAvatar,
    PricingMode,
    Release,
    ReleaseType,
    Track,
    TrackStatus,
)
from app.database import read_one
from app.ingest import media
from app.ingest.models import TrackMedia
from app.ledger.money import CURRENCY_EXPONENTS, Money
from app.timestamps import utcnow
from app.vault import service as vault
from app.vault.models import VaultObject

RELEASE_FIELDS = (
    "title", "release_type", "release_date", "description", "cover_url", "pricing_mode",
    "price_minor", "minimum_price_minor", "currency", "published",
)  # fmt: skip
# What a new release starts with for any field the caller leaves out.
RELEASE_DEFAULTS = {
    "title": None, "release_type": ReleaseType.ALBUM, "release_date": None, "description": "",
    "cover_url": None,
    "pricing_mode": PricingMode.FIXED, "price_minor": 0, "minimum_price_minor": 0,
    "currency": None, "published": False,
}  # fmt: skip
TRACK_FIELDS = ("title", "position", "isrc", "explicit", "price_minor", "sold_separately")
ARTIST_FIELDS = ("name", "bio", "avatar_url")
# The database's unique key on artists.slug (migration 0001); it settles races the pre-check loses.
ARTIST_SLUG_KEY = "uq_artists_slug"


# Ownership ------------------------------------------------------------------------------


def can_edit(user: User | None, artist: Artist) -> bool:
    if user is None:
        return False
    if user.is_admin or (user.id is not None and artist.owner_id == user.id):
        return True
    return artist.owner is user  # both new in this transaction, so neither has an id yet


def require_owner(user: User | None, artist: Artist) -> None:
    """Raises NotOwner unless the user owns the artist (or is an admin)."""
    if not can_edit(user, artist):
        raise NotOwner("Only the artist can change this.")


# Artists --------------------------------------------------------------------------------


def get_artist(session: Session, slug: str) -> Artist:
    """Raises ArtistNotFound."""
    artist = session.scalar(select(Artist).where(Artist.slug == slug))
    if artist is None:
        raise ArtistNotFound(f"No artist called {slug!r}.")
    return artist


def create_artist(session: Session, owner: User, data: Mapping[str, Any]) -> Artist:
    """Create an artist profile owned by ``owner``, flushed so the database has judged its slug.

    Raises SlugTaken when the slug is in use, also when another request took it between the
    check and the insert. After such a race the session's transaction has been rolled back
    by the failed flush, so the caller must roll back before using the session again (the
    request's unit of work does).
    """
    slug = data["slug"]
    if session.scalar(select(Artist.id).where(Artist.slug == slug)) is not None:
        raise _slug_taken(slug)
    artist = Artist(owner=owner, slug=slug, **{k: data[k] for k in ARTIST_FIELDS if k in data})
    session.add(artist)
    try:
        # The check above cannot see a concurrent insert; the unique key can, at this flush.
        session.flush()
    except IntegrityError as exc:
        if not _violates(exc, ARTIST_SLUG_KEY, "artists.slug"):
            raise
        raise _slug_taken(slug) from None
    return artist


def _slug_taken(slug: str) -> SlugTaken:
    return SlugTaken(f"The address {slug!r} is taken.", {"slug": ["That address is taken."]})


def _violates(exc: IntegrityError, constraint: str, column: str) -> bool:
    """Whether ``exc`` broke a unique key: PostgreSQL names the constraint, SQLite the column."""
    reason = str(exc.orig)
    return constraint in reason or f"UNIQUE constraint failed: {column}" in reason


def update_artist(user: User, artist: Artist, data: Mapping[str, Any]) -> Artist:
    require_owner(user, artist)
    for key in ARTIST_FIELDS:
        if key in data:
            setattr(artist, key, data[key])
    return artist


def delete_artist(
    session: Session, user: User, artist: Artist, *, config: Mapping[str, Any] | None = None
) -> None:
    """Delete an artist with its releases, crypto-shredding their stored media and removing
    the spooled bytes of their uploads in flight after the commit."""
    require_owner(user, artist)
    _refuse_if_bought(session, [release.id for release in artist.releases], "This artist's music")
    doomed = media.object_ids(session, releases=artist.releases)
    doomed += avatar_object_ids(session, [artist.id])
    media.discard_uploads(session, current_app.config if config is None else config, artist.releases)
    session.delete(artist)
    media.shred(session, doomed)


def avatar_object_ids(session: Session, artist_ids: Iterable[int]) -> list[str]:
    """The vault objects behind these artists' avatars (``app.catalog.images``)."""
    ids = list(artist_ids)
    if not ids:
        return []
    found = session.scalars(select(ArtistAvatar.object_id).where(ArtistAvatar.artist_id.in_(ids)))
    return list(found)


def _refuse_if_bought(session: Session, release_ids: list[int], what: str) -> None:
    """Raises HasBuyers if anyone has ordered any of these releases or their tracks."""
    # Imported here: commerce builds on the catalogue.
    from app.commerce.models import OrderItem

    if release_ids and session.scalar(
        select(OrderItem.id).where(OrderItem.release_id.in_(release_ids)).limit(1)
    ):
        raise HasBuyers(
            f"{what} has been bought, so it stays for its buyers. Unpublish it instead of "
            "deleting it."
        )


def list_artists(session: Session, limit: int, offset: int = 0) -> list[Artist]:
    return list(session.scalars(select(Artist).order_by(Artist.name).limit(limit).offset(offset)))


# Pricing --------------------------------------------------------------------------------


def max_price_minor(config: Mapping[str, Any] | None = None) -> int:
    """The highest price in minor units: ``MAX_PRICE_MINOR`` from ``config``, else the app's."""
    settings = current_app.config if config is None else config
    return int(settings["MAX_PRICE_MINOR"])


def price_problem(value: Any, currency: str, limit: int, what: str = "A price") -> str | None:
    """Why ``value`` cannot be a price in ``currency`` up to ``limit``, for people, or None."""
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{what} must be a whole number of cents."
    if value < 0:
        return f"{what} cannot be negative."
    if value > limit:
        return f"{what} can be at most {_amount_for_people(limit, currency)}."
    return None


def _amount_for_people(minor: int, currency: str) -> str:
    if currency in CURRENCY_EXPONENTS:
        return Money(minor, currency).format()
    return f"{minor:,} minor units"


def check_pricing(mode: PricingMode, price: int, minimum: int, currency: str, limit: int) -> None:
    """Check a release's price, minimum and currency, with ``limit`` the highest price allowed.

    Raises InvalidPricing, naming each bad field, unless the combination is sellable.
    """
    errors: dict[str, list[str]] = {}
    if currency not in CURRENCY_EXPONENTS:
        errors["currency"] = [f"Unknown currency {currency!r}."]
    for field, value, what in (
        ("price_minor", price, "A price"),
        ("minimum_price_minor", minimum, "A minimum price"),
    ):
        problem = price_problem(value, currency, limit, what)
        if problem:
            errors[field] = [problem]
    if not errors:
        if mode is PricingMode.FIXED and price == 0:
            errors["price_minor"] = ["A fixed price must be above zero; choose 'free' instead."]
        if mode is PricingMode.NAME_YOUR_PRICE and minimum > price:
            errors["minimum_price_minor"] = [
                "The minimum cannot be above the suggested price."
            ]
    if errors:
        first = next(iter(errors.values()))[0]
        raise InvalidPricing(first, errors)


def _normalise_free(release: Release) -> None:
    if release.pricing_mode is PricingMode.FREE:
        release.price_minor = 0
        release.minimum_price_minor = 0
    elif release.pricing_mode is PricingMode.FIXED:
        release.minimum_price_minor = release.price_minor


# Releases -------------------------------------------------------------------------------


def visible_release(session: Session, release_id: int, viewer: User | None) -> Release:
    """A release the viewer may see. Unpublished ones are not found for all but their artist."""
    release = session.get(Release, release_id)
    if release is None or not (release.published or can_edit(viewer, release.artist)):
        raise ReleaseNotFound("No such release.")
    return release


def editable_release(session: Session, release_id: int, user: User | None) -> Release:
    """A release the user may change. Raises ReleaseNotFound or NotOwner."""
    release = visible_release(session, release_id, user)
    require_owner(user, release.artist)
    return release


def create_release(
    session: Session,
    user: User,
    artist: Artist,
    data: Mapping[str, Any],
    *,
    config: Mapping[str, Any] | None = None,
) -> Release:
    """Create a release for an artist the user owns. Raises NotOwner, InvalidPricing."""
    require_owner(user, artist)
    release = Release()
    _apply_release(release, data, max_price_minor(config))  # validates before it joins the session
    release.artist = artist
    session.add(release)
    return release


def update_release(
    user: User,
    release: Release,
    data: Mapping[str, Any],
    *,
    config: Mapping[str, Any] | None = None,
) -> Release:
    """Change a release; nothing changes if a rule fails.

    Raises NotOwner, InvalidPricing, and NothingToPlay when it would be published without a
    track that is ready to play. Unpublishing, or editing a release already published, is
    not checked.
    """
    require_owner(user, release.artist)
    if data.get("published") and not release.published:
        check_playable(release)
    _apply_release(release, data, max_price_minor(config))
    return release


def check_playable(release: Release) -> None:
    """Raises NothingToPlay, on the ``published`` field, unless a track of the release is
    ready to play."""
    statuses = {track.status for track in release.tracks}
    if TrackStatus.READY in statuses:
        return
    if TrackStatus.PROCESSING in statuses:
        message = "Wait until a track's audio is ready before publishing."
    else:
        message = "Add a track with audio before publishing."
    raise NothingToPlay(message, {"published": [message]})


def _apply_release(release: Release, data: Mapping[str, Any], limit: int) -> None:
    merged = {}
    for key in RELEASE_FIELDS:
        current = getattr(release, key)
        merged[key] = data.get(key, RELEASE_DEFAULTS[key] if current is None else current)
    merged["pricing_mode"] = PricingMode(merged["pricing_mode"])
    check_pricing(
        merged["pricing_mode"],
        merged["price_minor"],
        merged["minimum_price_minor"],
        merged["currency"] or "",
        limit,
    )
    was_published = bool(release.published)
    for key, value in merged.items():
        setattr(release, key, value)
    _lock_typed(release, data)
    _normalise_free(release)
    if release.published and not was_published:
        release.published_at = utcnow()


def delete_release(
    session: Session, user: User, release: Release, *, config: Mapping[str, Any] | None = None
) -> None:
    """Delete a release and its tracks, crypto-shredding their stored media and removing the
    spooled bytes of its uploads in flight after the commit."""
    require_owner(user, release.artist)
    _refuse_if_bought(session, [release.id], "This release")
    doomed = media.object_ids(session, releases=[release])
    media.discard_uploads(session, current_app.config if config is None else config, [release])
    session.delete(release)
    media.shred(session, doomed)


def new_releases(session: Session, limit: int) -> list[Release]:
    return list(
        session.scalars(
            select(Release)
            .where(Release.published.is_(True))
            .order_by(Release.published_at.desc(), Release.id.desc())
            .limit(limit)
        )
    )


def artist_releases(artist: Artist, viewer: User | None) -> list[Release]:
    if can_edit(viewer, artist):
        return list(artist.releases)
    return [r for r in artist.releases if r.published]


@dataclass(frozen=True)
class SearchResults:
    """What a search found, each list at most the limit long."""

    artists: list[Artist]
    releases: list[Release]
    tracks: list[Track]

    def __bool__(self) -> bool:
        return bool(self.artists or self.releases or self.tracks)


def search(session: Session, query: str, limit: int) -> SearchResults:
    """Artists by name, published releases by title or artist name, and the tracks of
    published releases by title, case-insensitively. ``%`` and ``_`` match themselves."""
    words = " ".join(query.split())  # runs of spaces typed between words count as one
    if not words:
        return SearchResults([], [], [])
    pattern = "%" + words.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    # Lower-case beyond ASCII on both databases (``unicode_lower``: see ``app._sqlite_pragmas``).
    lower = func.unicode_lower if session.get_bind().dialect.name == "sqlite" else func.lower

    def matches(column: InstrumentedAttribute[str]) -> Any:
        return lower(column).like(pattern, escape="\\")

    artists = session.scalars(
        select(Artist).where(matches(Artist.name)).order_by(Artist.name).limit(limit)
    )
    releases = session.scalars(
        select(Release)
        .join(Release.artist)
        .where(Release.published.is_(True))
        .where(or_(matches(Release.title), matches(Artist.name)))
        .order_by(Release.published_at.desc(), Release.id.desc())
        .limit(limit)
    )
    tracks = session.scalars(
        select(Track)
        .join(Track.release)
        .where(Release.published.is_(True))
        .where(matches(Track.title))
        .options(joinedload(Track.release).joinedload(Release.artist))
        .order_by(Release.published_at.desc(), Release.id.desc(), Track.position, Track.id)
        .limit(limit)
    )
    return SearchResults(list(artists), list(releases), list(tracks))


# Tracks ---------------------------------------------------------------------------------


def visible_track(session: Session, track_id: int, viewer: User | None) -> Track:
    # One query for the track, its release and its media: most callers read all three.
    track = session.get(
        Track, track_id, options=[joinedload(Track.release), joinedload(Track.media)]
    )
    if track is None or not (track.release.published or can_edit(viewer, track.release.artist)):
        raise TrackNotFound("No such track.")
    return track


def visible_track_object(
    session: Session, track_id: int, viewer: User | None, object_id: InstrumentedAttribute[str]
) -> vault.ObjectRecord | None:
    """The record of the vault object that ``object_id`` (a column of ``TrackMedia``, such as
    its Opus rendition) names, for a track the viewer may see; None while the track has no
    media. Raises TrackNotFound as ``visible_track`` does.

    Streaming calls this on every request, so it is one Core query for the release's
    visibility and the object's record (``read_one``: without a transaction when it is the
    request's first read). Loading the track, release and media as ORM objects (the waveform
    alone can be large), then the record in a second query, took nearly half of a Range
    request's time.
    """
    found = read_one(session, _track_object_query(object_id), {"track_id": track_id})
    if found is None or not (
        found.published or can_edit(viewer, session.get_one(Artist, found.artist_id))
    ):
        raise TrackNotFound("No such track.")
    return found if found.id is not None else None


@cache
def _track_object_query(object_id: InstrumentedAttribute[str]) -> Select[Any]:
    # Built once per column: building it on every request cost a quarter of running it.
    return (
        select(Release.published, Release.artist_id, *vault.RECORD_COLUMNS)
        .select_from(Track)
        .join(Release, Track.release_id == Release.id)
        .outerjoin(TrackMedia, TrackMedia.track_id == Track.id)
        .outerjoin(VaultObject, VaultObject.id == object_id)
        .where(Track.id == bindparam("track_id"))
    )


def editable_track(session: Session, track_id: int, user: User | None) -> Track:
    track = visible_track(session, track_id, user)
    require_owner(user, track.release.artist)
    return track


def next_position(release: Release) -> int:
    """The track number after the release's last one."""
    return max((t.position for t in release.tracks), default=0) + 1


def add_track(
    session: Session,
    user: User,
    release: Release,
    data: Mapping[str, Any],
    *,
    config: Mapping[str, Any] | None = None,
) -> Track:
    """Append a track to a release. Raises NotOwner, InvalidPricing, ReleaseFull."""
    require_owner(user, release.artist)
    fields = {k: data[k] for k in TRACK_FIELDS if k in data and data[k] is not None}
    fields.setdefault("position", next_position(release))
    if not 1 <= fields["position"] <= MAX_TRACK_POSITION:
        raise ReleaseFull(
            f"Track numbers run from 1 to {MAX_TRACK_POSITION}.", {"position": fields["position"]}
        )
    check_track_price(fields.get("price_minor", 0), release.currency, max_price_minor(config))
    track = Track(**fields)
    _lock_typed(track, data)
    release.tracks.append(track)
    session.add(track)
    return track


def update_track(
    user: User, track: Track, data: Mapping[str, Any], *, config: Mapping[str, Any] | None = None
) -> Track:
    """Change a track; nothing changes if a rule fails. Raises NotOwner, InvalidPricing."""
    require_owner(user, track.release.artist)
    price = data.get("price_minor", track.price_minor)
    check_track_price(price, track.release.currency, max_price_minor(config))
    for key in TRACK_FIELDS:
        if key in data:
            setattr(track, key, data[key])
    _lock_typed(track, data)
    return track


def _lock_typed(item: Release | Track, data: Mapping[str, Any]) -> None:
    """Remember which fields the artist gave a value, so tags never overwrite them."""
    typed = {key for key, value in data.items() if value not in (None, "")}
    item.locked_fields = sorted(set(item.locked_fields or ()) | typed)


def check_track_price(price_minor: int, currency: str, limit: int) -> None:
    """Raises InvalidPricing unless 0 <= price_minor <= limit."""
    problem = price_problem(price_minor, currency, limit)
    if problem:
        raise InvalidPricing(problem, {"price_minor": [problem]})


def delete_track(session: Session, user: User, track: Track) -> None:
    """Delete a track, crypto-shredding its stored media."""
    require_owner(user, track.release.artist)
    _refuse_if_bought(session, [track.release_id], "This track's release")
    doomed = media.object_ids(session, tracks=[track])
    session.delete(track)
    media.shred(session, doomed)
