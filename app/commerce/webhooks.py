"""Payment webhooks: /webhooks/stripe (being built)."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
