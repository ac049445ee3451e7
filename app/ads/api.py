"""/api/v1 ads: the player's ad slot and its impressions."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ads_api", __name__)
