"""/api/v1 of app.payouts."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("payouts_api", __name__)
