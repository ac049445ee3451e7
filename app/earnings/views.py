"""Pages of app.earnings."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("earnings", __name__)
