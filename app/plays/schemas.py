"""Plays schemas: starting a play, its heartbeats, and what the player is told back."""

from __future__ import annotations

from typing import Any

from flask import url_for
from marshmallow import fields, pre_dump

from app.plays.models import Play, PlayOutcome
from app.plays.service import POSITION_MAX_MS
from app.validation import ID_RANGE, Range, Schema

MS_PER_SECOND = 1000
POSITION_MAX_SECONDS = POSITION_MAX_MS // MS_PER_SECOND


class PlayStartSchema(Schema):
    track_id = fields.Integer(
        required=True,
        strict=True,
        validate=ID_RANGE,
        metadata={"description": "The track that started playing."},
    )


class HeartbeatSchema(Schema):
    position_seconds = fields.Float(
        required=True,
        validate=Range(min=0, max=POSITION_MAX_SECONDS),
        metadata={
            "description": "Where playback is, in seconds. Recorded only: counting goes by "
            "the server's clock."
        },
    )


def _outcome_field(description: str) -> fields.Enum:
    return fields.Enum(
        PlayOutcome,
        by_value=True,
        required=True,
        allow_none=True,
        metadata={"description": description},
    )


class PlayStartedSchema(Schema):
    id = fields.String(required=True, metadata={"description": "The play id heartbeats name."})
    track_id = fields.Integer(required=True)
    counts_after_seconds = fields.Float(
        required=True,
        metadata={
            "description": "Server-clock seconds after which a heartbeat counts the play: "
            "the setting, or the whole track if it is shorter."
        },
    )
    counted = fields.Boolean(required=True)
    outcome = _outcome_field('null while undecided; "artist" for the artist\'s own track.')
    heartbeat_url = fields.String(required=True)

    @pre_dump
    def _from_play(self, play: Play, **kwargs: Any) -> dict[str, Any]:
        return {
            "id": play.token,
            "track_id": play.track_id,
            "counts_after_seconds": play.threshold_ms / MS_PER_SECOND,
            "counted": play.outcome is PlayOutcome.COUNTED,
            "outcome": play.outcome,
            "heartbeat_url": url_for("plays_api.heartbeat", token=play.token),
        }


class HeartbeatResultSchema(Schema):
    id = fields.String(required=True)
    counted = fields.Boolean(required=True, metadata={"description": "Whether the play counted."})
    outcome = _outcome_field(
        "null until the play is due; then counted, replay (the track counted within the dedupe "
        "window already, by this listener or, for an anonymous one, from this address), capped "
        "(a daily cap: the listener's, or an anonymous one's address's), or artist."
    )
    elapsed_seconds = fields.Float(
        required=True, metadata={"description": "The server's clock since the play started."}
    )

    @pre_dump
    def _from_play(self, play: Play, **kwargs: Any) -> dict[str, Any]:
        heard_at = play.last_heartbeat_at or play.started_at
        return {
            "id": play.token,
            "counted": play.outcome is PlayOutcome.COUNTED,
            "outcome": play.outcome,
            "elapsed_seconds": (heard_at - play.started_at).total_seconds(),
        }
