"""/api/v1 library (being built)."""

from flask import Blueprint

bp = Blueprint("library_api", __name__)
