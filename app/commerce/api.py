"""/api/v1 orders and checkout (being built)."""

from flask import Blueprint

bp = Blueprint("commerce_api", __name__)
