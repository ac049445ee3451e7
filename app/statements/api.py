"""/api/v1 of app.statements."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("statements_api", __name__)
