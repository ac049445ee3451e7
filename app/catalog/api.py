"""/api/v1 for artists, releases and tracks. Reads are public; writes need the owner."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from app.accounts.current import viewer
from app.api.helpers import json_body, paging, require_user
from app.api.spec import operation
from app.catalog import images, service
from app.catalog.schemas import ArtistSchema, ReleaseSchema, ReleaseUpdateSchema, TrackSchema
from app.extensions import db

bp = Blueprint("catalog_api", __name__)
# Covers and avatars are sent as the image's own bytes; the bytes, not the type, decide.
IMAGE_MEDIA_TYPE = "image/*"
PAGING = {"limit": {"type": "integer", "minimum": 1}, "offset": {"type": "integer", "minimum": 0}}


# Artists --------------------------------------------------------------------------------


@bp.get("/artists")
@operation("List artists", tag="artists", response=ArtistSchema, many=True, query=PAGING)
def list_artists() -> Response:
    limit, offset = paging()
    return jsonify(ArtistSchema(many=True).dump(service.list_artists(db.session, limit, offset)))


@bp.post("/artists")
@operation("Create an artist profile you own", tag="artists", body=ArtistSchema,
           response=ArtistSchema, status=201, auth=True)  # fmt: skip
def create_artist() -> tuple[Response, int]:
    data = ArtistSchema().load(json_body())
    artist = service.create_artist(db.session, require_user(), data)
    db.session.commit()
    return jsonify(ArtistSchema().dump(artist)), 201


@bp.get("/artists/<slug>")
@operation("Get an artist", tag="artists", response=ArtistSchema)
def get_artist(slug: str) -> Response:
    return jsonify(ArtistSchema().dump(service.get_artist(db.session, slug)))


@bp.patch("/artists/<slug>")
@operation("Update your artist profile", tag="artists", body=ArtistSchema,
           response=ArtistSchema, auth=True)  # fmt: skip
def update_artist(slug: str) -> Response:
    artist = service.get_artist(db.session, slug)
    data = ArtistSchema(partial=True, exclude=("slug",)).load(json_body())
    service.update_artist(require_user(), artist, data)
    db.session.commit()
    return jsonify(ArtistSchema().dump(artist))


@bp.delete("/artists/<slug>")
@operation("Delete your artist profile and its releases", tag="artists", status=204, auth=True)
def delete_artist(slug: str) -> tuple[str, int]:
    artist = service.get_artist(db.session, slug)
    service.delete_artist(db.session, require_user(), artist)
    db.session.commit()
    return "", 204


@bp.put("/artists/<slug>/avatar")
@operation("Upload or replace your artist picture: the JPEG, PNG or WebP file as the body, at "
           "most COVER_UPLOAD_MAX_BYTES (10 MiB by default)", tag="artists",
           raw_body=IMAGE_MEDIA_TYPE, response=ArtistSchema, auth=True)  # fmt: skip
def put_avatar(slug: str) -> Response:
    artist = service.get_artist(db.session, slug)
    service.require_owner(require_user(), artist)
    images.set_artist_avatar(db.session, artist, _image_body())
    db.session.commit()
    return jsonify(ArtistSchema().dump(artist))


@bp.delete("/artists/<slug>/avatar")
@operation("Remove your artist picture", tag="artists", status=204, auth=True)
def delete_avatar(slug: str) -> tuple[str, int]:
    artist = service.get_artist(db.session, slug)
    service.require_owner(require_user(), artist)
    images.remove_artist_avatar(db.session, artist)
    db.session.commit()
    return "", 204


@bp.get("/artists/<slug>/releases")
@operation("List an artist's releases", tag="releases", response=ReleaseSchema, many=True)
def list_artist_releases(slug: str) -> Response:
    artist = service.get_artist(db.session, slug)
    return jsonify(ReleaseSchema(many=True).dump(service.artist_releases(artist, viewer())))


# Releases -------------------------------------------------------------------------------


@bp.get("/releases")
@operation("New published releases", tag="releases", response=ReleaseSchema, many=True,
           query={"limit": PAGING["limit"]})  # fmt: skip
def list_releases() -> Response:
    limit, _ = paging()
    return jsonify(ReleaseSchema(many=True).dump(service.new_releases(db.session, limit)))


@bp.post("/releases")
@operation("Create a release for an artist you own", tag="releases", body=ReleaseSchema,
           response=ReleaseSchema, status=201, auth=True)  # fmt: skip
def create_release() -> tuple[Response, int]:
    user = require_user()
    data = ReleaseSchema().load(json_body())
    artist = service.get_artist(db.session, data.pop("artist"))
    release = service.create_release(db.session, user, artist, data)
    db.session.commit()
    return jsonify(ReleaseSchema().dump(release)), 201


@bp.get("/releases/<int:release_id>")
@operation("Get a release with its tracks", tag="releases", response=ReleaseSchema)
def get_release(release_id: int) -> Response:
    return jsonify(ReleaseSchema().dump(service.visible_release(db.session, release_id, viewer())))


@bp.patch("/releases/<int:release_id>")
@operation("Update your release (pricing, publishing ...)", tag="releases",
           body=ReleaseUpdateSchema, response=ReleaseSchema, auth=True)  # fmt: skip
def update_release(release_id: int) -> Response:
    user = require_user()
    release = service.visible_release(db.session, release_id, user)
    data = ReleaseUpdateSchema(partial=True).load(json_body())
    service.update_release(user, release, data)
    db.session.commit()
    return jsonify(ReleaseSchema().dump(release))


@bp.delete("/releases/<int:release_id>")
@operation("Delete your release", tag="releases", status=204, auth=True)
def delete_release(release_id: int) -> tuple[str, int]:
    user = require_user()
    release = service.visible_release(db.session, release_id, user)
    service.delete_release(db.session, user, release)
    db.session.commit()
    return "", 204


@bp.put("/releases/<int:release_id>/cover")
@operation("Upload or replace your release's cover: the JPEG, PNG or WebP file as the body, at "
           "most COVER_UPLOAD_MAX_BYTES (10 MiB by default). Embedded art in later masters "
           "no longer replaces it", tag="releases",
           raw_body=IMAGE_MEDIA_TYPE, response=ReleaseSchema, auth=True)  # fmt: skip
def put_cover(release_id: int) -> Response:
    release = service.editable_release(db.session, release_id, require_user())
    images.set_release_cover(db.session, release, _image_body())
    db.session.commit()
    return jsonify(ReleaseSchema().dump(release))


@bp.delete("/releases/<int:release_id>/cover")
@operation("Remove your release's cover", tag="releases", status=204, auth=True)
def delete_cover(release_id: int) -> tuple[str, int]:
    release = service.editable_release(db.session, release_id, require_user())
    images.remove_release_cover(db.session, release)
    db.session.commit()
    return "", 204


def _image_body() -> bytes:
    """The request's body, at most the ``COVER_UPLOAD_MAX_BYTES`` setting. Raises InvalidImage."""
    return images.read_upload(request.stream, images.upload_limit(current_app.config))


