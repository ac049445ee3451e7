"""/api/v1 ads: the player's ad slot and its impressions.

The player asks for an ad once playback starts, naming the play it is shown during. The reply
is the ad to show, whatever happens, and whether an impression was recorded. Impressions are
billable, so one is recorded only for a play of the same listener that still takes heartbeats
(started within ``PLAY_SESSION_TTL_SECONDS``) and has no impression yet, and only under the
frequency cap (``AD_FREQUENCY_CAP`` per ``AD_FREQUENCY_WINDOW_SECONDS``), which anonymous
listeners also share per IP address (see ``app.ads.service``). Anonymous listeners are welcome;
the reply sets the listener cookie when they have none.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from app.ads import service
from app.ads.schemas import ImpressionRequestSchema, ImpressionSchema
from app.ads.views import image_url
from app.api.auth import allows_anonymous
from app.api.helpers import json_body
from app.api.spec import operation
from app.extensions import db
from app.plays.listeners import remember_listener, request_listener
from app.timestamps import utcnow

bp = Blueprint("ads_api", __name__)


@bp.post("/ads/impressions")
@operation("Get the ad for the player's slot; record its impression for the listener's play",
           tag="ads", body=ImpressionRequestSchema, response=ImpressionSchema,
           status=201)  # fmt: skip
@allows_anonymous
def record_impression() -> Response:
    data = ImpressionRequestSchema().load(json_body())
    identity = request_listener(db.session)
    now = utcnow()
    ad = service.choose_ad(db.session, today=now.date())
    impression = service.record_impression(
        db.session,
        current_app.config,
        listener_id=identity.listener_id,
        address_listener_id=identity.address_listener_id,
        ad=ad,
        play_token=data["play_id"],
        now=now,
    )
    db.session.commit()
    shown = {
        "id": ad.campaign_id,
        "name": ad.name,
        "image_url": image_url(ad.campaign_id, ad.image_object_id),
        "link_url": ad.link_url,
        "house": ad.is_house,
    }
    response = jsonify(ImpressionSchema().dump({"ad": shown, "recorded": impression is not None}))
    response.status_code = 201
    return remember_listener(response, identity)
