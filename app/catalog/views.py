"""Public catalogue pages, and the artist's studio for editing artists, releases and tracks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from marshmallow import Schema, ValidationError
from werkzeug.wrappers import Response

from app.accounts.current import viewer
from app.catalog import images, service
from app.catalog.models import ArtistAvatar
from app.catalog.schemas import ArtistForm, ReleaseForm, load_track_form
from app.commerce.views import SALES_POLL_SECONDS, studio_sales
from app.errors import DomainError, NotFound
from app.extensions import db
from app.ledger.money import CURRENCY_EXPONENTS
from app.plays.listeners import offer_listener_cookie
from app.plays.service import counted_plays
from app.plays.views import COVER_CACHE_SECONDS, send_object

bp = Blueprint("catalog", __name__)
# Domain rules name model fields; the forms show amounts as typed decimals under other names.
FORM_FIELD_FOR = {"price_minor": "price", "minimum_price_minor": "minimum_price"}


@bp.app_context_processor
def _choices() -> dict[str, Any]:
    return {
        "CURRENCY_OPTIONS": [(code, code) for code in sorted(CURRENCY_EXPONENTS)],
        "COVER_MAX_SIZE": images.size_for_people(images.upload_limit(current_app.config)),
    }


def _form_page(template: str, load: Callable[[], dict], save: Callable[[dict], str], **ctx: Any):
    """Render a form; on a valid POST, save, commit and redirect to the URL ``save`` returns.

    Field errors from the schema or a domain rule are shown inline, and nothing is saved.
    """
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            target = save(load())
            db.session.commit()
        except ValidationError as exc:
            errors = exc.messages_dict
        except DomainError as exc:
            db.session.rollback()
            errors = {FORM_FIELD_FOR.get(k, k): v for k, v in exc.details.items()}
            errors.setdefault("_form", [exc.message])
        else:
            flash("Saved.", "success")
            return redirect(target)
    return render_template(template, errors=errors, form=request.form, **ctx), (422 if errors else 200)


def _load(schema: Schema) -> Callable[[], dict]:
    return lambda: schema.load(request.form)


def _chosen_image(field: str) -> bytes:
    """The bytes of the file chosen in ``field``. Raises InvalidImage if none was chosen or
    it is over the ``COVER_UPLOAD_MAX_BYTES`` setting."""
    chosen = request.files.get(field)
    if chosen is None or not chosen.filename:
        raise images.InvalidImage("Choose an image file first.")
    return images.read_upload(chosen.stream, images.upload_limit(current_app.config))


def _save_picture(
    save: Callable[[], None], page: Callable[[list[str]], str], saved: str, target: str
) -> tuple[str, int] | Response:
    """Run ``save`` (a cover or an artist picture) and commit, then go to ``target``; a bad
    image shows ``page`` with its problem instead, and nothing is saved."""
    try:
        save()
        db.session.commit()
    except images.InvalidImage as exc:
        db.session.rollback()
        return page([exc.message]), 422
    flash(saved, "success")
    return redirect(target)


# Public pages ---------------------------------------------------------------------------


@bp.get("/")
def home() -> str:
    releases = service.new_releases(db.session, current_app.config["PAGE_SIZE"])
    return render_template("catalog/home.html", releases=releases)


@bp.get("/search")
def search() -> str:
    query = " ".join(request.args.get("q", "")[:200].split())
    found = service.search(db.session, query, current_app.config["SEARCH_RESULTS_LIMIT"])
    return render_template("catalog/search.html", query=query, found=found)


@bp.get("/artists/<slug>")
def artist(slug: str) -> str:
    found = service.get_artist(db.session, slug)
    releases = service.artist_releases(found, viewer())
    return render_template("catalog/artist.html", artist=found, releases=releases)


@bp.get("/artists/<slug>/avatar/<int:size>.jpg")
def avatar(slug: str, size: int) -> Response:
    found = service.get_artist(db.session, slug)
    stored = db.session.get(ArtistAvatar, (found.id, size))
    if stored is None:
        raise NotFound("No picture at that size.")
    return send_object(stored.object_id, "image/jpeg", cache_seconds=COVER_CACHE_SECONDS)


@bp.get("/releases/<int:release_id>")
def release(release_id: int) -> Response:
    found = service.visible_release(db.session, release_id, viewer())
    play_counts = counted_plays(db.session, [track.id for track in found.tracks])
    response = make_response(
        render_template("catalog/release.html", release=found, play_counts=play_counts)
    )
    # The page with the player hands an anonymous browser its listener cookie, so its first
    # play is already counted against the cookie rather than the address hash.
    return offer_listener_cookie(response)


# Studio ---------------------------------------------------------------------------------


@bp.get("/studio")
@login_required
def studio() -> str:
    artists = current_user.artists
    track_ids = [t.id for artist in artists for release in artist.releases for t in release.tracks]
    return render_template(
        "catalog/studio.html",
        artists=artists,
        sales=studio_sales(artists),
        sales_poll_seconds=SALES_POLL_SECONDS,
        play_counts=counted_plays(db.session, track_ids),
    )


@bp.route("/studio/artists/new", methods=["GET", "POST"])
@login_required
def new_artist():
    def save(data: dict) -> str:
        created = service.create_artist(db.session, current_user, data)
        return url_for("catalog.artist", slug=created.slug)

    return _form_page("catalog/artist_form.html", _load(ArtistForm()), save, artist=None)


@bp.route("/studio/artists/<slug>/edit", methods=["GET", "POST"])
@login_required
def edit_artist(slug: str):
    found = service.get_artist(db.session, slug)
    service.require_owner(current_user, found)

    def save(data: dict) -> str:
        service.update_artist(current_user, found, data)
        return url_for("catalog.artist", slug=found.slug)

    load = _load(ArtistForm(partial=("slug",), exclude=("slug",)))
    return _form_page("catalog/artist_form.html", load, save, artist=found)


@bp.post("/studio/artists/<slug>/avatar")
@login_required
def upload_avatar(slug: str):
    found = service.get_artist(db.session, slug)
    service.require_owner(current_user, found)
    return _save_picture(
        lambda: images.set_artist_avatar(db.session, found, _chosen_image("avatar")),
        lambda problems: render_template(
            "catalog/artist_form.html", errors={}, form={}, artist=found, avatar_errors=problems
        ),
        "Picture saved.",
        url_for("catalog.edit_artist", slug=found.slug),
    )


@bp.post("/studio/artists/<slug>/avatar/delete")
@login_required
def delete_avatar(slug: str) -> Response:
    found = service.get_artist(db.session, slug)
    service.require_owner(current_user, found)
    images.remove_artist_avatar(db.session, found)
    db.session.commit()
    flash("Picture removed.", "info")
    return redirect(url_for("catalog.edit_artist", slug=found.slug))


@bp.route("/studio/artists/<slug>/releases/new", methods=["GET", "POST"])
@login_required
def new_release(slug: str):
    found = service.get_artist(db.session, slug)
    service.require_owner(current_user, found)

    def save(data: dict) -> str:
        created = service.create_release(
            db.session, current_user, found, data, config=current_app.config
        )
        db.session.flush()  # the new release needs its id for the redirect
        return url_for("catalog.edit_release", release_id=created.id)

    return _form_page("catalog/release_form.html", _load(ReleaseForm()), save, artist=found, release=None)


@bp.route("/studio/releases/<int:release_id>/edit", methods=["GET", "POST"])
@login_required
def edit_release(release_id: int):
    found = service.editable_release(db.session, release_id, current_user)

    def save(data: dict) -> str:
        service.update_release(current_user, found, data, config=current_app.config)
        return url_for("catalog.edit_release", release_id=found.id)

    return _form_page(
        "catalog/release_form.html", _load(ReleaseForm()), save, artist=found.artist, release=found
    )


@bp.post("/studio/releases/<int:release_id>/cover")
@login_required
def upload_cover(release_id: int):
    found = service.editable_release(db.session, release_id, current_user)
    return _save_picture(
        lambda: images.set_release_cover(db.session, found, _chosen_image("cover")),
        lambda problems: render_template(
            "catalog/release_form.html",
            errors={}, form={}, artist=found.artist, release=found, cover_errors=problems,
        ),  # fmt: skip
        "Cover saved.",
        url_for("catalog.edit_release", release_id=found.id),
    )


@bp.post("/studio/releases/<int:release_id>/cover/delete")
@login_required
def delete_cover(release_id: int) -> Response:
    found = service.editable_release(db.session, release_id, current_user)
    images.remove_release_cover(db.session, found)
    db.session.commit()
    flash("Cover removed.", "info")
    return redirect(url_for("catalog.edit_release", release_id=found.id))


@bp.post("/studio/releases/<int:release_id>/delete")
@login_required
def delete_release(release_id: int) -> Response:
    found = service.editable_release(db.session, release_id, current_user)
    slug = found.artist.slug
    service.delete_release(db.session, current_user, found)
    db.session.commit()
    flash("Release deleted.", "info")
    return redirect(url_for("catalog.artist", slug=slug))


@bp.route("/studio/releases/<int:release_id>/tracks/new", methods=["GET", "POST"])
@login_required
def new_track(release_id: int):
    found = service.editable_release(db.session, release_id, current_user)

    def save(data: dict) -> str:
        service.add_track(db.session, current_user, found, data, config=current_app.config)
        return url_for("catalog.edit_release", release_id=found.id)

    load = lambda: load_track_form(request.form, found.currency)  # noqa: E731
    return _form_page("catalog/track_form.html", load, save, release=found, track=None)


@bp.route("/studio/tracks/<int:track_id>/edit", methods=["GET", "POST"])
@login_required
def edit_track(track_id: int):
    found = service.editable_track(db.session, track_id, current_user)

    def save(data: dict) -> str:
        service.update_track(current_user, found, data, config=current_app.config)
        return url_for("catalog.edit_release", release_id=found.release_id)

    load = lambda: load_track_form(request.form, found.release.currency)  # noqa: E731
    return _form_page("catalog/track_form.html", load, save, release=found.release, track=found)


@bp.post("/studio/tracks/<int:track_id>/delete")
@login_required
def delete_track(track_id: int) -> Response:
    found = service.editable_track(db.session, track_id, current_user)
    release_id = found.release_id
    service.delete_track(db.session, current_user, found)
    db.session.commit()
    flash("Track deleted.", "info")
    return redirect(url_for("catalog.edit_release", release_id=release_id))
