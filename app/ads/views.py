"""Ad pages: the admin's campaigns, and campaign images."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from app.accounts.current import admin_required
from app.ads import images, service
from app.ads.models import Campaign
from app.ads.schemas import load_campaign_form
from app.errors import DomainError, NotFound
from app.extensions import db
from app.plays.views import send_object
from app.timestamps import utcnow

bp = Blueprint("ads", __name__)
IMAGE_CACHE_SECONDS = 86_400  # an image's URL changes with the image (see image_url)
CHOSEN_NAME_SHOWN = 80  # characters of a chosen file's name repeated back on the form


def image_url(campaign_id: int | None, image_object_id: str | None) -> str | None:
    """Where a campaign's image is loaded from; the version changes whenever the image does."""
    if campaign_id is None or image_object_id is None:
        return None
    return url_for("ads.image", campaign_id=campaign_id, v=image_object_id[:12])


@bp.get("/ads/<int:campaign_id>/image")
def image(campaign_id: int) -> Response:
    campaign = service.get_campaign(db.session, campaign_id)
    if campaign.image_object_id is None or campaign.image_mimetype is None:
        raise NotFound("This campaign has no image.")
    response = send_object(
        campaign.image_object_id, campaign.image_mimetype, cache_seconds=IMAGE_CACHE_SECONDS
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/admin/ads")
@admin_required
def index() -> str:
    rows = service.campaign_rows(db.session)
    return render_template(
        "ads/index.html",
        rows=rows,
        today=utcnow().date(),
        state=service.campaign_state,
        state_labels=service.STATE_LABELS,
        image_url=image_url,
    )


@bp.route("/admin/ads/new", methods=["GET", "POST"])
@admin_required
def new_campaign() -> Any:
    return _campaign_form(None)


@bp.route("/admin/ads/<int:campaign_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_campaign(campaign_id: int) -> Any:
    return _campaign_form(service.get_campaign(db.session, campaign_id))


def _campaign_form(campaign: Campaign | None) -> Any:
    """The form; a valid POST saves, commits and returns to the list, a bad one shows why."""
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            values = load_campaign_form(request.form, request.files)
            if campaign is None:
                service.create_campaign(db.session, current_app.config, values)
            else:
                service.update_campaign(db.session, current_app.config, campaign, values)
            db.session.commit()
        except ValidationError as exc:
            errors = exc.messages_dict
        except DomainError as exc:
            db.session.rollback()
            errors = dict(exc.details) or {"_form": [exc.message]}
        else:
            flash("Campaign saved.", "success")
            return redirect(url_for("ads.index"))
    # Browsers clear a file input when the form comes back: say so, naming the file.
    chosen = getattr(request.files.get("image"), "filename", "") or ""
    image_chosen = chosen[:CHOSEN_NAME_SHOWN] if errors else ""
    return render_template(
        "ads/form.html",
        campaign=campaign,
        errors=errors,
        form=request.form,
        image_chosen=image_chosen,
        max_image_size=images.bytes_for_people(int(current_app.config["AD_IMAGE_MAX_BYTES"])),
        max_image_pixels=images.pixels_for_people(int(current_app.config["AD_IMAGE_MAX_PIXELS"])),
        currency=current_app.config["DEFAULT_CURRENCY"],
        image_url=image_url,
    ), (422 if errors else 200)
