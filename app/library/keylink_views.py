"""Key-in-link downloads at /d/<token> (being built)."""

from flask import Blueprint

bp = Blueprint("keylinks", __name__)
