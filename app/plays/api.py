"""/api/v1 plays: start a play session and send its heartbeats.

The player asks for a play when playback starts (``POST /plays``), then sends heartbeats with
its position (``POST /plays/<id>/heartbeat``). The first heartbeat once ``counts_after_seconds``
of the server's clock have passed decides the play (see ``app.plays.service``). Anyone may
play: an anonymous listener is named by a signed cookie set on the first answer (see
``app.plays.listeners``). The play id is a heartbeat's only credential, so a heartbeat looks up
no listener.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from app.accounts.current import viewer
from app.api.auth import allows_anonymous
from app.api.helpers import json_body
from app.api.spec import operation
from app.catalog import service as catalog
from app.extensions import db
from app.plays import service
from app.plays.listeners import remember_listener, request_listener
from app.plays.schemas import (
    MS_PER_SECOND,
    HeartbeatResultSchema,
    HeartbeatSchema,
    PlayStartedSchema,
    PlayStartSchema,
)

bp = Blueprint("plays_api", __name__)


@bp.post("/plays")
@operation("Start a play of a track; its heartbeats name the id returned", tag="plays",
           body=PlayStartSchema, response=PlayStartedSchema, status=201)  # fmt: skip
@allows_anonymous
def start_play() -> Response:
    data = PlayStartSchema().load(json_body())
    listener_user = viewer()
    track = catalog.visible_track(db.session, data["track_id"], listener_user)
    identity = request_listener(db.session)
    play = service.start_play(
        db.session, current_app.config, track=track, identity=identity, viewer=listener_user
    )
    db.session.commit()
    response = jsonify(PlayStartedSchema().dump(play))
    response.status_code = 201
    return remember_listener(response, identity)


@bp.post("/plays/<token>/heartbeat")
@operation("Report a play still going; it counts once the server's clock says it is due",
           tag="plays", body=HeartbeatSchema, response=HeartbeatResultSchema)  # fmt: skip
@allows_anonymous
def heartbeat(token: str) -> Response:
    data = HeartbeatSchema().load(json_body())
    play = service.heartbeat(
        db.session,
        current_app.config,
        token=token,
        position_ms=round(data["position_seconds"] * MS_PER_SECOND),
    )
    # Dumped before the commit, which would expire the play and cost a query to reload it.
    body = HeartbeatResultSchema().dump(play)
    db.session.commit()
    return jsonify(body)
