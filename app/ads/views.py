"""Ad pages: the admin's campaigns, and campaign images."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("ads", __name__)