# Tracks ---------------------------------------------------------------------------------


@bp.get("/releases/<int:release_id>/tracks")
@operation("List a release's tracks", tag="tracks", response=TrackSchema, many=True)
def list_tracks(release_id: int) -> Response:
    release = service.visible_release(db.session, release_id, viewer())
    return jsonify(TrackSchema(many=True).dump(release.tracks))


@bp.post("/releases/<int:release_id>/tracks")
@operation("Add a track to your release", tag="tracks", body=TrackSchema,
           response=TrackSchema, status=201, auth=True)  # fmt: skip
def create_track(release_id: int) -> tuple[Response, int]:
    user = require_user()
    release = service.visible_release(db.session, release_id, user)
    data = TrackSchema(partial=("position",)).load(json_body())
    track = service.add_track(db.session, user, release, data)
    db.session.commit()
    return jsonify(TrackSchema().dump(track)), 201


@bp.get("/tracks/<int:track_id>")
@operation("Get a track", tag="tracks", response=TrackSchema)
def get_track(track_id: int) -> Response:
    return jsonify(TrackSchema().dump(service.visible_track(db.session, track_id, viewer())))


@bp.patch("/tracks/<int:track_id>")
@operation("Update your track", tag="tracks", body=TrackSchema, response=TrackSchema, auth=True)
def update_track(track_id: int) -> Response:
    user = require_user()
    track = service.visible_track(db.session, track_id, user)
    data = TrackSchema(partial=True).load(json_body())
    service.update_track(user, track, data)
    db.session.commit()
    return jsonify(TrackSchema().dump(track))


@bp.delete("/tracks/<int:track_id>")
@operation("Delete your track", tag="tracks", status=204, auth=True)
def delete_track(track_id: int) -> tuple[str, int]:
    user = require_user()
    track = service.visible_track(db.session, track_id, user)
    service.delete_track(db.session, user, track)
    db.session.commit()
    return "", 204
