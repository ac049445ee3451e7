"""Library pages and downloads (being built)."""

from flask import Blueprint

bp = Blueprint("library", __name__)
