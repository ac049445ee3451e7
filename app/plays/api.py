"""/api/v1 plays: start a play session and send its heartbeats."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("plays_api", __name__)
