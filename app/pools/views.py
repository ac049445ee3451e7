"""The admin's periods: revenue, model, the preview and the close."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("pools", __name__)
